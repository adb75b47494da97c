"""Long docstring sections of :func:`scfanpy.tl.predict_tf_binding` (filled in by ``doc_params``)."""

DOC_RETURNS = """\
None or AnnData or MuData
    A copy of ``data`` when ``copy=True``; otherwise ``data`` is changed in place. These fields are
    written (``adata`` is the modality ``mod`` of a MuData):
adata.varm['tf_binding'] : :class:`pandas.DataFrame`
    Peaks x TFs binding probability (key ``binding_key``); for a track model averaged over the cells
    where the peak is accessible, at their signal levels. Peaks without sequence (all N) get 0 from a
    deep model (which returns NaN for them) and the prior from the motif model.
adata.varm['tf_binding_levels'] : :class:`numpy.ndarray`
    float16 ``(peaks, levels, TFs)``, the (peak, level) table: track models with ``store_levels``.
adata.varm['dna_code'] : :class:`numpy.ndarray`
    uint8 peak sequences, when read here from ``genome``.
adata.obsm['tf_activity'] : :class:`pandas.DataFrame`
    Cells x TFs activity (key ``key_added``): the bias-corrected z-score (``correct_bias``; NaN for cells
    without signal), else the uncorrected score.
adata.obs['tf_activity_empty'] : :class:`pandas.Series`
    Boolean: cells without counts in the layer their activity is formed on (``key_added + '_empty'``);
    their activity (corrected and uncorrected) is NaN, not the background value.
adata.obsm['tf_activity_deviation'] : :class:`pandas.DataFrame`
    ``correct_bias`` and ``store_deviation`` only: the bias-corrected deviation (``key_added + '_deviation'``).
adata.obsm['tf_activity_raw'] : :class:`pandas.DataFrame`
    ``correct_bias`` and ``store_raw`` only: the uncorrected score of ``method`` (``key_added + '_raw'``).
adata.obsm['X_tf'] : :class:`numpy.ndarray`
    ``correct_bias`` only: PCA (30 components) of the z-scores of one TF per motif archetype, the most
    variable member (so a family of near-identical motifs counts once), formed on each cell's counts
    summed over its ``tf_neighbors`` nearest cells in the PCA of its own z-scores (see
    ``tf_neighbors``), for ``sc.pp.neighbors(adata, use_rep='X_tf')``; the TFs in
    ``uns['tf_activity']['x_tf_tfs']``.
adata.var['gc_content'], adata.var['n_fraction'], adata.var['usable_sequence'] : :class:`pandas.Series`
    ``correct_bias`` only: GC share of the known bases, share of N, and whether the peak has sequence
    evidence (at most 50% N; other peaks get weight 0).
adata.varm['tf_activity_background_peaks'] : :class:`numpy.ndarray`
    ``correct_bias`` with ``background='sampled'`` only: int32 (peaks, ``n_background``), each peak's
    matched background peaks (drawn from the peaks with usable sequence).
adata.layers['smoothed'], adata.obs['smoothed_depth'], adata.uns['smoothed'] : various
    When smoothed here (see ``smooth``): as written by :func:`scfanpy.pp.smooth`.
adata.uns['tf_activity']['params'] : dict
    ``model``, ``model_kind``, ``method``, ``layer``, ``n_levels``, ``window``, ``binding_key``,
    ``correct_bias``, ``background``, ``n_background`` (0 for ``'expected'``), ``random_state`` (seed of
    the background peaks), ``smoothed_here``, ``counts_layer`` (the counts the corrected activity was
    formed on), ``precision``, ``x_tf_neighbors`` (cells pooled for ``X_tf``; 0: none).
adata.uns['tf_activity']['archetypes'] : dict
    TF -> motif archetype (:func:`scfanpy.tl.motif_archetypes`; TFs without a motif are their own).
adata.uns['tf_activity']['x_tf_tfs'] : list
    ``correct_bias`` only: the TFs whose z-scores make ``X_tf``.
adata.uns['tf_activity']['tf_names'] : list
    The TFs, in column order.
adata.uns['tf_activity']['model'] : dict
    The model's name, class, TF count and repr; for a :class:`scfanpy.models.CombinedModel` also
    ``choice`` (TF -> the sub-model that scored it).
adata.uns['tf_activity']['levels'] : :class:`numpy.ndarray`
    The signal levels of the table (empty for sequence-only models).
adata.uns['tf_activity']['background'] : :class:`numpy.ndarray`
    Per-TF mean probability over all peaks, subtracted by ``method='probability'``.
mdata.mod['tf'] : :class:`anndata.AnnData`
    MuData only: cells x TFs activity (``key_added`` when not ``'tf_activity'``); ``update()`` called,
    and object columns that update leaves mixing values and NaN in ``mdata.var`` / ``mdata.obs`` are
    made categorical so that ``mdata.write`` works."""

