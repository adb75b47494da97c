"""The numeric cores of predict_tf_binding (tl/_scoring.py) against plain numpy references on small inputs."""

import numpy as np
import pytest
import scipy.sparse as sp

from scfanpy._torch import tile_starts
from scfanpy.tl import _scoring as sc


def _signal(n_cells=12, n_peaks=15, density=0.4, seed=0):
    rng = np.random.default_rng(seed)
    counts = sp.random(n_cells, n_peaks, density=density, random_state=seed, format="csr", dtype=np.float32)
    counts.data = rng.integers(1, 20, counts.nnz).astype(np.float32)
    keep = np.ones(n_cells, np.float32)
    keep[2] = 0  # a cell without signal
    return sc.cell_signal(sp.diags(keep) @ counts)


def _dense_interp(v, levels, table_pt):
    """Probability at signal v of one (peak, TF): np.interp over the levels (clipped at the ends)."""
    return np.interp(v, levels, table_pt)


def test_cell_signal_matches_dense_formula():
    rng = np.random.default_rng(1)
    S = rng.poisson(0.8, (6, 9)).astype(np.float64)
    S[3] = 0
    V = sc.cell_signal(sp.csr_matrix(S))
    depth = S.sum(1)
    depth[depth <= 0] = 1
    ref = np.where(S > 0, np.log1p(1e6 * S / depth[:, None]), 0)
    np.testing.assert_allclose(V.toarray(), ref, rtol=1e-5)
    assert V.nnz == (S > 0).sum() and V.dtype == np.float32
    depth2 = np.array([10, 0, 5, 1, 7, 3], dtype=float)
    V2 = sc.cell_signal(S, depth2)
    d = np.where(depth2 <= 0, 1, depth2)
    np.testing.assert_allclose(V2.toarray(), np.where(S > 0, np.log1p(1e6 * S / d[:, None]), 0), rtol=1e-5)


