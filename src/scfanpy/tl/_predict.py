"""Per-cell TF binding and TF activity (scFAN), with any TF-binding model: the AnnData side.

:func:`predict_tf_binding` is a thin driver: :func:`_read_inputs` pulls and validates what it needs
from the AnnData / MuData, the numeric cores of :mod:`scfanpy.tl._scoring` (arrays in, arrays out) form
the ``(peak, level)`` table and the activities, and :func:`._predict_write.write_results` writes every field and logs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .. import _logging as logg
from .._constants import DNA_CODE, SMOOTHED, TF_ACTIVITY, TF_BINDING
from .._docs import doc_params
from .._torch import fit_window
from .._utils import get_adata
from . import _chunks as ch
from . import _correction as corr
from . import _scoring as sc
from ._deviations import ExpectedBackground
from ._predict_docs import DOC_NOTES, DOC_RETURNS
from ._predict_model import check_options as _check_options
from ._predict_model import check_precision, resolve_model
from ._predict_model import check_shape as _check_shape
from ._predict_model import is_motif_name as _is_motif_name
from ._predict_model import model_name as _model_name
from ._predict_model import predictor as _predictor
from ._predict_write import counts_layer, write_results
from ._representation import neighbour_pooled_z, pooling_neighbours, tf_representation

if TYPE_CHECKING:  # pragma: no cover
    from mudata import MuData

__all__ = ["predict_tf_binding"]


# ------------------------------------------------------------------------------------------ reader
@dataclass
class _Inputs:
    """What :func:`predict_tf_binding` reads from the AnnData, validated."""

    adata: AnnData
    model: Any
    tf_names: list[str]
    cols: np.ndarray | None  # columns of the model's output (None: all)
    layer: str  # the scored layer ('X' or a layer name)
    codes: np.ndarray  # uint8 (peaks, width)
    window: int
    n_tracks: int
    had_codes: bool
    smoothed_here: bool = False
    counts: str | None = None  # the counts of the corrected activity (None: no correction)
    precision: str = "32"  # of the model's inference ('bf16': deep models only)
    counts_scan: ch.Scan | None = None  # pass (a) over the counts
    signal_scan: ch.Scan | None = None  # pass (a) over the scored layer, with its values (track model)

    def matrix(self, name: str) -> Any:
        """``X`` or a layer: in memory, backed or dask."""
        return self.adata.X if name == "X" else self.adata.layers[name]

    def depth(self) -> np.ndarray | None:
        """The scored layer's depth ``obs[layer + '_depth']`` (None: the row sums)."""
        dkey = f"{self.layer}_depth"
        if self.layer == "X" or dkey not in self.adata.obs:
            return None
        return self.adata.obs[dkey].to_numpy(np.float64)


def _read_signal(adata: AnnData, layer: str | None) -> tuple[sp.csr_matrix, str]:
    """The per-cell signal (:func:`._scoring.cell_signal`) of ``layer`` (in memory) and the layer's name.

    ``layer=None``: ``layers['smoothed']`` when present (depth ``obs['smoothed_depth']``), else ``X``.
    """
    if layer is None:
        layer = SMOOTHED if SMOOTHED in adata.layers else None
    if layer in (None, "X"):
        return sc.cell_signal(adata.X), "X"
    if layer not in adata.layers:
        raise KeyError(f"layers[{layer!r}] not found")
    dkey = f"{layer}_depth"
    depth = adata.obs[dkey].to_numpy(np.float64) if dkey in adata.obs else None
    return sc.cell_signal(adata.layers[layer], depth), layer


def _scored_layer(adata: AnnData, layer: str | None, smooth: bool) -> str:
    """The layer the binding is scored on: ``layer``, else ``'smoothed'`` (present or made here), else X."""
    if layer is not None:
        return layer
    if SMOOTHED in adata.layers or smooth:
        return SMOOTHED
    logg.warning(
        "layers[%r] not found: scoring the raw counts X (run sfp.pp.smooth first for scFAN's pseudo-bulk)",
        SMOOTHED,
    )
    return "X"


