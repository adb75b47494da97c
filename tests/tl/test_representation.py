"""X_tf: PCA of the most variable z-scores."""

from __future__ import annotations

import numpy as np
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
