"""CombinedModel / best_models: per-TF routing between models, with known answers from tiny models."""

import numpy as np
import pandas as pd
import pytest

import scfanpy as sfp
from scfanpy.models import CombinedModel
from scfanpy.models._combined import tf_key


def _pwm(letter: int, length: int = 6) -> np.ndarray:
    """A near-deterministic matrix for one letter repeated (A=0 C=1 G=2 T=3)."""
    p = np.full((length, 4), 0.01)
    p[:, letter] = 0.97
    return p


class FractionModel:
    """A 'deep' stub with a fixed window: P(TF) = fraction of the window that is its letter."""

    def __init__(self, letters: dict[str, int], window: int = 10, name: str = "stub"):
        self.letters = letters
        self.tf_names = list(letters)
        self.input_spec = {"window": window, "n_tracks": 0, "track_names": []}
        self.name = name
        self.seen_widths: list[int] = []

    def predict_codes(self, codes, tracks=None, *, batch_size=256):
        self.seen_widths.append(codes.shape[1])
        assert codes.shape[1] == self.input_spec["window"]
        return np.stack([(codes == v).mean(1) for v in self.letters.values()], 1).astype(np.float32)


@pytest.fixture
def two_motif_models():
    m1 = sfp.models.MotifModel(motifs={"TFX": _pwm(0), "TFY": _pwm(1)})  # poly-A, poly-C
    m2 = sfp.models.MotifModel(motifs={"tfx": _pwm(2), "TFZ": _pwm(3)})  # poly-G under the same TF
    return m1, m2


def _codes(seq: str) -> np.ndarray:
    from scfanpy.genome import encode_sequence

    return encode_sequence(seq)[None]


def test_routes_each_tf_to_its_model(two_motif_models):
    m1, m2 = two_motif_models
    bg = "ACGT" * 5
    poly_a, poly_g = _codes(bg + "A" * 8 + bg), _codes(bg + "G" * 8 + bg)
    default = CombinedModel({"m1": m1, "m2": m2})
    assert default.tf_names == ["TFX", "TFY", "TFZ"]  # first model's TFs, then the others'
    assert default.choice == {"TFX": "m1", "TFY": "m1", "TFZ": "m2"}
    routed = CombinedModel({"m1": m1, "m2": m2}, choice={"TFX": "m2"})
    assert routed.choice["tfx"] == "m2" and routed.tf_names == ["tfx", "TFY", "TFZ"]  # m2's spelling
    # known answers: with m1, TFX fires on poly-A only; with m2 on poly-G only
    for codes, by_m1, by_m2 in ((poly_a, True, False), (poly_g, False, True)):
        p_default = default.predict_codes(codes)[0, 0]
        p_routed = routed.predict_codes(codes)[0, 0]
        np.testing.assert_allclose(p_default, m1.predict_codes(codes)[0, 0])
        np.testing.assert_allclose(p_routed, m2.predict_codes(codes)[0, 0])
        # an 8-bp run of the motif's letter: posterior ~0.6; no run: the prior (0.1)
        for p, fires in ((p_default, by_m1), (p_routed, by_m2)):
            assert (p > 0.5) if fires else (p < 0.2)
    # TFY and TFZ are untouched by the choice
    both = np.concatenate([poly_a, poly_g])
    np.testing.assert_allclose(routed.predict_codes(both)[:, 1], m1.predict_codes(both)[:, 1])
    np.testing.assert_allclose(routed.predict_codes(both)[:, 2], m2.predict_codes(both)[:, 1])
    d = routed.describe()
    assert d.loc["tfx", "model"] == "m2" and d.loc["tfx", "reason"] == "choice"
    assert d.loc["TFY", "reason"] == "default"


def test_default_model_and_tfs(two_motif_models):
    m1, m2 = two_motif_models
    c = CombinedModel({"m1": m1, "m2": m2}, default="m2", tfs=["tfz", "TFX"])
    assert c.tf_names == ["TFZ", "tfx"] and c.choice == {"TFZ": "m2", "tfx": "m2"}
    assert set(c.pwms) == {"TFZ", "tfx"}
    np.testing.assert_allclose(c.pwms["tfx"], m2.pwms["tfx"])
    with pytest.raises(KeyError, match="none of the models"):
        CombinedModel({"m1": m1}, tfs=["TFQ"])
    with pytest.raises(KeyError, match="has no TF"):
        CombinedModel({"m1": m1, "m2": m2}, choice={"TFY": "m2"})
    with pytest.raises(KeyError, match="not one of the models"):
        CombinedModel({"m1": m1}, choice={"TFX": "m9"})
    assert tf_key("BATF::JUN") == tf_key("batfjun")


