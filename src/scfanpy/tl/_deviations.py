"""Bias-corrected TF activity: deviations from GC- and accessibility-matched background peaks.

The idea is chromVAR's (Schep et al., Nature Methods 2017), applied to binding weights (the calibrated
binding probabilities of any scfanpy model) instead of 0/1 motif hits. Pure numpy / scipy: arrays in,
arrays out; the AnnData driver is :func:`scfanpy.tl.predict_tf_binding`.

For a cell ``c`` with signal ``x[c, p]`` over peaks and a TF's weights ``w[p]``:

- observed ``O[c] = sum_p x[c, p] w[p]``;
- expected ``E[c] = n[c] sum_p e[p] w[p]`` with ``n[c] = sum_p x[c, p]`` (the cell's total) and
  ``e[p] = sum_c x[c, p] / sum_{c, p} x[c, p]`` (the peak's share of all signal);
- deviation ``d[c] = (O[c] - E[c]) / E[c]``.

Each peak has ``n_background`` stand-ins (:func:`background_peaks`), peaks alike in GC content, mean
accessibility and N fraction. Background ``b`` moves every peak's weight to its ``b``-th stand-in
(``O_b[c] = sum_p x[c, bg[p, b]] w[p]``, ``E_b`` likewise) and gives ``d_b``. The bias-corrected
deviation is ``d - mean_b d_b`` and its z-score ``(d - mean_b d_b) / sd_b d_b``: a TF whose weights sit
on GC-rich or widely open peaks gets the same expectation from background peaks of the same kind, so the
GC and accessibility artefacts cancel.

Memory: cells are processed in chunks; only running sums over backgrounds are kept (no
``(backgrounds, cells, TFs)`` array), and ``x`` stays sparse.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._constants import N_CODE

__all__ = ["peak_composition", "background_peaks", "deviations"]


def peak_composition(codes: np.ndarray, *, chunk: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """GC fraction (over the known bases) and N fraction of each sequence.

    Parameters
    ----------
    codes
        uint8 ``(n, L)``, A=0 C=1 G=2 T=3 N=4.
    chunk
        Rows per step (memory).

    Returns
    -------
    gc : numpy.ndarray
        float64 ``(n,)``: (C + G) / (A + C + G + T); 0.5 for a sequence without known bases.
    n_frac : numpy.ndarray
        float64 ``(n,)``: share of N (or any code above 3).
    """
    codes = np.asarray(codes)
    n = codes.shape[0]
    gc = np.empty(n, dtype=np.float64)
    nf = np.empty(n, dtype=np.float64)
    width = max(codes.shape[1], 1)
    for lo in range(0, n, chunk):
        c = codes[lo : lo + chunk]
        known = (c < N_CODE).sum(1)
        g = ((c == 1) | (c == 2)).sum(1)
        gc[lo : lo + chunk] = np.where(known > 0, g / np.maximum(known, 1), 0.5)
        nf[lo : lo + chunk] = 1.0 - known / width
    return gc, nf


def background_peaks(
    covariates: np.ndarray,
    *,
    n_background: int = 50,
    n_candidates: int | None = None,
    random_state: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """For each peak, ``n_background`` other peaks alike in the covariates.

    The covariates (columns, e.g. GC fraction, log mean accessibility, N fraction) are whitened (zero
    mean, identity covariance: Mahalanobis distance, as chromVAR does for its two covariates); each peak's
    stand-ins are drawn without replacement from its ``n_candidates`` nearest other peaks in that space.

    Parameters
    ----------
    covariates
        ``(n_peaks, d)`` float.
    n_background
        Stand-ins per peak (chromVAR: 50 background iterations).
    n_candidates
        Neighbourhood to draw from (default ``2 * n_background``, at most ``n_peaks - 1``): smaller
        matches more tightly, larger gives more varied backgrounds.
    random_state
        Seed of the draws.

    Returns
    -------
    background : numpy.ndarray
        int64 ``(n_peaks, n_background)`` peak indices; column ``b`` is background set ``b``.
    """
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(covariates, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"background peaks need at least 2 peaks, got {n}")
    if not np.isfinite(x).all():
        raise ValueError("covariates contain NaN or inf")
    k = min(n - 1, n_candidates or 2 * n_background)
    z = _whiten(x)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(z)
    idx = nn.kneighbors(z, return_distance=False)
    # drop the peak itself (ties may put it anywhere in the row, or push it out): keep the first k others
    others = idx != np.arange(n)[:, None]
    cand = np.take_along_axis(idx, np.argsort(~others, axis=1, kind="stable")[:, :k], axis=1).astype(np.int64)
    rng = np.random.default_rng(random_state)
    if n_background <= k:
        pick = np.argsort(rng.random((n, k)), axis=1)[:, :n_background]
    else:
        pick = rng.integers(0, k, size=(n, n_background))
    return np.take_along_axis(cand, pick, axis=1)


def _whiten(x: np.ndarray) -> np.ndarray:
    """Zero-mean, identity-covariance coordinates (constant columns dropped)."""
    x = x - x.mean(0)
    keep = x.std(0) > 0
    x = x[:, keep]
    if x.shape[1] == 0:
        return np.zeros((len(x), 1))
    cov = np.atleast_2d(np.cov(x, rowvar=False))
    vals, vecs = np.linalg.eigh(cov)
    vals = np.maximum(vals, 1e-12 * vals.max())
    return x @ vecs / np.sqrt(vals)


def _observed(x: sp.csr_matrix, w: np.ndarray) -> np.ndarray:
    return np.asarray(x @ w, dtype=np.float64)


def deviations(
    x: sp.spmatrix | np.ndarray,
    weights: np.ndarray,
    background: np.ndarray,
    *,
    peak_share: np.ndarray | None = None,
    chunk_size: int = 20_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bias-corrected deviations and z-scores of each (cell, TF).

    Parameters
    ----------
    x
        Cells x peaks signal (counts or smoothed counts), sparse or dense, non-negative.
    weights
        Peaks x TFs binding weights (e.g. probabilities); rows of unusable peaks should be 0.
    background
        Peaks x backgrounds stand-in indices from :func:`background_peaks`.
    peak_share
        ``e[p]``, each peak's share of the total signal (default: from ``x``; pass it when ``x`` is one
        chunk of a larger matrix).
    chunk_size
        Cells per step.

    Returns
    -------
    deviation : numpy.ndarray
        float32 ``(cells, TFs)``: ``d - mean_b d_b``; NaN for cells without signal.
    z : numpy.ndarray
        float32 ``(cells, TFs)``: ``(d - mean_b d_b) / sd_b d_b``; NaN for cells without signal.
    raw : numpy.ndarray
        float32 ``(cells, TFs)``: the uncorrected deviation ``d``.
    """
    x = sp.csr_matrix(x, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    bg = np.asarray(background)
    if x.shape[1] != w.shape[0] or bg.shape[0] != w.shape[0]:
        raise ValueError(
            f"shapes disagree: signal {x.shape}, weights {w.shape}, background {bg.shape} (peaks must match)"
        )
    if x.nnz and x.data.min() < 0:
        raise ValueError("the signal must be non-negative")
    if peak_share is None:
        col = np.asarray(x.sum(0)).ravel()
        peak_share = col / max(col.sum(), 1e-300)
    e = np.asarray(peak_share, dtype=np.float64)
    n_cells, n_tfs = x.shape[0], w.shape[1]
    out = [np.empty((n_cells, n_tfs), dtype=np.float32) for _ in range(3)]
    for lo in range(0, n_cells, chunk_size):
        d, z, raw = _deviation_chunk(x[lo : lo + chunk_size], w, bg, e)
        out[0][lo : lo + chunk_size], out[1][lo : lo + chunk_size], out[2][lo : lo + chunk_size] = d, z, raw
    return out[0], out[1], out[2]


def _deviation_chunk(x: sp.csr_matrix, w: np.ndarray, bg: np.ndarray, e: np.ndarray):
    """Corrected deviation, z-score and raw deviation of one chunk of cells (Welford over backgrounds)."""
    total = np.asarray(x.sum(1)).ravel()
    empty = total <= 0

    def dev(obs: np.ndarray, expected_share: np.ndarray) -> np.ndarray:
        exp = total[:, None] * expected_share[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(exp > 0, (obs - exp) / exp, 0.0)

    raw = dev(_observed(x, w), e @ w)
    mean = np.zeros_like(raw)
    m2 = np.zeros_like(raw)
    for b in range(bg.shape[1]):
        idx = bg[:, b]
        db = dev(_observed(x[:, idx], w), e[idx] @ w)
        delta = db - mean
        mean += delta / (b + 1)
        m2 += delta * (db - mean)
    sd = np.sqrt(m2 / max(bg.shape[1] - 1, 1))
    corrected = raw - mean
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, corrected / sd, 0.0)
    for a in (raw, corrected, z):
        a[empty] = np.nan
    return corrected.astype(np.float32), z.astype(np.float32), raw.astype(np.float32)
