"""The second shipped model (``danq_multi158``): loads, predicts, ranks its own held-out data.

Trained by ``scripts/train_second_model.py``. The weights ship with the package; the data checks read
its own held-out test split from the shared data (DeepBind's ``_B`` test sets, the lsgkm NFE2 test
files) and skip when those are absent. Never the project's holdout.
"""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import scfanpy as sfp
from scfanpy.models._pretrained import WEIGHTS_DIR

NAME = "danq_multi158"


@pytest.fixture(scope="module")
def model():
    return sfp.models.pretrained(NAME)


def _both(model, codes):
    comp = np.array([3, 2, 1, 0, 4], dtype=np.uint8)
    return 0.5 * (model.predict_codes(codes) + model.predict_codes(comp[codes[:, ::-1]]))


def test_listed_small_and_float16():
    import torch

    tab = sfp.models.available_pretrained()
    row = tab.loc[NAME]
    assert row["class"] == "DANQ" and row["n_tfs"] == 158 and row["window"] == 101 and row["n_tracks"] == 0
    assert not row["default"] and row["n_tfs_deep"] > 0
    folder = WEIGHTS_DIR / NAME
    assert sum(f.stat().st_size for f in folder.iterdir()) < 3 * 1024**2
    blob = torch.load(folder / "model.pt", map_location="cpu", weights_only=False)
    floats = [v for v in blob["model_state_dict"].values() if torch.is_tensor(v) and v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)


def test_loads_and_predicts_shapes(model):
    assert type(model).__name__ == "DANQ" and model.pretrained_name == NAME
    assert model.input_spec == {"window": 101, "n_tracks": 0, "track_names": []}
    card = model.model_card
    assert card["tf_names"] == model.tf_names and len(model.tf_names) == 158
    for tf in ("CTCF", "ARID3A", "NFE2", "POU5F1", "MAFK", "JUND", "REST", "GATA3"):
        assert tf in model.tf_names
    codes = np.random.default_rng(0).integers(0, 4, size=(7, 101)).astype(np.uint8)
    p = model.predict_codes(codes)
    assert p.shape == (7, 158) and p.dtype == np.float32 and ((p >= 0) & (p <= 1)).all()
    long = model.predict_sequences(["ACGT" * 100, "GGGCGG" * 30])  # scanned in 101-bp windows
    assert long.shape == (2, 158)
    assert not model.module.training


def test_card_choice_matches_best_models(model):
    """best_models reads the same per-TF validation AUROCs the training script's choice was made on."""
    per_tf = model.model_card["per_tf"]
    tfs = ["CTCF", "ARID3A", "NFE2", "GATA3", "USF1", "EP300"]
    c = sfp.models.best_models(NAME, tfs=tfs)
    for tf in tfs:
        out = c.output_name(tf)
        want = NAME if per_tf[tf]["use"] == "deep" else "jaspar_motif"
        assert c.choice[out] == want, tf
        v = per_tf[tf]["valid"]
        assert c.describe().loc[out, "valid_auroc_deep"] == pytest.approx(v["deep_auroc"])
    assert c.choice[c.output_name("EP300")] == NAME  # no JASPAR motif: only the deep model has it


def test_deepbind_test_slice_auc(model):
    """Own test split: the first 100 peaks of DeepBind's ``_B`` sets and their 100 shuffles.

    Floors: this model's full-test AUROCs (model card, both strands) minus about 0.08 for the noise of a
    200-sequence slice (the AUROC's standard error there is ~0.02-0.03).
    """
    floors = {"USF1": 0.9, "REST": 0.9, "CTCFL": 0.9, "GABPA": 0.9}  # full test: 1.000 0.998 0.990 0.981
    for exp in sfp.datasets.deepbind_experiments():
        tf = exp.split("_")[0]
        if tf not in floors:
            continue
        b = sfp.datasets.deepbind_encode(exp, "B")
        pos = b[b["Bound"] == 1].iloc[:100]
        neg = b[b["EventID"].isin(pos["EventID"].str.replace("_peak", "_shuf"))]
        seqs = pos["seq"].tolist() + neg["seq"].tolist()
        y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        codes = np.stack([sfp.genome.encode_sequence(s) for s in seqs])  # all 101 bp
        auc = roc_auc_score(y, _both(model, codes)[:, model.tf_names.index(tf)])
        assert auc > floors[tf], (tf, auc)


def test_nfe2_genomic_negatives(model, shared_data):
    """Own test split with real GC-matched genomic negatives (lsgkm NFE2, 69 + 69 sequences)."""
    from scfanpy._torch import fit_window
    from scfanpy.genome import read_fasta

    d = shared_data / "sequences" / "lsgkm_nfe2_gm12878"
    stem = "wgEncodeSydhTfbsGm12878Nfe2hStdAlnRep0"
    pos = list(read_fasta(d / f"{stem}.test.fa").values())
    neg = list(read_fasta(d / f"{stem}.neg.test.fa").values())

    codes = np.stack([fit_window(sfp.genome.encode_sequence(s)[None], 101)[0] for s in pos + neg])
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    auc = roc_auc_score(y, _both(model, codes)[:, model.tf_names.index("NFE2")])
    motif = sfp.models.MotifModel(["NFE2"]).predict_codes(codes)[:, 0]
    # floor: the card's 0.987 minus ~0.1 (138 sequences); and above the JASPAR motif here (card: 0.627)
    assert auc > 0.8 and auc > roc_auc_score(y, motif), auc


def test_shipped_combination_in_predict_tf_binding(sim_small, tmp_path):
    """best_models + predict_tf_binding on simulated peaks; the combination saves and loads by name."""
    adata, genome, truth = sim_small
    a = adata[:60, :50].copy()
    comb = sfp.models.best_models(NAME, tfs=list(truth.tfs))
    assert set(comb.choice.values()) == {NAME, "jaspar_motif"}
    sfp.tl.predict_tf_binding(a, genome=genome, model=comb, layer="X", correct_bias=False, verbose=False)
    assert list(a.varm["tf_binding"].columns) == comb.tf_names
    np.testing.assert_allclose(
        a.varm["tf_binding"].to_numpy(), comb.predict_codes(a.varm["dna_code"]), rtol=1e-5
    )
    comb.save(tmp_path / "c")
    back = sfp.models.CombinedModel.load(tmp_path / "c")
    assert back.choice == comb.choice and back.models[NAME].pretrained_name == NAME
    np.testing.assert_allclose(
        back.predict_codes(a.varm["dna_code"][:10]), comb.predict_codes(a.varm["dna_code"][:10])
    )
