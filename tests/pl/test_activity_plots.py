import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import scanpy as sc

import scfanpy as sfp


@pytest.fixture(scope="module")
def scored(sim_small):
    adata, genome, truth = sim_small
    a = adata[:200, :300].copy()
    sfp.pp.smooth(a, n_neighbors=20)
    sfp.tl.predict_tf_binding(a, genome=genome, tfs=truth.tfs, verbose=False)
    tfa = sfp.tl.tf_activity_adata(a, scale=True)
    sc.pp.neighbors(tfa, use_rep="X", n_neighbors=10)
    sc.tl.umap(tfa, maxiter=20)
    a.obsm["X_umap"] = tfa.obsm["X_umap"]
    sfp.tl.rank_tfs(a, "cell_type")
    return a, truth


@pytest.mark.parametrize(
    "fn",
    [
        "embedding",
        "heatmap",
        "matrixplot",
        "dotplot",
        "rank",
        "binding_violin",
        "binding_heatmap",
        "binding_acc",
    ],
)
def test_plots(scored, fn, tmp_path):
    a, truth = scored
    if fn == "embedding":
        sfp.pl.tf_activity_embedding(a, ["GATA1", "cell_type"], show=False)
    elif fn == "heatmap":
        sfp.pl.tf_activity_heatmap(a, "cell_type", show=False)
    elif fn == "matrixplot":
        sfp.pl.tf_activity_matrixplot(a, "cell_type", truth.tfs[:4], show=False)
    elif fn == "dotplot":
        sfp.pl.tf_activity_dotplot(a, "cell_type", show=False)
        sfp.pl.tf_activity_dotplot(a, "cell_type", scale=False, show=False)
    elif fn == "rank":
        sfp.pl.rank_tfs(a, n_tfs=3, show=False)
    elif fn == "binding_violin":
        ax = sfp.pl.tf_binding(a, show=False, save=str(tmp_path / "b.png"))
        assert (tmp_path / "b.png").exists() and len(ax.get_xticklabels()) == 8
    elif fn == "binding_heatmap":
        sfp.pl.tf_binding(a, ["GATA1", "SPI1"], kind="heatmap", show=False)
    else:
        axs = sfp.pl.tf_binding(a, ["GATA1", "SPI1", "CTCF"], kind="accessibility", show=False)
        assert axs.shape == (1, 3)
    plt.close("all")


def test_plot_errors(scored):
    a, _ = scored
    with pytest.raises(KeyError, match="obsm"):
        sfp.pl.tf_activity_embedding(a, "GATA1", basis="tsne")
    with pytest.raises(KeyError, match="without activity"):
        sfp.pl.tf_activity_matrixplot(a, "cell_type", ["NOPE"])
    with pytest.raises(ValueError, match="kind"):
        sfp.pl.tf_binding(a, kind="pie")


def test_plots_on_published_scfan_scores():
    k562 = sfp.datasets.scfan_tf_activity("buenrostro2018", "K562")
    sfp.tl.rank_tfs(k562, "cell_type")
    sfp.pl.rank_tfs(k562, n_tfs=3, show=False)
    sfp.pl.tf_activity_matrixplot(k562, "cell_type", ["TAL1", "EGATA", "CEBPB", "PU1"], show=False)
    k562.obsm["X_tsne"] = k562.obsm["X_tsne_scfan"]
    sfp.pl.tf_activity_embedding(k562, ["TAL1", "CEBPB"], basis="tsne", show=False)
    plt.close("all")
