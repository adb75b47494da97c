"""Per-cell TF binding and TF activity (scFAN), with any TF-binding model: the AnnData side.

:func:`predict_tf_binding` is a thin driver: :func:`_read_inputs` pulls and validates what it needs
from the AnnData / MuData, the numeric cores of :mod:`scfanpy.tl._scoring` (arrays in, arrays out) form
the ``(peak, level)`` table and the activities, and :func:`_write_results` writes every field and logs it.
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
from .._utils import get_adata, h5_safe_columns, is_mudata, log_added, progress, uns_params
from . import _correction as corr
from . import _scoring as sc
from ._predict_docs import DOC_NOTES, DOC_RETURNS

if TYPE_CHECKING:  # pragma: no cover
    from mudata import MuData

__all__ = ["predict_tf_binding"]

_METHODS = ("probability", "scfan")
_MOTIF_NAMES = {"motif", "jaspar", "motifs"}
_SIGNAL_TRACK_NAMES = ("accessibility", "atac", "dnase", "signal", "dnase_atac", "chromatin")


# ------------------------------------------------------------------------------------------- model
def _is_motif_name(model: Any) -> bool:
    return model is None or (isinstance(model, str) and model.lower() in _MOTIF_NAMES)


def resolve_model(model: Any = None, tfs: list[str] | None = None):
    """The model object for ``model``: ``None``/``'motif'`` (JASPAR motifs), ``'pretrained'`` or a name, or a model."""
    if _is_motif_name(model):
        from ..models._motif import MotifModel

        return MotifModel(tfs)
    if isinstance(model, str):
        try:
            from ..models._pretrained import pretrained
        except ImportError as e:  # pragma: no cover - the shipped model is part of the package
            raise ImportError(f"model={model!r} needs scfanpy.models.pretrained ({e})") from e
        return pretrained() if model == "pretrained" else pretrained(model)
    for attr in ("predict_codes", "tf_names", "input_spec"):
        if not hasattr(model, attr):
            raise TypeError(
                f"model {type(model).__name__} lacks {attr!r}; see the model contract in the docs"
            )
    return model


def _model_name(model) -> str:
    name = getattr(model, "pretrained_name", None) or getattr(model, "name", None)
    if isinstance(name, str) and name:
        return name
    return type(model).__name__


def _track_layout(model) -> tuple[int, np.ndarray]:
    """Index of the model's accessibility track and the constant values of all its tracks."""
    spec = model.input_spec
    n_tracks = int(spec.get("n_tracks", 0))
    names = [str(t).lower() for t in spec.get("track_names", [])] or [""] * n_tracks
    j = next((i for i, t in enumerate(names) if t in _SIGNAL_TRACK_NAMES), 0)
    d = getattr(model, "track_defaults", None)
    if d is None:
        d = getattr(model, "track_default_", None)
    defaults = np.zeros(n_tracks, np.float32) if d is None else np.asarray(d, dtype=np.float32)
    return j, defaults


def _predictor(model, cols: np.ndarray | None, batch_size: int) -> sc.Predict:
    """``predict(codes, values)`` of :mod:`._scoring`: the model's TFs ``cols``, the signal as a constant track."""
    signal_track, defaults = _track_layout(model)

    def predict(codes: np.ndarray, values: np.ndarray | None) -> np.ndarray:
        tracks = None if values is None else sc.constant_tracks(values, defaults, signal_track)
        p = model.predict_codes(codes, tracks, batch_size=batch_size)
        p = p if cols is None else p[:, cols]
        # deep models give NaN for windows without sequence (all N): no evidence, no binding
        return np.nan_to_num(p, nan=0.0) if np.isnan(p).any() else p

    return predict


# ------------------------------------------------------------------------------------------ reader
@dataclass
class _Inputs:
    """What :func:`predict_tf_binding` reads from the AnnData, validated."""

    adata: AnnData
    model: Any
    tf_names: list[str]
    cols: np.ndarray | None  # columns of the model's output (None: all)
    V: sp.csr_matrix  # per-cell signal, cells x peaks
    layer: str
    codes: np.ndarray  # uint8 (peaks, width)
    window: int
    n_tracks: int
    had_codes: bool
    smoothed_here: bool = False


