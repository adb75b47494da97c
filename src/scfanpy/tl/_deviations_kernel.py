"""Compiled core of the background deviations: one (cells x TFs) product per background set, in parallel.

The background sets of the bias correction each need the cells' observed sums ``x @ w_b`` (``w_b`` the
weights moved onto the set's stand-in peaks, sparse). With SciPy that is a sparse x sparse product whose
result is nearly dense (a cell touches most TFs), so most of its time goes to building and then
densifying a CSR result, on one thread. Here each cell accumulates straight into its dense row of the
output, cells in parallel (numba ``prange``): the same multiply-adds, no intermediate matrix.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

__all__ = ["sparse_dense_product", "welford_update"]


@numba.njit(parallel=True, cache=True, nogil=True)
def _product(xp, xi, xd, wp, wi, wd, out):  # pragma: no cover - compiled
    for c in numba.prange(xp.size - 1):
        row = out[c]
        for k in range(xp[c], xp[c + 1]):
            q = xi[k]
            v = xd[k]
            for j in range(wp[q], wp[q + 1]):
                row[wi[j]] += v * wd[j]


def sparse_dense_product(x: sp.csr_matrix, w: sp.csr_matrix) -> np.ndarray:
    """``(x @ w).toarray()`` as float64, for CSR ``x`` (cells x peaks) and CSR ``w`` (peaks x TFs)."""
    x = x if isinstance(x, sp.csr_matrix) else sp.csr_matrix(x)
    w = w if isinstance(w, sp.csr_matrix) else sp.csr_matrix(w)
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"shapes disagree: {x.shape} @ {w.shape}")
    out = np.zeros((x.shape[0], w.shape[1]), dtype=np.float64)
    if x.nnz and w.nnz:
        # index arrays as SciPy holds them (no copy of a chunk's non-zeros for each background set)
        _product(
            x.indptr,
            x.indices,
            x.data.astype(np.float64, copy=False),
            w.indptr,
            w.indices,
            w.data.astype(np.float64, copy=False),
            out,
        )
    return out


@numba.njit(parallel=True, cache=True, nogil=True)
def _welford(obs, total, share, count, mean, m2):  # pragma: no cover - compiled
    for c in numba.prange(obs.shape[0]):
        for t in range(obs.shape[1]):
            e = total[c] * share[t]
            d = (obs[c, t] - e) / e if e > 0 else 0.0
            delta = d - mean[c, t]
            mean[c, t] += delta / count
            m2[c, t] += delta * (d - mean[c, t])


def welford_update(
    obs: np.ndarray, total: np.ndarray, share: np.ndarray, count: int, mean: np.ndarray, m2: np.ndarray
) -> None:
    """Add one background set's deviations to the running ``mean`` and ``m2`` (Welford), in place.

    The deviation is ``(obs - total * share) / (total * share)``, 0 where the expectation is 0; ``count``
    is the number of sets including this one.
    """
    _welford(obs, np.asarray(total, np.float64), np.asarray(share, np.float64), float(count), mean, m2)
