"""Pure numeric cores of :func:`scfanpy.tl.predict_tf_binding`: arrays in, arrays out, no AnnData.

Names and shapes used throughout (decoupler's pattern: each score is a small function checked against a
plain numpy reference in ``tests/tl/test_scoring.py``):

- ``V``: the per-cell signal, CSR ``(cells, peaks)`` float32; its pattern is each cell's accessible peaks
  (see :func:`cell_signal`).
- ``levels``: the signal levels of the ``(peak, level)`` table, sorted float32 ``(n_levels,)``: quantiles
  of the non-zero signal values, minimum and maximum included (see :func:`signal_levels`). ``None`` for
  a sequence-only model (one level).
- ``table``: binding probabilities ``(peaks, n_levels, TFs)`` float32 (``n_levels = 1`` for a
  sequence-only model).
- ``predict(codes, values)``: a model as a function of uint8 codes ``(n, W)`` and the signal values
  ``(n,)`` (``None`` for a sequence-only model) returning probabilities ``(n, TFs)``.
- ``background``: per-TF mean probability over all peaks ``(TFs,)`` float64, subtracted by the
  ``'probability'`` score.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal

import numpy as np
import scipy.sparse as sp

from .._torch import tile_starts, tile_windows
from .._utils import check_random_state, progress

__all__ = [
    "cell_signal",
    "signal_levels",
    "level_weights",
    "split_by_level",
    "top2_indicator",
    "constant_tracks",
    "binding_table",
    "table_activity",
    "exact_activity",
    "scores_from_sums",
    "peak_binding",
    "level_counts",
    "binding_from_counts",
    "table_background",
    "median_signal",
    "cell_probabilities",
]

Method = Literal["probability", "scfan"]
Predict = Callable[[np.ndarray, np.ndarray | None], np.ndarray]
_MAX_LEVEL_SAMPLE = 2_000_000


def cell_signal(counts: sp.spmatrix | np.ndarray, depth: np.ndarray | None = None) -> sp.csr_matrix:
    """Per-cell signal ``v = log1p(1e6 * s / depth)`` of a cells x peaks matrix ``s`` (CSR float32).

    ``depth``: each cell's total count (default: the row sums); values <= 0 count as 1. Explicit zeros
    are dropped, so the pattern of the result is the cells' accessible peaks.
    """
    S = sp.csr_matrix(counts, dtype=np.float32, copy=True)
    S.eliminate_zeros()
    if depth is None:
        depth = np.asarray(S.sum(1)).ravel().astype(np.float64)
    else:
        depth = np.array(depth, dtype=np.float64)
    depth[depth <= 0] = 1.0
    S = sp.csr_matrix(sp.diags((1e6 / depth).astype(np.float32)) @ S)
    S.data = np.log1p(S.data)
    return S


def signal_levels(
    values: np.ndarray, n_levels: int, random_state: int | np.random.Generator | None = 0
) -> np.ndarray:
    """``n_levels`` signal levels: quantiles of ``values`` (non-zero signals), min and max included, unique.

    Above 2 million values the quantiles are taken on a random sample of that size (``random_state``),
    with the true minimum and maximum kept as the end levels.
    """
    rng = check_random_state(random_state)
    v = values if len(values) <= _MAX_LEVEL_SAMPLE else rng.choice(values, _MAX_LEVEL_SAMPLE, replace=False)
    if len(v) == 0:
        return np.zeros(1, dtype=np.float32)
    levels = np.unique(np.quantile(v, np.linspace(0, 1, max(n_levels, 1))).astype(np.float32))
    if len(values) > len(v):  # the sample may miss the extremes
        levels[0] = min(levels[0], values.min())
        levels[-1] = max(levels[-1], values.max())
    return levels


def level_weights(x: np.ndarray, levels: np.ndarray, nearest: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Lower level index ``k`` and weight ``alpha`` of level ``k + 1`` for values ``x`` (linear interpolation).

    Values outside the levels get all weight on the end level. ``nearest``: all weight on the nearest
    level (``alpha`` 0 or 1).
    """
    if len(levels) == 1:
        return np.zeros(len(x), dtype=np.intp), np.zeros(len(x), dtype=np.float32)
    k = np.clip(np.searchsorted(levels, x, side="right") - 1, 0, len(levels) - 2)
    gap = levels[k + 1] - levels[k]
    alpha = np.clip((x - levels[k]) / np.where(gap > 0, gap, 1), 0, 1).astype(np.float32)
    if nearest:
        alpha = (alpha >= 0.5).astype(np.float32)
    return k, alpha