def _read_signal(adata: AnnData, layer: str | None) -> tuple[sp.csr_matrix, str]:
    """The per-cell signal (:func:`._scoring.cell_signal`) of ``layer`` and the layer's name.

    ``layer=None``: ``layers['smoothed']`` when present (depth ``obs['smoothed_depth']``), else ``X``.
    """
    if layer is None:
        layer = SMOOTHED if SMOOTHED in adata.layers else None
        if layer is None:
            logg.warning(
                "layers[%r] not found: scoring the raw counts X (run sfp.pp.smooth first for scFAN's pseudo-bulk)",
                SMOOTHED,
            )
    if layer in (None, "X"):
        return sc.cell_signal(adata.X), "X"
    if layer not in adata.layers:
        raise KeyError(f"layers[{layer!r}] not found")
    dkey = f"{layer}_depth"
    depth = adata.obs[dkey].to_numpy(np.float64) if dkey in adata.obs else None
    return sc.cell_signal(adata.layers[layer], depth), layer


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


def _check_options(method: str, n_levels: int | None) -> None:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if n_levels is not None and n_levels < 1:
        raise ValueError("n_levels must be a positive integer or None")


def _check_matrix(adata: AnnData, layer: str | None) -> None:
    """Cells, peaks and the signal's values: clear errors before anything is read or written."""
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ValueError(f"predict_tf_binding needs cells and peaks, got an AnnData of shape {adata.shape}")
    if layer not in (None, "X") and layer not in adata.layers:
        raise KeyError(f"layers[{layer!r}] not found (layers: {list(adata.layers)})")
    names = ["X"] if layer in (None, "X") else [layer]
    if layer is None and SMOOTHED in adata.layers:  # the layer scored by default, X smoothed if not
        names.append(SMOOTHED)
    for name in names:
        m = adata.X if name == "X" else adata.layers[name]
        vals = m.data if sp.issparse(m) else np.asarray(m)
        where = "X" if name == "X" else f"layers[{name!r}]"
        if not np.isfinite(vals).all():
            raise ValueError(f"{where} has NaN or inf values: counts must be finite")
        if vals.size and vals.min() < 0:
            raise ValueError(f"{where} has negative values (min {vals.min()}): counts must be >= 0")


def _read_inputs(data, *, mod, model, tfs, genome, layer, smooth, random_state) -> _Inputs:
    """Resolve the model and its TFs, read the sequences, smooth when asked, then read the signal."""
    adata = get_adata(data, mod)
    _check_matrix(adata, layer)
    if tfs is not None and len(tfs) == 0:
        raise ValueError("tfs=[] selects no TF: pass None (all of the model's TFs) or a list of names")
    mdl = resolve_model(model, tfs if (model is None or isinstance(model, str)) else None)
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
    had_codes = DNA_CODE in adata.varm
    codes = _peak_codes(adata, genome, window, longer_ok=n_tracks == 0)
    smoothed_here = smooth and layer is None and SMOOTHED not in adata.layers
    if smoothed_here:  # scFAN's pipeline: k-NN pseudo-bulk before scoring
        from ..pp._smooth import smooth as pp_smooth

        logg.info("no layers[%r]: smoothing first (sfp.pp.smooth; smooth=False scores X)", SMOOTHED)
        pp_smooth(adata, random_state=random_state)
    V, layer_used = _read_signal(adata, layer)
    return _Inputs(
        adata, mdl, tf_names, cols, V, layer_used, codes, window, n_tracks, had_codes, smoothed_here
    )


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
    correction: corr.Correction | None = None
    archetype: pd.Series | None = None
    x_tf: np.ndarray | None = None


def _score(inp: _Inputs, method, n_levels, batch_size, *, chunk_size, random_state, verbose) -> _Scores:
    """Run the cores of :mod:`._scoring` on the inputs: table (or exact passes), background, activities."""
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
        levels = sc.signal_levels(inp.V.data, n_levels, random_state)
        logg.info("    %d signal levels", len(levels))
    n_tfs = len(inp.tf_names)
    predict = _predictor(inp.model, inp.cols, batch_size)
    table_of = partial(
        sc.binding_table, predict, inp.codes, n_tfs=n_tfs, batch_size=batch_size, verbose=verbose
    )
    table = ref = None
    if inp.n_tracks > 0:  # background: every peak at the median signal (same for the table and exact)
        ref = table_of(sc.median_signal(inp.V))
        background = sc.table_background(ref)
    if not exact:
        table = table_of(levels, window=inp.window)
        if levels is None:
            background = sc.table_background(table)
    if exact:
        score = partial(
            sc.exact_activity,
            predict,
            inp.codes,
            background=background,
            method=method,
            n_tfs=n_tfs,
            batch_size=batch_size,
        )
    else:
        score = partial(sc.table_activity, table=table, levels=levels, background=background, method=method)
    act = _cell_activities(inp.V, n_tfs, score, chunk_size, verbose)
    binding = ref[:, 0, :] if table is None else sc.peak_binding(inp.V, table, levels)
    logg.info("    finished", time=start)
    return _Scores(act, binding, table, levels, background, exact)


