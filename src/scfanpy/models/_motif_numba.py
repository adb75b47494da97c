"""The motif scan on the CPU with numba: 32 matrices per SIMD vector, exact best scores.

The log-odds matrices (forward and reverse complement; motif ``j`` is matrices ``2j`` and ``2j + 1``)
are sorted by length and packed 32 to a **group**, one SIMD lane each (``LANES``). For every column
``k < Lg`` (``Lg`` the group's longest matrix) and code ``c`` (A, C, G, T, N) the group holds a row of 32
int16 scores ``round(S x)``: ``S`` the group's scale (chosen so that every partial sum fits int16), 0 in
the columns past a shorter matrix's end, and for N the column's lowest score (at least -30). The
integer score ``Q`` of window ``p`` in all 32 matrices is then one vector add per column, of the row
picked by the letter at ``p + k``: one 512-bit add with AVX-512. Numba's vectorizer does not find this
form, so the vector type and its load, store, add, max and compare are LLVM intrinsics here.

Exact best scores. Each rounded entry is within 0.5 of ``S x``, so ``Q`` is within ``L / 2`` of ``S``
times the window's exact score, and it stays an upper bound (``+ L / 2``) where the exact score counts -30
for an N or a position past the end. For each group and sequence:

1. the integer scores of the windows ``p <= W - Lmin`` (``Lmin`` the group's shortest matrix; longer
   matrices read N past the end) and each lane's maximum ``Qmax``;
2. the windows with ``Q >= Qmax - L - 1`` scored exactly (float64 sums of the log-odds, -30 for N and
   past the end), skipping those whose ``Q + L / 2`` cannot reach the motif's best so far (both strands).
   The window of ``Qmax`` is among them; when it holds no N, no window left out can do better. When
   the best found is below ``(Qmax - L / 2 - 0.5) / S`` (the window of ``Qmax`` held an N), every window
   whose ``Q`` reaches ``S best - L / 2 - 1`` is scored exactly too;
3. the windows after ``W - Lmin`` (all past the end), exactly, only when the motif's best is below the
   matrix's best possible score minus 30 (no window past the end can do better otherwise).

The result is the float64 sum of the log-odds of the best window, rounded once to float32: the numpy
reference scan's score up to its float32 rounding. ``scfanpy.models._motif`` documents the semantics
(windows at every offset ``0 .. W - 1``, -30 per N and per position past the end).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, models, register_model

LANES = 32  # matrices per group: 32 int16 = one 512-bit vector (two 256-bit ones without AVX-512)
_N_SCORE = -30.0  # as in scfanpy.models._motif
_Q_MAX = 32000  # bound on |partial integer score| (int16)
_CHUNK = 64  # sequences per parallel task
_VEC = ir.VectorType(ir.IntType(16), LANES)


# ------------------------------------------------------------------------------ a SIMD vector type
class _I16Vector(types.Type):
    """``LANES`` int16 values held as one LLVM vector (a register)."""

    def __init__(self):
        super().__init__(name=f"int16x{LANES}")


_i16v = _I16Vector()


@register_model(_I16Vector)
class _I16VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VEC)


def _vec_ptr(context, builder, arr_type, arr, idx):
    """Pointer to element ``idx`` of an int16 array, as a pointer to a vector."""
    ary = context.make_array(arr_type)(context, builder, arr)
    ptr = builder.gep(ary.data, [idx], source_etype=ir.IntType(16))
    return builder.bitcast(ptr, _VEC.as_pointer())


@intrinsic
def _vload(typingctx, arr, idx):
    """The vector at ``arr[idx:idx + LANES]`` (int16 array)."""

    def codegen(context, builder, sig, args):
        return builder.load(_vec_ptr(context, builder, sig.args[0], args[0], args[1]), align=2, typ=_VEC)

    return _i16v(arr, idx), codegen


@intrinsic
def _vstore(typingctx, arr, idx, v):
    """``arr[idx:idx + LANES] = v``."""

    def codegen(context, builder, sig, args):
        builder.store(args[2], _vec_ptr(context, builder, sig.args[0], args[0], args[1]), align=2)
        return context.get_dummy_value()

    return types.void(arr, idx, v), codegen


@intrinsic
def _vfill(typingctx, x):
    """Every lane ``x`` (an integer constant in int16 range)."""

    def codegen(context, builder, sig, args):
        one = builder.insert_element(
            ir.Constant(_VEC, ir.Undefined),
            builder.trunc(args[0], ir.IntType(16)),
            ir.Constant(ir.IntType(32), 0),
        )
        return builder.shuffle_vector(
            one, one, ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
        )

    return _i16v(x), codegen


@intrinsic
def _vadd(typingctx, a, b):
    """Lane-wise ``a + b`` (wrapping; the scales keep every sum in range)."""

    def codegen(context, builder, sig, args):
        return builder.add(args[0], args[1])

    return _i16v(_i16v, _i16v), codegen


@intrinsic
def _vmax(typingctx, a, b):
    """Lane-wise maximum."""

    def codegen(context, builder, sig, args):
        return builder.select(builder.icmp_signed(">", args[0], args[1]), args[0], args[1])

    return _i16v(_i16v, _i16v), codegen


@intrinsic
def _vge(typingctx, a, b):
    """Bit ``l`` of the result set where lane ``l`` of ``a`` >= that of ``b``."""

    def codegen(context, builder, sig, args):
        bits = builder.bitcast(builder.icmp_signed(">=", args[0], args[1]), ir.IntType(LANES))
        return builder.zext(bits, ir.IntType(64))

    return types.int64(_i16v, _i16v), codegen


@intrinsic
def _lowest_bit(typingctx, x):
    """Index of the lowest set bit of ``x`` (non-zero)."""

    def codegen(context, builder, sig, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return types.int64(types.int64), codegen


# ------------------------------------------------------------------------------ tables
class Tables(NamedTuple):
    """Groups, integer scores and exact columns of every matrix (see the module docstring)."""

    quant: np.ndarray  # int16, row (g_row[g] + k) * 5 + c of group g, LANES values each
    g_row: np.ndarray  # (groups,) first column row of each group
    g_len: np.ndarray  # (groups,) Lg, its longest matrix
    g_min: np.ndarray  # (groups,) its shortest matrix
    g_scale: np.ndarray  # (groups,) S
    lane_m: np.ndarray  # (groups * LANES,) matrix of each lane, -1 for an empty lane
    m_len: np.ndarray  # (matrices,) L
    m_best: np.ndarray  # (matrices,) best possible score (sum of the column maxima)
    m_min: np.ndarray  # (matrices,) shortest matrix of its group
    m_col: np.ndarray  # (matrices,) first row of matrix m in cols
    cols: np.ndarray  # float64 (columns * 5,): scores of A, C, G, T, N (-30) of every column
    lmax: int


def _group_scale(mats: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    """Scale ``S`` and integer rows ``(L, 5)`` of a group: every partial sum within ``_Q_MAX``."""
    scale = _Q_MAX / max(max(float(np.abs(x).max(1).sum()) for x in mats), 1e-9)
    while True:
        rows = []
        for x in mats:
            q = np.empty((len(x), 5))
            q[:, :4] = np.round(scale * x)
            q[:, 4] = np.round(scale * np.maximum(x.min(1), _N_SCORE))  # N: an upper bound of -30
            rows.append(q)
        if all(np.abs(q).max(1).sum() <= _Q_MAX for q in rows):  # rounding may add up to L / 2
            return scale, rows
        scale *= 0.99


def build_tables(log_odds: list[np.ndarray]) -> Tables:
    """The groups and columns of the forward and reverse-complement matrices of ``log_odds``."""
    mats = [m for s in log_odds for m in (np.asarray(s, np.float64), np.asarray(s, np.float64)[::-1, ::-1])]
    lengths = np.array([len(m) for m in mats])
    order = np.argsort(lengths, kind="stable")
    n_groups = -(-len(mats) // LANES)
    lane_m = np.full(n_groups * LANES, -1, np.int64)
    lane_m[: len(mats)] = order
    g_len, g_min, g_scale, blocks = [], [], [], []
    m_min = np.empty(len(mats), np.int64)
    for g in range(n_groups):
        members = [int(m) for m in lane_m[g * LANES : (g + 1) * LANES] if m >= 0]
        scale, rows = _group_scale([mats[m] for m in members])
        block = np.zeros((int(lengths[members].max()), 5, LANES), np.int16)
        for lane, q in enumerate(rows):
            block[: len(q), :, lane] = q
        g_len.append(len(block))
        g_min.append(int(lengths[members].min()))
        m_min[members] = g_min[-1]
        g_scale.append(scale)
        blocks.append(block)
    cols = np.concatenate([np.concatenate([x, np.full((len(x), 1), _N_SCORE)], 1) for x in mats])
    i64 = np.int64
    return Tables(
        np.ascontiguousarray(np.concatenate(blocks).ravel()),
        np.concatenate([[0], np.cumsum(g_len)[:-1]]).astype(i64),
        np.asarray(g_len, i64),
        np.asarray(g_min, i64),
        np.asarray(g_scale, np.float64),
        lane_m,
        lengths.astype(i64),
        np.array([x.max(1).sum() for x in mats]),
        m_min,
        np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(i64),
        np.ascontiguousarray(cols.ravel()),
        int(lengths.max()),
    )


# ------------------------------------------------------------------------------ the kernel
@njit(cache=True, nogil=True, inline="always")
def _exact(row, p, m, m_len, m_col, cols):
    """Exact score of matrix ``m``'s window at ``p`` (``row`` N-padded past the end: -30 there)."""
    base = m_col[m] * 5
    s = 0.0
    for k in range(m_len[m]):
        s += cols[base + 5 * k + row[p + k]]
    return s


