"""Streaming passes over chunks of cells for :func:`scfanpy.tl.predict_tf_binding`.

A cells x peaks matrix is read ``chunk_size`` cells at a time, whatever holds it: an in-memory scipy /
numpy matrix, the ``X`` of a backed AnnData (``anndata.read_h5ad(path, backed='r')``, an h5py dataset
or anndata's backed sparse dataset) or a dask array (e.g. from ``anndata.experimental.read_elem_lazy``).
Each pass applies a kernel to every chunk; a kernel returns per-cell arrays (written into preallocated
outputs) and a per-peak accumulator (merged over chunks). With a dask array the kernels run as dask
tasks, one per chunk, with the small per-peak arrays as shared inputs, so a ``dask.distributed`` client
spreads them over its workers; otherwise the chunks are read one after another.

The passes (see :func:`scan` and :func:`score_cells`):

(a) :func:`scan`: validation (finite, non-negative), row sums and column sums, and for a model with an
    accessibility track the non-zero signal values (all of them up to :data:`MAX_VALUES`, above that a
    uniform sample of that size: bottom-k of random keys, so the sample does not depend on the chunks);
(b) background peaks from the column means (:mod:`._correction`);
(c) :func:`score_cells`: per chunk the uncorrected activity on the scored layer and the deviations and
    z-scores on the counts; for a track model the level weights of the per-peak binding are summed.

Peak memory is that of a few copies of one chunk (its non-zeros) plus the outputs (cells x TFs float32)
and the per-peak arrays, not the whole matrix.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._utils import progress
from . import _scoring as sc
from ._deviations import deviations

__all__ = ["is_dask", "is_lazy", "read_rows", "map_chunks", "scan", "Scan", "score_cells", "CellScores"]

#: non-zero signal values kept for the levels of a track model; above, a uniform sample of this size
MAX_VALUES = sc._MAX_LEVEL_SAMPLE


# ------------------------------------------------------------------------------------------ engine
def is_dask(m: Any) -> bool:
    """Whether ``m`` is a dask array (without importing dask)."""
    return type(m).__module__.split(".")[0] == "dask"


def is_lazy(m: Any) -> bool:
    """Whether ``m`` is read lazily: a dask array, an h5py dataset or anndata's backed sparse dataset."""
    if is_dask(m):
        return True
    mod = type(m).__module__
    return mod.startswith("h5py") or "sparse_dataset" in mod


def read_rows(m: Any, lo: int, hi: int) -> sp.csr_matrix:
    """Rows ``lo:hi`` of ``m`` as CSR (its own dtype); a dask array's rows are computed."""
    block = m[lo:hi]
    if is_dask(block):
        block = block.compute()
    return block if sp.isspmatrix_csr(block) else sp.csr_matrix(block)


def _as_rows(m: Any) -> Any:
    """``m`` ready for row slicing: in-memory sparse matrices become CSR (no copy when already CSR)."""
    if sp.issparse(m) and not sp.isspmatrix_csr(m):
        return sp.csr_matrix(m)
    return m


def _slice(m: Any, lo: int, hi: int) -> sp.csr_matrix:
    return read_rows(m, lo, hi)


def _merge(a: Any, b: Any, how: Callable | None) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return how(a, b)


def map_chunks(
    kernel: Callable,
    mats: Sequence[Any],
    chunk_size: int,
    args: tuple = (),
    *,
    outputs: Sequence[tuple[tuple[int, ...], Any]],
    merge: Callable | None = None,
    local: bool = False,
    desc: str = "cells",
    verbose: bool = False,
) -> tuple[list[np.ndarray], Any]:
    """Apply ``kernel(lo, *blocks, *args) -> (cell_arrays, acc)`` to every chunk of ``chunk_size`` cells.

    ``mats`` share their rows; ``outputs`` gives each per-cell array's trailing shape and dtype (they are
    preallocated, ``(n_cells, *shape)``); ``merge(acc1, acc2)`` combines the accumulators (in chunk
    order). When one of ``mats`` is a dask array (and not ``local``) every chunk is one dask task (run by
    the active scheduler, a ``dask.distributed`` client included); else chunks are read in turn.
    """
    mats = [_as_rows(m) for m in mats]
    n = mats[0].shape[0]
    out = [np.empty((n, *shape), dtype=dtype) for shape, dtype in outputs]
    if any(is_dask(m) for m in mats) and not local:
        return _map_dask(kernel, mats, chunk_size, args, out, merge)
    acc = None
    starts = range(0, n, chunk_size)
    for lo in progress(starts, desc, disable=not verbose or n <= chunk_size, leave=False):
        hi = min(n, lo + chunk_size)
        cells, a = kernel(lo, *[read_rows(m, lo, hi) for m in mats], *args)
        for o, c in zip(out, cells):
            o[lo:hi] = c
        acc = _merge(acc, a, merge)
    return out, acc


