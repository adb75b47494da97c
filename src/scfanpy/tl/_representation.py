"""``obsm['X_tf']``: the TF-level representation of the cells for clustering (numpy in, numpy out)."""

from __future__ import annotations

import numpy as np

__all__ = [
    "column_sd",
    "variable_tfs",
    "most_variable_members",
    "tf_representation",
    "pooling_neighbours",
    "neighbour_pooled_z",
]

#: above this many cells, :func:`pooling_neighbours` searches a random reference set of this size
REFERENCE_CELLS = 20_000

#: default of :func:`variable_tfs`: the most variable z-scores across cells (chromVAR's variability)
N_VARIABLE = 50


def column_sd(z: np.ndarray, *, block: int = 65_536) -> np.ndarray:
    """Standard deviation of each column across rows (NaN read as 0), as ``numpy.std``, in float64.

    Accumulated over blocks of ``block`` rows (mean first, then the squared deviations), so a float32
    cells x TFs array is never copied whole in float64.
    """
    z = np.asarray(z)
    n = z.shape[0]
    if n == 0:
        return np.zeros(z.shape[1])
    total = np.zeros(z.shape[1])
    for lo in range(0, n, block):
        total += np.nan_to_num(z[lo : lo + block].astype(np.float64)).sum(0)
    mean = total / n
    sq = np.zeros(z.shape[1])
    for lo in range(0, n, block):
        d = np.nan_to_num(z[lo : lo + block].astype(np.float64)) - mean
        sq += (d * d).sum(0)
    return np.sqrt(sq / n)


def variable_tfs(z: np.ndarray, n_top: int = N_VARIABLE) -> np.ndarray:
    """Indices of the ``n_top`` columns of ``z`` with the largest standard deviation across cells.

    The variability of a bias-corrected z-score is chromVAR's ranking of motifs (Schep et al. 2017). A
    z-score is standardised against its background peaks, so a TF without signal in these cells has a
    standard deviation near 1 whatever its motif, and a TF whose activity differs between cells is
    above 1. NaN (cells without counts) counts as 0.
    """
    return _top(column_sd(z), n_top)


def _top(sd: np.ndarray, n_top: int) -> np.ndarray:
    """Positions of the ``n_top`` largest values of ``sd`` (the first on ties), sorted."""
    k = min(int(n_top), sd.size)
    return np.sort(np.argsort(-sd, kind="stable")[:k])


