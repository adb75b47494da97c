"""sfp.pl.training_curves / roc_pr_curves / filter_logos: what each draws (computed by sfp.tl)."""

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


def test_roc_pr_curves(planted, tmp_path):
    import scfanpy as sfp

    m, a = planted
    b = a.copy()
    sfp.tl.roc_pr(m, b, split="test")
    axes = sfp.pl.roc_pr_curves(b, show=False, save=str(tmp_path / "r.png"))
    assert (tmp_path / "r.png").stat().st_size > 0
    ev = m.evaluate(split="test")
    leg = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert leg == [f"{tf} ({ev.loc[tf, 'auroc']:.3f})" for tf in ("MAX", "OTHER")]
    leg_pr = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert leg_pr == [f"{tf} ({ev.loc[tf, 'auprc']:.3f})" for tf in ("MAX", "OTHER")]
    assert len(axes[0].lines) == 3 and len(axes[1].lines) == 2  # two TFs (+ the ROC diagonal)
    curves = b.uns["roc_pr"]["curves"]
    np.testing.assert_array_equal(axes[0].lines[0].get_xdata(), curves["MAX"]["fpr"])
    np.testing.assert_array_equal(axes[1].lines[1].get_ydata(), curves["OTHER"]["precision"])
    assert axes[0].get_xlabel() == "false positive rate" and axes[1].get_ylabel() == "precision"
    assert axes[0].get_title() == "ROC (AUROC)" and axes[1].get_title() == "precision-recall (AUPRC)"
    axes = sfp.pl.roc_pr_curves(b, tfs="OTHER", show=False)
    assert [ln.get_label() for ln in axes[1].lines] == [leg_pr[1]]
    with pytest.raises(KeyError, match="roc_pr"):
        sfp.pl.roc_pr_curves(a, show=False)
    with pytest.raises(KeyError, match="not evaluated"):
        sfp.pl.roc_pr_curves(b, tfs=["NOPE"], show=False)


def test_filter_logos_factornet_gabpa(tmp_path):
    """Imported FactorNet GABPA filters are ETS motifs; the logo titles name their closest JASPAR motif."""
    import scfanpy as sfp

    m = sfp.models.FACTORNET.from_keras(sfp.datasets.factornet_weights("GABPA"))
    tab = sfp.tl.filter_motifs(m, n_filters=3)
    top = tab.sort_values("information", ascending=False).iloc[0]
    assert top["jaspar"].upper().startswith(ETS), tab[["jaspar", "similarity"]]
    axes = sfp.pl.filter_logos(tab, ncols=2, show=False, save=str(tmp_path / "l.png"))
    assert (tmp_path / "l.png").stat().st_size > 0
    assert axes.shape == (2, 2) and not axes[1, 1].get_visible()
    titles = [ax.get_title() for ax in axes.flat[:3]]
    for (f, row), title in zip(tab.iterrows(), titles, strict=True):
        rc = "" if row["strand"] == "+" else ", rc"
        assert title == f"filter {f}: {row['jaspar']} ({row['similarity']:.2f}{rc})"
    # one logo per filter: a glyph per (column, base) of its matrix, on a 0-2 bit axis
    for ax, pfm in zip(axes.flat[:3], tab["pfm"], strict=True):
        assert len(ax.patches) == 4 * len(pfm)
        assert ax.get_ylim() == (0, 2)
