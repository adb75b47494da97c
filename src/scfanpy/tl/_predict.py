"""Per-cell TF binding and TF activity (scFAN), with any TF-binding model, at scale.

How a cell is scored
--------------------
A cell's *accessible peaks* are the non-zero entries of its row of the signal layer (by default
``layers['smoothed']`` from :func:`scfanpy.pp.smooth`, else ``X``). The per-cell signal at a peak is one
number, ``v = log1p(1e6 * s / depth)``: the neighbourhood sum ``s`` as a pseudo-bulk CPM (``depth`` is the
neighbourhood's total count, ``obs['smoothed_depth']``; the row sum for another layer).

- A **sequence-only** model (``input_spec['n_tracks'] == 0``, e.g. the default
  :class:`~scfanpy.models.MotifModel`) gives one probability per (peak, TF): it is evaluated once per
  peak, and the cell's accessibility gates it (a cell sees its accessible peaks only). A model whose
  window is shorter than the peak sequences (e.g. a 100-bp CNN on 500-bp peaks) scans each peak in tiles
  of its window, half overlapping, and keeps each TF's maximum.
- A model with an **accessibility track** takes the signal as a constant track. Instead of one forward
  pass per (cell, peak), the signal is quantised to ``n_levels`` knots (quantiles of all non-zero
  values, minimum and maximum included) and the network runs once per (peak, knot); a cell's
  probability at a peak is then read from that table, linearly interpolated between the two knots
  around its signal (``method='scfan'``: the nearest knot). The cost is ``n_peaks x (n_levels + 1)``
  forward passes whatever the number of cells. ``n_levels=None`` runs the exact per-(cell, peak)
  computation instead (for validation; ``benchmarks/bench_tf_activity.py`` measures the table's error).

Deep models run where they live (GPU when present, chosen by the model); the motif model is numpy
(one matrix product per batch of peaks). Everything per cell is a sparse product ``(cells x peaks, one level at a time) @ (peaks x TFs)``, in chunks
of cells: nothing dense cells x peaks or cells x peaks x TFs is formed.

Two activity scores
-------------------
``method='scfan'``: scFAN's score (Fu et al. 2020). In each accessible peak of a cell, the two TFs with
the highest binding probability get one vote each; a TF's activity is its votes divided by
``2 x n_accessible_peaks``, so each cell's scores sum to 1.

``method='probability'`` (default): the signal-weighted mean binding probability over the cell's accessible
peaks, minus the same mean over all peaks (the background a random set of peaks would give):
``a[c, t] = sum_p v[c, p] P[c, p, t] / sum_p v[c, p] - mean_p P[p, t]`` (for a track model the background
``P[p, t]`` is taken at the median signal). Positive: the cell's open peaks
are enriched for the TF's binding sites. It uses the whole probability (not only the top two) and is not
dominated by TFs with many sites everywhere (such as CTCF), which on simulated data gives higher
correlation with the true activity and better clusters than the vote score (``docs/benchmarks``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._constants import DNA_CODE, N_CODE, SMOOTHED, TF_ACTIVITY, TF_BINDING
from .._utils import get_adata, is_mudata, log_added, logger, progress, uns_params

__all__ = ["predict_tf_binding", "cell_tf_binding"]

_METHODS = ("probability", "scfan")
_SIGNAL_TRACK_NAMES = ("accessibility", "atac", "dnase", "signal", "dnase_atac", "chromatin")


# ------------------------------------------------------------------------------------------- model
def resolve_model(model: Any = None, tfs: list[str] | None = None):
    """The model object for ``model``: ``None``/``'motif'`` (JASPAR motifs), ``'pretrained'`` or a name, or a model."""
    if model is None or (isinstance(model, str) and model.lower() in {"motif", "jaspar", "motifs"}):
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


# ------------------------------------------------------------------------------------------- codes
def _peak_codes(adata: AnnData, genome, window: int, longer_ok: bool = False) -> np.ndarray:
    """uint8 codes ``(n_peaks, W)`` for the model's window: from ``varm['dna_code']`` or the genome.

    ``longer_ok``: windows longer than the model's are kept whole (a sequence-only model scans them in
    tiles), and sequences are read at least as wide as the peaks.
    """
    have = adata.varm[DNA_CODE] if DNA_CODE in adata.varm else None
    if have is not None:
        have = np.asarray(have)
        if window == 0 or have.shape[1] == window or (longer_ok and have.shape[1] > window):
            return have
        if have.shape[1] > window:  # centre crop
            off = (have.shape[1] - window) // 2
            return np.ascontiguousarray(have[:, off : off + window])
        if genome is None:  # pad with N around the centre
            out = np.full((len(have), window), N_CODE, dtype=np.uint8)
            off = (window - have.shape[1]) // 2
            out[:, off : off + have.shape[1]] = have
            logger.warning(
                "varm[%r] is %d bp, model window %d: padded with N (pass genome= to read more)",
                DNA_CODE,
                have.shape[1],
                window,
            )
            return out
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
    if DNA_CODE not in adata.varm:
        add_sequences(adata, genome, width=window)
        return np.asarray(adata.varm[DNA_CODE])
    tmp = AnnData(var=adata.var[["chr", "start", "end"]].copy())
    add_sequences(tmp, genome, width=window)
    return np.asarray(tmp.varm[DNA_CODE])


# ------------------------------------------------------------------------------------------ signal
def cell_signal(adata: AnnData, layer: str | None = None) -> tuple[sp.csr_matrix, str]:
    """The per-cell signal ``v = log1p(1e6 * s / depth)`` (CSR, pattern = accessible peaks) and its layer name.

    ``layer=None``: ``layers['smoothed']`` when present, else ``X``.
    """
    if layer is None:
        layer = SMOOTHED if SMOOTHED in adata.layers else None
        if layer is None:
            logger.warning(
                "layers[%r] not found: scoring the raw counts X (run sfp.pp.smooth first for scFAN's pseudo-bulk)",
                SMOOTHED,
            )
    S = adata.X if layer in (None, "X") else adata.layers[layer]
    S = sp.csr_matrix(S, dtype=np.float32, copy=True)
    S.eliminate_zeros()
    dkey = f"{layer}_depth"
    if layer not in (None, "X") and dkey in adata.obs:
        depth = adata.obs[dkey].to_numpy(np.float64)
    else:
        depth = np.asarray(S.sum(1)).ravel().astype(np.float64)
    depth[depth <= 0] = 1.0
    S = sp.csr_matrix(sp.diags((1e6 / depth).astype(np.float32)) @ S)
    S.data = np.log1p(S.data)
    return S, ("X" if layer in (None, "X") else layer)


def _levels(values: np.ndarray, n_levels: int, seed: int = 0) -> np.ndarray:
    """``n_levels`` knots: quantiles of the non-zero signal values, min and max included (unique)."""
    rng = np.random.default_rng(seed)
    v = values if len(values) <= 2_000_000 else rng.choice(values, 2_000_000, replace=False)
    if len(v) == 0:
        return np.zeros(1, dtype=np.float32)
    knots = np.unique(np.quantile(v, np.linspace(0, 1, max(n_levels, 1))).astype(np.float32))
    if len(values) > len(v):  # the sample may miss the extremes
        knots[0] = min(knots[0], values.min())
        knots[-1] = max(knots[-1], values.max())
    return knots


def _knot_weights(x: np.ndarray, knots: np.ndarray, nearest: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Lower knot index ``k`` and weight ``alpha`` of the upper knot for values ``x`` (linear interpolation).

    ``nearest``: all weight on the nearest knot (``alpha`` 0 or 1).
    """
    if len(knots) == 1:
        return np.zeros(len(x), dtype=np.intp), np.zeros(len(x), dtype=np.float32)
    k = np.clip(np.searchsorted(knots, x, side="right") - 1, 0, len(knots) - 2)
    gap = knots[k + 1] - knots[k]
    alpha = np.clip((x - knots[k]) / np.where(gap > 0, gap, 1), 0, 1).astype(np.float32)
    if nearest:
        alpha = (alpha >= 0.5).astype(np.float32)
    return k, alpha


