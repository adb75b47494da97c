"""The motif scan on the CPU with numba: exact best scores by lookahead, without scoring every offset.

Each log-odds matrix (forward and reverse complement; motif ``j`` is matrices ``2j`` and ``2j + 1``) is
cut into blocks of ``Q`` consecutive columns (the last one shorter), ordered most informative first:
the largest expected drop below the columns' best scores under the background. The score of every
``Q``-letter word is tabulated per block, so one lookup adds ``Q`` columns; a word holding an N or
running past the end of the sequence (code ``4^Q``) is scored column by column instead, -30 an N or a
position past the end, as the numpy reference scan.

Scan of one matrix on one sequence, with a threshold ``thr`` (a floor, or the best score so far):

1. for every offset, without branches, an upper bound: the first block's score plus the best scores of
   the others; then, for the offsets whose bound reaches ``thr``, the first two blocks' scores plus the
   best of the others (an N word is bounded by its block's best score); offsets that still reach ``thr``
   are kept;
2. the kept offset with the largest bound first (so ``thr`` rises near the best score at once), then
   each kept offset adds its blocks in order, and is abandoned as soon as its sum so far plus the best
   scores of the blocks left is below ``thr``; one that is not abandoned is the best so far, and
   ``thr`` rises to its score.

Motif ``j`` starts at ``thr = start[j]``, a little below the best score expected of a background
sequence of that length (few offsets pass it); when no offset reaches it, the motif is scanned again
from ``thr = floor[j]``. Windows running past the end of the sequence (they score -30 there, and at most
their best elsewhere, each column's best being >= 0) are scored only when that can reach ``thr``. So
the best score is exact whenever it reaches ``floor[j]`` (``-inf``: always),
and ``-inf`` below it; ``start`` only sets the speed.

Exactness: a table entry is the float32 rounding of the float64 sum of its columns' scores; the
column-by-column path rounds the same sum the same way; an offset's score and bounds are float64 sums of
those float32 values, which are exact, so an abandoned offset never scores above the threshold.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

Q = 5  # letters per block table: 4^5 + 1 float64 = 8 KiB (measured faster than 4 or 6 letters)
_N_SCORE = -30.0  # as in scfanpy.models._motif
_CHUNK = 128  # sequences scanned together: each matrix's tables are read once per chunk


class Tables(NamedTuple):
    """Blocks and tables of every matrix (see the module docstring)."""

    m_start: np.ndarray  # (m + 1,) blocks of matrix m: m_start[m]:m_start[m + 1], in scan order
    m_len: np.ndarray  # (m,) columns of matrix m
    m_best: np.ndarray  # (m,) its best score
    b_woff: (
        np.ndarray
    )  # first column of each block's word (Q letters, inside the matrix when it has Q columns)
    b_off: np.ndarray  # first column the block scores
    b_len: np.ndarray  # columns it scores (Q, or fewer for the last)
    b_tab: np.ndarray  # start of its table (4^Q + 1 entries, the last its best: the bound of an N word)
    b_col: np.ndarray  # row of its first column in cols
    b_rest: np.ndarray  # best score of the blocks after it
    tables: np.ndarray  # float64 holding float32 values
    cols: np.ndarray  # float64 (columns, 4)
    lmax: int


def _word_scores(mat: np.ndarray, ws: int, o: int, r: int) -> np.ndarray:
    """float32 score of columns ``o:o + r`` of every word of ``Q`` letters from column ``ws``, then the best."""
    words = (np.arange(4**Q)[:, None] >> (2 * np.arange(Q - 1, -1, -1))) & 3
    acc = np.zeros(4**Q)
    for i in range(o - ws, o - ws + r):  # the order the column-by-column path adds them in
        acc = acc + mat[ws + i][words[:, i]]
    tab = acc.astype(np.float32).astype(np.float64)  # float32 values: their float64 sums are exact
    return np.append(tab, tab.max())


def build_tables(log_odds: list[np.ndarray], background: np.ndarray) -> Tables:
    """The blocks and tables of the forward and reverse-complement matrices of ``log_odds``."""
    m_start, m_len, m_best, b_woff, b_off, b_len, b_col, b_rest = [0], [], [], [], [], [], [], []
    tables, cols = [], []
    n_cols = 0
    for s in log_odds:
        for mat in (s, s[::-1, ::-1]):  # forward, reverse complement (A<->T, C<->G)
            length = len(mat)
            drop = mat.max(1) - mat @ background  # expected loss of each column under the background
            blocks = sorted((-float(drop[o : o + Q].sum()), o) for o in range(0, length, Q))
            for _, o in blocks:
                r = min(Q, length - o)
                ws = max(0, min(o, length - Q))  # a short last block reads the word ending with the matrix
                tables.append(_word_scores(mat, ws, o, r))
                b_woff.append(ws)
                b_off.append(o)
                b_len.append(r)
                b_col.append(n_cols)
                cols.append(mat[o : o + r])
                n_cols += r
            best = [float(t[-1]) for t in tables[len(tables) - len(blocks) :]]
            b_rest += [sum(best[k + 1 :]) for k in range(len(blocks))]
            m_start.append(len(b_off))
            m_len.append(length)
            m_best.append(sum(best))
    tables.append(np.zeros(4**Q + 1))  # the second block of one-block matrices: adds 0
    i64, f64 = np.int64, np.float64
    return Tables(
        np.asarray(m_start, i64),
        np.asarray(m_len, i64),
        np.asarray(m_best, f64),
        np.asarray(b_woff, i64),
        np.asarray(b_off, i64),
        np.asarray(b_len, i64),
        np.arange(len(tables) - 1, dtype=i64) * (4**Q + 1),
        np.asarray(b_col, i64),
        np.asarray(b_rest, f64),
        np.concatenate(tables),
        np.ascontiguousarray(np.concatenate(cols), dtype=f64),
        max(len(s) for s in log_odds),
    )


@njit(cache=True, nogil=True, inline="always")
def _hashes(row: np.ndarray, out: np.ndarray) -> None:
    """Code of the ``Q``-letter word at each offset of ``row`` into ``out``; ``4^Q``: N or past the end."""
    out[:] = 4**Q
    mask = (1 << (2 * Q)) - 1
    h = 0
    last_bad = -1
    for e in range(row.shape[0]):
        c = row[e]
        if c >= 4:
            last_bad = e
            c = 0
        h = ((h << 2) | c) & mask
        if e - Q + 1 >= 0 and last_bad < e - Q + 1:
            out[e - Q + 1] = h


@njit(cache=True, nogil=True, inline="always")
def _exact(row, h, p, b0, b1, thr, b_woff, b_off, b_len, b_tab, b_col, b_rest, tables, cols) -> float:
    """Score of the window at ``p`` (blocks ``b0:b1``), or -inf once it cannot reach ``thr``.

    A block reads its table, or adds its columns one by one when its word holds an N or runs past the
    end (-30 there), the sum rounded to float32 as in the table.
    """
    partial = 0.0
    for b in range(b0, b1):
        w = h[p + b_woff[b]]
        if w < 4**Q:
            partial += tables[b_tab[b] + w]
        else:
            v = 0.0
            for i in range(b_len[b]):
                pos = p + b_off[b] + i
                c = row[pos] if pos < row.shape[0] else 4
                v += _N_SCORE if c >= 4 else cols[b_col[b] + i, c]
            partial += np.float64(np.float32(v))
        if partial + b_rest[b] < thr:
            return -np.inf
    return partial


@njit(cache=True, nogil=True)
def _scan_matrix(codes, hashes, lo, m, thr, best, ub, keep, t, zero_tab):
    """Matrix ``m`` on sequences ``lo:lo + len(thr)``: the best score above ``thr``, into ``best``, ``thr``."""
    m_start, m_len, m_best, b_woff, b_off, b_len, b_tab, b_col, b_rest, tables, cols = t
    width = codes.shape[1]
    n_in = width - m_len[m] + 1  # windows inside the sequence; the others hold a position past the end
    b0, b1 = m_start[m], m_start[m + 1]
    t0, o0, t1, o1, rest = b_tab[b0], b_woff[b0], zero_tab, 0, b_rest[b0]  # one block: the 2nd adds 0
    if b1 - b0 > 1:
        t1, o1, rest = b_tab[b0 + 1], b_woff[b0 + 1], b_rest[b0 + 1]
    tab0, tab1 = tables[t0 : t0 + 4**Q + 1], tables[t1 : t1 + 4**Q + 1]
    for s in range(thr.shape[0]):
        row, h = codes[lo + s], hashes[s]
        if n_in > 0:
            w0, w1 = h[o0 : o0 + n_in], h[o1 : o1 + n_in]
            lim = thr[s] - rest
            lim0 = lim - tab1[4**Q]  # the first block, the second at its best
            n0 = 0
            for p in range(n_in):  # stage 1a: the first block, no branch
                keep[n0] = p
                n0 += tab0[w0[p]] >= lim0
            n_keep = 0
            for i in range(n0):  # stage 1b: the first two blocks
                p = keep[i]
                u = tab0[w0[p]] + tab1[w1[p]]
                ub[n_keep] = u
                keep[n_keep] = p
                n_keep += u >= lim
            top = 0
            for i in range(1, n_keep):
                if ub[i] > ub[top]:
                    top = i
            # stage 2: the best bound first (the threshold rises near the best score at once), then every
            # kept window whose bound still reaches the threshold, block by block
            for k in range(-1 if n_keep else 0, n_keep):
                i = top if k < 0 else k
                if ub[i] >= lim and (k < 0 or i != top):
                    sc = _exact(
                        row,
                        h,
                        keep[i],
                        b0,
                        b1,
                        thr[s],
                        b_woff,
                        b_off,
                        b_len,
                        b_tab,
                        b_col,
                        b_rest,
                        tables,
                        cols,
                    )
                    if sc >= thr[s]:
                        best[s] = thr[s] = sc
                        lim = sc - rest
        # a window past the end scores -30 there, its other columns at most their best (each >= 0)
        if m_best[m] + _N_SCORE + 1e-3 >= thr[s]:
            for p in range(max(n_in, 0), width):
                sc = _exact(
                    row, h, p, b0, b1, thr[s], b_woff, b_off, b_len, b_tab, b_col, b_rest, tables, cols
                )
                if sc >= thr[s]:
                    best[s] = thr[s] = sc


@njit(parallel=True, cache=True, nogil=True)
def _scan_kernel(codes, floors, start, t, zero_tab, lmax, chunk):
    n, width = codes.shape
    n_tf = floors.shape[0]
    out = np.empty((n, n_tf), dtype=np.float32)
    n_chunks = (n + chunk - 1) // chunk
    for ci in prange(n_chunks):
        lo = ci * chunk
        hi = min(n, lo + chunk)
        hashes = np.empty((hi - lo, width + lmax), dtype=np.uint16)
        for s in range(hi - lo):
            _hashes(codes[lo + s], hashes[s])
        ub = np.empty(width, dtype=np.float64)
        keep = np.empty(width, dtype=np.int64)
        thr = np.empty(hi - lo, dtype=np.float64)
        best = np.empty(hi - lo, dtype=np.float64)
        for j in range(n_tf):  # motifs outer: a matrix's tables stay in cache over the chunk
            thr[:] = start[j]
            best[:] = -np.inf
            for m in range(2 * j, 2 * j + 2):
                _scan_matrix(codes, hashes, lo, m, thr, best, ub, keep, t, zero_tab)
            for s in range(hi - lo):
                if best[s] == -np.inf and start[j] > floors[j]:  # nothing reached start: from the floor
                    thr[s] = floors[j]
                    for m in range(2 * j, 2 * j + 2):
                        _scan_matrix(
                            codes,
                            hashes[s : s + 1],
                            lo + s,
                            m,
                            thr[s : s + 1],
                            best[s : s + 1],
                            ub,
                            keep,
                            t,
                            zero_tab,
                        )
                out[lo + s, j] = best[s]
    return out


def scan(
    codes: np.ndarray, t: Tables, floors: np.ndarray, start: np.ndarray, n_threads: int | None = None
) -> np.ndarray:
    """Best score ``(n, n_tfs)`` float32 over both strands; ``-inf`` where no offset reaches ``floors``.

    ``floors`` and ``start`` (float64, one per motif): see the module docstring; ``floors = -inf`` for
    the exact best score everywhere. ``n_threads``: numba threads for this call (``None``:
    ``numba.get_num_threads()``).
    """
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    n = len(codes)
    floors = np.ascontiguousarray(floors, dtype=np.float64)
    start = np.maximum(np.asarray(start, dtype=np.float64), floors)
    zero_tab = len(t.tables) - (4**Q + 1)
    old = numba.get_num_threads()
    k = old if n_threads is None else max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS))
    chunk = int(max(1, min(_CHUNK, -(-n // k))))
    numba.set_num_threads(k)
    try:
        return _scan_kernel(codes, floors, start, tuple(t[:-1]), zero_tab, int(t.lmax), chunk)
    finally:
        numba.set_num_threads(old)