def test_signal_levels_are_quantiles_with_ends(monkeypatch):
    rng = np.random.default_rng(2)
    v = rng.gamma(2.0, 2.0, 500).astype(np.float32)
    lev = sc.signal_levels(v, 9)
    np.testing.assert_array_equal(lev, np.unique(np.quantile(v, np.linspace(0, 1, 9)).astype(np.float32)))
    assert lev[0] == v.min() and lev[-1] == v.max() and (np.diff(lev) > 0).all()
    assert sc.signal_levels(np.zeros(0, np.float32), 4).tolist() == [0.0]
    assert len(sc.signal_levels(np.full(10, 3.0, np.float32), 8)) == 1  # unique
    # above the sample size: a random sample, ends kept exact, reproducible with random_state
    monkeypatch.setattr(sc, "_MAX_LEVEL_SAMPLE", 50)
    a = sc.signal_levels(v, 6, random_state=3)
    b = sc.signal_levels(v, 6, random_state=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a[0] == v.min() and a[-1] == v.max()


def test_level_weights_interpolate_linearly():
    levels = np.array([0.5, 1.0, 2.5, 4.0], np.float32)
    x = np.array([0.0, 0.5, 0.7, 1.0, 2.0, 3.9, 4.0, 9.0], np.float32)
    k, alpha = sc.level_weights(x, levels)
    f = np.array([3.0, -1.0, 2.0, 7.0])  # any function on the levels
    np.testing.assert_allclose((1 - alpha) * f[k] + alpha * f[k + 1], _dense_interp(x, levels, f), rtol=1e-6)
    kn, an = sc.level_weights(x, levels, nearest=True)
    nearest = np.abs(np.clip(x, 0.5, 4.0)[:, None] - levels[None, :]).argmin(1)
    np.testing.assert_array_equal(kn + an.astype(int), nearest)
    k1, a1 = sc.level_weights(x, levels[:1])
    assert (k1 == 0).all() and (a1 == 0).all()


def test_split_by_level_partitions_the_signal():
    V = _signal()
    levels = sc.signal_levels(V.data, 5)
    parts = list(sc.split_by_level(V, levels))
    total = sum(Vi for _, Vi in parts)
    np.testing.assert_allclose(total.toarray(), V.toarray(), rtol=1e-6)
    assert [i for i, _ in parts] == sorted({i for i, _ in parts})
    assert list(sc.split_by_level(V, None))[0][1] is V


def test_top2_indicator():
    P = np.random.default_rng(4).random((7, 5))
    ref = np.zeros_like(P)
    for i, row in enumerate(P):
        ref[i, np.argsort(-row)[:2]] = 1
    np.testing.assert_array_equal(sc.top2_indicator(P), ref)
    assert sc.top2_indicator(P[:, :1]).sum() == 7  # one TF: one vote


def test_constant_tracks():
    tr = sc.constant_tracks(np.array([1.0, 2.0]), np.array([0.5, 0.0, 9.0]), signal_track=1)
    np.testing.assert_array_equal(tr, [[0.5, 1.0, 9.0], [0.5, 2.0, 9.0]])


def _toy_predict(codes, values):
    """A deterministic (sequence, signal) -> probabilities function with 3 outputs."""
    base = np.stack([(codes == b).mean(1) for b in range(3)], 1)
    if values is None:
        return base.astype(np.float32)
    return (base * (1 + 0.1 * np.asarray(values)[:, None]) / 2).astype(np.float32)


def test_binding_table_levels_and_tiles():
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 5, (13, 40)).astype(np.uint8)
    levels = np.array([0.0, 1.0, 3.0], np.float32)
    T = sc.binding_table(_toy_predict, codes, levels, n_tfs=3, batch_size=1)
    ref = np.stack([_toy_predict(codes, np.full(len(codes), lv)) for lv in levels], 1)
    np.testing.assert_allclose(T, ref)
    T1 = sc.binding_table(_toy_predict, codes, None, n_tfs=3)
    np.testing.assert_allclose(T1[:, 0], _toy_predict(codes, None))
    # a 16-bp window over 40-bp sequences: tiles at tile_starts, the max of each TF
    Tt = sc.binding_table(_toy_predict, codes, None, n_tfs=3, window=16, batch_size=1)
    tiles = np.stack([_toy_predict(codes[:, s : s + 16], None) for s in tile_starts(40, 16)], 1)
    np.testing.assert_allclose(Tt[:, 0], tiles.max(1))


def _dense_probs(V, table, levels, nearest=False):
    """Dense (cells, peaks, TFs) probabilities at each cell's signal (reference only: tiny inputs)."""
    D = V.toarray()
    out = np.zeros((*D.shape, table.shape[2]))
    for c, p in zip(*np.nonzero(D), strict=True):
        v = D[c, p]
        if nearest:
            out[c, p] = table[p, np.abs(np.clip(v, levels[0], levels[-1]) - levels).argmin()]
        else:
            out[c, p] = [_dense_interp(v, levels, table[p, :, t]) for t in range(table.shape[2])]
    return D, out


def test_table_activity_probability_and_votes():
    V = _signal()
    levels = sc.signal_levels(V.data, 6)
    table = np.random.default_rng(6).random((V.shape[1], len(levels), 4)).astype(np.float32)
    bg = np.random.default_rng(7).random(4)
    D, P = _dense_probs(V, table, levels)
    den = D.sum(1)
    ref = np.einsum("cp,cpt->ct", D, P) / np.where(den > 0, den, 1)[:, None] - bg
    ref[den == 0] = 0
    np.testing.assert_allclose(sc.table_activity(V, table, levels, bg, "probability"), ref, atol=1e-5)
    # scFAN: top-2 votes at the nearest level, / (2 x accessible peaks)
    D, Pn = _dense_probs(V, table, levels, nearest=True)
    votes = np.zeros((V.shape[0], 4))
    for c, p in zip(*np.nonzero(D), strict=True):
        votes[c, np.argsort(-Pn[c, p])[:2]] += 1
    n_acc = (D > 0).sum(1)
    ref = votes / np.maximum(2 * n_acc, 1)[:, None]
    act = sc.table_activity(V, table, levels, None, "scfan")
    np.testing.assert_allclose(act, ref, atol=1e-6)
    np.testing.assert_allclose(act[n_acc > 0].sum(1), 1, atol=1e-6)