def _map_dask(kernel, mats, chunk_size, args, out, merge) -> tuple[list[np.ndarray], Any]:
    """:func:`map_chunks` as dask tasks: one per chunk, the accumulators merged in a binary tree."""
    import dask

    n = mats[0].shape[0]
    bounds = [(lo, min(n, lo + chunk_size)) for lo in range(0, n, chunk_size)]
    blocks = []
    for m in mats:
        if is_dask(m):
            m = m.rechunk((chunk_size, -1)).to_delayed().ravel()
            blocks.append(list(m))
        else:  # an in-memory layer beside a dask one: one shared input, sliced in each task
            md = dask.delayed(m, traverse=False)
            blocks.append([dask.delayed(_slice)(md, lo, hi) for lo, hi in bounds])
    plain = (str, int, float, bool, type(None))
    shared = [a if isinstance(a, plain) else dask.delayed(a, traverse=False) for a in args]
    fn = dask.delayed(kernel, nout=2, pure=True)
    parts = [fn(lo, *[b[i] for b in blocks], *shared) for i, (lo, _) in enumerate(bounds)]
    accs = [p[1] for p in parts]
    while len(accs) > 1:
        accs = [
            dask.delayed(_merge)(accs[i], accs[i + 1], merge) if i + 1 < len(accs) else accs[i]
            for i in range(0, len(accs), 2)
        ]
    cells, acc = dask.compute([p[0] for p in parts], accs[0])
    for (lo, hi), c in zip(bounds, cells):
        for o, a in zip(out, c):
            o[lo:hi] = a
    return out, acc


# --------------------------------------------------------------------------------------- pass (a)
def _check_block(x: sp.csr_matrix, where: str) -> None:
    vals = x.data
    if not np.isfinite(vals).all():
        raise ValueError(f"{where} has NaN or inf values: counts must be finite")
    if vals.size and vals.min() < 0:
        raise ValueError(f"{where} has negative values (min {vals.min()}): counts must be >= 0")


