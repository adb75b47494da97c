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


def _brute_sets(z, k):
    from sklearn.neighbors import NearestNeighbors

    return [set(r) for r in NearestNeighbors(n_neighbors=k).fit(z).kneighbors(z, return_distance=False)]


def test_knn_torch_branch_matches_brute_force(monkeypatch):
    """The exact torch search (20k-150k cells by default) on 400 cells, with lowered thresholds."""
    import scfanpy.pp._smooth as smod

    z = np.random.default_rng(1).normal(size=(400, 6)).astype(np.float32)
    monkeypatch.setattr(smod, "SKLEARN_KNN_MAX_CELLS", 100)
    monkeypatch.setattr(smod, "EXACT_KNN_MAX_CELLS", 1_000)
    monkeypatch.setattr(smod, "_TORCH_BLOCK_DISTANCES", 64 * 400)  # 64-row blocks: 7 blocks, last partial
    called = []
    monkeypatch.setattr(smod, "_knn_sklearn", lambda *a: called.append(1))  # must not be used
    idx = smod._knn(z, 25)
    assert not called and idx.shape == (400, 25) and idx.dtype == np.int64
    assert [set(r) for r in idx] == _brute_sets(z, 25)
    assert (idx[:, 0] == np.arange(400)).all()  # sorted by distance: each cell first


def test_smooth_torch_branch_same_output(sim_small, monkeypatch):
    """smooth() through the torch branch writes exactly what the scikit-learn branch writes."""
    import scfanpy.pp._smooth as smod

    adata, _, _ = sim_small
    ref = sfp.pp.smooth(adata[:300].copy(), n_neighbors=15, copy=True)
    monkeypatch.setattr(smod, "SKLEARN_KNN_MAX_CELLS", 50)
    monkeypatch.setattr(smod, "_knn_sklearn", None)  # calling it would fail
    out = sfp.pp.smooth(adata[:300].copy(), n_neighbors=15, copy=True)
    np.testing.assert_array_equal(out.obsm["X_lsi"], ref.obsm["X_lsi"])
    assert abs(out.layers["smoothed"] - ref.layers["smoothed"]).max() == 0
    np.testing.assert_array_equal(out.obs["smoothed_depth"], ref.obs["smoothed_depth"])


@pytest.mark.slow  # about a minute: pynndescent's numba compilation, whatever the size
def test_knn_nndescent_branch_matches_brute_force(monkeypatch):
    import scfanpy.pp._smooth as smod

    z = np.random.default_rng(2).normal(size=(300, 5)).astype(np.float32)
    monkeypatch.setattr(smod, "SKLEARN_KNN_MAX_CELLS", 10)
    monkeypatch.setattr(smod, "EXACT_KNN_MAX_CELLS", 100)
    idx = smod._knn(z, 20, random_state=0)
    sets = _brute_sets(z, 20)
    agree = np.mean([len(set(a) & b) / 20 for a, b in zip(idx, sets, strict=True)])
    assert agree > 0.99
    assert all(i in set(r) for i, r in enumerate(idx))  # every cell counts itself


def test_smooth_checks_before_writing(sim_small):
    adata, _, _ = sim_small
    a = adata[:40].copy()
    with pytest.raises(KeyError, match="obsm"):
        sfp.pp.smooth(a, use_rep="X_nope")
    with pytest.raises(KeyError, match="layers"):
        sfp.pp.smooth(a, layer="counts_nope")
    assert "X_lsi" not in a.obsm and "smoothed" not in a.layers and "smoothed" not in a.uns
    assert "smoothed_depth" not in a.obs


def test_lsi_random_state():
    X = sp.random(200, 150, density=0.1, format="csr", random_state=0, dtype=np.float32)
    z0 = sfp.pp.lsi(X, 10, random_state=0)
    assert z0.shape == (200, 10) and z0.dtype == np.float32
    np.testing.assert_array_equal(z0, sfp.pp.lsi(X, 10, random_state=0))
    z1 = sfp.pp.lsi(X, 10, random_state=np.random.default_rng(3))  # a Generator is accepted
    assert z1.shape == (200, 10)
    assert sfp.pp.lsi(X, 10, drop_first=False).shape == (200, 10)


@pytest.mark.parametrize("where", ["X", "layer"])
def test_smooth_reads_a_dask_matrix_in_chunks(where):
    """A dask X (anndata's lazy reading) or layer: read by chunks of cells, same sums as in memory."""
    da = pytest.importorskip("dask.array")
    ref = _line_adata()
    sfp.pp.smooth(ref, n_neighbors=2, use_rep="rep")
    a = _line_adata()
    lazy = da.from_array(a.X, chunks=(4, 4), asarray=False)
    if where == "X":
        a.X = lazy
    else:
        a.layers["counts"] = lazy
    sfp.pp.smooth(a, n_neighbors=2, use_rep="rep", layer=None if where == "X" else "counts")
    np.testing.assert_array_equal(a.layers["smoothed"].toarray(), ref.layers["smoothed"].toarray())
    bad = _line_adata()
    bad.X = da.from_array(sp.csr_matrix(-bad.X.toarray()), chunks=(4, 4), asarray=False)
    with pytest.raises(ValueError, match="negative"):
        sfp.pp.smooth(bad, n_neighbors=2, use_rep="rep")
