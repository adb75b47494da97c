"""X_tf: PCA of the z-scores of one TF per archetype (or of the most variable z-scores)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from scfanpy.tl._representation import tf_representation, variable_tfs


def _z(seed=0, n=300, n_noise=800, n_signal=6):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 3, n)
    z = rng.normal(0, 1, (n, n_noise + n_signal))
    shift = np.zeros((3, n_signal))
    shift[0, :2], shift[1, 2:4], shift[2, 4:] = 2.0, 2.0, 2.0
    z[:, n_noise:] += shift[groups]
    return z, groups, np.arange(n_noise, n_noise + n_signal)


def test_variable_tfs_pick_the_signal():
    z, _, signal = _z()
    z[0, 0] = np.nan  # NaN (a cell without counts) is read as 0
    assert set(signal) <= set(variable_tfs(z, 10))
    assert list(variable_tfs(z, 3)) == sorted(variable_tfs(z, 3))


def test_x_tf_separates_groups_that_noise_tfs_hide():
    z, groups, _ = _z()
    x, sel = tf_representation(z, n_top=50, n_comps=10)
    assert x.shape == (300, 10) and x.dtype == np.float32 and len(sel) == 50
    lab = KMeans(3, n_init=10, random_state=0).fit_predict(x)
    assert adjusted_rand_score(groups, lab) > 0.8
    # over all 806 TFs the same PCA finds mostly noise
    x_all, _ = tf_representation(z, n_top=z.shape[1], n_comps=10)
    lab_all = KMeans(3, n_init=10, random_state=0).fit_predict(x_all)
    assert adjusted_rand_score(groups, lab_all) < adjusted_rand_score(groups, lab)
    # tiny inputs: the selected z-scores themselves
    small, s2 = tf_representation(z[:2], n_top=5)
    assert small.shape == (2, 5) and len(s2) == 5


def test_x_tf_counts_each_archetype_once():
    """A family of 200 near-copies of one noise motif does not outweigh three single signal motifs."""
    rng = np.random.default_rng(1)
    n = 300
    groups = rng.integers(0, 3, n)
    noise = rng.normal(0, 1, (n, 1)) + rng.normal(0, 0.1, (n, 200))  # one archetype, 200 copies
    signal = rng.normal(0, 1, (n, 3)) + 3.0 * np.eye(3)[groups]
    z = np.c_[noise, signal]
    arch = np.r_[np.repeat("family", 200), ["a", "b", "c"]]
    x, sel = tf_representation(z, archetype=arch, n_comps=3)
    assert len(sel) == 4 and set(sel[1:]) == {200, 201, 202}  # one member of the family, the 3 signals
    assert sel[0] == int(np.argmax(z[:, :200].std(0)))  # the family's most variable member
    lab = KMeans(3, n_init=10, random_state=0).fit_predict(x)
    x_all, _ = tf_representation(z, n_comps=3)  # every column: the family dominates the PCA
    lab_all = KMeans(3, n_init=10, random_state=0).fit_predict(x_all)
    assert adjusted_rand_score(groups, lab) > 0.8 > 0.2 > adjusted_rand_score(groups, lab_all)  # 0.93, 0.02


def test_neighbour_pooled_z_sums_each_cells_neighbours():
    """Each chunk reads the rows its cells' neighbours need and sums them: the same as the whole product."""
    import scipy.sparse as sp

    from scfanpy.tl._representation import neighbour_pooled_z

    rng = np.random.default_rng(0)
    x = sp.random(50, 30, density=0.2, format="csr", random_state=0) * 3
    idx = np.c_[np.arange(50), rng.integers(0, 50, (50, 3))]
    w = rng.random((30, 4))

    def z_of(pooled):
        return pooled @ w

    g = sp.csr_matrix((np.ones(idx.size), idx.ravel(), np.arange(0, idx.size + 1, 4)), shape=(50, 50))
    expected = (g @ x) @ w
    for chunk in (7, 50):
        got = neighbour_pooled_z(x, idx, z_of, chunk_size=chunk)
        assert got.dtype == np.float32 and got.shape == (50, 4)
        np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(neighbour_pooled_z(x.toarray(), idx, z_of), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="neighbour lists"):
        neighbour_pooled_z(x, idx[:10], z_of)


def test_pooling_neighbours_exact_and_over_a_reference_set(monkeypatch):
    import scfanpy.tl._representation as rep

    rng = np.random.default_rng(0)
    groups = rng.integers(0, 4, 400)
    x = rng.normal(0, 0.3, (400, 5)) + 3.0 * np.eye(5)[groups]
    idx = rep.pooling_neighbours(x, 10)
    assert idx.shape == (400, 10) and idx.dtype == np.int64
    assert (idx == np.arange(400)[:, None]).any(1).all()  # each cell pools itself
    assert (groups[idx] == groups[:, None]).mean() > 0.99
    monkeypatch.setattr(rep, "REFERENCE_CELLS", 100)  # above it: neighbours among 100 reference cells
    idx_ref = rep.pooling_neighbours(x, 10, random_state=0)
    assert (idx_ref == np.arange(400)[:, None]).any(1).all()
    others = idx_ref[idx_ref != np.arange(400)[:, None]]
    assert len(np.unique(others)) <= 100  # the other neighbours are reference cells
    assert (groups[idx_ref] == groups[:, None]).mean() > 0.99
    np.testing.assert_array_equal(idx_ref, rep.pooling_neighbours(x, 10, random_state=0))  # seeded