def _peak_codes(adata: AnnData, genome, window: int, longer_ok: bool = False) -> np.ndarray:
    """uint8 codes ``(n_peaks, W)`` for the model's window: from ``varm['dna_code']`` or the genome.

    ``longer_ok``: sequences longer than the window are kept whole (a sequence-only model scans them in
    tiles), and sequences are read at least as wide as the peaks. Narrower stored sequences are read
    again from ``genome`` when given (``varm['dna_code']`` is written only when it was missing), else
    padded with N.
    """
    have = np.asarray(adata.varm[DNA_CODE]) if DNA_CODE in adata.varm else None
    if have is not None:
        width = have.shape[1]
        if window == 0 or width == window or (longer_ok and width > window):
            return have
        if width > window or genome is None:
            if width < window:
                logg.warning(
                    "varm[%r] is %d bp, model window %d: padded with N (pass genome= to read more)",
                    DNA_CODE,
                    width,
                    window,
                )
            return np.ascontiguousarray(fit_window(have, window))
    if genome is None:
        raise ValueError(
            f"varm[{DNA_CODE!r}] missing: pass genome= (a FASTA path or sfp.Genome) or run sfp.pp.add_sequences first"
        )
    from ..pp._peaks import get_peak_coords, parse_peaks
    from ..pp._sequences import add_sequences

    if not all(k in adata.var.columns for k in ("chr", "start", "end")):
        parse_peaks(adata)
    if window == 0 or longer_ok:
        _, start, end = get_peak_coords(adata)
        window = max(window, int(np.median(np.asarray(end) - np.asarray(start))))
    if have is None:
        add_sequences(adata, genome, width=window)
        return np.asarray(adata.varm[DNA_CODE])
    tmp = AnnData(var=adata.var[["chr", "start", "end"]].copy())
    add_sequences(tmp, genome, width=window)
    return np.asarray(tmp.varm[DNA_CODE])


def _scan_layers(inp: _Inputs, *, chunk_size: int, random_state, verbose: bool) -> None:
    """Pass (a) over the counts and the scored layer when it exists: checks every value, sums, levels.

    Runs before anything is written; a layer smoothed here is scanned after the smoothing (its values
    come from checked counts).
    """
    where = {"X": "X"}
    track = inp.n_tracks > 0
    kw = {"chunk_size": chunk_size, "random_state": random_state, "verbose": verbose}
    if inp.counts is not None:
        same = inp.counts == inp.layer
        inp.counts_scan = ch.scan(
            inp.matrix(inp.counts),
            where.get(inp.counts, f"layers[{inp.counts!r}]"),
            values=same and track,
            depth=inp.depth() if same else None,
            **kw,
        )
        if same and track:
            inp.signal_scan = inp.counts_scan
    exists = inp.layer == "X" or inp.layer in inp.adata.layers
    if exists and inp.counts != inp.layer:
        inp.signal_scan = ch.scan(
            inp.matrix(inp.layer),
            where.get(inp.layer, f"layers[{inp.layer!r}]"),
            values=track,
            depth=inp.depth(),
            **kw,
        )


def _read_inputs(
    data,
    *,
    mod,
    model,
    tfs,
    genome,
    layer,
    smooth,
    correct_bias,
    chunk_size,
    random_state,
    verbose,
    precision="32",
) -> _Inputs:
    """Resolve the model and its TFs, check and sum the counts (pass (a)), read the sequences, smooth."""
    adata = get_adata(data, mod)
    _check_shape(adata, layer)
    if tfs is not None and len(tfs) == 0:
        raise ValueError("tfs=[] selects no TF: pass None (all of the model's TFs) or a list of names")
    mdl = resolve_model(model, tfs if (model is None or isinstance(model, str)) else None)
    check_precision(mdl, precision)
    all_tfs = list(mdl.tf_names)
    cols = None
    if tfs is not None and not _is_motif_name(model):
        missing = [t for t in tfs if t not in all_tfs]
        if missing:
            raise KeyError(f"TFs not in the model: {missing}")
        cols = np.array([all_tfs.index(t) for t in tfs])
    tf_names = all_tfs if cols is None else [all_tfs[i] for i in cols]
    window = int(mdl.input_spec.get("window", 0) or 0)
    n_tracks = int(mdl.input_spec.get("n_tracks", 0) or 0)
    scored = _scored_layer(adata, layer, smooth)
    inp = _Inputs(adata, mdl, tf_names, cols, scored, np.zeros((0, 0), np.uint8), window, n_tracks, False)
    inp.counts = counts_layer(scored) if correct_bias else None
    inp.precision = precision
    kw = {"chunk_size": chunk_size, "random_state": random_state, "verbose": verbose}
    _scan_layers(inp, **kw)
    inp.had_codes = DNA_CODE in adata.varm
    inp.codes = _peak_codes(adata, genome, window, longer_ok=n_tracks == 0)
    inp.smoothed_here = scored == SMOOTHED and SMOOTHED not in adata.layers
    if inp.smoothed_here:  # scFAN's pipeline: k-NN pseudo-bulk before scoring
        from ..pp._smooth import smooth as pp_smooth

        logg.info("no layers[%r]: smoothing first (sfp.pp.smooth; smooth=False scores X)", SMOOTHED)
        pp_smooth(adata, random_state=random_state)
        if n_tracks > 0:
            inp.signal_scan = ch.scan(
                inp.matrix(scored), f"layers[{scored!r}]", values=True, depth=inp.depth(), **kw
            )
    return inp