def counts_layer(layer: str) -> str:
    """The counts the corrected activity is formed on: ``X`` when the binding was scored on the smoothed layer.

    chromVAR's deviation is a per-cell statistic of the cell's own reads; k-NN pooling first mixes the
    cells whose neighbours were found on a technically biased embedding (on the GC-bias simulator the
    z-scores' ARI fell from 0.84 on the counts to 0.61 on the smoothed layer).
    """
    return "X" if layer == SMOOTHED else layer


def _correct(inp: _Inputs, res: _Scores, method, *, n_background, random_state, chunk_size) -> None:
    """Bias correction (background peaks), archetypes and ``X_tf``, added to ``res``."""
    start = logg.info(
        "correcting for GC content and accessibility with %d background peak sets", n_background
    )
    counts = corr.signal_counts(inp.adata, counts_layer(inp.layer))
    res.correction = c = corr.correct(
        counts,
        inp.codes,
        res.binding,
        method=method,
        n_background=n_background,
        random_state=random_state,
        chunk_size=chunk_size,
    )
    if (~c.usable).any():
        logg.info(
            "    %d peaks with > %d%% N left out (no sequence evidence)",
            (~c.usable).sum(),
            100 * corr.MAX_N_FRACTION,
        )
    res.archetype = corr.archetypes_for(inp.model, inp.tf_names)
    arch = corr.archetype_activity(c.z, res.archetype)
    res.x_tf = corr.tf_representation(arch, random_state=random_state)
    logg.info("    finished (%d archetypes)", arch.shape[1], time=start)


def _cell_activities(V: sp.csr_matrix, n_tfs: int, score, chunk_size: int, verbose: bool) -> np.ndarray:
    """``score(V_chunk)`` over chunks of ``chunk_size`` cells, stacked: float32 ``(cells, TFs)``."""
    act = np.zeros((V.shape[0], n_tfs), dtype=np.float32)
    chunks = range(0, V.shape[0], chunk_size)
    disable = not verbose or V.shape[0] <= chunk_size
    for lo in progress(chunks, "cell activities", disable=disable, leave=False):
        act[lo : lo + chunk_size] = score(V[lo : lo + chunk_size])
    return act


# ------------------------------------------------------------------------------------------ writer
def _write_results(
    data: AnnData | MuData,
    inp: _Inputs,
    res: _Scores,
    method: str,
    key_added: str,
    binding_key: str,
    *,
    store_levels: bool,
    random_state: Any = 0,
) -> None:
    """Write every field of :func:`predict_tf_binding` (see its Returns) and log each one."""
    adata, tf_names, mdl = inp.adata, inp.tf_names, inp.model
    act, table, levels = res.act, res.table, res.levels
    if not inp.had_codes and DNA_CODE in adata.varm:
        log_added("varm", DNA_CODE)
    adata.varm[binding_key] = pd.DataFrame(res.binding, index=adata.var_names, columns=tf_names)
    log_added("varm", binding_key, f"peaks x {len(tf_names)} TFs, binding probability")
    lev_key = f"{binding_key}_levels"
    if table is not None and table.shape[1] > 1 and store_levels and table.size * 2 <= 2**30:
        adata.varm[lev_key] = table.astype(np.float16)
        log_added("varm", lev_key, f"(peaks, {table.shape[1]} levels, TFs) float16")
    elif lev_key in adata.varm:
        del adata.varm[lev_key]
    empty = _empty_cells(adata, inp, res)
    res.act[empty] = np.nan
    adata.obs[f"{key_added}_empty"] = empty
    log_added("obs", f"{key_added}_empty", f"{int(empty.sum())} cells without counts (activity NaN)")
    if res.correction is not None:
        act = _write_correction(adata, inp, res, key_added)
    else:
        adata.obsm[key_added] = pd.DataFrame(act, index=adata.obs_names, columns=tf_names)
        log_added("obsm", key_added, f"cells x {len(tf_names)} TFs, method {method!r}, uncorrected")
    params = {
        "model": _model_name(mdl),
        "model_kind": "sequence-only" if inp.n_tracks == 0 else "accessibility-track",
        "method": method,
        "layer": inp.layer,
        "n_levels": "exact" if res.exact else (0 if levels is None else len(levels)),
        "window": int(inp.codes.shape[1]),
        "binding_key": binding_key,
        "correct_bias": res.correction is not None,
        "n_background": 0 if res.correction is None else int(res.correction.background.shape[1]),
        "random_state": random_state if isinstance(random_state, (int, np.integer)) else str(random_state),
        "smoothed_here": inp.smoothed_here,
        "counts_layer": counts_layer(inp.layer) if res.correction is not None else "",
    }
    uns_params(adata, key_added, params)
    info = adata.uns[key_added]
    info["tf_names"] = list(tf_names)
    info["model"] = {
        "name": _model_name(mdl),
        "class": type(mdl).__name__,
        "n_tfs": len(mdl.tf_names),
        "repr": repr(mdl)[:200],
    }
    info["levels"] = np.zeros(0, np.float32) if levels is None else levels
    info["background"] = res.background.astype(np.float32)
    if res.archetype is not None:
        info["archetypes"] = {str(k): str(v) for k, v in res.archetype.items()}
    log_added("uns", key_added, "tf_names, model, levels, background, archetypes")
    if is_mudata(data):
        tf_mod = "tf" if key_added == TF_ACTIVITY else key_added
        data.mod[tf_mod] = AnnData(
            X=act.copy(),
            obs=pd.DataFrame(index=adata.obs_names.copy()),
            var=pd.DataFrame(index=pd.Index(tf_names)),
        )
        data.update()
        h5_safe_columns(data.var)
        h5_safe_columns(data.obs)
        log_added("mod", tf_mod, "cells x TFs activity")


