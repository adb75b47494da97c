"""scFAN's neighbour pseudo-bulk: each cell's accessibility summed over its k nearest neighbours."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from .._constants import SMOOTHED
from .._utils import get_adata, log_added, logger, progress, uns_params

__all__ = ["smooth", "lsi"]


def lsi(X, n_comps: int = 30, *, drop_first: bool = True, seed: int = 0) -> np.ndarray:
    """Latent semantic indexing of a sparse count matrix: TF-IDF then truncated SVD.

    TF-IDF as in Signac/muon (``log1p(tf * idf * 1e4)``), randomized SVD; the first component, which
    mostly follows read depth, is dropped by default. Sparse throughout.

    Returns
    -------
    float32 ``(n_cells, n_comps)`` cell coordinates (scaled by the singular values).
    """
    from sklearn.utils.extmath import randomized_svd

    X = sp.csr_matrix(X, dtype=np.float32)
    n_cells = X.shape[0]
    rs = np.asarray(X.sum(1)).ravel()
    rs[rs == 0] = 1
    df = np.asarray((X > 0).sum(0)).ravel()
    idf = np.log1p(n_cells / np.maximum(df, 1)).astype(np.float32)
    tfidf = sp.diags((1e4 / rs).astype(np.float32)) @ X @ sp.diags(idf)
    tfidf.data = np.log1p(tfidf.data)
    k = min(n_comps + int(drop_first), min(X.shape) - 1)
    u, s, _ = randomized_svd(tfidf, n_components=k, random_state=seed)
    z = (u * s).astype(np.float32)
    return z[:, 1:] if drop_first else z


#: up to this many cells the neighbours are exact (blocked matrix product + top-k in torch); above,
#: NN-descent (pynndescent), whose cost grows ~n log n instead of n^2
EXACT_KNN_MAX_CELLS = 150_000


def _knn(z: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Indices ``(n, k)`` of each row's k nearest rows (itself included), exact up to 150,000 rows.

    Up to 20,000 rows scikit-learn's brute force. Then exact search in torch: squared Euclidean
    distances of a block of rows to all rows (one matrix product) and their k smallest
    (``torch.topk``), block after block; a block holds at most 2^26 distances (256 MB); no
    compilation. On 10^5 cells x 30 LSI dimensions with k = 100 this takes about 30 s on 2 CPU
    cores, against about 37 s for pynndescent in a fresh process (about 20 s of which is its JIT
    compilation). Above 150,000 rows, NN-descent.
    """
    n = len(z)
    k = min(k, n)
    if n <= 20_000:  # small: scikit-learn's brute force (no torch import, ~0.4 GB less memory)
        from sklearn.neighbors import NearestNeighbors

        idx = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(z).kneighbors(z, return_distance=False)
    elif n <= EXACT_KNN_MAX_CELLS:
        import torch

        Z = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
        sq = (Z * Z).sum(1)
        idx = np.empty((n, k), dtype=np.int64)
        block = int(max(64, min(4096, 2**26 // max(n, 1))))  # distance block <= 256 MB
        for lo in range(0, n, block):
            d = torch.addmm(sq[None, :], Z[lo : lo + block], Z.T, alpha=-2.0)
            idx[lo : lo + block] = torch.topk(d, k, dim=1, largest=False, sorted=True).indices.numpy()
    else:
        from pynndescent import NNDescent

        # fewer NN-descent rounds and candidates than pynndescent's defaults, all cores: on 10^5 cells
        # (30 LSI dims, k = 100) 99.9% of the neighbours agree with the default settings, in about half
        # the time
        n_iters = max(4, int(np.ceil(np.log2(n) / 4)))
        index = NNDescent(
            z,
            n_neighbors=max(k, 15),
            random_state=seed,
            low_memory=True,
            n_jobs=-1,
            n_iters=n_iters,
            max_candidates=30,
        )
        idx = index.neighbor_graph[0][:, :k]
    # make sure each cell counts itself (duplicates of a cell can push it out of its own list)
    self_missing = ~(idx == np.arange(n)[:, None]).any(1)
    idx[self_missing, -1] = np.flatnonzero(self_missing)
    return idx


def _neighbour_sums_at_nonzeros(X: sp.csr_matrix, idx: np.ndarray) -> sp.csr_matrix:
    """``(W @ X)`` kept only at the non-zeros of ``X``, where row ``i`` of ``W`` marks ``idx[i]``.

    Peak by peak: the peak's column is scattered into a dense cells vector, and each cell that has
    the peak sums that vector over its neighbours. Work is ``k`` per non-zero of ``X`` and memory one
    cells vector per thread plus one peak's gather; the full product (about ``k`` times denser) is
    never formed. Peaks are shared out over up to 8 threads (numpy's gathers release the GIL).
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    n, n_peaks = X.shape
    Xc = sp.csc_matrix(X, dtype=np.float32)
    Xc.sort_indices()
    nbr = np.ascontiguousarray(idx, dtype=np.int32 if n < 2**31 else np.int64)
    ip, rows_all, vals = Xc.indptr, Xc.indices, Xc.data
    out = np.empty_like(vals)
    n_threads = max(1, min(8, os.cpu_count() or 1, n_peaks))
    bar = progress(range(n_peaks), "smoothing", disable=n < 20_000)
    update = getattr(bar, "update", None)

    def work(peaks) -> None:
        col = np.zeros(n, dtype=np.float32)
        for j, p in enumerate(peaks):
            a, b = ip[p], ip[p + 1]
            if a < b:
                rows = rows_all[a:b]
                col[rows] = vals[a:b]
                out[a:b] = col[nbr[rows]].sum(1)
                col[rows] = 0.0
            if update is not None and j % 256 == 255:
                update(256)

    with ThreadPoolExecutor(n_threads) as ex:
        list(ex.map(work, [range(t, n_peaks, n_threads) for t in range(n_threads)]))
    if hasattr(bar, "close"):
        bar.close()
    return sp.csc_matrix((out, rows_all, ip), shape=X.shape).tocsr()


def smooth(
    data,
    *,
    n_neighbors: int = 100,
    use_rep: str | None = None,
    n_comps: int = 30,
    layer: str | None = None,
    only_accessible: bool = True,
    mod: str | None = None,
    key_added: str = SMOOTHED,
    chunk_size: int | None = None,
    seed: int = 0,
    copy: bool = False,
):
    """Neighbour pseudo-bulk (scFAN): sum each cell's counts over its ``n_neighbors`` nearest cells.

    scFAN (Fu et al. 2020) scores a cell's accessible peaks with the accessibility of its 100 nearest
    neighbours in a latent space, which turns a sparse, near-binary single-cell profile into a
    pseudo-bulk signal. The neighbours are found in ``obsm[use_rep]`` (an LSI from muon, a SAILER or
    PeakVI latent, ...); without one, an LSI (TF-IDF + SVD, first component dropped) is computed and
    stored in ``obsm['X_lsi']``.

    The result stays sparse: with ``only_accessible=True`` (default) the smoothed value is kept only at
    the cell's own accessible (non-zero) peaks, which are the peaks scFAN scores; the pattern is that of
    the counts. ``only_accessible=False`` keeps the union over the neighbours, which for k = 100 is
    close to every peak: sparse in format, dense in size.

    Parameters
    ----------
    data
        AnnData cells x peaks (counts) or MuData.
    n_neighbors
        Neighbourhood size k, the cell itself included (scFAN: 100).
    use_rep
        ``obsm`` key of the latent space; ``None``: ``'X_lsi'`` when present, else an LSI is computed.
    n_comps
        LSI components when one is computed.
    layer
        Counts layer (default ``X``).
    only_accessible
        Keep smoothed values only at each cell's own non-zero peaks.
    mod
        MuData modality (default ``'atac'``).
    key_added
        ``layers`` key.
    chunk_size
        Cells per chunk when ``only_accessible=False`` (default: chosen from the number of peaks to
        bound memory).
    seed
        Seed of the LSI's randomized SVD and of NN-descent.
    copy
        Return a modified copy instead of writing in place.

    Returns
    -------
    ``None``, or a copy when ``copy=True``. Sets

    - ``layers[key_added]`` : CSR float32 cells x peaks, the neighbourhood sums;
    - ``obs[key_added + '_depth']`` : total counts of each cell's neighbourhood (all peaks), to turn the
      sums into a pseudo-bulk CPM;
    - ``obsm['X_lsi']`` : when an LSI was computed;
    - ``uns[key_added]['params']``.

    Examples
    --------
    >>> import scfanpy as sfp
    >>> adata, genome, truth = sfp.datasets.simulate_scatac(n_cells=200, n_peaks=300, random_state=1)
    >>> sfp.pp.smooth(adata, n_neighbors=20)
    >>> adata.layers["smoothed"].nnz == adata.X.nnz
    True
    """
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors must be >= 1, got {n_neighbors}")
    if copy:
        data = data.copy()
    adata: AnnData = get_adata(data, mod)
    X = adata.X if layer is None else adata.layers[layer]
    X = sp.csr_matrix(X, dtype=np.float32)
    n_cells, n_peaks = X.shape

    if use_rep is None:
        if "X_lsi" in adata.obsm:
            use_rep = "X_lsi"
        else:
            adata.obsm["X_lsi"] = lsi(X, n_comps, seed=seed)
            log_added("obsm", "X_lsi", f"LSI, {adata.obsm['X_lsi'].shape[1]} components")
            use_rep = "X_lsi"
    if use_rep not in adata.obsm:
        raise KeyError(f"obsm[{use_rep!r}] not found (has {list(adata.obsm)})")
    z = np.asarray(adata.obsm[use_rep], dtype=np.float32)
    k = min(n_neighbors, n_cells)
    idx = _knn(z, k, seed=seed)
    W = sp.csr_matrix(
        (np.ones(idx.size, dtype=np.float32), idx.ravel(), np.arange(0, idx.size + 1, k)),
        shape=(n_cells, n_cells),
    )
    depth = W @ np.asarray(X.sum(1)).ravel()

    if only_accessible:
        S = _neighbour_sums_at_nonzeros(X, idx)
    else:
        if chunk_size is None:
            chunk_size = int(max(16, min(4096, 2e7 // max(n_peaks, 1))))
        blocks = []
        for lo in progress(range(0, n_cells, chunk_size), "smoothing", disable=n_cells < 20_000):
            hi = min(n_cells, lo + chunk_size)
            blocks.append(sp.csr_matrix(W[lo:hi] @ X, dtype=np.float32))
        S = sp.vstack(blocks).tocsr() if blocks else sp.csr_matrix((0, n_peaks), dtype=np.float32)
    S.sort_indices()
    adata.layers[key_added] = S
    adata.obs[f"{key_added}_depth"] = depth.astype(np.float64)
    logger.info("smoothed %d cells over %d neighbours in obsm[%r] (%d non-zeros)", n_cells, k, use_rep, S.nnz)
    log_added("layers", key_added, "neighbourhood sums, sparse")
    log_added("obs", f"{key_added}_depth")
    uns_params(
        adata,
        key_added,
        {"n_neighbors": int(k), "use_rep": use_rep, "layer": layer, "only_accessible": bool(only_accessible)},
    )
    return data if copy else None
