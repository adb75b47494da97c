"""bfloat16 inference of the sequence models (``precision='bf16'``): agrees with float32 on the CPU."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("torch_one_thread")

# small untrained nets (seeded weights), window 101, two signal tracks
SMALL = {
    "DANQ": {"n_filters": 16, "lstm_hidden": 8, "n_dense": 16},
    "FACTORNET": {"n_filters": 16, "filter_width": 10, "pool": 5, "lstm_hidden": 8, "n_dense": 16},
    "SCFAN": {"channels": (16, 16, 16), "pool": 2, "n_dense": 16},
}
# bfloat16 keeps 8 significant bits: each operand of a convolution, matrix product or LSTM gate is
# rounded by at most 2^-9 relative (products summed in float32), ~0.4% per layer compounded over the 3-5
# layers here, ~2% of the pre-activation scale; with logits within +-3 a logit moves by ~0.06 at most
# and a probability by a quarter of that (the sigmoid's slope), 1.5e-2. Measured on these nets (last
# layer scaled so that the logits spread over about +-1): max |p_bf16 - p_fp32| 1e-3 to 3.2e-3,
# max |logit difference| 0.005 to 0.017.
ATOL = 2e-2


def _model(name):
    import scfanpy as sfp

    return getattr(sfp.models, name)(
        tf_names=["A", "B", "C"],
        window=101,
        n_tracks=2,
        track_names=["x", "y"],
        random_state=1,
        **SMALL[name],
    )


def _logit(p):
    return np.log(p / (1 - p))


@pytest.mark.parametrize("name", list(SMALL))
def test_bf16_agrees_with_fp32(name):
    m = _model(name)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, (64, 101)).astype(np.uint8)
    codes[3, 10:30] = 4  # some N
    tracks = rng.random((64, 2)).astype(np.float32)
    # an untrained net's logits are near 0: scale its output layer so that they spread like a model's
    last = [mod for mod in m.module.modules() if isinstance(mod, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(3.0 / np.abs(_logit(m.predict_codes(codes, tracks))).max())
    p32 = m.predict_codes(codes, tracks, batch_size=16)
    assert np.ptp(_logit(p32)) > 0.5
    p16 = m.predict_codes(codes, tracks, batch_size=16, precision="bf16")
    assert p16.dtype == np.float32 and p16.shape == p32.shape == (64, 3)
    assert not np.array_equal(p16, p32)  # autocast did run the net in bfloat16
    np.testing.assert_allclose(p16, p32, rtol=0, atol=ATOL)
    np.testing.assert_allclose(_logit(p16), _logit(p32), rtol=0, atol=4 * ATOL)
    # the order of the sequences per TF is kept (what the binding scores are used for)
    for j in range(3):
        assert np.corrcoef(p16[:, j], p32[:, j])[0, 1] > 0.99
    np.testing.assert_array_equal(m.predict_codes(codes, tracks, batch_size=16), p32)  # fp32 untouched


def test_bf16_pass_through_and_errors():
    from scfanpy.genome import decode_sequence

    m = _model("SCFAN")
    codes = np.random.default_rng(2).integers(0, 4, (5, 101)).astype(np.uint8)
    p16 = m.predict_codes(codes, precision="bf16")
    df = m.predict_sequences([decode_sequence(c) for c in codes], precision="bf16")
    np.testing.assert_array_equal(df.to_numpy(), p16)
    with pytest.raises(ValueError, match="precision"):
        m.predict_codes(codes, precision="16")
    with pytest.raises(ValueError, match="precision"):
        m.predict_sequences(["ACGT" * 30], precision="fp8")
