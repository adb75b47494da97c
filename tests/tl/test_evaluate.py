"""sfp.tl.roc_pr (model evaluation into uns) and sfp.tl.filter_motifs (filters -> JASPAR motifs)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def planted():
    """Random 60-bp sequences; half carry a planted CACGTG (label MAX); a tiny untrained SCFAN."""
    import scfanpy as sfp
    from scfanpy.genome import encode_sequence

    rng = np.random.default_rng(0)
    n, L = 600, 60
    codes = rng.integers(0, 4, (n, L)).astype(np.uint8)
    y = (rng.random(n) < 0.5).astype(np.float32)
    site = encode_sequence("CACGTG")
    for i in np.flatnonzero(y):
        s = rng.integers(0, L - 6)
        codes[i, s : s + 6] = site
    a = ad.AnnData(np.zeros((n, 0), np.float32))
    a.obsm["dna_code"] = codes
    other = rng.random(n).round().astype(np.float32)
    other[:300] = np.nan  # unobserved labels are skipped
    a.obsm["labels"] = pd.DataFrame(
        {"MAX": y, "OTHER": other, "NONE": np.zeros(n, np.float32)}, index=a.obs_names
    )
    a.obs["split"] = np.where(rng.random(n) < 0.5, "train", "test")
    sfp.models.SCFAN.setup_anndata(a)
    torch.manual_seed(0)
    return sfp.models.SCFAN(a, channels=(8, 8, 8), pool=2, n_dense=8), a


def test_roc_pr_matches_evaluate_and_sklearn(planted, tmp_path):
    from sklearn.metrics import roc_curve

    import scfanpy as sfp

    m, a = planted
    b = a.copy()
    sfp.tl.roc_pr(m, b, split="test")
    res = b.uns["roc_pr"]
    ev = m.evaluate(b, split="test")
    pd.testing.assert_frame_equal(res["metrics"], ev, check_dtype=False)
    assert np.isnan(res["metrics"].loc["NONE", "auroc"])  # one class: no curve
    assert set(res["curves"]) == {"MAX", "OTHER"}
    assert res["params"]["split"] == "test" and res["params"]["n_regions"] == (b.obs["split"] == "test").sum()
    # the stored curve is sklearn's on the observed labels of the split
    idx = np.flatnonzero(b.obs["split"] == "test")
    p = m.predict(b, indices=idx)["OTHER"].to_numpy()
    y = b.obsm["labels"]["OTHER"].to_numpy()[idx]
    obs = np.isfinite(y)
    fpr, tpr, _ = roc_curve(y[obs] > 0.5, p[obs])
    np.testing.assert_array_equal(res["curves"]["OTHER"]["fpr"], fpr)
    np.testing.assert_array_equal(res["curves"]["OTHER"]["tpr"], tpr)
    b.write_h5ad(tmp_path / "r.h5ad")  # h5ad-safe
    back = ad.read_h5ad(tmp_path / "r.h5ad")
    np.testing.assert_array_equal(
        back.uns["roc_pr"]["curves"]["MAX"]["recall"], res["curves"]["MAX"]["recall"]
    )


def test_roc_pr_leaves_out_regions_without_sequence(planted, caplog):
    """All-N regions are predicted as NaN by the model: left out of the metrics with a logged count."""
    import logging

    import scanpy as sc

    import scfanpy as sfp

    m, a = planted
    b = a.copy()
    test = np.flatnonzero(b.obs["split"] == "test")
    b.obsm["dna_code"][test[:7]] = 4  # no sequence
    root = sc.settings._root_logger
    root.addHandler(caplog.handler)
    try:
        with pytest.warns(UserWarning, match="probabilities are NaN"):  # the model's own warning
            sfp.tl.roc_pr(m, b, split="test")
    finally:
        root.removeHandler(caplog.handler)
    assert any(
        r.levelno == logging.WARNING and f"7 of {len(test)} regions have no sequence" in r.getMessage()
        for r in caplog.records
    )
    res = b.uns["roc_pr"]
    assert res["params"]["n_no_sequence"] == 7 and res["params"]["n_regions"] == len(test)
    # the same as evaluating only the regions with sequence
    c = a.copy()
    c.obs["split"] = c.obs["split"].astype(str)
    c.obs.iloc[test[:7], c.obs.columns.get_loc("split")] = "train"
    sfp.tl.roc_pr(m, c, split="test")
    pd.testing.assert_frame_equal(res["metrics"], c.uns["roc_pr"]["metrics"])
    assert res["metrics"].loc["MAX", "n"] == len(test) - 7
    assert np.isfinite(res["metrics"].loc[["MAX", "OTHER"], ["auroc", "auprc"]].to_numpy()).all()
    with pytest.warns(UserWarning, match="probabilities are NaN"):
        ev = m.evaluate(b, split="test")
    pd.testing.assert_frame_equal(res["metrics"], ev, check_dtype=False)


def test_roc_pr_options_and_errors(planted):
    import scfanpy as sfp

    m, a = planted
    c = sfp.tl.roc_pr(m, a, split=None, tfs="MAX", key_added="ev", copy=True)
    assert "ev" not in a.uns and list(c.uns["ev"]["metrics"].index) == ["MAX"]
    assert c.uns["ev"]["metrics"].loc["MAX", "n"] == a.n_obs
    with pytest.raises(ValueError, match="split"):
        sfp.tl.roc_pr(m, a, split="nope")
    with pytest.raises(KeyError, match="not in the model"):
        sfp.tl.roc_pr(m, a, tfs=["XYZ"])
    assert "roc_pr" not in a.uns  # nothing written on error


def test_filter_motifs_from_activations():
    """A DanQ-JASPAR filter initialised with REST, scanned over sequences with planted REST sites."""
    import scfanpy as sfp

    jas = sfp.datasets.jaspar_motifs()
    names = ["REST", "CTCF", "MAX", "GATA1", "SPI1", "CEBPB", "HNF4A", "RUNX1", "EBF1", "NRF1"]
    motifs = {k: jas[k] for k in names if k in jas}
    rest = np.asarray(motifs["REST"], dtype=float)
    m = sfp.models.DANQ(
        tf_names=["REST"],
        window=100,
        n_filters=8,
        filter_width=24,
        lstm_hidden=4,
        n_dense=4,
        jaspar_init={"REST": rest},
    )
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, (400, 100)).astype(np.uint8)
    for i in range(0, 400, 2):
        site = np.array([rng.choice(4, p=col / col.sum()) for col in rest], dtype=np.uint8)
        s = rng.integers(0, 100 - len(site))
        codes[i, s : s + len(site)] = site
    tab = sfp.tl.filter_motifs(m, codes, filters=[0, 1], motifs=motifs)
    assert list(tab.index) == [0, 1]
    assert tab.loc[0, "jaspar"] == "REST" and tab.loc[0, "strand"] == "+" and tab.loc[0, "similarity"] > 0.8
    assert tab.loc[1, "jaspar"] == "REST" and tab.loc[1, "strand"] == "-"  # the reverse-complement filter
    assert tab.loc[0, "pfm"].shape == (24, 4)
    np.testing.assert_allclose(tab.loc[0, "pfm"].sum(1), 1.0)
    # without sequences: the column softmax of the weights
    w = m.module.conv.weight.detach().numpy()[0, :4]
    soft = np.exp(w) / np.exp(w).sum(0)
    np.testing.assert_allclose(
        sfp.tl.filter_motifs(m, filters=[0], motifs=motifs).loc[0, "pfm"], soft.T, rtol=1e-5
    )