# ----------------------------------------------------------------------------------------- scoring
@dataclass
class _Scores:
    """What :func:`_score` computes: activities, per-peak binding, the table and its levels."""

    act: np.ndarray  # float32 (cells, TFs)
    binding: np.ndarray  # float32 (peaks, TFs)
    table: np.ndarray | None  # float32 (peaks, levels, TFs); None when exact
    levels: np.ndarray | None  # signal levels; None for a sequence-only model or exact
    background: np.ndarray  # float64 (TFs,)
    exact: bool
    empty: np.ndarray | None = None  # bool (cells,): no counts where the activity is formed
    correction: corr.Correction | None = None
    archetype: pd.Series | None = None
    x_tf: np.ndarray | None = None
    x_tf_tfs: list[str] | None = None
    background_inputs: corr.Background | None = None  # weights and stand-ins, for the pooled X_tf
    x_tf_neighbors: int = 0  # neighbours pooled for X_tf (0: none)


def _score(
    inp: _Inputs,
    method,
    n_levels,
    batch_size,
    *,
    n_background,
    chunk_size,
    random_state,
    verbose,
    store_raw: bool = True,
    store_deviation: bool = True,
    background_mode: str = "sampled",
) -> _Scores:
    """The table (or exact passes), background, then pass (c) over the cells (with the deviations)."""
    start = logg.info(
        "scoring %d peaks with %s (%d TFs, %s)",
        inp.adata.n_vars,
        _model_name(inp.model),
        len(inp.tf_names),
        "sequence only" if inp.n_tracks == 0 else f"{inp.n_tracks} track(s)",
    )
    exact = inp.n_tracks > 0 and n_levels is None
    levels = None
    if inp.n_tracks > 0 and not exact:
        levels = inp.signal_scan.levels(n_levels)
        logg.info("    %d signal levels", len(levels))
    n_tfs = len(inp.tf_names)
    predict = _predictor(inp.model, inp.cols, batch_size, inp.precision)
    table_of = partial(
        sc.binding_table, predict, inp.codes, n_tfs=n_tfs, batch_size=batch_size, verbose=verbose
    )
    table = binding = None
    if inp.n_tracks > 0:  # background: every peak at the median signal (same for the table and exact)
        ref = table_of(inp.signal_scan.median())
        background = sc.table_background(ref)
        binding = ref[:, 0, :] if exact else None
    if not exact:
        table = table_of(levels, window=inp.window)
        if levels is None:
            background = sc.table_background(table)
            binding = table[:, 0, :]
    prep = partial(
        _background,
        inp,
        method=method,
        n_background=n_background,
        random_state=random_state,
        background=background_mode,
    )
    bg = None if binding is None or inp.counts is None else prep(binding)
    s = ch.Scoring(method, background, inp.depth(), table, levels, batch_size=batch_size, n_tfs=n_tfs)
    if exact:  # forward passes per (cell, peak), run here (not in dask tasks)
        s.predict, s.codes = predict, inp.codes
    s.count_levels = binding is None
    corrected = inp.counts is not None  # the uncorrected score is the activity otherwise: always kept
    s.keep_activity = store_raw or not corrected
    if bg is not None:
        s.weights, s.background_peaks, s.peak_share = bg.weights, bg.peaks, bg.peak_share
        s.keep_deviation, s.expected = store_deviation, bg.expected
    other = None if bg is None or inp.counts == inp.layer else inp.matrix(inp.counts)
    kw = {"chunk_size": chunk_size, "verbose": verbose}
    cells = ch.score_cells(inp.matrix(inp.layer), other, s, **kw)
    if binding is None:  # a track model: the table averaged over the cells' levels
        binding = sc.binding_from_counts(cells.level_counts, table)
        if inp.counts is not None:
            bg = prep(binding)
            s = ch.Scoring(method, None, n_tfs=n_tfs, activity=False, weights=bg.weights)
            s.background_peaks, s.peak_share = bg.peaks, bg.peak_share
            s.keep_deviation, s.expected = store_deviation, bg.expected
            dev = ch.score_cells(inp.matrix(inp.counts), None, s, **kw)
            cells.deviation, cells.z = dev.deviation, dev.z
    res = _Scores(cells.activity, binding, table, levels, background, exact)
    if bg is not None:
        res.correction = corr.correction(bg, cells.deviation, cells.z)
        res.background_inputs = bg
        res.empty = inp.counts_scan.row_sums <= 0
    else:
        res.empty = ~cells.nonempty
    logg.info("    finished", time=start)
    return res


