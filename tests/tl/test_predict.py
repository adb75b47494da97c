"""predict_tf_binding on the simulator's truth (fixed seeds).

Floors: measured values on sim_small (600 cells, 800 peaks, 4 types, 8 TFs, seed 0) with the JASPAR
motif model are per-cell AUROC ~0.94, mean Spearman ~0.74, Leiden ARI ~0.96; the floors leave room for
numeric noise across platforms while staying far above what a random or TF-blind score reaches
(AUROC 0.5, Spearman ~0, ARI ~0).
"""

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from scipy.stats import spearmanr
from sklearn.metrics import adjusted_rand_score, roc_auc_score

import scfanpy as sfp
from scfanpy.models._motif import MotifModel


def _per_cell_auroc(a, truth, n_cells=60):
    cells = np.arange(0, a.n_obs, a.n_obs // n_cells)
    df = sfp.tl.cell_tf_binding(a, cells)
    aucs = []
    for cell, sub in df.groupby(level="cell"):
        ct = a.obs.loc[cell, "cell_type"]
        bound = truth.bound(ct).loc[sub.index.get_level_values("peak")]
        for t in truth.tfs:
            y = bound[t].to_numpy()
            if 0 < y.sum() < len(y):
                aucs.append(roc_auc_score(y, sub[t].to_numpy()))
    return float(np.mean(aucs))


def test_outputs(sim_scored):
    a, _, truth = sim_scored
    B = a.varm["tf_binding"]
    A = a.obsm["tf_activity"]
    assert isinstance(B, pd.DataFrame) and B.shape == (a.n_vars, 8) and list(B.columns) == truth.tfs
    assert isinstance(A, pd.DataFrame) and A.shape == (a.n_obs, 8) and (A.index == a.obs_names).all()
    p = a.uns["tf_activity"]["params"]
    assert p["model"] == "jaspar_motif" and p["method"] == "probability" and p["layer"] == "smoothed"
    assert p["model_kind"] == "sequence-only"
    assert a.uns["tf_activity"]["tf_names"] == truth.tfs
    assert a.varm["dna_code"].shape[1] == 500  # peak width read from the genome
    # every field of the Returns section
    u = a.uns["tf_activity"]
    assert set(u) >= {"params", "tf_names", "model", "levels", "background"}
    assert len(u["levels"]) == 0 and p["n_levels"] == 0 and p["window"] == 500  # sequence-only: one level
    np.testing.assert_allclose(u["background"], B.to_numpy().mean(0), rtol=1e-5)
    assert u["model"]["class"] == "MotifModel" and u["model"]["n_tfs"] == 8
    assert "tf_binding_levels" not in a.varm


def test_accuracy_vs_truth(sim_scored):
    a, _, truth = sim_scored
    # per-cell binding at the cell's accessible peaks, per TF with bound and unbound peaks there
    assert _per_cell_auroc(a, truth) > 0.85
    # the uncorrected probability score (what this test measured before the bias correction)
    A = a.obsm["tf_activity_raw"]
    rho = [spearmanr(A[t], truth.activity[t]).statistic for t in truth.tfs]
    assert np.mean(rho) > 0.6 and min(rho) > 0.45
    # the corrected default (measured mean 0.63, min 0.24): on this simulator every peak's accessibility
    # comes from planted TFs, so accessibility-matched background peaks carry other TFs' programmes and
    # the ubiquitous CTCF loses most; real cells, where the correction removes the GC artefact, are the
    # check that matters (docs/benchmarks/tf_activity.md)
    rho_z = [spearmanr(a.obsm["tf_activity"][t], truth.activity[t]).statistic for t in truth.tfs]
    assert np.mean(rho_z) > 0.55 and min(rho_z) > 0.15
    tfa = sfp.tl.tf_activity_adata(a, key="tf_activity_raw", scale=True)
    sc.pp.neighbors(tfa, use_rep="X", n_neighbors=15, random_state=0)
    sc.tl.leiden(tfa, resolution=0.3, flavor="igraph", n_iterations=2, random_state=0)
    assert adjusted_rand_score(tfa.obs["cell_type"], tfa.obs["leiden"]) > 0.85


def test_scfan_score(sim_scored):
    a, genome, truth = sim_scored
    b = a.copy()
    sfp.tl.predict_tf_binding(b, method="scfan", tfs=truth.tfs, correct_bias=False, verbose=False)
    A = b.obsm["tf_activity"].to_numpy()
    np.testing.assert_allclose(A.sum(1), 1.0, atol=1e-5)  # top-2 votes / (2 x bins)
    assert (A >= 0).all()
    # manual: votes of the top-2 TFs of each accessible peak of cell 0
    P = b.varm["tf_binding"].to_numpy()
    acc = b.layers["smoothed"][0].indices
    votes = np.zeros(8)
    for p in acc:
        votes[np.argsort(-P[p])[:2]] += 1
    np.testing.assert_allclose(A[0], votes / (2 * len(acc)), atol=1e-6)
    rho = [spearmanr(A[:, j], truth.activity[t]).statistic for j, t in enumerate(truth.tfs)]
    assert np.mean(rho) > 0.55


def test_probability_score_manual(sim_scored):
    a, _, _ = sim_scored
    P = a.varm["tf_binding"].to_numpy()
    S = a.layers["smoothed"][3]
    v = np.log1p(1e6 * S.data / a.obs["smoothed_depth"].iloc[3])
    expected = (v[:, None] * P[S.indices]).sum(0) / v.sum() - P.mean(0)
    np.testing.assert_allclose(a.obsm["tf_activity_raw"].iloc[3].to_numpy(), expected, atol=1e-5)


class ToyTrackModel:
    """Motif probability shifted by the accessibility track: a nonlinear (peak, signal) model."""

    name = "toy_track"

    def __init__(self, tfs):
        self.motif = MotifModel(tfs)
        self.tf_names = list(tfs)
        self.input_spec = {"window": 300, "n_tracks": 1, "track_names": ["accessibility"]}
        self.calls = 0

    def predict_codes(self, codes, tracks=None, *, batch_size=256):
        self.calls += len(codes)
        p = self.motif.predict_codes(codes).astype(np.float64)
        logit = np.log(p / (1 - p + 1e-9) + 1e-9)
        s = 0.0 if tracks is None else np.asarray(tracks)[:, :1]
        return (1 / (1 + np.exp(-(logit + 1.5 * np.tanh(s - 7.0))))).astype(np.float32)


def test_table_vs_exact_track_model(sim_small, tmp_path):
    adata, genome, truth = sim_small
    a = adata[:150, :300].copy()
    sfp.pp.smooth(a, n_neighbors=20)
    sfp.pp.add_sequences(a, genome, width=400)  # cropped to the model's 300 bp
    m = ToyTrackModel(truth.tfs[:4])
    errs = {}
    exact = sfp.tl.predict_tf_binding(a, model=m, n_levels=None, correct_bias=False, copy=True, verbose=False)
    assert m.calls >= a.layers["smoothed"].nnz  # one pass per (cell, accessible peak)
    E = exact.obsm["tf_activity"].to_numpy()
    for n in (4, 16, 64):
        m.calls = 0
        t = sfp.tl.predict_tf_binding(a, model=m, n_levels=n, correct_bias=False, copy=True, verbose=False)
        assert m.calls <= a.n_vars * (n + 1)  # the (peak, level) table, whatever the cells
        errs[n] = np.abs(t.obsm["tf_activity"].to_numpy() - E).max()
        assert t.varm["tf_binding_levels"].shape[:2] == (a.n_vars, len(t.uns["tf_activity"]["levels"]))
    assert errs[64] < errs[4]
    assert errs[16] < 0.02 * np.abs(E).max() + 1e-3
    # per-cell probabilities come from the stored table
    df = sfp.tl.cell_tf_binding(t, [0])
    assert len(df) == a.layers["smoothed"][0].nnz and "signal" in df.columns
    # everything written is h5ad-safe, and per-cell reads work after a round trip
    t.write_h5ad(tmp_path / "t.h5ad")
    back = ad.read_h5ad(tmp_path / "t.h5ad")
    pd.testing.assert_frame_equal(sfp.tl.cell_tf_binding(back, [0]), df)


def test_track_model_expected_background_and_only_z(sim_small):
    """A track model's second pass (deviations after the per-peak binding): background='expected' and the
    store options give the z-scores of the sampled run's statistic without the other outputs."""
    adata, genome, truth = sim_small
    a = adata[:150, :300].copy()
    sfp.pp.smooth(a, n_neighbors=20)
    sfp.pp.add_sequences(a, genome, width=400)
    m = ToyTrackModel(truth.tfs[:4])
    kw = {"model": m, "n_levels": 8, "verbose": False, "copy": True}
    sampled = sfp.tl.predict_tf_binding(a, n_background=200, **kw)
    exp = sfp.tl.predict_tf_binding(a, background="expected", store_raw=False, store_deviation=False, **kw)
    assert exp.uns["tf_activity"]["params"]["model_kind"] == "accessibility-track"
    assert not {"tf_activity_raw", "tf_activity_deviation"} & set(exp.obsm)
    assert "tf_activity_background_peaks" not in exp.varm
    np.testing.assert_allclose(exp.varm["tf_binding"], sampled.varm["tf_binding"])
    zs, ze = sampled.obsm["tf_activity"].to_numpy(), exp.obsm["tf_activity"].to_numpy()
    np.testing.assert_array_equal(np.isnan(zs), np.isnan(ze))
    ok = np.isfinite(zs)
    assert np.corrcoef(zs[ok], ze[ok])[0, 1] > 0.98  # 200 drawn sets against their limit


def test_mudata_and_errors(sim_small):
    adata, genome, truth = sim_small
    a = adata[:80, :200].copy()
    m = md.MuData({"atac": a})
    sfp.tl.predict_tf_binding(m, genome=genome, tfs=["GATA1", "SPI1"], layer="X", verbose=False)
    assert "tf" in m.mod and m.mod["tf"].shape == (80, 2)
    assert m["atac"].uns["tf_activity"]["params"]["layer"] == "X"
    with pytest.raises(ValueError, match="method"):
        sfp.tl.predict_tf_binding(a.copy(), genome=genome, method="nope")
    with pytest.raises(ValueError, match="genome"):
        sfp.tl.predict_tf_binding(adata[:10, :20].copy(), tfs=["GATA1"])
    with pytest.raises(TypeError, match="lacks"):
        sfp.tl.predict_tf_binding(a.copy(), model=object())
    with pytest.raises(ValueError, match="n_levels"):
        sfp.tl.predict_tf_binding(a.copy(), genome=genome, n_levels=0)
    # inputs are validated before anything is written (sequences are read from the genome last)
    b = adata[:10, :20].copy()
    with pytest.raises(KeyError, match="layers"):
        sfp.tl.predict_tf_binding(b, genome=genome, tfs=["GATA1"], layer="nope")
    with pytest.raises(KeyError, match="not in the model"):
        sfp.tl.predict_tf_binding(b, model=ShortWindowModel(["GATA1"]), genome=genome, tfs=["SPI1"])
    assert "dna_code" not in b.varm and "tf_activity" not in b.obsm and "tf_activity" not in b.uns


@pytest.mark.slow  # imports torch + scvi-tools (~20 s)
def test_scfan_model_object(sim_small):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    adata, genome, truth = sim_small
    a = adata[:60, :40].copy()
    sfp.pp.smooth(a, n_neighbors=10)
    model = sfp.models.SCFAN(
        tf_names=["GATA1", "SPI1", "CTCF"], window=200, n_tracks=1, track_names=["accessibility"]
    )
    sfp.tl.predict_tf_binding(a, model=model, genome=genome, n_levels=8, tfs=["SPI1", "CTCF"], verbose=False)
    assert a.obsm["tf_activity"].shape == (60, 2)
    assert a.uns["tf_activity"]["params"]["model_kind"] == "accessibility-track"
    assert a.uns["tf_activity"]["params"]["n_levels"] == len(a.uns["tf_activity"]["levels"]) <= 8


class ShortWindowModel:
    """A sequence-only model with a 100-bp window (like the shipped pretrained CNN): peaks are tiled."""

    name = "short_window"

    def __init__(self, tfs):
        self.motif = MotifModel(tfs)
        self.tf_names = list(tfs)
        self.input_spec = {"window": 100, "n_tracks": 0, "track_names": []}

    def predict_codes(self, codes, tracks=None, *, batch_size=256):
        assert codes.shape[1] == 100
        return self.motif.scan_codes(codes)  # raw best score: the max over tiles is the max over the peak


def test_sequence_model_tiles_long_peaks(sim_small):
    adata, genome, truth = sim_small
    a = adata[:50, :120].copy()
    sfp.pp.add_sequences(a, genome, width=500)
    m = ShortWindowModel(["GATA1", "CTCF"])
    sfp.tl.predict_tf_binding(a, model=m, layer="X", verbose=False)
    full = m.motif.scan_codes(a.varm["dna_code"])
    # tiles of 100 bp with 50-bp steps cover every motif occurrence shorter than 50 bp
    np.testing.assert_allclose(a.varm["tf_binding"].to_numpy(), full, rtol=1e-5, atol=1e-4)


def test_bf16_precision_for_deep_models_only(sim_small):
    """precision='bf16' reaches a deep model's predict_codes (values within bfloat16's ~1e-2 of float32);
    the motif model refuses it before anything is written."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    adata, genome, truth = sim_small
    a = adata[:40, :30].copy()
    sfp.pp.add_sequences(a, genome, width=200)
    model = sfp.models.SCFAN(tf_names=["GATA1", "CTCF"], window=200, n_tracks=0)
    kw = {"model": model, "layer": "X", "correct_bias": False, "verbose": False, "copy": True}
    p32 = sfp.tl.predict_tf_binding(a, **kw)
    p16 = sfp.tl.predict_tf_binding(a, precision="bf16", **kw)
    assert p16.uns["tf_activity"]["params"]["precision"] == "bf16"
    b32, b16 = p32.varm["tf_binding"].to_numpy(), p16.varm["tf_binding"].to_numpy()
    assert np.abs(b16 - b32).max() < 2e-2 and not np.array_equal(b16, b32)
    before = set(a.obsm) | set(a.uns) | set(a.varm)
    with pytest.raises(ValueError, match="float32 only"):
        sfp.tl.predict_tf_binding(a, tfs=["GATA1"], precision="bf16", verbose=False)
    with pytest.raises(ValueError, match="precision must be"):
        sfp.tl.predict_tf_binding(a, model=model, precision="fp16", verbose=False)
    assert set(a.obsm) | set(a.uns) | set(a.varm) == before