def _bottom_k(values: np.ndarray, keys: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` values of the smallest keys (all when there are at most ``k``), in their order."""
    if len(values) <= k:
        return values, keys
    keep = np.sort(np.argpartition(keys, k - 1)[:k])
    return values[keep], keys[keep]


def _merge_stats(a: tuple, b: tuple) -> tuple:
    """Column sums added; the value samples concatenated (chunk order) and cut to :data:`MAX_VALUES`."""
    col = a[0] + b[0]
    if a[1] is None:
        return col, None, None, None
    vals, keys = _bottom_k(np.concatenate([a[1], b[1]]), np.concatenate([a[2], b[2]]), MAX_VALUES)
    ext = np.array([min(a[3][0], b[3][0]), max(a[3][1], b[3][1]), a[3][2] + b[3][2]])  # min, max, count
    return col, vals, keys, ext


def _stats_kernel(lo: int, x: sp.csr_matrix, where: str, values: bool, depth, seed) -> tuple:
    """Validation, row sums, column sums and (``values``) the signal's non-zero values of one chunk."""
    _check_block(x, where)
    x64 = sp.csr_matrix(x, dtype=np.float64)
    rows = np.asarray(x64.sum(1)).ravel()
    col = np.asarray(x64.sum(0)).ravel()
    if not values:
        return (rows,), (col, None, None, None)
    d = None if depth is None else depth[lo : lo + x.shape[0]]
    v = sc.cell_signal(x, d).data
    keys = np.random.default_rng([seed, lo]).random(len(v))
    ext = np.array([v.min() if v.size else np.inf, v.max() if v.size else -np.inf, v.size], dtype=np.float64)
    v, keys = _bottom_k(v, keys, MAX_VALUES)
    return (rows,), (col, v, keys, ext)


@dataclass
class Scan:
    """What pass (a) found: row sums ``(cells,)``, column sums ``(peaks,)`` (float64) and signal values."""

    row_sums: np.ndarray
    col_sums: np.ndarray
    values: np.ndarray | None  # float32 non-zero signal values (all, or a sample of MAX_VALUES)
    n_values: int = 0
    extremes: tuple[float, float] = (0.0, 0.0)

    def levels(self, n_levels: int) -> np.ndarray:
        """The signal levels (:func:`._scoring.signal_levels`), true minimum and maximum kept."""
        levels = sc.signal_levels(self.values, n_levels, 0)
        if self.n_values > len(self.values):
            levels[0] = min(levels[0], self.extremes[0])
            levels[-1] = max(levels[-1], self.extremes[1])
        return levels

    def median(self) -> np.ndarray:
        """:func:`._scoring.median_signal` of the values: the one level of a track model's background."""
        v = self.values
        return np.array([np.float32(np.median(v)) if v is not None and v.size else np.float32(0)])


def _key_seed(random_state) -> int:
    """An int seed for the sample's keys that leaves a passed Generator's state unchanged."""
    if isinstance(random_state, np.random.Generator):
        return int(copy.deepcopy(random_state).integers(2**31 - 1))
    if random_state is None:
        return int(np.random.default_rng().integers(2**31 - 1))
    return int(random_state)


def scan(
    m: Any,
    where: str,
    *,
    chunk_size: int,
    values: bool = False,
    depth: np.ndarray | None = None,
    random_state=0,
    verbose: bool = False,
) -> Scan:
    """Pass (a) over ``m``: checks every value (finite, >= 0; ``where`` names it in errors) and sums.

    ``values``: also keep the non-zero values of the per-cell signal
    (:func:`._scoring.cell_signal` with ``depth``), for a track model's levels.
    """
    args = (where, values, depth, _key_seed(random_state))
    (rows,), acc = map_chunks(
        _stats_kernel,
        [m],
        chunk_size,
        args,
        outputs=[((), np.float64)],
        merge=_merge_stats,
        desc=f"reading {where}",
        verbose=verbose,
    )
    col, vals, _, ext = acc
    if vals is None:
        return Scan(rows, col, None)
    return Scan(rows, col, vals.astype(np.float32, copy=False), int(ext[2]), (float(ext[0]), float(ext[1])))


# --------------------------------------------------------------------------------------- pass (c)
@dataclass
class Scoring:
    """The per-peak inputs of pass (c), shared by every chunk (small: peaks x levels x TFs at most)."""

    method: str
    background: np.ndarray | None
    depth: np.ndarray | None = None  # signal depth of each cell (None: row sums of the scored layer)
    table: np.ndarray | None = None  # (peaks, levels, TFs); None: exact (``predict``)
    levels: np.ndarray | None = None
    predict: Callable | None = None
    codes: np.ndarray | None = None
    batch_size: int = 256
    n_tfs: int = 0
    count_levels: bool = False  # sum the level weights of the per-peak binding (track model)
    activity: bool = True
    keep_activity: bool = True  # False: the activity is formed (empty cells, level counts) but not kept
    keep_deviation: bool = True  # False: only the z-scores of the deviations are kept
    weights: np.ndarray | None = None  # deviations: (peaks, TFs) weights, background peaks, peak shares
    expected: Any = None  # ExpectedBackground: exact background moments instead of the sampled sets
    background_peaks: np.ndarray | None = None
    peak_share: np.ndarray | None = None


def _cell_kernel(lo: int, x: sp.csr_matrix, *rest) -> tuple:
    """Pass (c) on one chunk: activity (+ non-empty flags, level counts), deviations and z-scores."""
    *counts, s = rest
    cells: list[np.ndarray] = []
    acc = None
    if s.activity:
        d = None if s.depth is None else s.depth[lo : lo + x.shape[0]]
        V = sc.cell_signal(x, d)
        if s.keep_activity:  # else only the empty cells (and a track model's level counts) are needed
            cells.append(
                sc.table_activity(V, s.table, s.levels, s.background, s.method)
                if s.table is not None
                else sc.exact_activity(
                    s.predict, s.codes, V, s.background, s.method, n_tfs=s.n_tfs, batch_size=s.batch_size
                )
            )
        cells += [np.asarray(V.sum(1)).ravel() > 0]
        if s.count_levels:
            acc = sc.level_counts(V, s.levels, s.table.shape[0])
    if s.weights is not None:
        c = counts[0] if counts else x
        if s.expected is not None:
            dev, z, _ = s.expected(c)
        else:
            dev, z, _ = deviations(
                c, s.weights, s.background_peaks, peak_share=s.peak_share, chunk_size=c.shape[0] + 1
            )
        cells += [dev, z] if s.keep_deviation else [z]
    return tuple(cells), acc


@dataclass
class CellScores:
    """What pass (c) returns: per-cell arrays and the level counts of a track model."""

    activity: np.ndarray | None = None  # float32 (cells, TFs), uncorrected (None: not kept)
    nonempty: np.ndarray | None = None  # bool (cells,): signal in the scored layer
    deviation: np.ndarray | None = None  # None: not kept
    z: np.ndarray | None = None
    level_counts: np.ndarray | None = None


def score_cells(
    scored: Any, counts: Any | None, s: Scoring, *, chunk_size: int, verbose: bool = False
) -> CellScores:
    """Pass (c): the kernel :func:`_cell_kernel` over chunks of ``scored`` (and ``counts`` when another layer).

    With ``s.activity`` False only the deviations are formed (``scored`` is then the counts).
    """
    n_tfs = s.n_tfs
    outs: list[tuple[tuple[int, ...], Any]] = []
    if s.activity:
        outs += [((n_tfs,), np.float32)] if s.keep_activity else []
        outs += [((), bool)]
    if s.weights is not None:
        outs += [((n_tfs,), np.float32)] * (2 if s.keep_deviation else 1)
    mats = [scored] if counts is None else [scored, counts]
    cells, acc = map_chunks(
        _cell_kernel,
        mats,
        chunk_size,
        (s,),
        outputs=outs,
        merge=np.add,
        local=s.table is None and s.activity,  # exact passes call the model here, not in tasks
        desc="cell activities",
        verbose=verbose,
    )
    res = CellScores(level_counts=acc)
    if s.activity:
        if s.keep_activity:
            res.activity, cells = cells[0], cells[1:]
        res.nonempty, cells = cells[0], cells[1:]
    if s.weights is not None:
        if s.keep_deviation:
            res.deviation, cells = cells[0], cells[1:]
        res.z = cells[0]
    return res