def split_by_level(
    V: sp.csr_matrix, levels: np.ndarray | None, nearest: bool = False
) -> Iterator[tuple[int, sp.csr_matrix]]:
    """Yield ``(i, V_i)``: ``V`` with each entry times its interpolation weight on level ``i``.

    ``sum_i V_i == V``; levels no entry touches are skipped. ``levels=None``: ``(0, V)`` only.
    """
    if levels is None:
        yield 0, V
        return
    k, alpha = level_weights(V.data, levels, nearest)
    for i in range(len(levels)):
        w = np.where(k == i, 1 - alpha, 0) + np.where(k + 1 == i, alpha, 0)
        if not (w > 0).any():
            continue
        Vi = V.copy()
        Vi.data = (V.data * w).astype(np.float32)
        Vi.eliminate_zeros()
        yield i, Vi


def _pattern(V: sp.csr_matrix) -> sp.csr_matrix:
    """``V`` with every stored value set to 1."""
    B = V.copy()
    B.data = np.ones_like(B.data)
    return B


def top2_indicator(P: np.ndarray) -> np.ndarray:
    """Row-wise indicator (float32, shape of ``P``) of the two largest columns: scFAN's two votes."""
    k = min(2, P.shape[1])
    idx = np.argpartition(-P, k - 1, axis=1)[:, :k]
    out = np.zeros(P.shape, dtype=np.float32)
    np.put_along_axis(out, idx, 1.0, axis=1)
    return out


def constant_tracks(values: np.ndarray, defaults: np.ndarray, signal_track: int = 0) -> np.ndarray:
    """Tracks ``(n, n_tracks)``: ``defaults`` in every row, the signal ``values`` in column ``signal_track``."""
    tracks = np.broadcast_to(np.asarray(defaults, dtype=np.float32), (len(values), len(defaults))).copy()
    tracks[:, signal_track] = values
    return tracks