def _background(
    inp: _Inputs, binding: np.ndarray, *, method, n_background, random_state, background
) -> corr.Background:
    """Pass (b): weights and background peaks from the binding and the counts' column sums."""
    if background == "expected":
        logg.info("correcting for GC content and accessibility: exact moments over the background peaks")
    else:
        logg.info("correcting for GC content and accessibility with %d background peak sets", n_background)
    bg = corr.prepare(
        inp.codes,
        binding,
        inp.counts_scan.col_sums,
        inp.adata.n_obs,
        method=method,
        n_background=n_background,
        random_state=random_state,
        background=background,
    )
    if (~bg.usable).any():
        logg.info(
            "    %d peaks with > %d%% N left out (no sequence evidence)",
            (~bg.usable).sum(),
            100 * corr.MAX_N_FRACTION,
        )
    return bg


def _archetypes(inp: _Inputs, res: _Scores, *, tf_neighbors: int, chunk_size: int, random_state) -> None:
    """Motif archetypes and ``X_tf`` of the corrected activity, added to ``res``."""
    res.archetype = corr.archetypes_for(inp.model, inp.tf_names)
    arch = res.archetype.reindex(inp.tf_names).to_numpy()
    res.x_tf, sel = tf_representation(res.correction.z, archetype=arch, random_state=random_state)
    res.x_tf_tfs = [inp.tf_names[i] for i in sel]
    logg.info(
        "    %d archetypes; X_tf from one TF per archetype (its most variable)", res.archetype.nunique()
    )
    if tf_neighbors < 2 or inp.adata.n_obs < 3:
        return
    k = min(int(tf_neighbors), inp.adata.n_obs)
    pooled = _pooled_z(inp, res, sel, res.x_tf, k, chunk_size=chunk_size, random_state=random_state)
    res.x_tf = tf_representation(pooled, random_state=random_state)[0]
    res.x_tf_neighbors = k
    logg.info("    X_tf from the counts pooled over each cell's %d nearest cells in its first X_tf", k)


def _pooled_z(
    inp: _Inputs, res: _Scores, sel: np.ndarray, x: np.ndarray, k: int, *, chunk_size: int, random_state
) -> np.ndarray:
    """z-scores of the TFs ``sel`` on each cell's counts summed over its ``k`` nearest cells in ``x``.

    The background's exact moments whatever ``background``: the pooled counts are k times denser, and
    n_background sparse products over them would cost k times the first pass.
    """
    bg = res.background_inputs
    expected = ExpectedBackground(np.ascontiguousarray(bg.weights[:, sel]), bg.model, bg.peak_share)
    neighbours = pooling_neighbours(x, k, random_state)
    return neighbour_pooled_z(
        inp.matrix(inp.counts), neighbours, partial(_expected_z, expected), chunk_size=chunk_size
    )


def _expected_z(expected: ExpectedBackground, x) -> np.ndarray:
    return expected(x)[1]