def _empty_cells(adata: AnnData, inp: _Inputs, res: _Scores) -> np.ndarray:
    """Cells without counts in the layer their activity comes from (their activity is NaN)."""
    if res.correction is not None:
        m = corr.signal_counts(adata, counts_layer(inp.layer))
    else:
        m = inp.V
    return np.asarray(m.sum(1)).ravel() <= 0


def _write_correction(adata: AnnData, inp: _Inputs, res: _Scores, key_added: str) -> np.ndarray:
    """Write the bias-corrected fields (see Returns of :func:`predict_tf_binding`); return the activity."""
    c, tfs, cells = res.correction, inp.tf_names, adata.obs_names
    adata.obsm[key_added] = pd.DataFrame(c.z, index=cells, columns=tfs)
    log_added("obsm", key_added, f"cells x {len(tfs)} TFs, bias-corrected z-score")
    adata.obsm[f"{key_added}_deviation"] = pd.DataFrame(c.deviation, index=cells, columns=tfs)
    log_added("obsm", f"{key_added}_deviation", "bias-corrected deviation")
    adata.obsm[f"{key_added}_raw"] = pd.DataFrame(res.act, index=cells, columns=tfs)
    log_added("obsm", f"{key_added}_raw", "uncorrected score")
    adata.var["gc_content"] = c.gc
    adata.var["n_fraction"] = c.n_fraction
    adata.var["usable_sequence"] = c.usable
    log_added("var", "gc_content', 'n_fraction', 'usable_sequence")
    adata.varm[f"{key_added}_background_peaks"] = c.background
    log_added("varm", f"{key_added}_background_peaks", f"{c.background.shape[1]} background peaks per peak")
    adata.obsm["X_tf"] = res.x_tf
    log_added("obsm", "X_tf", f"{res.x_tf.shape[1]} components over the motif archetypes")
    return c.z


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
    n_background: int = 50,
    n_levels: int | None = 16,
    store_levels: bool = True,
    batch_size: int = 256,
    chunk_size: int = 50_000,
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
        Peaks need ``var['chr', 'start', 'end']`` or ``chr:start-end`` names.
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
        settings of :func:`scfanpy.pp.smooth`). False scores ``X`` as it is.
    correct_bias
        Report the activity as a bias-corrected z-score: each cell's score is compared with background
        peaks matched on GC content, mean accessibility and N fraction (chromVAR's design; see Notes). False
        keeps the uncorrected score as the activity.
    n_background
        Background peak sets for the correction.
    n_levels
        Signal levels of the (peak, level) table for models with an accessibility track; ``None``: exact
        per-(cell, peak) forward passes (slow, for validation). Unused by sequence-only models.
    store_levels
        Keep the (peak, level) table in ``varm[binding_key + '_levels']`` (float16) so that
        :func:`cell_tf_binding` can return per-cell probabilities; skipped above 1 GB.
    {batch_size}
    chunk_size
        Cells per chunk when forming activities.
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
    if n_background < 2:
        raise ValueError(f"n_background must be at least 2, got {n_background}")
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
        random_state=random_state,
    )
    res = _score(
        inp, method, n_levels, batch_size, chunk_size=chunk_size, random_state=random_state, verbose=verbose
    )
    if correct_bias:
        _correct(
            inp, res, method, n_background=n_background, random_state=random_state, chunk_size=chunk_size
        )
    _write_results(
        data, inp, res, method, key_added, binding_key, store_levels=store_levels, random_state=random_state
    )
    return data if copy else None
