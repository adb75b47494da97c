"""The bias-correction core (tl/_deviations.py) against a plain dense reference, and its GC property."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from scfanpy.tl._deviations import background_peaks, deviations, peak_composition


def _reference(x, w, bg):
    """Dense chromVAR-style deviations, written out directly."""
    x = np.asarray(x, dtype=np.float64)
    e = x.sum(0) / x.sum()
    n = x.sum(1)

    def dev(xx, ee):
        exp = n[:, None] * (ee @ w)[None, :]
        return (xx @ w - exp) / exp

    raw = dev(x, e)
    devs = np.stack([dev(x[:, bg[:, b]], e[bg[:, b]]) for b in range(bg.shape[1])])
    corr = raw - devs.mean(0)
    return corr, corr / devs.std(0, ddof=1), raw


def test_peak_composition():
    codes = np.array([[0, 1, 2, 3], [1, 2, 4, 4], [4, 4, 4, 4]], dtype=np.uint8)
    gc, nf = peak_composition(codes, chunk=2)
    np.testing.assert_allclose(gc, [0.5, 1.0, 0.5])
    np.testing.assert_allclose(nf, [0.0, 0.5, 1.0])


def test_background_peaks_are_matched_and_seeded():
    rng = np.random.default_rng(0)
    cov = np.c_[rng.uniform(0.3, 0.7, 500), rng.normal(0, 1, 500)]
    bg = background_peaks(cov, n_background=20, random_state=1)
    assert bg.shape == (500, 20)
    assert (bg == np.arange(500)[:, None]).mean() < 0.1  # rarely itself (as in chromVAR)
    # stand-ins are close in GC: mean |gc difference| far below that of random pairs
    d_bg = np.abs(cov[bg, 0] - cov[:, [0]]).mean()
    d_rand = np.abs(cov[rng.integers(0, 500, (500, 20)), 0] - cov[:, [0]]).mean()
    assert d_bg < 0.5 * d_rand
    np.testing.assert_array_equal(bg, background_peaks(cov, n_background=20, random_state=1))
    assert not np.array_equal(bg, background_peaks(cov, n_background=20, random_state=2))
    with pytest.raises(ValueError, match="NaN"):
        background_peaks(np.array([[np.nan], [1.0]]))


def test_deviations_match_dense_reference():
    rng = np.random.default_rng(3)
    x = sp.random(40, 60, density=0.3, random_state=3, format="csr") * 5
    x = sp.csr_matrix(np.round(x.toarray()))
    x = sp.csr_matrix(np.r_[np.zeros((1, 60)), x.toarray()[1:]])  # cell 0 is empty
    w = rng.uniform(0, 1, (60, 3))
    bg = background_peaks(rng.uniform(0, 1, (60, 2)), n_background=10, random_state=0)
    d, z, raw = deviations(x, w, bg, chunk_size=7)
    rd, rz, rraw = _reference(x.toarray()[1:], w, bg)
    # the empty cell is NaN; the reference over the other cells uses the same peak shares
    assert np.isnan(d[0]).all() and np.isnan(z[0]).all()
    np.testing.assert_allclose(raw[1:], rraw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d[1:], rd, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(z[1:], rz, rtol=1e-4, atol=1e-5)


def test_correction_removes_a_gc_artefact():
    """Cells that capture GC-rich peaks better: the raw score follows GC, the corrected one does not."""
    rng = np.random.default_rng(0)
    n_cells, n_peaks = 300, 2000
    gc = rng.uniform(0.3, 0.7, n_peaks)
    bias = rng.normal(0, 1.5, n_cells)  # per-cell GC capture bias
    rate = 0.05 * np.exp(bias[:, None] * (gc[None, :] - 0.5) * 4)
    x = sp.csr_matrix(rng.poisson(rate).astype(np.float32))
    # a "GC-rich TF": weights rise with GC, no real activity difference between cells
    w = np.c_[(gc > 0.6).astype(float), (gc < 0.4).astype(float)]
    bg = background_peaks(np.c_[gc, np.log1p(np.asarray(x.mean(0)).ravel())], random_state=0)
    d, z, raw = deviations(x, w, bg)
    ok = np.isfinite(raw[:, 0])
    for j in (0, 1):  # GC-rich and GC-poor "TFs"
        slope_raw = np.polyfit(bias[ok], raw[ok, j], 1)[0]
        slope_cor = np.polyfit(bias[ok], d[ok, j], 1)[0]
        assert abs(np.corrcoef(bias[ok], raw[ok, j])[0, 1]) > 0.8  # the artefact
        assert abs(slope_cor) < 0.05 * abs(slope_raw)  # 95% of it gone after the correction


def test_sparse_weight_path_equals_the_dense_one(monkeypatch):
    """Mostly-zero weights (max(2P - 1, 0)) take sparse products with the weights moved to their stand-ins."""
    from scfanpy.tl import _deviations as dv

    rng = np.random.default_rng(5)
    x = sp.random(30, 80, density=0.2, random_state=5, format="csr") * 4
    w = np.clip(2 * rng.beta(0.5, 3, (80, 6)) - 1, 0, 1)
    assert 0 < np.count_nonzero(w) < dv.SPARSE_WEIGHTS * w.size
    bg = background_peaks(rng.uniform(0, 1, (80, 2)), n_background=12, random_state=0)
    sparse = deviations(x, w, bg)
    monkeypatch.setattr(dv, "SPARSE_WEIGHTS", 0.0)  # force the dense path
    dense = deviations(x, w, bg)
    for a, b in zip(sparse, dense):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_compiled_background_product_equals_scipy():
    """The numba product and Welford update give SciPy's values (cells without counts, empty weight rows)."""
    import scipy.sparse as sp

    from scfanpy.tl import _deviations_kernel as kernel

    rng = np.random.default_rng(3)
    x = sp.random(60, 40, density=0.1, format="csr", random_state=4) * 3
    x = sp.csr_matrix(x.multiply(np.r_[np.zeros(5), np.ones(55)][:, None]))  # 5 empty cells
    w = sp.random(40, 7, density=0.2, format="csr", random_state=5)
    np.testing.assert_allclose(kernel.sparse_dense_product(x, w), (x @ w).toarray(), rtol=1e-12)
    assert kernel.sparse_dense_product(x, sp.csr_matrix((40, 7))).sum() == 0
    total, share = np.asarray(x.sum(1)).ravel(), rng.random(7)
    mean, m2, ref = np.zeros((60, 7)), np.zeros((60, 7)), []
    for b in range(4):
        obs = rng.random((60, 7)) * 5
        kernel.welford_update(obs, total, share, b + 1, mean, m2)
        exp = total[:, None] * share
        with np.errstate(divide="ignore", invalid="ignore"):
            ref.append(np.where(exp > 0, (obs - exp) / exp, 0.0))
    np.testing.assert_allclose(mean, np.mean(ref, 0), atol=1e-12)
    np.testing.assert_allclose(m2 / 3, np.var(ref, 0, ddof=1), atol=1e-10)
    with pytest.raises(ValueError, match="shapes disagree"):
        kernel.sparse_dense_product(x, w.T)