# ----------------------------------------------------------------------------------------- public
@doc_params(returns=DOC_RETURNS, notes=DOC_NOTES)
def predict_tf_binding(
    data: AnnData | MuData,
    *,
    model: Any = None,
    genome: Any = None,
    method: Literal["probability", "scfan"] = "probability",
    tfs: list[str] | None = None,
    layer: str | None = None,
    smooth: bool = True,
    correct_bias: bool = True,
    background: Literal["sampled", "expected"] = "sampled",
    n_background: int = 50,
    tf_neighbors: int = 10,
    n_levels: int | None = 16,
    store_levels: bool = True,
    store_raw: bool = True,
    store_deviation: bool = True,
    batch_size: int = 256,
    precision: Literal["32", "bf16"] = "32",
    chunk_size: int = 10_000,
    mod: str | None = None,
    key_added: str = TF_ACTIVITY,
    binding_key: str = TF_BINDING,
    random_state: int | np.random.Generator | None = 0,
    verbose: bool = True,
    copy: bool = False,
) -> AnnData | MuData | None:
    """Per-cell TF binding probabilities at each cell's accessible peaks and a per-cell TF activity profile.

    The method of scFAN (Fu et al. 2020) with any TF-binding model: the peaks' sequences are scored by
    the model (with each cell's neighbour-smoothed accessibility when the model takes an accessibility
    track), and each cell's probabilities at its accessible peaks are summarised into one activity per
    TF (see Notes).

    Parameters
    ----------
    {data}
        Peaks need ``var['chr', 'start', 'end']`` or ``chr:start-end`` names. ``X`` (and the layers) may
        be in memory, backed (``anndata.read_h5ad(path, backed='r')``; the results go to the in-memory
        ``obs``, ``obsm``, ``varm``, ``uns``: save with ``adata.write_h5ad(new_path)``) or a dask array
        (e.g. ``anndata.experimental.read_elem_lazy``), read ``chunk_size`` cells at a time; with a dask
        array each chunk is one dask task, so a ``dask.distributed`` client runs them on its workers
        (see ``docs/scale.md``).
    model
        ``None`` or ``'motif'``: :class:`~scfanpy.models.MotifModel` on JASPAR CORE vertebrates (no
        training data, any genome; ``tfs`` picks the TFs, default all of JASPAR). ``'pretrained'`` (or a
        name known to :func:`scfanpy.models.pretrained`): the shipped deep model. Or any model object
        (``DANQ``, ``FACTORNET``, ``SCFAN``, ...) with ``tf_names``, ``input_spec`` and ``predict_codes``.
    genome
        FASTA path or :class:`~scfanpy.Genome`; needed when ``varm['dna_code']`` is missing or narrower
        than the model's window.
    method
        ``'probability'`` (signal-weighted mean probability, background-corrected) or ``'scfan'`` (top-2
        votes, scFAN's published score).
    tfs
        TFs to score: JASPAR names for the motif model; for another model a subset of its ``tf_names``.
    layer
        Signal layer; default ``'smoothed'`` (made here by :func:`scfanpy.pp.smooth` when missing and
        ``smooth``), else ``X``.
    smooth
        With ``layer=None`` and no ``layers['smoothed']``: smooth first (scFAN's k-NN pseudo-bulk, default
        settings of :func:`scfanpy.pp.smooth`). False scores ``X`` as it is. At 10^6 cells the neighbour sums
        (``k`` x non-zeros, the counts and the smoothed layer in memory) dominate the cost, while the
        corrected activity is formed on the counts anyway: ``smooth=False`` is the cheaper path there
        (measured in ``docs/scale.md``).
    correct_bias
        Report the activity as a bias-corrected z-score: each cell's binding-weighted counts are compared
        with background peaks matched on GC content and mean accessibility, drawn among the peaks with
        usable sequence (chromVAR's design; see Notes). False keeps the uncorrected score as the activity.
    background
        ``'sampled'``: ``n_background`` sets of stand-in peaks are drawn (chromVAR's sampling, seeded by
        ``random_state``; ``varm[key_added + '_background_peaks']``) and the mean and spread of the
        background deviations are estimated from them. ``'expected'``: no draws; the mean and variance are
        taken exactly over the same stand-in distribution, the limit of infinitely many sets (z-scores
        correlate 0.9998 with 4,000 drawn sets, 50 sets correlate 0.98 with either; ``tests/tl/test_deviations.py``).
        It costs a few dense products per chunk of cells instead of ``n_background`` sparse products over
        the counts, the choice for atlases (``docs/scale.md``).
    n_background
        Background peak sets for the correction (``background='sampled'``).
    tf_neighbors
        ``X_tf`` is made in two steps: the PCA of the cells' own z-scores (one TF per archetype), then the
        z-scores of each cell's counts summed over its ``tf_neighbors`` nearest cells in that first PCA
        (itself included; above 20,000 cells, its nearest among a seeded random 20,000; the background's
        exact moments as with ``background='expected'``, whatever ``background``), and their PCA.
        The neighbours come from the TF activity, not from the peaks, so a genome without motif signal
        gives little structure (``docs/benchmarks/tf_activity.md``, fifth pass). 0 (or 1): the first step
        only.
        With backed or dask counts each chunk of cells reads the matrix again to gather its neighbours'
        rows (memory of one chunk, time growing as cells^2 / ``chunk_size``): pass 0 for an atlas on
        disk (``docs/scale.md``). ``obsm[key_added]`` is always the cells' own z-scores.
    n_levels
        Signal levels of the (peak, level) table for models with an accessibility track; ``None``: exact
        per-(cell, peak) forward passes (slow, for validation). Unused by sequence-only models.
    store_levels
        Keep the (peak, level) table in ``varm[binding_key + '_levels']`` (float16) so that
        :func:`cell_tf_binding` can return per-cell probabilities; skipped above 1 GB.
    store_raw, store_deviation
        With ``correct_bias``: keep the uncorrected score (``obsm[key_added + '_raw']``) and the
        deviations (``obsm[key_added + '_deviation']``) beside the z-scores. Each is 4 bytes per cell and TF
        (3.3 GB at 10^6 cells x 816 TFs); False for both at atlas scale keeps one (cells, TFs) array in
        memory instead of three. A key not kept is removed from ``obsm`` if an earlier run left it.
    {batch_size}
    precision
        Inference precision of a deep sequence model: ``'bf16'`` runs it under ``torch.autocast`` in
        bfloat16 (faster on a GPU; probabilities within about 1e-2 of float32); the motif model is float32
        only (a ``ValueError`` before anything is written).
    chunk_size
        Cells per chunk of the passes over the cells (checks and sums; activities and deviations). Peak
        memory is about 50 bytes per non-zero of one chunk (``chunk_size`` x the mean non-zeros per
        cell; per chunk in flight with dask threads or workers) plus the outputs (12 bytes per cell and
        TF; 4 with ``store_raw=False, store_deviation=False``) and the per-peak arrays, whatever the
        number of cells; results do not depend on it.
    {mod}
    key_added
        ``obsm`` / ``uns`` key of the activity (and MuData modality ``'tf'``).
    binding_key
        ``varm`` key of the per-peak probabilities.
    {random_state}
        Seeds the background peaks, the smoothing and the sample of signal values the levels are taken
        from (above 2 million values).
    verbose
        Progress bars.
    {copy}

    Returns
    -------
    {returns}

    Notes
    -----
    {notes}

    Examples
    --------
    >>> import scfanpy as sfp
    >>> adata, genome, truth = sfp.datasets.simulate_scatac(n_cells=200, n_peaks=300, random_state=1)
    >>> sfp.tl.predict_tf_binding(adata, genome=genome, tfs=truth.tfs, verbose=False)
    >>> adata.obsm["tf_activity"].shape
    (200, 8)
    """
    _check_options(method, n_levels)
    if background not in ("sampled", "expected"):
        raise ValueError(f"background must be 'sampled' or 'expected', got {background!r}")
    if n_background < 2:
        raise ValueError(f"n_background must be at least 2, got {n_background}")
    if isinstance(tf_neighbors, bool) or not isinstance(tf_neighbors, (int, np.integer)) or tf_neighbors < 0:
        raise ValueError(f"tf_neighbors must be a non-negative integer (0: no pooling), got {tf_neighbors!r}")
    if copy:
        data = data.copy()
    inp = _read_inputs(
        data,
        mod=mod,
        model=model,
        tfs=tfs,
        genome=genome,
        layer=layer,
        smooth=smooth,
        correct_bias=correct_bias,
        chunk_size=chunk_size,
        random_state=random_state,
        verbose=verbose,
        precision=precision,
    )
    res = _score(
        inp,
        method,
        n_levels,
        batch_size,
        n_background=n_background,
        chunk_size=chunk_size,
        random_state=random_state,
        verbose=verbose,
        store_raw=store_raw,
        store_deviation=store_deviation,
        background_mode=background,
    )
    if correct_bias:
        _archetypes(inp, res, tf_neighbors=tf_neighbors, chunk_size=chunk_size, random_state=random_state)
    write_results(
        data,
        inp,
        res,
        method,
        key_added,
        binding_key,
        store_levels=store_levels,
        random_state=random_state,
        background=background,
    )
    return data if copy else None
