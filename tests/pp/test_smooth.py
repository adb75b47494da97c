import mudata as md
import numpy as np
import pytest
import scipy.sparse as sp
from anndata import AnnData

import scfanpy as sfp


def _line_adata():
    # 6 cells on a line (neighbours known exactly), 4 peaks
    X = sp.csr_matrix(
        np.array(
            [[1, 0, 2, 0], [0, 1, 0, 0], [3, 0, 0, 1], [0, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 5]],
            dtype=np.float32,
        )
    )
    a = AnnData(X=X)
    a.obsm["rep"] = np.array([[0.0], [1.0], [2.1], [3.3], [4.6], [6.0]], dtype=np.float32)
    return a


def test_smooth_exact_sums():
    a = _line_adata()
    sfp.pp.smooth(a, n_neighbors=2, use_rep="rep", only_accessible=False)
    # nearest other cell: 0->1, 1->0, 2->1, 3->2, 4->3, 5->4
    nn = [1, 0, 1, 2, 3, 4]
    X = a.X.toarray()
    expected = X + X[nn]
    np.testing.assert_allclose(a.layers["smoothed"].toarray(), expected)
    np.testing.assert_allclose(a.obs["smoothed_depth"], expected.sum(1))
    assert sp.issparse(a.layers["smoothed"])
    assert a.uns["smoothed"]["params"]["n_neighbors"] == 2


def test_smooth_only_accessible_keeps_pattern():
    a = _line_adata()
    sfp.pp.smooth(a, n_neighbors=2, use_rep="rep")
    S = a.layers["smoothed"]
    X = a.X.toarray()
    assert S.nnz == a.X.nnz
    np.testing.assert_array_equal(S.toarray() > 0, X > 0)
    assert (S.toarray() >= X).all()
    # depth still counts the whole neighbourhood
    assert a.obs["smoothed_depth"].iloc[0] == X[0].sum() + X[1].sum()


def test_smooth_lsi_and_truth(sim_small):
    adata, _, truth = sim_small
    a = adata.copy()
    sfp.pp.smooth(a, n_neighbors=30, only_accessible=False)
    assert "X_lsi" in a.obsm and a.obsm["X_lsi"].shape == (a.n_obs, 30)
    S = a.layers["smoothed"].toarray()
    acc = truth.accessibility.loc[a.obs["cell_type"].astype(str)].to_numpy()
    X = a.X.toarray()

    def mean_corr(M):
        return np.mean([np.corrcoef(M[i], acc[i])[0, 1] for i in range(0, a.n_obs, 5)])

    # the pseudo-bulk follows the true accessibility better than one cell's counts (0.94 vs 0.76 here)
    r_raw, r_smooth = mean_corr(X), mean_corr(S)
    assert r_smooth > r_raw + 0.1
    assert r_smooth > 0.85


def test_smooth_mudata_and_errors(sim_small):
    adata, _, _ = sim_small
    m = md.MuData({"atac": adata[:100].copy()})
    sfp.pp.smooth(m, n_neighbors=10)
    assert "smoothed" in m.mod["atac"].layers
    with pytest.raises(ValueError, match="n_neighbors"):
        sfp.pp.smooth(adata[:10].copy(), n_neighbors=0)
    with pytest.raises(KeyError, match="obsm"):
        sfp.pp.smooth(adata[:10].copy(), use_rep="X_nope")
    b = sfp.pp.smooth(adata[:50].copy(), n_neighbors=5, copy=True)
    assert "smoothed" in b.layers


def test_neighbour_sums_and_knn_match_brute_force():
    from sklearn.neighbors import NearestNeighbors

    from scfanpy.pp._smooth import _knn, _neighbour_sums_at_nonzeros

    rng = np.random.default_rng(0)
    X = sp.random(500, 300, density=0.05, format="csr", random_state=0, dtype=np.float32)
    X.data = np.ceil(X.data * 3)
    z = rng.normal(size=(500, 5)).astype(np.float32)
    idx = _knn(z, 20)
    exact = NearestNeighbors(n_neighbors=20).fit(z).kneighbors(z, return_distance=False)
    assert all(set(a) == set(b) for a, b in zip(idx, exact, strict=True))  # exact search below 150k cells
    W = sp.csr_matrix(
        (np.ones(idx.size, np.float32), idx.ravel(), np.arange(0, idx.size + 1, 20)), shape=(500, 500)
    )
    ref = (W @ X).multiply((X != 0).astype(np.float32)).tocsr()
    S = _neighbour_sums_at_nonzeros(X, idx)
    assert S.nnz == X.nnz and abs(S - ref).max() == 0
