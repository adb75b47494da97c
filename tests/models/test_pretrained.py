import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import scfanpy as sfp
from scfanpy.models._pretrained import DEFAULT_PRETRAINED, WEIGHTS_DIR


@pytest.fixture(scope="module")
def model():
    return sfp.models.pretrained()


def test_available_and_size():
    tab = sfp.models.available_pretrained()
    assert DEFAULT_PRETRAINED in tab.index
    row = tab.loc[DEFAULT_PRETRAINED]
    assert row["default"] and row["n_tfs"] == 137 and row["window"] == 100 and row["n_tracks"] == 0
    assert row["test_mean_auroc"] > 0.85  # shipped model: 0.904 on its held-out pairs
    total = sum(f.stat().st_size for f in WEIGHTS_DIR.rglob("*") if f.is_file())
    assert total <= 5 * 1024**2


def test_shipped_file_is_scvi_format():
    """The shipped weights are a scvi-tools save (float16 tensors; BaseModelClass.load reads them)."""
    import torch

    blob = torch.load(WEIGHTS_DIR / DEFAULT_PRETRAINED / "model.pt", map_location="cpu", weights_only=False)
    assert set(blob) == {"model_state_dict", "var_names", "attr_dict"}
    assert blob["attr_dict"]["registry_"]["model_name"] == "SCFAN"
    floats = [v for v in blob["model_state_dict"].values() if torch.is_tensor(v) and v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)


def test_loads_with_card(model):
    assert model.pretrained_name == DEFAULT_PRETRAINED
    assert len(model.tf_names) == 137
    assert model.tf_names == sfp.datasets.bertsnr_tfs()
    assert model.input_spec == {"window": 100, "n_tracks": 0, "track_names": []}
    card = model.model_card
    assert card["tf_names"] == model.tf_names
    per_tf = card["test_metrics"]["per_tf"]
    assert set(per_tf) == set(model.tf_names)
    assert np.isclose(
        np.mean([v["auroc"] for v in per_tf.values()]), card["test_metrics"]["mean_auroc"], atol=1e-3
    )
    assert not model.module.training


def test_scores_sites_above_shuffles(model):
    tfs = ["NRF1", "YY1", "USF1", "SP1"]
    d = sfp.datasets.bertsnr(tfs)
    for tf in tfs:
        sub = d[d["tf"] == tf].iloc[:200]  # 100 (site, shuffle) pairs
        p = model.predict_sequences(sub["seq"].tolist())[tf].to_numpy()
        b = sub["bound"].to_numpy() == 1
        assert roc_auc_score(b, p) > 0.8, tf  # shipped model: 0.92-1.00 on these pairs
    # long inputs: codes are centre-cropped, sequences scanned
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, size=(3, 1000)).astype(np.uint8)
    pc = model.predict_codes(codes)
    assert pc.shape == (3, 137) and np.all((pc >= 0) & (pc <= 1))
    np.testing.assert_allclose(pc, model.predict_codes(codes[:, 450:550]), atol=1e-6)
    ps = model.predict_sequences(["ACGT" * 100])
    assert ps.shape == (1, 137)


def test_load_by_path_and_errors(model, tmp_path):
    model.save(tmp_path / "m")
    m2 = sfp.models.pretrained(tmp_path / "m")
    codes = np.random.default_rng(1).integers(0, 4, size=(4, 100)).astype(np.uint8)
    np.testing.assert_allclose(m2.predict_codes(codes), model.predict_codes(codes), atol=1e-6)
    # a model without data saved and loaded by scvi-tools' base class: the very same predictions
    np.testing.assert_array_equal(m2.predict_codes(codes), model.predict_codes(codes))
    assert m2.adata is None and m2.tf_names == model.tf_names and m2.history.equals(model.history)
    with pytest.raises(KeyError, match="available"):
        sfp.models.pretrained("no_such_model")