def _track_input(model, values: np.ndarray) -> np.ndarray:
    """Constant tracks ``(n, n_tracks)`` with the accessibility value in the signal track, 0 elsewhere."""
    spec = model.input_spec
    n_tracks = int(spec.get("n_tracks", 0))
    names = [str(t).lower() for t in spec.get("track_names", [])] or [""] * n_tracks
    j = next((i for i, t in enumerate(names) if t in _SIGNAL_TRACK_NAMES), 0)
    d = getattr(model, "track_defaults", None)
    if d is None:
        d = getattr(model, "track_default_", None)
    defaults = np.zeros(n_tracks, np.float32) if d is None else np.asarray(d, dtype=np.float32)
    tr = np.broadcast_to(defaults, (len(values), n_tracks)).copy()
    tr[:, j] = values
    return tr


def _binding_table(
    model, codes: np.ndarray, reps: np.ndarray | None, batch_size: int, verbose: bool
) -> np.ndarray:
    """``(n_peaks, n_levels, n_tfs)`` float32 probabilities (``n_levels = 1`` for sequence-only models)."""
    n_peaks = len(codes)
    n_tfs = len(model.tf_names)
    if reps is None:
        out = np.empty((n_peaks, 1, n_tfs), dtype=np.float32)
        step = max(batch_size * 8, 1024)
        window = int(model.input_spec.get("window", 0) or 0)
        width = codes.shape[1]
        if 0 < window < width:  # scan the peak in tiles of the model's window (half overlap), keep the max
            starts = list(range(0, width - window + 1, max(1, window // 2)))
            if starts[-1] != width - window:
                starts.append(width - window)
            step = max(1, step // len(starts))
        else:
            starts = None
        for lo in progress(range(0, n_peaks, step), "scoring peaks", disable=not verbose, leave=False):
            c = codes[lo : lo + step]
            if starts is None:
                out[lo : lo + step, 0] = model.predict_codes(c, None, batch_size=batch_size)
            else:
                tiles = np.stack([c[:, s0 : s0 + window] for s0 in starts], axis=1).reshape(-1, window)
                p = model.predict_codes(tiles, None, batch_size=batch_size).reshape(
                    len(c), len(starts), n_tfs
                )
                out[lo : lo + step, 0] = p.max(1)
        return out
    n_lev = len(reps)
    out = np.empty((n_peaks, n_lev, n_tfs), dtype=np.float32)
    step = max(1, (batch_size * 8) // n_lev)
    for lo in progress(range(0, n_peaks, step), "scoring peaks x levels", disable=not verbose, leave=False):
        c = codes[lo : lo + step]
        rep_codes = np.repeat(c, n_lev, axis=0)
        tr = _track_input(model, np.tile(reps, len(c)))
        out[lo : lo + step] = model.predict_codes(rep_codes, tr, batch_size=batch_size).reshape(
            len(c), n_lev, n_tfs
        )
    return out


def _top2(P: np.ndarray) -> np.ndarray:
    """Row-wise indicator of the two largest columns, float32 (same shape as ``P``)."""
    k = min(2, P.shape[1])
    idx = np.argpartition(-P, k - 1, axis=1)[:, :k]
    out = np.zeros(P.shape, dtype=np.float32)
    np.put_along_axis(out, idx, 1.0, axis=1)
    return out


def _split_levels(V: sp.csr_matrix, knots: np.ndarray | None, n_lev: int, nearest: bool = False):
    """Yield ``(level, V_level)``: ``V`` with each entry's value times its interpolation weight on that level."""
    if knots is None:
        yield 0, V
        return
    k, alpha = _knot_weights(V.data, knots, nearest)
    for i in range(n_lev):
        w = np.where(k == i, 1 - alpha, 0) + np.where(k + 1 == i, alpha, 0)
        if not (w > 0).any():
            continue
        Vi = V.copy()
        Vi.data = (V.data * w).astype(np.float32)
        Vi.eliminate_zeros()
        yield i, Vi


def _activity_table(V, table, knots, background, method) -> np.ndarray:
    """Activity of the cells of ``V`` (CSR chunk) from the binding table."""
    n_cells = V.shape[0]
    n_tfs = table.shape[2]
    num = np.zeros((n_cells, n_tfs), dtype=np.float64)
    B = V.copy()
    B.data = np.ones_like(B.data)
    for i, Vi in _split_levels(V, knots, table.shape[1], nearest=method == "scfan"):
        if method == "probability":
            num += np.asarray(Vi @ table[:, i, :], dtype=np.float64)
        else:
            Bi = Vi.copy()
            Bi.data = np.ones_like(Bi.data)
            num += np.asarray(Bi @ _top2(table[:, i, :]), dtype=np.float64)
    return _finish(num, V, B, background, method)


def _finish(num, V, B, background, method):
    if method == "probability":
        den = np.asarray(V.sum(1)).ravel()
        act = num / np.maximum(den, 1e-12)[:, None] - background[None, :]
        act[den == 0] = 0.0
    else:
        den = np.asarray(B.sum(1)).ravel()
        act = num / np.maximum(2 * den, 1)[:, None]
    return act.astype(np.float32)


def _activity_exact(model, codes, V, background, method, batch_size) -> np.ndarray:
    """One forward pass per (cell, accessible peak) with the exact signal: validation only."""
    n_cells = V.shape[0]
    n_tfs = len(model.tf_names)
    num = np.zeros((n_cells, n_tfs), dtype=np.float64)
    rows = np.repeat(np.arange(n_cells), np.diff(V.indptr))
    step = max(batch_size * 8, 1024)
    for lo in range(0, V.nnz, step):
        p = V.indices[lo : lo + step]
        v = V.data[lo : lo + step]
        prob = model.predict_codes(codes[p], _track_input(model, v), batch_size=batch_size)
        contrib = prob * v[:, None] if method == "probability" else _top2(prob)
        np.add.at(num, rows[lo : lo + step], contrib)
    B = V.copy()
    B.data = np.ones_like(B.data)
    return _finish(num, V, B, background, method)


# ----------------------------------------------------------------------------------------- public
def predict_tf_binding(
    data,
    *,
    model: Any = None,
    genome=None,
    method: str = "probability",
    tfs: list[str] | None = None,
    layer: str | None = None,
    n_levels: int | None = 16,
    store_levels: bool = True,
    batch_size: int = 256,
    chunk_size: int = 50_000,
    mod: str | None = None,
    key_added: str = TF_ACTIVITY,
    binding_key: str = TF_BINDING,
    verbose: bool = True,
    copy: bool = False,
):
    """Per-cell TF binding probabilities at each cell's accessible peaks and a per-cell TF activity profile.

    The method of scFAN (Fu et al. 2020) with any TF-binding model: the peaks' sequences are scored by
    the model (with each cell's neighbour-smoothed accessibility when the model takes an accessibility
    track), and each cell's probabilities at its accessible peaks are summarised into one activity per
    TF. See the module documentation (:mod:`scfanpy.tl._predict`) for the signal, the quantised
    ``(peak, level)`` table and the two scores.

    Parameters
    ----------
    data
        AnnData cells x peaks (``var['chr', 'start', 'end']`` or ``chr:start-end`` names) or MuData.
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
        Signal layer; default ``'smoothed'`` when present, else ``X``.
    n_levels
        Signal levels of the (peak, level) table for models with an accessibility track; ``None``: exact
        per-(cell, peak) forward passes (slow, for validation). Unused by sequence-only models.
    store_levels
        Keep the (peak, level) table in ``varm[binding_key + '_levels']`` (float16) so that
        :func:`cell_tf_binding` can return per-cell probabilities; skipped above 1 GB.
    batch_size
        Sequences per forward pass.
    chunk_size
        Cells per chunk when forming activities.
    mod
        MuData modality holding the peaks (default ``'atac'``).
    key_added
        ``obsm`` / ``uns`` key of the activity (and MuData modality ``'tf'``).
    binding_key
        ``varm`` key of the per-peak probabilities.
    verbose
        Progress bars.
    copy
        Return a modified copy instead of writing in place.

    Returns
    -------
    ``None``, or a copy when ``copy=True``. Sets

    - ``varm[binding_key]`` : DataFrame peaks x TFs, binding probability (for a track model: averaged over
      the cells where the peak is accessible, at their signal levels);
    - ``varm[binding_key + '_levels']`` : float16 ``(peaks, levels, TFs)``, track models with
      ``store_levels``;
    - ``varm['dna_code']`` : when read here from ``genome``;
    - ``obsm[key_added]`` : DataFrame cells x TFs, the activity;
    - ``uns[key_added]`` : ``params`` (model, method, ...), ``tf_names``, ``model`` (name, kind, TF count),
      ``levels`` (the signal knots of the table; empty for sequence-only models), ``background``;
    - MuData: ``mod[key_added == 'tf_activity' and 'tf' or key_added]``, an AnnData cells x TFs of the
      activity (``mdata.update()`` called).

    Examples
    --------
    >>> import scfanpy as sfp
    >>> adata, genome, truth = sfp.datasets.simulate_scatac(n_cells=200, n_peaks=300, random_state=1)
    >>> sfp.pp.smooth(adata, n_neighbors=20)
    >>> sfp.tl.predict_tf_binding(adata, genome=genome, tfs=truth.tfs, verbose=False)
    >>> adata.obsm["tf_activity"].shape
    (200, 8)
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if n_levels is not None and n_levels < 1:
        raise ValueError("n_levels must be a positive integer or None")
    if copy:
        data = data.copy()
    adata = get_adata(data, mod)
    mdl = resolve_model(model, tfs if (model is None or isinstance(model, str)) else None)
    spec = mdl.input_spec
    window = int(spec.get("window", 0) or 0)
    n_tracks = int(spec.get("n_tracks", 0) or 0)
    all_tfs = list(mdl.tf_names)
    if tfs is not None and not (
        model is None or isinstance(model, str) and model.lower() in {"motif", "jaspar", "motifs"}
    ):
        missing = [t for t in tfs if t not in all_tfs]
        if missing:
            raise KeyError(f"TFs not in the model: {missing}")
        cols = np.array([all_tfs.index(t) for t in tfs])
    else:
        cols = np.arange(len(all_tfs))
    tf_names = [all_tfs[i] for i in cols]

    had_codes = DNA_CODE in adata.varm
    codes = _peak_codes(adata, genome, window, longer_ok=n_tracks == 0)
    V, layer_used = cell_signal(adata, layer)
    exact = n_tracks > 0 and n_levels is None
    if n_tracks > 0 and not exact:
        reps = _levels(V.data, n_levels)
    else:
        reps = None
    logger.info(
        "scoring %d peaks with %s (%d TFs, %s)%s",
        adata.n_vars,
        _model_name(mdl),
        len(tf_names),
        "sequence only" if n_tracks == 0 else f"{n_tracks} track(s)",
        "" if reps is None else f" at {len(reps)} signal levels",
    )
    table = ref = None
    if n_tracks > 0:
        # background: every peak at the median signal (one extra pass over the peaks, same for table and exact)
        mid = np.float32(np.median(V.data)) if V.nnz else np.float32(0)
        ref = _binding_table(mdl, codes, np.array([mid]), batch_size, verbose)[..., cols]
        background = ref[:, 0, :].mean(0).astype(np.float64)
    if not exact:
        table = _binding_table(mdl, codes, reps, batch_size, verbose)[..., cols]
        if reps is None:
            background = table[:, 0, :].mean(0).astype(np.float64)

    # activities, chunk by chunk
    act = np.zeros((adata.n_obs, len(tf_names)), dtype=np.float32)
    if exact:

        class _Sub:  # restrict the model's output to the chosen columns
            def __init__(self, m):
                self.m, self.tf_names, self.input_spec = m, tf_names, m.input_spec
                self.track_defaults = getattr(m, "track_defaults", None)
                if self.track_defaults is None:
                    self.track_defaults = getattr(m, "track_default_", None)

            def predict_codes(self, c, t=None, *, batch_size=256):
                return self.m.predict_codes(c, t, batch_size=batch_size)[:, cols]

        sub = _Sub(mdl)
    for lo in progress(
        range(0, adata.n_obs, chunk_size),
        "cell activities",
        disable=not verbose or adata.n_obs <= chunk_size,
        leave=False,
    ):
        Vc = V[lo : lo + chunk_size]
        if exact:
            act[lo : lo + chunk_size] = _activity_exact(sub, codes, Vc, background, method, batch_size)
        else:
            act[lo : lo + chunk_size] = _activity_table(Vc, table, reps, background, method)

    # per-peak binding
    if table is None:
        binding = ref[:, 0, :]
    elif table.shape[1] == 1:
        binding = table[:, 0, :]
    else:
        k, alpha = _knot_weights(V.data, reps)
        counts = np.zeros((adata.n_vars, table.shape[1]))
        np.add.at(counts, (V.indices, k), 1.0 - alpha)
        np.add.at(counts, (V.indices, k + 1), alpha)
        tot = counts.sum(1, keepdims=True)
        w = np.where(tot > 0, counts / np.maximum(tot, 1), 0.0)
        w[tot[:, 0] == 0, len(reps) // 2] = 1.0  # never accessible: the middle level
        binding = np.einsum("pl,plt->pt", w, table).astype(np.float32)

    if not had_codes and DNA_CODE in adata.varm:
        log_added("varm", DNA_CODE)
    adata.varm[binding_key] = pd.DataFrame(binding, index=adata.var_names, columns=tf_names)
    log_added("varm", binding_key, f"peaks x {len(tf_names)} TFs, binding probability")
    lev_key = f"{binding_key}_levels"
    if table is not None and table.shape[1] > 1 and store_levels and table.size * 2 <= 2**30:
        adata.varm[lev_key] = table.astype(np.float16)
        log_added("varm", lev_key, f"(peaks, {table.shape[1]} levels, TFs) float16")
    elif lev_key in adata.varm:
        del adata.varm[lev_key]
    adata.obsm[key_added] = pd.DataFrame(act, index=adata.obs_names, columns=tf_names)
    log_added("obsm", key_added, f"cells x {len(tf_names)} TFs, method {method!r}")
    uns_params(
        adata,
        key_added,
        {
            "model": _model_name(mdl),
            "model_kind": "sequence-only" if n_tracks == 0 else "accessibility-track",
            "method": method,
            "layer": layer_used,
            "n_levels": "exact" if exact else (0 if reps is None else len(reps)),
            "window": int(codes.shape[1]),
            "binding_key": binding_key,
        },
    )
    adata.uns[key_added]["tf_names"] = list(tf_names)
    adata.uns[key_added]["model"] = {
        "name": _model_name(mdl),
        "class": type(mdl).__name__,
        "n_tfs": len(all_tfs),
        "repr": repr(mdl)[:200],
    }
    adata.uns[key_added]["levels"] = np.zeros(0, np.float32) if reps is None else reps
    adata.uns[key_added]["background"] = background.astype(np.float32)

    if is_mudata(data):
        tf_mod = "tf" if key_added == TF_ACTIVITY else key_added
        data.mod[tf_mod] = AnnData(
            X=act.copy(),
            obs=pd.DataFrame(index=adata.obs_names.copy()),
            var=pd.DataFrame(index=pd.Index(tf_names)),
        )
        data.update()
        log_added("mod", tf_mod, "cells x TFs activity")
    return data if copy else None


def cell_tf_binding(data, cells, *, mod: str | None = None, key: str = TF_ACTIVITY) -> pd.DataFrame:
    """Binding probabilities of each given cell at its accessible peaks (after :func:`predict_tf_binding`).

    Parameters
    ----------
    data
        The AnnData / MuData scored by :func:`predict_tf_binding`.
    cells
        Cell names, integer positions or a boolean mask.
    mod
        MuData modality.
    key
        The ``key_added`` used by :func:`predict_tf_binding`.

    Returns
    -------
    DataFrame with a ``(cell, peak)`` MultiIndex (one row per accessible peak of each cell), a column
    ``signal`` (the cell's signal ``v`` at the peak) and one column per TF.

    Examples
    --------
    >>> df = sfp.tl.cell_tf_binding(adata, [0, 1])  # doctest: +SKIP
    """
    adata = get_adata(data, mod)
    if key not in adata.uns or "params" not in adata.uns[key]:
        raise KeyError(f"uns[{key!r}] missing: run sfp.tl.predict_tf_binding first")
    info = adata.uns[key]
    params = info["params"]
    bkey = params.get("binding_key", TF_BINDING)
    layer = params.get("layer", None)
    V, _ = cell_signal(adata, None if layer == "X" else layer)
    pos = np.arange(adata.n_obs)
    if isinstance(cells, (str, os.PathLike)) or np.isscalar(cells):
        cells = [cells]
    cells = np.asarray(cells)
    if cells.dtype == bool:
        idx = pos[cells]
    elif cells.dtype.kind in "iu":
        idx = cells.astype(int)
    else:
        idx = adata.obs_names.get_indexer(cells)
        if (idx < 0).any():
            raise KeyError(f"cells not found: {list(cells[idx < 0])[:5]}")
    Vc = V[idx]
    tf_names = list(info["tf_names"])
    rows = np.repeat(idx, np.diff(Vc.indptr))
    lev_key = f"{bkey}_levels"
    knots = np.asarray(info.get("levels", []), dtype=np.float32)
    if lev_key in adata.varm and len(knots) == adata.varm[lev_key].shape[1]:
        k, alpha = _knot_weights(Vc.data, knots)
        T = adata.varm[lev_key]
        lo_p = np.asarray(T[Vc.indices, k, :], dtype=np.float32)
        hi_p = np.asarray(T[Vc.indices, np.minimum(k + 1, len(knots) - 1), :], dtype=np.float32)
        probs = (1 - alpha[:, None]) * lo_p + alpha[:, None] * hi_p
    else:
        if params.get("model_kind") == "accessibility-track":
            logger.warning("per-level table not stored: returning the per-peak average binding")
        probs = np.asarray(adata.varm[bkey], dtype=np.float32)[Vc.indices]
    index = pd.MultiIndex.from_arrays(
        [adata.obs_names[rows], adata.var_names[Vc.indices]], names=["cell", "peak"]
    )
    out = pd.DataFrame(probs, index=index, columns=tf_names)
    out.insert(0, "signal", Vc.data)
    return out