DOC_NOTES = """\
A cell's accessible peaks are the non-zero entries of its row of the signal layer. The per-cell
signal at a peak is one number, ``v = log1p(1e6 * s / depth)``: the neighbourhood sum ``s`` as a
pseudo-bulk CPM (``depth`` is ``obs['smoothed_depth']``, the row sum for another layer).

A sequence-only model (``input_spec['n_tracks'] == 0``, e.g. the default motif model) gives one
probability per (peak, TF), evaluated once per peak; the cell's accessibility gates it. A model
whose window is shorter than the peaks scans each peak in tiles of its window, half overlapping,
and keeps each TF's maximum. A model with an accessibility track takes the signal as a constant
track: the signal is quantised to ``n_levels`` levels (quantiles of all non-zero values, minimum and
maximum included), the network runs once per (peak, level), and a cell's probability at a peak is
read from that table, linearly interpolated between the two levels around its signal
(``method='scfan'``: the nearest level). The cost is ``n_peaks x (n_levels + 1)`` forward passes
whatever the number of cells; nothing dense cells x peaks is formed.

``method='scfan'``: in each accessible peak of a cell the two TFs with the highest probability get
one vote each; a TF's activity is its votes divided by ``2 x n_accessible_peaks`` (each cell's
scores sum to 1). ``method='probability'``: the signal-weighted mean probability over the cell's
accessible peaks minus the mean over all peaks,
``a[c, t] = sum_p v[c, p] P[c, p, t] / sum_p v[c, p] - mean_p P[p, t]`` (for a track model the
background is taken at the median signal).

Bias correction (``correct_bias``, the default), chromVAR's design (Schep et al., Nature Methods 2017)
on the model's binding weights: with ``x`` the cells' counts (``X`` when the binding was scored on the
smoothed layer, else ``layer``: the deviation is a statistic of each cell's own reads, and pooling
neighbours first mixes cells whose neighbours were found on a technically biased embedding),
``w[p, t] = max(2 P[p, t] - 1, 0)`` the per-peak evidence above even odds (``'scfan'``: the peak's top-2
votes) and ``e[p]`` the peak's share of all counts, a cell's deviation is
``d = (sum_p x[c, p] w[p, t] - E) / E`` with ``E = sum_p x[c, p] * sum_p e[p] w[p, t]``.
Each peak gets ``n_background`` stand-in peaks alike in GC content and log mean accessibility, drawn as
chromVAR does (whitened covariates on a grid, bins by
a Gaussian kernel of their distance, then a peak of the bin), only among peaks with usable sequence;
background ``b`` moves every weight to the ``b``-th stand-in and gives ``d_b``. The activity is ``z = (d - mean_b d_b) / sd_b d_b``: a TF whose sites sit on
GC-rich or widely open peaks gets the same expectation from its backgrounds, so a cell's GC or
capture bias cancels. Peaks with more than 50% N carry no weight, so missing sequence is never
evidence. Differences from the paper's scFAN score: scFAN reports the uncorrected vote share
(``method='scfan', correct_bias=False``); the correction is our addition, because the uncorrected
scores rank GC-rich motifs first in every real cell type (``docs/benchmarks/tf_activity.md``)."""