def _sequence_table(
    predict: Predict, codes: np.ndarray, n_tfs: int, window: int, batch_size: int, verbose: bool
) -> np.ndarray:
    """``(peaks, 1, TFs)``: one pass per peak; peaks longer than ``window`` (> 0) are tiled, max kept."""
    n_peaks, width = codes.shape
    out = np.empty((n_peaks, 1, n_tfs), dtype=np.float32)
    step = max(batch_size * 8, 1024)
    tiled = 0 < window < width
    if tiled:
        step = max(1, step // len(tile_starts(width, window)))
    for lo in progress(range(0, n_peaks, step), "scoring peaks", disable=not verbose, leave=False):
        c = codes[lo : lo + step]
        if not tiled:
            out[lo : lo + step, 0] = predict(c, None)
            continue
        tiles, n_tiles = tile_windows(c, window)
        out[lo : lo + step, 0] = predict(tiles, None).reshape(len(c), n_tiles, n_tfs).max(1)
    return out


def binding_table(
    predict: Predict,
    codes: np.ndarray,
    levels: np.ndarray | None,
    *,
    n_tfs: int,
    window: int = 0,
    batch_size: int = 256,
    verbose: bool = False,
) -> np.ndarray:
    """The ``(peak, level)`` binding table ``(peaks, n_levels, TFs)`` float32.

    ``levels=None`` (a sequence-only model): one level, ``predict(codes, None)``; peaks longer than a
    positive ``window`` are scanned in tiles of the window (half overlapping) and each TF keeps its
    maximum. Otherwise every peak is evaluated at every level: ``n_peaks x n_levels`` rows.
    """
    if levels is None:
        return _sequence_table(predict, codes, n_tfs, window, batch_size, verbose)
    n_peaks, n_lev = len(codes), len(levels)
    out = np.empty((n_peaks, n_lev, n_tfs), dtype=np.float32)
    step = max(1, (batch_size * 8) // n_lev)
    for lo in progress(range(0, n_peaks, step), "scoring peaks x levels", disable=not verbose, leave=False):
        c = codes[lo : lo + step]
        p = predict(np.repeat(c, n_lev, axis=0), np.tile(levels, len(c)))
        out[lo : lo + step] = p.reshape(len(c), n_lev, n_tfs)
    return out


def scores_from_sums(
    num: np.ndarray, V: sp.csr_matrix, background: np.ndarray | None, method: Method
) -> np.ndarray:
    """Activity ``(cells, TFs)`` float32 from per-cell sums ``num`` over the accessible peaks of ``V``.

    ``'probability'``: ``num`` holds ``sum_p v[c, p] P[c, p, t]``; the score is ``num / sum_p v[c, p]``
    minus ``background`` (0 for a cell without signal). ``'scfan'``: ``num`` holds the votes; the score
    is ``num / (2 x n_accessible_peaks)``.
    """
    if method == "probability":
        den = np.asarray(V.sum(1)).ravel()
        act = num / np.maximum(den, 1e-12)[:, None] - background[None, :]
        act[den == 0] = 0.0
    else:
        den = np.asarray(_pattern(V).sum(1)).ravel()
        act = num / np.maximum(2 * den, 1)[:, None]
    return act.astype(np.float32)


def table_activity(
    V: sp.csr_matrix,
    table: np.ndarray,
    levels: np.ndarray | None,
    background: np.ndarray | None,
    method: Method,
) -> np.ndarray:
    """Activity ``(cells, TFs)`` of the cells of ``V`` read from the ``(peak, level)`` table.

    ``'probability'``: the cell's probability at a peak is linearly interpolated between the two levels
    around its signal; ``'scfan'``: taken at the nearest level. Sparse products only (no dense
    cells x peaks array).
    """
    num = np.zeros((V.shape[0], table.shape[2]), dtype=np.float64)
    for i, Vi in split_by_level(V, levels, nearest=method == "scfan"):
        if method == "probability":
            num += np.asarray(Vi @ table[:, i, :], dtype=np.float64)
        else:
            num += np.asarray(_pattern(Vi) @ top2_indicator(table[:, i, :]), dtype=np.float64)
    return scores_from_sums(num, V, background, method)


def exact_activity(
    predict: Predict,
    codes: np.ndarray,
    V: sp.csr_matrix,
    background: np.ndarray | None,
    method: Method,
    *,
    n_tfs: int,
    batch_size: int = 256,
) -> np.ndarray:
    """Activity ``(cells, TFs)`` with one forward pass per (cell, accessible peak) at its exact signal.

    The reference the table approximates (validation only: the cost grows with the cells).
    """
    num = np.zeros((V.shape[0], n_tfs), dtype=np.float64)
    rows = np.repeat(np.arange(V.shape[0]), np.diff(V.indptr))
    step = max(batch_size * 8, 1024)
    for lo in range(0, V.nnz, step):
        v = V.data[lo : lo + step]
        prob = predict(codes[V.indices[lo : lo + step]], v)
        contrib = prob * v[:, None] if method == "probability" else top2_indicator(prob)
        np.add.at(num, rows[lo : lo + step], contrib)
    return scores_from_sums(num, V, background, method)


def level_counts(V: sp.csr_matrix, levels: np.ndarray, n_peaks: int) -> np.ndarray:
    """Per peak, the summed interpolation weights of its accessible (cell, peak) entries on each level.

    float64 ``(n_peaks, n_levels)``; additive over chunks of cells (:func:`binding_from_counts` turns
    the sum into the per-peak binding).
    """
    k, alpha = level_weights(V.data, levels)
    counts = np.zeros((n_peaks, len(levels)))
    np.add.at(counts, (V.indices, k), 1.0 - alpha)
    np.add.at(counts, (V.indices, k + 1), alpha)
    return counts


def binding_from_counts(counts: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Per-peak binding ``(peaks, TFs)`` float32 from :func:`level_counts` (summed over all cells).

    A peak no cell reaches takes the middle level.
    """
    tot = counts.sum(1, keepdims=True)
    w = np.where(tot > 0, counts / np.maximum(tot, 1), 0.0)
    w[tot[:, 0] == 0, table.shape[1] // 2] = 1.0  # never accessible: the middle level
    return np.einsum("pl,plt->pt", w, table).astype(np.float32)


def peak_binding(V: sp.csr_matrix, table: np.ndarray, levels: np.ndarray | None) -> np.ndarray:
    """Per-peak binding ``(peaks, TFs)`` float32: the table averaged over the cells where a peak is accessible.

    Each accessible (cell, peak) contributes its interpolation weights on the levels; a peak no cell
    reaches takes the middle level. A one-level table is returned as it is.
    """
    if table.shape[1] == 1:
        return table[:, 0, :]
    return binding_from_counts(level_counts(V, levels, table.shape[0]), table)


def table_background(table: np.ndarray) -> np.ndarray:
    """Per-TF mean probability over the peaks of a one-level table ``(peaks, 1, TFs)``: float64 ``(TFs,)``.

    Each TF's probabilities are summed contiguously (numpy's pairwise summation), whatever the table's
    memory layout.
    """
    return np.ascontiguousarray(table[:, 0, :].T).mean(1).astype(np.float64)


def median_signal(V: sp.csr_matrix) -> np.ndarray:
    """The one level of the background table of a track model: the median non-zero signal, ``(1,)``."""
    return np.array([np.float32(np.median(V.data)) if V.nnz else np.float32(0)])


def cell_probabilities(
    table: np.ndarray, peaks: np.ndarray, values: np.ndarray, levels: np.ndarray
) -> np.ndarray:
    """Probabilities ``(n, TFs)`` float32 at ``peaks`` for the signal ``values``, interpolated in ``table``."""
    k, alpha = level_weights(values, levels)
    lo_p = np.asarray(table[peaks, k, :], dtype=np.float32)
    hi_p = np.asarray(table[peaks, np.minimum(k + 1, len(levels) - 1), :], dtype=np.float32)
    return (1 - alpha[:, None]) * lo_p + alpha[:, None] * hi_p
