"""pl.attribution_logo and pl.variant_effects draw what tl wrote and return their axes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from scfanpy.tl._attribution import Attribution


def _attribution_with_site() -> tuple[Attribution, dict]:
    """A track whose contributions sit on a GATA-like site (AGATAAGG at 20..27, forward strand)."""
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, (2, 50)).astype(np.uint8)
    site = np.array([0, 2, 0, 3, 0, 0, 2, 2], np.uint8)
    codes[0, 20:28] = site
    values = rng.normal(0, 0.02, (2, 1, 50, 4)).astype(np.float32)
    values[0, 0, np.arange(20, 28), site] += 1.0
    values -= values.mean(-1, keepdims=True)
    pwm = np.full((8, 4), 0.02)
    pwm[np.arange(8), site] = 0.94
    motifs = {"GATA_like": pwm, "other": np.roll(pwm, 1, axis=1)}
    return Attribution(values, codes, ["GATA1"], ["a", "b"], "ism"), motifs


def test_attribution_logo_with_matched_motif():
    import anndata as ad

    import scfanpy as sfp
    from scfanpy.tl._model_motifs import align_motif

    res, motifs = _attribution_with_site()
    name, score, offset, strand = align_motif(res.values[0, 0], motifs)
    assert (name, offset, strand) == ("GATA_like", 20, "+") and score > 0.8
    rc = {"rc": motifs["GATA_like"][::-1, ::-1]}
    assert align_motif(res.values[0, 0], rc)[2:] == (20, "-")

    axes = sfp.pl.attribution_logo(res, "a", "GATA1", motifs=motifs, show=False)
    assert len(axes) == 2 and axes[1].get_title().startswith("GATA_like")
    assert axes[0].get_title() == "a: GATA1 (ism)"
    plt.close("all")
    a = ad.AnnData(np.zeros((1, 2), np.float32))
    a.uns["att"] = res.to_dict()
    axes = sfp.pl.attribution_logo(a, 1, 0, start=10, end=40, match=False, key="att", show=False)
    assert len(axes) == 1 and axes[0].get_xlim()[1] <= 40
    plt.close("all")
    with pytest.raises(KeyError, match="not in this attribution"):
        sfp.pl.attribution_logo(res, 0, "SPI1", show=False)
    plt.close("all")


def test_variant_effects_plot(tmp_path):
    import scfanpy as sfp

    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "variant": np.repeat([f"v{i}" for i in range(30)], 2),
            "tf": np.tile(["GATA1", "SPI1"], 30),
            "delta_logodds": rng.normal(0, 1, 60),
        }
    )
    ax = sfp.pl.variant_effects(df, n=10, show=False)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    top = (df["variant"] + " " + df["tf"])[np.argsort(-np.abs(df["delta_logodds"].to_numpy()))[:10]]
    assert len(labels) == 10 and set(labels) == set(top) and ax.get_xlabel() == "delta_logodds"
    plt.close("all")
    grouped = pd.concat([df.assign(group=g, weighted_effect=rng.normal(0, 1, 60)) for g in ["ery", "mono"]])
    ax = sfp.pl.variant_effects(grouped, n=5, save=str(tmp_path / "v.png"), show=False)
    assert ax.get_xlabel() == "weighted_effect" and (tmp_path / "v.png").exists()
    assert len(ax.get_legend().get_texts()) == 2
    plt.close("all")
    ax = sfp.pl.variant_effects(grouped, group="ery", value="delta_logodds", show=False)
    assert ax.get_legend() is not None and len(ax.get_legend().get_texts()) == 1
    plt.close("all")
    with pytest.raises(KeyError, match="not in the table"):
        sfp.pl.variant_effects(df, value="weighted_effect", show=False)
