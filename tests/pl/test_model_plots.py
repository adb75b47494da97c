"""sfp.pl.training_curves / roc_pr_curves / filter_logos / filter_motifs."""

from __future__ import annotations

import anndata as ad
import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("torch_one_thread")

ETS = ("ELK", "ETV", "ERF", "ETS", "GABPA", "ELF", "FLI", "ERG", "FEV", "SPDEF", "EHF", "ETV")


@pytest.fixture(scope="module")
def planted():
    """Random 60-bp sequences; half carry a planted CACGTG (label 1); a tiny untrained SCFAN with a history."""
    import scfanpy as sfp
    from scfanpy.genome import encode_sequence

    rng = np.random.default_rng(0)
    n, L = 1200, 60
    codes = rng.integers(0, 4, (n, L)).astype(np.uint8)
    y = (rng.random(n) < 0.5).astype(np.float32)
    site = encode_sequence("CACGTG")
    for i in np.flatnonzero(y):
        s = rng.integers(0, L - 6)
        codes[i, s : s + 6] = site
    a = ad.AnnData(np.zeros((n, 0), np.float32))
    a.obsm["dna_code"] = codes
    a.obsm["labels"] = pd.DataFrame(
        {"MAX": y, "OTHER": rng.random(n).round().astype(np.float32)}, index=a.obs_names
    )
    a.obs["split"] = np.where(rng.random(n) < 0.7, "train", np.where(rng.random(n) < 0.5, "valid", "test"))
    sfp.models.SCFAN.setup_anndata(a)
    m = sfp.models.SCFAN(a, channels=(16, 16, 16), pool=2, n_dense=16)
    m.history_ = pd.DataFrame(
        {
            "train_loss": [0.69, 0.5, 0.4],
            "valid_loss": [0.6, 0.45, 0.42],
            "valid_auroc": [0.7, 0.85, 0.9],
            "valid_auprc": [0.65, 0.8, 0.88],
        },
        index=pd.RangeIndex(3, name="epoch"),
    )
    m.best_epoch_ = 2
    return m, a


def test_training_curves(planted, tmp_path):
    import scfanpy as sfp

    m, _ = planted
    axes = sfp.pl.training_curves(m, show=False, save=str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").stat().st_size > 0
    assert len(axes[0].lines) == 2 and len(axes[0].lines[0].get_xdata()) == len(m.history)
    labels = [line.get_label() for line in axes[1].lines]
    assert labels == ["valid AUROC", "valid AUPRC", "kept weights"]
    # a history DataFrame works as well; an untrained model raises
    axes = sfp.pl.training_curves(pd.DataFrame({"train_loss": [0.7, 0.5]}), show=False)
    assert len(axes[0].lines) == 1
    with pytest.raises(ValueError, match="history"):
        sfp.pl.training_curves(sfp.models.SCFAN(tf_names=["a"], window=60, pool=2), show=False)


def test_roc_pr_curves(planted):
    import scfanpy as sfp

    m, a = planted
    axes = sfp.pl.roc_pr_curves(m, split="test", show=False)
    ev = m.evaluate(split="test")
    leg = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert leg[0] == f"MAX ({ev.loc['MAX', 'auroc']:.3f})"
    leg_pr = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert leg_pr[0] == f"MAX ({ev.loc['MAX', 'auprc']:.3f})"
    assert len(axes[0].lines) == 3  # two TFs + diagonal
    with pytest.raises(ValueError, match="split"):
        sfp.pl.roc_pr_curves(m, split="nope", show=False)


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
    tab = sfp.pl.filter_motifs(m, codes, filters=[0, 1], motifs=motifs)
    assert list(tab.index) == [0, 1]
    assert tab.loc[0, "jaspar"] == "REST" and tab.loc[0, "strand"] == "+" and tab.loc[0, "similarity"] > 0.8
    assert tab.loc[1, "jaspar"] == "REST" and tab.loc[1, "strand"] == "-"  # the reverse-complement filter
    assert tab.loc[0, "pfm"].shape == (24, 4)
    np.testing.assert_allclose(tab.loc[0, "pfm"].sum(1), 1.0)


def test_filter_logos_factornet_gabpa(tmp_path):
    """Imported FactorNet GABPA filters are ETS motifs; the logo titles name their closest JASPAR motif."""
    import scfanpy as sfp

    m = sfp.models.FACTORNET.from_keras(sfp.datasets.factornet_weights("GABPA"))
    tab = sfp.pl.filter_motifs(m, n_filters=3)
    top = tab.sort_values("information", ascending=False).iloc[0]
    assert top["jaspar"].upper().startswith(ETS), tab[["jaspar", "similarity"]]
    axes = sfp.pl.filter_logos(m, n_filters=3, ncols=2, show=False, save=str(tmp_path / "l.png"))
    assert axes.shape == (2, 2) and not axes[1, 1].get_visible()
    titles = [ax.get_title() for ax in axes.flat[:3]]
    assert all(t.startswith("filter ") for t in titles)
    assert any(tab.loc[f, "jaspar"] in t for f, t in zip(tab.index, titles, strict=True))