@njit(cache=True, nogil=True)
def _integer_scores(row, nw, quant, base, lg, buf, bmax):
    """Integer scores of the windows ``0:nw`` of a group into ``buf`` (``nw * LANES``); their maximum.

    ``bmax``: the maximum of each block of 4 windows (the second pass skips a block below its threshold).
    """
    best = _vfill(-32768)
    for b in range((nw + 3) // 4):
        p = 4 * b
        if p + 4 <= nw:  # four windows at a time: four independent sums in registers
            a0 = _vfill(0)
            a1 = _vfill(0)
            a2 = _vfill(0)
            a3 = _vfill(0)
            for k in range(lg):
                r = base + 5 * k
                a0 = _vadd(a0, _vload(quant, (r + row[p + k]) * LANES))
                a1 = _vadd(a1, _vload(quant, (r + row[p + k + 1]) * LANES))
                a2 = _vadd(a2, _vload(quant, (r + row[p + k + 2]) * LANES))
                a3 = _vadd(a3, _vload(quant, (r + row[p + k + 3]) * LANES))
            _vstore(buf, p * LANES, a0)
            _vstore(buf, (p + 1) * LANES, a1)
            _vstore(buf, (p + 2) * LANES, a2)
            _vstore(buf, (p + 3) * LANES, a3)
            top = _vmax(_vmax(a0, a1), _vmax(a2, a3))
        else:
            top = _vfill(-32768)
            for i in range(p, nw):
                a0 = _vfill(0)
                for k in range(lg):
                    a0 = _vadd(a0, _vload(quant, (base + 5 * k + row[i + k]) * LANES))
                _vstore(buf, i * LANES, a0)
                top = _vmax(top, a0)
        _vstore(bmax, b * LANES, top)
        best = _vmax(best, top)
    return best


@njit(cache=True, nogil=True)
def _score_candidates(row, nw, g, buf, bmax, thr_q, best, t):
    """Exact scores of the windows whose integer score reaches ``thr_q`` in their lane and may beat the best.

    ``best`` per motif (both strands); a window is skipped when its integer score plus the rounding
    bound cannot reach it.
    """
    scale, lane_m, m_len, m_col, cols = t[4][g], t[5], t[6], t[9], t[10]
    vthr = _vload(thr_q, 0)
    for b in range((nw + 3) // 4):
        if _vge(_vload(bmax, b * LANES), vthr) == 0:
            continue
        for p in range(4 * b, min(4 * b + 4, nw)):
            mask = _vge(_vload(buf, p * LANES), vthr)
            while mask != 0:
                lane = _lowest_bit(mask)
                mask &= mask - 1
                m = lane_m[g * LANES + lane]
                j = m >> 1
                if buf[p * LANES + lane] + 0.5 * m_len[m] + 0.5 >= scale * best[j]:
                    best[j] = max(best[j], _exact(row, p, m, m_len, m_col, cols))


@njit(cache=True, nogil=True)
def _scan_group(row, width, g, buf, bmax, q_max, thr_q, best, t):
    """Steps 1-2 of the module docstring for the matrices of group ``g``."""
    quant, g_row, g_len, g_min, scale, lane_m, m_len = t[0], t[1], t[2], t[3], t[4][g], t[5], t[6]
    nw = width - g_min[g] + 1  # windows inside the sequence for the group's shortest matrix
    if nw <= 0:
        return
    _vstore(q_max, 0, _integer_scores(row, nw, quant, g_row[g] * 5, g_len[g], buf, bmax))
    for lane in range(LANES):
        m = lane_m[g * LANES + lane]
        thr_q[lane] = 32767 if m < 0 else max(q_max[lane] - m_len[m] - 1, -32768)
    _score_candidates(row, nw, g, buf, bmax, thr_q, best, t)
    again = False
    for lane in range(LANES):  # the window of Qmax held an N: every window that may beat best
        m = lane_m[g * LANES + lane]
        thr_q[lane] = 32767
        if m >= 0 and scale * best[m >> 1] < q_max[lane] - m_len[m] / 2 - 0.5:
            thr_q[lane] = max(int(np.floor(scale * best[m >> 1] - m_len[m] / 2)) - 1, -32768)
            again = True
    if again:
        _score_candidates(row, nw, g, buf, bmax, thr_q, best, t)


@njit(parallel=True, cache=True, nogil=True)
def _scan_kernel(codes, floors, t, chunk):
    n, width = codes.shape
    n_tf = floors.shape[0]
    m_len, m_best, m_min, m_col, cols, lmax = t[6], t[7], t[8], t[9], t[10], t[11]
    out = np.empty((n, n_tf), dtype=np.float32)
    n_chunks = (n + chunk - 1) // chunk
    for ci in prange(n_chunks):
        row = np.full(width + 2 * lmax + 4, 4, dtype=np.uint8)
        buf = np.empty(max(width, 1) * LANES, dtype=np.int16)
        bmax = np.empty((max(width, 1) + 3) // 4 * LANES, dtype=np.int16)
        q_max = np.empty(LANES, dtype=np.int16)
        thr_q = np.empty(LANES, dtype=np.int16)
        best = np.empty(n_tf, dtype=np.float64)
        for s in range(ci * chunk, min(n, (ci + 1) * chunk)):
            for i in range(width):
                row[i] = min(codes[s, i], 4)
            best[:] = -np.inf
            for g in range(t[2].shape[0]):
                _scan_group(row, width, g, buf, bmax, q_max, thr_q, best, t)
            for m in range(2 * n_tf):  # step 3: windows past the group's, when they may do better
                if best[m >> 1] < m_best[m] + _N_SCORE:
                    for p in range(max(width - m_min[m] + 1, 0), width):
                        best[m >> 1] = max(best[m >> 1], _exact(row, p, m, m_len, m_col, cols))
            for j in range(n_tf):
                out[s, j] = best[j] if best[j] >= floors[j] else -np.inf
    return out


def scan(codes: np.ndarray, t: Tables, floors: np.ndarray, n_threads: int | None = None) -> np.ndarray:
    """Best score ``(n, n_tfs)`` float32 over both strands; ``-inf`` where it is below ``floors``.

    ``floors`` (float64, one per motif; ``-inf`` for every score). ``n_threads``: numba threads for
    this call (``None``: ``numba.get_num_threads()``).
    """
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    n = len(codes)
    floors = np.ascontiguousarray(floors, dtype=np.float64)
    old = numba.get_num_threads()
    k = old if n_threads is None else max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS))
    chunk = int(max(1, min(_CHUNK, -(-n // k))))
    numba.set_num_threads(k)
    try:
        return _scan_kernel(codes, floors, tuple(t), chunk)
    finally:
        numba.set_num_threads(old)
