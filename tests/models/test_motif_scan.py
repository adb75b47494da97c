"""The torch motif scan (conv over the motifs of each length) against the numpy reference scan."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scfanpy.models._motif import _N_SCORE, MotifModel  # noqa: E402

# lengths 1 to 29 (JASPAR's longest), several motifs sharing a length, as in JASPAR
LENGTHS = [1, 2, 5, 6, 6, 8, 8, 8, 11, 15, 19, 29]


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    motifs = {f"m{i}_{L}": rng.dirichlet(np.full(4, 0.3), size=L) for i, L in enumerate(LENGTHS)}
    return MotifModel(motifs=motifs)


def _codes(n: int, width: int, n_frac: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, (n, width)).astype(np.uint8)
    codes[rng.random(codes.shape) < n_frac] = 4
    if n > 2 and width > 3:
        codes[1, : width // 2] = 4  # half N
        codes[2, width // 3] = 7  # a code above 4 reads as N
    return codes


def _revcomp(codes: np.ndarray) -> np.ndarray:
    return np.array([3, 2, 1, 0, 4], dtype=np.uint8)[np.minimum(codes, 4)[..., ::-1]]


@pytest.mark.parametrize("width", [1, 7, 20, 28, 29, 30, 64, 300])
@pytest.mark.parametrize("n_frac", [0.0, 0.05, 0.4])
def test_torch_equals_numpy(model, width, n_frac):
    codes = _codes(9, width, n_frac, seed=width)
    ref = model.scan_codes(codes, backend="numpy")
    got = model.scan_codes(codes, backend="torch", device="cpu")
    assert got.dtype == np.float32 and got.shape == ref.shape
    real = ref > _N_SCORE  # best window free of N: float32 rounding of sums of a few log-odds
    np.testing.assert_allclose(got[real], ref[real], rtol=0, atol=1e-4)
    # windows with N: sums reach -30 x length, the same up to float32 rounding of those magnitudes
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-4)
    prob = model.predict_codes(codes, device="cpu")
    assert np.isfinite(prob).all()  # motifs longer than the sequence: the prior (was NaN)
    np.testing.assert_allclose(prob, model.calibrate(ref, width), rtol=0, atol=1e-4)
    assert (prob[:, model.lengths > width] == np.float32(model.prior)).all()


def test_both_strands_planted_site(model):
    j = LENGTHS.index(15)
    tf = model.tf_names[j]
    s = model.log_odds[tf]
    site = s.argmax(1).astype(np.uint8)  # the best-scoring word
    best = np.float32(s.max(1).sum())
    rng = np.random.default_rng(5)
    bg = rng.integers(0, 4, (2, 120)).astype(np.uint8)
    fwd, rev = bg.copy(), bg.copy()
    fwd[0, 50 : 50 + len(site)] = site
    rev[0, 50 : 50 + len(site)] = _revcomp(site)
    for codes in (fwd, rev):
        got = model.scan_codes(codes, backend="torch", device="cpu")
        ref = model.scan_codes(codes, backend="numpy")
        assert got[0, j] == pytest.approx(best, abs=1e-4)
        assert got[1, j] < best
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)
    # a sequence and its reverse complement score the same on every motif
    codes = _codes(6, 90, 0.05, seed=9)
    np.testing.assert_allclose(
        model.scan_codes(codes, device="cpu"), model.scan_codes(_revcomp(codes), device="cpu"), atol=1e-4
    )


@pytest.mark.parametrize("device", [None, "auto", "cpu"])
def test_device_keyword(model, device):
    codes = _codes(5, 80, 0.05, seed=3)
    ref = model.scan_codes(codes, backend="numpy")
    np.testing.assert_allclose(model.scan_codes(codes, device=device, backend="torch"), ref, atol=1e-4)
    p = model.predict_codes(codes, device=device)
    assert p.shape == (5, len(LENGTHS)) and p.dtype == np.float32
    assert model.predict_sequences(["ACGT" * 10], device=device).shape == (1, len(LENGTHS))


def test_device_object_and_bad_backend(model):
    codes = _codes(3, 40, 0.0, seed=4)
    got = model.scan_codes(codes, device=torch.device("cpu"))
    np.testing.assert_allclose(got, model.scan_codes(codes, backend="numpy"), atol=1e-4)
    with pytest.raises(ValueError, match="backend"):
        model.scan_codes(codes, backend="jax")
    with pytest.raises(ValueError, match="2-D"):
        model.scan_codes(codes[0])


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_no_sequence_gives_prior(model, backend):
    p = model.predict_sequences(["N" * 100, "", "N", "ACGT" * 3 + "N" * 40])
    assert (p.to_numpy()[:2] == np.float32(model.prior)).all()
    codes = np.full((3, 50), 4, dtype=np.uint8)
    scores = model.scan_codes(codes, backend=backend, device="cpu")
    np.testing.assert_array_equal(scores, np.tile(_N_SCORE * model.lengths, (3, 1)).astype(np.float32))
    assert (model.calibrate(scores, 50) == np.float32(model.prior)).all()
    empty = model.scan_codes(np.zeros((2, 0), np.uint8), backend=backend)
    assert empty.shape == (2, len(LENGTHS)) and (model.calibrate(empty, 0) == np.float32(model.prior)).all()
    assert model.scan_codes(np.zeros((0, 30), np.uint8), backend=backend).shape == (0, len(LENGTHS))


def test_batch_size_independent(model):
    codes = _codes(11, 150, 0.05, seed=6)
    full = model.scan_codes(codes, backend="torch", device="cpu", batch_size=256)
    for bs in (1, 3, 4):
        got = model.scan_codes(codes, backend="torch", device="cpu", batch_size=bs)
        np.testing.assert_allclose(got, full, rtol=0, atol=1e-5)
    np.testing.assert_allclose(model.scan_codes(codes, backend="numpy", batch_size=2), full, atol=1e-4)


def test_jaspar_motifs_match():
    # the real matrices (lengths 6 to 21 here), at a peak width
    m = MotifModel(["GATA1", "CTCF", "SPI1", "FOS::JUN", "REST"])
    codes = _codes(8, 500, 0.01, seed=7)
    np.testing.assert_allclose(
        m.scan_codes(codes, device="cpu"), m.scan_codes(codes, backend="numpy"), rtol=0, atol=1e-4
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_equals_numpy(model):  # pragma: no cover - needs a GPU
    codes = _codes(40, 500, 0.02, seed=8)
    tf32 = torch.backends.cudnn.allow_tf32
    got = model.scan_codes(codes, device="cuda")
    assert torch.backends.cudnn.allow_tf32 == tf32  # restored after the scan
    np.testing.assert_allclose(got, model.scan_codes(codes, backend="numpy"), rtol=1e-6, atol=1e-4)


# ----------------------------------------------------------------------------------- the numba scan
def _close_to_numpy(got, ref):
    real = ref > _N_SCORE  # best window free of N
    np.testing.assert_allclose(got[real], ref[real], rtol=0, atol=1e-4)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("width", [1, 4, 7, 20, 28, 29, 30, 64, 300])
@pytest.mark.parametrize("n_frac", [0.0, 0.05, 0.4])
def test_numba_equals_numpy(model, width, n_frac):
    codes = _codes(9, width, n_frac, seed=width + 1)
    ref = model.scan_codes(codes, backend="numpy")
    got = model.scan_codes(codes, backend="numba")
    assert got.dtype == np.float32 and got.shape == ref.shape
    _close_to_numpy(got, ref)
    # only the scores above the calibration floors: -inf below them, the same probabilities
    floors = model.floors(width)
    part = model.scan_codes(codes, backend="numba", exact=False)
    above = part > -np.inf
    np.testing.assert_array_equal(part[above], got[above])
    assert (got[~above] < np.broadcast_to(floors, got.shape)[~above] + 1e-4).all()
    prob = model.predict_codes(codes, backend="numba")
    np.testing.assert_array_equal(prob, model.calibrate(got, width))  # identical to the exact scores'
    np.testing.assert_allclose(prob, model.calibrate(ref, width), rtol=0, atol=1e-5)
    assert (prob[~above] == np.float32(model.prior)).all()


def test_numba_floors(model):
    for width in (3, 40, 500):
        floors = model.floors(width)
        prob = model.calibrate(np.tile(floors, (1, 1)), width)
        assert (prob == np.float32(model.prior)).all()  # a score at the floor gives the prior
        for j, (grid, post) in enumerate(model._calibration(width)):
            assert (post[grid > floors[j]] > model.prior).all()  # every grid score above gives more


def test_numba_threads_and_low_scores(model):
    codes = _codes(7, 120, 0.05, seed=11)
    codes[3] = 0  # poly-A: best scores far below a background sequence's
    ref = model.scan_codes(codes, backend="numpy")
    one = model.scan_codes(codes, backend="numba", n_threads=1)
    _close_to_numpy(one, ref)
    np.testing.assert_allclose(
        model.predict_codes(codes, backend="numba"), model.calibrate(ref, 120), rtol=0, atol=1e-5
    )
    np.testing.assert_array_equal(model.scan_codes(codes, backend="numba", n_threads=2), one)


def test_numba_both_strands_and_no_sequence(model):
    j = LENGTHS.index(19)
    s = model.log_odds[model.tf_names[j]]
    site = s.argmax(1).astype(np.uint8)
    bg = np.random.default_rng(12).integers(0, 4, (2, 150)).astype(np.uint8)
    for word in (site, _revcomp(site)):
        codes = bg.copy()
        codes[0, 60 : 60 + len(site)] = word
        got = model.scan_codes(codes, backend="numba")
        assert got[0, j] == pytest.approx(s.max(1).sum(), abs=1e-4)
        _close_to_numpy(got, model.scan_codes(codes, backend="numpy"))
    codes = _codes(6, 90, 0.05, seed=13)
    np.testing.assert_allclose(
        model.scan_codes(codes, backend="numba"),
        model.scan_codes(_revcomp(codes), backend="numba"),
        atol=1e-4,
    )
    n_only = np.full((3, 50), 4, dtype=np.uint8)
    scores = model.scan_codes(n_only, backend="numba")
    np.testing.assert_array_equal(scores, np.tile(_N_SCORE * model.lengths, (3, 1)).astype(np.float32))
    assert (model.predict_codes(n_only, backend="numba") == np.float32(model.prior)).all()
    empty = model.predict_codes(np.zeros((2, 0), np.uint8), backend="numba")
    assert empty.shape == (2, len(LENGTHS)) and (empty == np.float32(model.prior)).all()


def test_auto_backend(model, monkeypatch):
    import scfanpy.models._motif as motif

    codes = _codes(4, 60, 0.02, seed=14)
    calls = []
    for name in ("numpy", "numba", "torch"):
        orig = getattr(MotifModel, f"_scan_{name}")
        monkeypatch.setattr(
            MotifModel, f"_scan_{name}", lambda self, *a, _o=orig, _n=name: calls.append(_n) or _o(self, *a)
        )
    model.scan_codes(codes)  # small: numpy
    monkeypatch.setattr(motif, "_TORCH_MIN_WORK", 0)
    model.scan_codes(codes)  # larger: numba on the CPU
    model.scan_codes(codes, device="cpu")
    assert calls == ["numpy", "numba", "numba"]


def test_jaspar_numba_matches():
    m = MotifModel(["GATA1", "CTCF", "SPI1", "FOS::JUN", "REST"])
    codes = _codes(8, 500, 0.01, seed=15)
    ref = m.scan_codes(codes, backend="numpy")
    np.testing.assert_allclose(m.scan_codes(codes, backend="numba"), ref, rtol=0, atol=1e-4)
    np.testing.assert_allclose(m.predict_codes(codes, backend="numba"), m.calibrate(ref, 500), atol=1e-5)
