"""The numba motif scan (32 matrices per SIMD vector) against an exact float64 loop: identical best scores."""

import numpy as np
import pytest

pytest.importorskip("numba")

import scfanpy as sfp
from scfanpy.models import _motif_numba
from scfanpy.models._motif import _N_SCORE, MotifModel


def _exact_best(model: MotifModel, codes: np.ndarray) -> np.ndarray:
    """Float64 best score over both strands and every offset ``0 .. W - 1`` (-30 per N and past the end).

    Columns are added in order, one at a time, as the numba scan adds them: the same float64 sums.
    """
    n, width = codes.shape
    out = np.empty((n, len(model.tf_names)))
    for j, tf in enumerate(model.tf_names):
        best = np.full(n, -np.inf)
        for mat in (model.log_odds[tf], model.log_odds[tf][::-1, ::-1]):
            length = len(mat)
            table = np.concatenate([mat, np.full((length, 1), _N_SCORE)], 1)
            padded = np.full((n, width + length), 4, dtype=np.int64)
            padded[:, :width] = np.minimum(codes, 4)
            acc = np.zeros((n, width))
            for k in range(length):
                acc = acc + table[k][padded[:, k : k + width]]
            best = np.maximum(best, acc.max(1))
        out[:, j] = best
    return out


def _identical(model, codes, **kw):
    got = model.scan_codes(codes, backend="numba", **kw)
    exact = _exact_best(model, codes)
    assert got.dtype == np.float32 and got.shape == exact.shape
    # the float64 sum of the best window, rounded once: bit-identical to the exact loop's
    np.testing.assert_array_equal(got, exact.astype(np.float32))
    return got


def _background(n, width, seed):
    """Random peaks with the human base composition."""
    return (
        np.random.default_rng(seed)
        .choice(4, size=(n, width), p=(0.295, 0.205, 0.205, 0.295))
        .astype(np.uint8)
    )


@pytest.fixture(scope="module")
def jaspar40():
    # 40 JASPAR motifs = 80 matrices: three groups of 32 lanes, the last one partly empty
    motifs = sfp.datasets.jaspar_motifs(None)
    return MotifModel(motifs={k: motifs[k] for k in list(motifs)[::20][:40]})


def test_identical_on_random_peaks(jaspar40):
    codes = _background(30, 500, seed=0)
    _identical(jaspar40, codes)
    # a sequence and its reverse complement: the same scores (both strands)
    rc = np.array([3, 2, 1, 0], dtype=np.uint8)[codes[:, ::-1]]
    np.testing.assert_array_equal(
        jaspar40.scan_codes(rc, backend="numba"), jaspar40.scan_codes(codes, backend="numba")
    )


@pytest.mark.parametrize("width", [1, 3, 5, 6, 12, 20, 21, 22, 33, 131])
@pytest.mark.parametrize("n_frac", [0.0, 0.02, 0.3, 1.0])
def test_identical_with_n_and_short_sequences(jaspar40, width, n_frac):
    rng = np.random.default_rng(width)
    codes = _background(12, width, seed=width)
    codes[rng.random(codes.shape) < n_frac] = 4
    codes[0, : width // 2] = 4  # half N
    if width > 3:
        codes[1, width // 3] = 9  # any code above 4 reads as N
    _identical(jaspar40, codes)


def test_identical_when_the_top_integer_score_holds_an_n():
    # a motif whose consensus with one N gets the top integer score (N counted at the column's lowest
    # score, not -30): the scan must look further than the windows near that integer score
    rng = np.random.default_rng(3)
    pwm = np.full((12, 4), 0.01)
    pwm[np.arange(12), rng.integers(0, 4, 12)] = 0.97
    model = MotifModel(motifs={"strong": pwm, "other": rng.dirichlet(np.ones(4), 8)})
    site = pwm.argmax(1).astype(np.uint8)
    codes = _background(6, 200, seed=4)
    for i in range(6):
        codes[i, 40 : 40 + 12] = site
        codes[i, 40 + 2 * i] = 4  # the site, one letter an N
    codes[5, 100:112] = site  # and once the intact site: that one wins
    got = _identical(model, codes)
    x = model.log_odds["strong"]
    assert got[5, 0] == np.float32(x.max(1).sum())
    # in the other peaks the N-holding site has the top integer score (its N read at the column's
    # lowest log-odds, above every real window's score) but scores below a background window
    n_site = x.max(1).sum() - (x.max(1) - x.min(1)).max()
    assert (got[:5, 0] < n_site - 1).all() and (got[:5, 0] > x.max(1).sum() + _N_SCORE).all()


def test_identical_on_simulated_peaks(sim_small):
    # planted sites of the simulation's TFs in 500 bp peaks of its genome
    a = sim_small.adata[:, :200].copy()
    sfp.pp.add_sequences(a, sim_small.genome, width=500)
    model = MotifModel(list(sim_small.truth.tfs))
    _identical(model, np.asarray(a.varm["dna_code"]))


def test_extreme_log_odds_and_short_motifs():
    # user motifs with near-zero probabilities (log-odds far below -30) and lengths 1 and 2
    rng = np.random.default_rng(5)
    motifs = {f"m{i}": rng.dirichlet(np.full(4, 0.05), L) for i, L in enumerate([1, 2, 3, 30, 7, 7])}
    model = MotifModel(motifs=motifs, pseudocount=1e-12)
    assert min(x.min() for x in model.log_odds.values()) < -25
    for width in (1, 2, 29, 30, 31, 90):
        codes = _background(7, width, seed=width)
        codes[2, width // 2] = 4
        _identical(model, codes)


def test_floors_and_threads(jaspar40):
    codes = _background(70, 300, seed=6)
    full = jaspar40.scan_codes(codes, backend="numba", n_threads=1)
    np.testing.assert_array_equal(jaspar40.scan_codes(codes, backend="numba", n_threads=2), full)
    floors = jaspar40.floors(300)
    part = jaspar40.scan_codes(codes, backend="numba", exact=False)
    below = full < floors[None].astype(np.float32)
    assert (part[below] == -np.inf).all()
    np.testing.assert_array_equal(part[~below], full[~below])


def test_tables_bound_the_integer_scores(jaspar40):
    t = _motif_numba.build_tables([jaspar40.log_odds[k] for k in jaspar40.tf_names])
    quant = t.quant.reshape(-1, 5, _motif_numba.LANES).astype(np.int64)
    for g in range(len(t.g_len)):
        rows = quant[t.g_row[g] : t.g_row[g] + t.g_len[g]]
        assert np.abs(rows).max(1).sum(0).max() <= 32000  # no int16 overflow in any partial sum
        for lane in range(_motif_numba.LANES):
            m = t.lane_m[g * _motif_numba.LANES + lane]
            if m < 0:
                assert (rows[:, :, lane] == 0).all()
                continue
            j, strand = divmod(int(m), 2)
            x = jaspar40.log_odds[jaspar40.tf_names[j]]
            x = x[::-1, ::-1] if strand else x
            err = np.abs(rows[: len(x), :4, lane] - t.g_scale[g] * x)
            assert err.max() <= 0.5 + 1e-9  # the rounding bound the exactness argument uses
            assert (rows[len(x) :, :, lane] == 0).all()
            assert (rows[: len(x), 4, lane] >= t.g_scale[g] * _N_SCORE - 0.5).all()