def test_sequence_only_activity_is_a_weighted_mean():
    V = _signal(seed=3)
    P = np.random.default_rng(8).random((V.shape[1], 1, 3)).astype(np.float32)
    bg = sc.table_background(P)
    np.testing.assert_allclose(bg, P[:, 0].mean(0), rtol=1e-6)
    D = V.toarray()
    den = D.sum(1)
    ref = D @ P[:, 0] / np.where(den > 0, den, 1)[:, None] - bg
    ref[den == 0] = 0
    np.testing.assert_allclose(sc.table_activity(V, P, None, bg, "probability"), ref, atol=1e-5)
    np.testing.assert_array_equal(sc.peak_binding(V, P, None), P[:, 0])


def test_exact_activity_equals_table_for_a_model_linear_in_the_signal():
    """Linear interpolation between levels is exact when the model is linear in the signal."""
    rng = np.random.default_rng(9)
    V = _signal(seed=4)
    codes = rng.integers(0, 4, (V.shape[1], 30)).astype(np.uint8)
    levels = sc.signal_levels(V.data, 4)
    table = sc.binding_table(_toy_predict, codes, levels, n_tfs=3)
    bg = np.zeros(3)
    exact = sc.exact_activity(_toy_predict, codes, V, bg, "probability", n_tfs=3, batch_size=2)
    np.testing.assert_allclose(exact, sc.table_activity(V, table, levels, bg, "probability"), atol=1e-5)
    # and exact = the dense formula with one call per (cell, peak)
    D = V.toarray()
    num = np.zeros((V.shape[0], 3))
    for c, p in zip(*np.nonzero(D), strict=True):
        num[c] += D[c, p] * _toy_predict(codes[p : p + 1], np.array([D[c, p]]))[0]
    den = D.sum(1)
    ref = num / np.where(den > 0, den, 1)[:, None]
    np.testing.assert_allclose(exact, ref, atol=1e-5)


def test_peak_binding_averages_over_accessible_cells():
    V = _signal(n_peaks=20, density=0.2, seed=5)
    levels = sc.signal_levels(V.data, 5)
    table = np.random.default_rng(10).random((20, len(levels), 2)).astype(np.float32)
    D, P = _dense_probs(V, table, levels)
    acc = D > 0
    ref = np.array(
        [P[acc[:, p], p].mean(0) if acc[:, p].any() else table[p, len(levels) // 2] for p in range(20)]
    )
    assert (~acc.any(0)).any()  # the reference covers never-accessible peaks
    np.testing.assert_allclose(sc.peak_binding(V, table, levels), ref, atol=1e-5)


def test_scores_and_cell_probabilities():
    V = _signal(seed=6)
    num = np.ones((V.shape[0], 2))
    act = sc.scores_from_sums(num, V, np.array([0.1, 0.2]), "probability")
    den = np.asarray(V.sum(1)).ravel()
    np.testing.assert_allclose(act[den > 0], 1 / den[den > 0, None] - [0.1, 0.2], rtol=1e-5)
    assert (act[den == 0] == 0).all() and act.dtype == np.float32
    levels = np.array([1.0, 2.0, 4.0], np.float32)
    table = np.random.default_rng(11).random((5, 3, 2)).astype(np.float16)
    peaks, values = np.array([0, 4, 4, 2]), np.array([0.5, 1.5, 3.0, 8.0], np.float32)
    got = sc.cell_probabilities(table, peaks, values, levels)
    ref = [
        [_dense_interp(v, levels, table[p, :, t].astype(np.float32)) for t in range(2)]
        for p, v in zip(peaks, values, strict=True)
    ]
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    assert sc.median_signal(V)[0] == pytest.approx(np.median(V.data))