def most_variable_members(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The most variable column of each group: one index per group, in order of first appearance.

    The column with the largest standard deviation across rows among the group's columns (the first one
    on ties); shared by ``X_tf`` and the archetype-level activity.
    """
    return _most_variable(column_sd(x), groups)


def _most_variable(sd: np.ndarray, groups: np.ndarray) -> np.ndarray:
    import pandas as pd

    codes, _ = pd.factorize(np.asarray(groups))
    order = np.lexsort((np.arange(sd.size), -sd, codes))  # by group, then sd descending, then position
    first = np.r_[True, codes[order][1:] != codes[order][:-1]]
    return order[first]


def tf_representation(
    z: np.ndarray,
    *,
    archetype: np.ndarray | None = None,
    n_top: int | None = None,
    n_comps: int = 30,
    random_state=0,
) -> tuple[np.ndarray, np.ndarray]:
    """``X_tf``: PCA of the z-scores of one TF per motif archetype (its most variable member).

    Why one TF per archetype: JASPAR's 816 CORE vertebrate motifs hold families of near copies (101
    homeobox motifs in one archetype, 49 ETS, 30 AP-1), and a PCA over all of them weighs each family by
    its size, whatever its signal. The most variable member stands for its archetype (as in
    :func:`scfanpy.tl.rank_tfs` with ``level='archetype'``), so each motif family counts once. ARI of
    Leiden clusters on the development data (``benchmarks/bench_tf_activity_real.py``): GC-bias simulator
    0.84 (50 most variable TFs, the previous default: 0.74; all 816 TFs: 0.88), GM12878/H1 0.77 (0.63;
    0.35), their dinucleotide-shuffled genome 0.06 (0.00; 0.00).

    Parameters
    ----------
    z
        Cells x TFs z-scores (NaN read as 0).
    archetype
        Archetype of each TF (length TFs); ``None``: each TF is its own.
    n_top
        Keep only the ``n_top`` most variable columns (after the archetype step; :func:`variable_tfs`);
        ``None``: all.
    n_comps
        Principal components (at most ``columns - 1`` and ``n_cells - 1``); with fewer than 2 the selected
        z-scores themselves are returned.
    random_state
        Seed of the PCA solver.

    Returns
    -------
    x_tf : numpy.ndarray
        float32 ``(cells, components)``.
    selected : numpy.ndarray
        Column indices (into ``z``) of the TFs used, sorted.
    """
    z = np.asarray(z)
    sd = column_sd(z)  # no float64 copy of all of z: 6.5 GB at 10^6 cells x 816 TFs
    cols = np.arange(z.shape[1]) if archetype is None else _most_variable(sd, archetype)
    if n_top is not None:
        cols = cols[_top(sd[cols], n_top)]
    sel = np.sort(cols)
    x = np.nan_to_num(z[:, sel].astype(np.float64))
    k = min(n_comps, x.shape[1] - 1, x.shape[0] - 1)
    if k < 2:
        return x.astype(np.float32), sel
    from sklearn.decomposition import PCA

    seed = random_state if isinstance(random_state, (int, np.integer)) or random_state is None else 0
    return PCA(n_components=k, random_state=seed).fit_transform(x).astype(np.float32), sel


def pooling_neighbours(x: np.ndarray, k: int, random_state=0) -> np.ndarray:
    """Each cell and its ``k - 1`` nearest other cells in ``x`` (Euclidean): int64 ``(cells, k)``.

    Exact up to :data:`REFERENCE_CELLS` cells. Above, the neighbours are searched among a seeded random
    reference set of that many cells (scikit-learn's brute force, memory in chunks): one distance
    product of cells x 20,000 instead of cells^2 (10^5 cells x 30 dimensions: about 9 s on 2 CPU cores,
    against about 48 s for the exact search). A cell of a type with 1% of the cells still finds about 200
    cells of its type in the reference set.
    """
    from sklearn.neighbors import NearestNeighbors

    from ..pp._smooth import include_self

    x = np.nan_to_num(np.asarray(x, dtype=np.float32))
    n = len(x)
    k = max(1, min(int(k), n))
    if n > REFERENCE_CELLS:
        seed = random_state if isinstance(random_state, (int, np.integer)) else 0
        ref = np.sort(np.random.default_rng(seed).choice(n, REFERENCE_CELLS, replace=False))
    else:
        ref = np.arange(n)
    nn = NearestNeighbors(n_neighbors=min(k, len(ref)), algorithm="brute").fit(x[ref])
    return include_self(ref[nn.kneighbors(x, return_distance=False)].astype(np.int64))


def _pooled_counts(counts, g, block: int):
    """``g @ counts`` (float64 CSR) for a (chunk x cells) 0/1 matrix ``g``.

    A lazy matrix (backed or dask) is read ``block`` rows at a time and each block added in, so memory
    stays that of one block and the chunk's sums.
    """
    import scipy.sparse as sp

    from ._chunks import is_lazy, read_rows

    if not is_lazy(counts):
        return sp.csr_matrix(g @ counts, dtype=np.float64)
    g = g.tocsc()
    out = sp.csr_matrix((g.shape[0], counts.shape[1]), dtype=np.float64)
    for lo in range(0, counts.shape[0], block):
        gb = g[:, lo : lo + block]
        if gb.nnz:
            out = out + gb @ sp.csr_matrix(read_rows(counts, lo, lo + block), dtype=np.float64)
    return out.tocsr()


def neighbour_pooled_z(counts, neighbours: np.ndarray, z_of, *, chunk_size: int = 10_000) -> np.ndarray:
    """z-scores of each cell's counts summed over its neighbours (``neighbours[i]``, itself included).

    The second step of ``X_tf`` (:func:`scfanpy.tl.predict_tf_binding`, ``tf_neighbors``): a cell's
    z-scores from its own few thousand counts are noisy, and pooling the counts of its nearest cells in
    the first ``X_tf`` (a space made of the cells' own bias-corrected TF activity, not of their peaks)
    lowers the noise without importing the structure of a peak-level embedding: on a dinucleotide-
    shuffled genome the first ``X_tf`` holds no signal, so the pooled cells are near random and the
    pooled z-scores stay structureless (measured in ``docs/benchmarks/tf_activity.md``, fifth pass).

    Parameters
    ----------
    counts
        Cells x peaks counts: in memory (scipy sparse or numpy), backed or a dask array. A lazy matrix is
        read block by block for each chunk of cells, each block's rows added into the chunk's sums:
        memory stays that of one block, time grows as cells^2 / ``chunk_size`` (pass ``tf_neighbors=0`` to
        :func:`~scfanpy.tl.predict_tf_binding` for an atlas on disk).
    neighbours
        int ``(cells, k)``: each cell's neighbours, itself among them.
    z_of
        Callable: a chunk of pooled counts (CSR, cells x peaks) -> its z-scores (cells x TFs).
    chunk_size
        Cells per step.

    Returns
    -------
    numpy.ndarray
        float32 ``(cells, TFs)``.
    """
    from ..pp._smooth import _neighbour_matrix
    from ._chunks import _as_rows

    idx = np.asarray(neighbours, dtype=np.int64)
    n = idx.shape[0]
    if n != counts.shape[0]:
        raise ValueError(f"{n} neighbour lists for {counts.shape[0]} cells")
    counts = _as_rows(counts)
    out = None
    for lo in range(0, n, chunk_size):
        rows = idx[lo : lo + chunk_size]
        m = len(rows)
        g = _neighbour_matrix(rows, n, dtype=np.float64)
        z = np.asarray(z_of(_pooled_counts(counts, g, chunk_size)), dtype=np.float32)
        if out is None:
            out = np.empty((n, z.shape[1]), dtype=np.float32)
        out[lo : lo + m] = z
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)
