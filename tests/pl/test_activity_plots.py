import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
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
    A = a.obsm["tf_activity"]
    types = sorted(a.obs["cell_type"].astype(str).unique())
    if fn == "embedding":
        axs = sfp.pl.tf_activity_embedding(a, ["GATA1", "cell_type"], show=False)
        assert [ax.get_title() for ax in axs] == ["GATA1", "cell_type"]
        (dots,) = axs[0].collections
        assert len(dots.get_offsets()) == a.n_obs
        np.testing.assert_allclose(np.sort(dots.get_array()), np.sort(A["GATA1"]), rtol=1e-5)
    elif fn == "heatmap":
        axs = sfp.pl.tf_activity_heatmap(a, "cell_type", show=False)
        hm = axs["heatmap_ax"]
        assert [t.get_text() for t in hm.get_xticklabels()] == truth.tfs
        assert hm.images[0].get_array().shape == (a.n_obs, len(truth.tfs))
        assert axs["groupby_ax"].get_ylabel() == "cell_type"
    elif fn == "matrixplot":
        axs = sfp.pl.tf_activity_matrixplot(a, "cell_type", truth.tfs[:4], show=False)
        mp = axs["mainplot_ax"]
        assert [t.get_text() for t in mp.get_xticklabels()] == truth.tfs[:4]
        assert [t.get_text() for t in mp.get_yticklabels()] == types
        # colours: the mean z-scored activity per cell type
        z = sfp.tl.tf_activity_adata(a, scale=True).to_df()[truth.tfs[:4]]
        means = z.groupby(a.obs["cell_type"].astype(str).to_numpy()).mean().loc[types].to_numpy()
        np.testing.assert_allclose(
            np.asarray(mp.collections[0].get_array()).reshape(means.shape), means, atol=1e-5
        )
    elif fn == "dotplot":
        for scale in (True, False):
            axs = sfp.pl.tf_activity_dotplot(a, "cell_type", scale=scale, show=False)
            mp = axs["mainplot_ax"]
            assert [t.get_text() for t in mp.get_xticklabels()] == truth.tfs
            assert len(mp.collections[0].get_offsets()) == len(types) * len(
                truth.tfs
            )  # one dot per (type, TF)
            title = "mean TF activity\n(z-score)" if scale else "mean TF activity"
            assert axs["color_legend_ax"].get_title() == title
    elif fn == "rank":
        axs = sfp.pl.rank_tfs(a, n_tfs=3, show=False)
        assert [ax.get_title() for ax in axs] == [f"{t} vs. rest" for t in types]
        top = sfp.tl.top_tfs(a, n=3)
        for ax, t in zip(axs, types, strict=True):
            assert [x.get_text() for x in ax.texts] == list(top.loc[t])
    elif fn == "binding_violin":
        ax = sfp.pl.tf_binding(a, show=False, save=str(tmp_path / "b.png"))
        assert (tmp_path / "b.png").exists() and len(ax.get_xticklabels()) == 8
        assert [t.get_text() for t in ax.get_xticklabels()] == truth.tfs
        assert ax.get_ylabel() == "binding probability" and ax.get_title() == "TF binding across peaks"
        bodies = [
            c for c in ax.collections if type(c).__name__ in ("PolyCollection", "FillBetweenPolyCollection")
        ]
        assert len(bodies) == 8  # one violin per TF
    elif fn == "binding_heatmap":
        ax = sfp.pl.tf_binding(a, ["GATA1", "SPI1"], kind="heatmap", show=False)
        M = ax.images[0].get_array()
        B = a.varm["tf_binding"][["GATA1", "SPI1"]].to_numpy()
        assert M.shape == (a.n_vars, 2) and ax.get_ylabel() == f"{a.n_vars} peaks"
        np.testing.assert_allclose(np.sort(M, 0), np.sort(B, 0))  # the peaks, reordered
        assert (np.diff(M.argmax(1)) >= 0).all()  # grouped by their best TF
        assert [t.get_text() for t in ax.get_xticklabels()] == ["GATA1", "SPI1"]
    else:
        tfs = ["GATA1", "SPI1", "CTCF"]
        axs = sfp.pl.tf_binding(a, tfs, kind="accessibility", show=False)
        assert axs.shape == (1, 3)
        assert [ax.get_title() for ax in axs.flat] == tfs
        for ax, t in zip(axs.flat, tfs, strict=True):
            y = ax.collections[0].get_offsets()[:, 1]
            np.testing.assert_allclose(y, a.varm["tf_binding"][t].to_numpy(), rtol=1e-6)
            assert ax.get_ylabel() == "P(bound)"
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
    axs = sfp.pl.rank_tfs(k562, n_tfs=3, show=False)
    groups = list(k562.uns["rank_tfs"]["names"].dtype.names)
    assert [ax.get_title() for ax in axs] == [f"{g} vs. rest" for g in groups]
    assert [x.get_text() for x in axs[groups.index("CMP")].texts][0] == "TAL1"
    axs = sfp.pl.tf_activity_matrixplot(k562, "cell_type", ["TAL1", "EGATA", "CEBPB", "PU1"], show=False)
    assert [t.get_text() for t in axs["mainplot_ax"].get_xticklabels()] == ["TAL1", "EGATA", "CEBPB", "PU1"]
    k562.obsm["X_tsne"] = k562.obsm["X_tsne_scfan"]
    axs = sfp.pl.tf_activity_embedding(k562, ["TAL1", "CEBPB"], basis="tsne", show=False)
    assert [ax.get_title() for ax in axs] == ["TAL1", "CEBPB"]
    assert len(axs[0].collections[0].get_offsets()) == k562.n_obs
    plt.close("all")


def test_rank_tfs_effects_draws_effects_and_q_values(sim_scored):
    import matplotlib.pyplot as plt

    a, _, truth = sim_scored
    b = a.copy()
    sfp.tl.rank_tfs(b, "cell_type", key_added="rk_plot")
    axes = sfp.pl.rank_tfs_effects(b, key="rk_plot", n_tfs=3, ncols=2, show=False)
    st = sfp.tl.top_tfs(b, n=3, key="rk_plot", stats=True)
    groups = list(dict.fromkeys(st["group"]))
    assert axes.shape == (2, 2) and [ax.get_title() for ax in axes.flat] == groups
    for ax, g in zip(axes.flat, groups):
        sub = st[st["group"] == g].iloc[::-1]
        widths = [p.get_width() for p in ax.patches]
        np.testing.assert_allclose(widths, sub["effect"].to_numpy(), rtol=1e-6)
        assert [t.get_text() for t in ax.get_yticklabels()] == list(sub["tf"])
        assert all("q=" in t.get_text() for t in ax.texts) and len(ax.texts) == 3
    plt.close("all")
    with pytest.raises(KeyError, match="rank_tfs"):
        sfp.pl.rank_tfs_effects(b, key="missing")