def _expected_case(seed=0):
    rng = np.random.default_rng(seed)
    n_peaks, n_cells, n_tfs = 3000, 300, 12
    cov = np.c_[rng.beta(5, 5, n_peaks), np.log1p(rng.lognormal(0, 1, n_peaks))]
    pool = rng.random(n_peaks) > 0.05
    w = np.clip(rng.normal(-0.5, 0.6, (n_peaks, n_tfs)), 0, 1)
    w[~pool] = 0
    x = sp.random(n_cells, n_peaks, density=0.05, random_state=seed, format="lil")
    x[:2] = 0  # cells without counts
    x = sp.csr_matrix(x)
    x.data = np.ceil(x.data * 3)
    col = np.asarray(x.sum(0)).ravel()
    return x, w, cov, pool, col / col.sum()


def test_expected_background_is_the_limit_of_many_sets():
    """The exact moments over the stand-in distribution agree with 4,000 drawn sets (z r = 0.9998 when
    written); 50 sets, the sampled default, scatter around both (r about 0.98)."""
    from scfanpy.tl._deviations import ExpectedBackground, background_model

    x, w, cov, pool, e = _expected_case()
    many = background_peaks(cov, n_background=4000, pool=pool, random_state=0)
    d1, z1, r1 = deviations(x, w, many, peak_share=e)
    d2, z2, r2 = ExpectedBackground(w, background_model(cov, pool=pool), e)(x)
    np.testing.assert_array_equal(np.isnan(z1), np.isnan(z2))
    assert np.isnan(z2[:2]).all() and np.isfinite(z2[2:]).all()
    np.testing.assert_allclose(r2, r1, rtol=1e-6, atol=1e-7)  # the raw deviation is the same statistic
    ok = np.isfinite(z1)
    assert np.corrcoef(z1[ok], z2[ok])[0, 1] > 0.999
    assert np.abs(z1[ok] - z2[ok]).mean() < 0.03 * z1[ok].std()
    assert np.corrcoef(d1[ok], d2[ok])[0, 1] > 0.999
    few = background_peaks(cov, n_background=50, pool=pool, random_state=0)
    _, z50, _ = deviations(x, w, few, peak_share=e)
    r50 = np.corrcoef(z50[ok], z2[ok])[0, 1]
    assert 0.95 < r50 < np.corrcoef(z1[ok], z2[ok])[0, 1]