def test_fixed_window_model_is_tiled_on_both_strands():
    stub = FractionModel({"G_TF": 2}, window=10)
    motif = sfp.models.MotifModel(motifs={"TFX": _pwm(0)})
    seq = "A" * 20 + "G" * 10 + "A" * 5 + "C" * 4 + "A" * 11  # 50 bp
    codes = _codes(seq)
    c = CombinedModel({"motif": motif, "stub": stub})
    p = c.predict_codes(codes)
    assert set(stub.seen_widths) == {10}
    # forward: the tile on the G run is all G (1.0); reverse complement: G <- C, best tile holds 4 of 10
    np.testing.assert_allclose(p[0, 1], 0.5 * (1.0 + 0.4), atol=1e-6)
    one = CombinedModel({"motif": motif, "stub": stub}, both_strands=False)
    np.testing.assert_allclose(one.predict_codes(codes)[0, 1], 1.0)
    # the motif model is never averaged over strands (it scans both itself)
    np.testing.assert_allclose(p[:, 0], motif.predict_codes(codes)[:, 0])
    # shorter than the window: padded with N (N is no letter: 4 G of a 10-bp window)
    np.testing.assert_allclose(one.predict_codes(_codes("GGGG"))[0, 1], 0.4)
    df = c.predict_sequences([seq, "GGGGGGGGGGGG"])
    assert list(df.columns) == ["TFX", "G_TF"] and df.shape == (2, 2)


def test_save_load_roundtrip(two_motif_models, tmp_path):
    m1, m2 = two_motif_models
    c = CombinedModel({"m1": m1, "m2": m2}, choice={"TFX": "m2"}, tfs=["TFX", "TFY"], name="mine")
    c.evidence = {"tfx": {"valid_auroc_deep": 0.9}}
    c.save(tmp_path / "c")
    with pytest.raises(FileExistsError):
        c.save(tmp_path / "c")
    back = CombinedModel.load(tmp_path / "c")
    assert back.choice == c.choice and back.tf_names == c.tf_names and back.name == "mine"
    assert back.evidence == c.evidence
    codes = np.random.default_rng(0).integers(0, 4, size=(20, 60)).astype(np.uint8)
    np.testing.assert_allclose(back.predict_codes(codes), c.predict_codes(codes))


def test_rejects_track_models():
    class Track(FractionModel):
        pass

    t = Track({"X": 0})
    t.input_spec = {"window": 10, "n_tracks": 1, "track_names": ["atac"]}
    with pytest.raises(ValueError, match="sequence-only"):
        CombinedModel({"t": t})


def test_predict_tf_binding_with_combined(sim_small):
    """predict_tf_binding takes the combined model unchanged; each column is its chosen model's answer."""
    adata, genome, truth = sim_small
    a = adata[:80, :60].copy()
    tfs = list(truth.tfs)[:3]
    motif = sfp.models.MotifModel(tfs)
    stub = FractionModel({tfs[0]: 2, "GC_ONLY": 1}, window=50, name="stub")
    c = CombinedModel({"jaspar_motif": motif, "stub": stub}, choice={tfs[0]: "stub"}, both_strands=False)
    sfp.tl.predict_tf_binding(a, model=c, genome=genome, layer="X", correct_bias=False, verbose=False)
    binding = a.varm["tf_binding"]
    assert list(binding.columns) == c.tf_names == [*tfs, "GC_ONLY"]
    codes = a.varm["dna_code"]
    np.testing.assert_allclose(binding[tfs[0]], c.predict_codes(codes)[:, 0], rtol=1e-6)
    np.testing.assert_allclose(binding[tfs[1]], motif.predict_codes(codes)[:, 1], rtol=1e-5)
    assert a.uns["tf_activity"]["model"]["name"] == c.name
    # what the caller records in uns: the TF -> model mapping
    choice = c.describe()["model"].to_dict()
    assert choice[tfs[0]] == "stub" and choice[tfs[1]] == "jaspar_motif"
    assert isinstance(c.describe(), pd.DataFrame)
    recorded = a.uns["tf_activity"]["model"]["choice"]  # written by predict_tf_binding
    assert recorded == {t: str(c.choice[t]) for t in c.tf_names}
    assert recorded[tfs[0]] == "stub" and recorded[tfs[1]] == "jaspar_motif"