def test_expected_background_removes_a_gc_artefact():
    """The GC-capture artefact of test_correction_removes_a_gc_artefact, corrected without draws."""
    from scfanpy.tl._deviations import ExpectedBackground, background_model

    rng = np.random.default_rng(0)
    n_cells, n_peaks = 300, 2000
    gc = rng.uniform(0.3, 0.7, n_peaks)
    bias = rng.normal(0, 1.5, n_cells)
    x = sp.csr_matrix(rng.poisson(0.05 * np.exp(bias[:, None] * (gc[None, :] - 0.5) * 4)).astype(np.float32))
    w = np.c_[(gc > 0.6).astype(float), (gc < 0.4).astype(float)]
    col = np.asarray(x.sum(0)).ravel()
    model = background_model(np.c_[gc, np.log1p(col / n_cells)])
    d, z, raw = ExpectedBackground(w, model, col / col.sum())(x)
    ok = np.isfinite(raw[:, 0])
    for j in (0, 1):
        slope_raw = np.polyfit(bias[ok], raw[ok, j], 1)[0]
        slope_cor = np.polyfit(bias[ok], d[ok, j], 1)[0]
        assert abs(np.corrcoef(bias[ok], raw[ok, j])[0, 1]) > 0.8
        assert abs(slope_cor) < 0.05 * abs(slope_raw)


def test_background_model_is_what_background_peaks_draws_from():
    """Stand-in frequencies over many draws match the model's probabilities (bin, then uniform member)."""
    from scfanpy.tl._deviations import background_model

    _, _, cov, pool, _ = _expected_case(1)
    m = background_model(cov, pool=pool)
    np.testing.assert_allclose(m.kernel.sum(1), 1.0)
    assert (m.candidate_bin[~pool] == -1).all() and (m.candidate_bin[pool] >= 0).all()
    assert m.density.sum() == pool.sum()
    peak = 17
    draws = background_peaks(cov, n_background=20_000, pool=pool, random_state=2)[peak]
    freq = np.bincount(m.candidate_bin[draws], minlength=m.kernel.shape[1]) / draws.size
    assert np.abs(freq - m.kernel[m.peak_bin[peak]]).max() < 0.02
