"""tl.variant_effects: planted sites on the simulator, VCF reading, ref checks, per-group weights."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest


def _core_and_outside(genome, truth, tf, n, pwm):
    """Variants at the most informative column of ``n`` planted ``tf`` sites (ref -> the PWM's least
    likely base) and, for the same sites, 60 bp upstream (ref -> next base)."""
    ic = (pwm * np.log2(np.clip(pwm, 1e-9, 1) * 4)).sum(1)
    k = int(np.argmax(ic))
    sites = truth.sites[truth.sites.tf == tf].head(n)
    core, out = [], []
    for r in sites.itertuples():
        if r.strand == "+":
            p0, alt = r.start + k, "ACGT"[int(np.argmin(pwm[k]))]
        else:
            p0, alt = r.end - 1 - k, "TGCA"[int(np.argmin(pwm[k]))]
        core.append((r.chr, p0 + 1, genome.fetch(r.chr, p0, p0 + 1), alt))
        q0 = r.start - 60
        ref = genome.fetch(r.chr, q0, q0 + 1)
        out.append((r.chr, q0 + 1, ref, "ACGT"[("ACGT".index(ref) + 1) % 4]))
    cols = ["chrom", "pos", "ref", "alt"]
    return pd.DataFrame(core, columns=cols), pd.DataFrame(out, columns=cols)


def test_core_mutations_weaken_binding_outside_ones_do_not(sim_small):
    """Motif model on 12 planted GATA1 sites: the core mutation lowers GATA1's log-odds at 11 of them
    (by 3.8-4.0 nats, the PWM's loss at that column; at the 12th an equal match overlapping the variant's
    window keeps the best score). 60 bp away, in a 201 bp window that holds the site, the probability
    does not move (|delta_prob| < 1e-3 at all 12: the planted site stays the best match)."""
    import scfanpy as sfp

    _, genome, truth = sim_small
    model = sfp.models.MotifModel(["GATA1", "CTCF"])
    core, outside = _core_and_outside(genome, truth, "GATA1", 12, model.pwms["GATA1"])
    res = sfp.tl.variant_effects(core, model, genome, tfs="GATA1")
    assert len(res) == 12 and (res["tf"] == "GATA1").all() and res["ref_matches"].all()
    assert (res["delta_logodds"] <= 0).all() and (res["delta_logodds"] < -3).sum() >= 10
    assert (res["delta_prob"] <= 0).all() and (res["delta_prob"] < -0.1).sum() >= 9
    far = sfp.tl.variant_effects(outside, model, genome, window=201)
    assert len(far) == 24 and set(far["tf"]) == {"GATA1", "CTCF"}
    g = far[far["tf"] == "GATA1"]
    assert np.abs(g["delta_prob"]).max() < 1e-3 and (g["delta_logodds"] == 0).mean() > 0.8
    assert list(res.columns[:6]) == ["variant", "chrom", "pos", "ref", "alt", "tf"]
    assert res["variant"].iloc[0].count(":") == 2 and ">" in res["variant"].iloc[0]

    bad = core.assign(ref=core["ref"].map({"A": "C", "C": "G", "G": "T", "T": "A"}))
    with pytest.raises(ValueError, match="differs from the genome"):
        sfp.tl.variant_effects(bad, model, genome)
    flagged = sfp.tl.variant_effects(bad, model, genome, tfs=["GATA1"], on_mismatch="flag")
    assert not flagged["ref_matches"].any()


def test_vcf_reading_and_indels(sim_small, tmp_path):
    import scfanpy as sfp
    from scfanpy.tl._variants import read_variants

    _, genome, truth = sim_small
    r = truth.sites.iloc[0]
    b = genome.fetch(r.chr, r.start, r.start + 3)
    lines = [
        "##fileformat=VCFv4.2",
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL",
        f"{r.chr}\t{r.start + 1}\trs1\t{b[0]}\t{'ACGT'[('ACGT'.index(b[0]) + 1) % 4]},{'ACGT'[('ACGT'.index(b[0]) + 2) % 4]}\t.",
        f"{r.chr}\t{r.start + 1}\t.\t{b}\t{b[0]}\t.",  # a deletion
        f"{r.chr}\t{r.start + 1}\t.\t{b[0]}\t<DEL>\t.",  # symbolic: dropped
    ]
    path = tmp_path / "v.vcf.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    tab = read_variants(path)
    assert list(tab["variant"][:2]) == ["rs1", "rs1"] and len(tab) == 3
    assert tab["variant"].iloc[2] == f"{r.chr}:{r.start + 1}:{b}>{b[0]}"
    model = sfp.models.MotifModel(["CTCF"])
    res = sfp.tl.variant_effects(path, model, genome, window=41)
    assert len(res) == 3 and res["ref_matches"].all() and np.isfinite(res["delta_logodds"]).all()
    with pytest.raises(KeyError, match="'alt'"):
        read_variants(pd.DataFrame({"chrom": ["chr1"], "pos": [1], "ref": ["A"]}))


def test_deep_model_averages_both_strands(sim_small):
    pytest.importorskip("torch")
    import torch

    import scfanpy as sfp
    from scfanpy.tl._variants import _reverse_complement, _score

    _, genome, truth = sim_small
    torch.manual_seed(0)
    m = sfp.models.SCFAN(
        tf_names=["GATA1", "B"], window=60, n_tracks=0, channels=(8, 8, 8), pool=2, n_dense=8
    )
    codes = np.random.default_rng(0).integers(0, 4, (4, 60)).astype(np.uint8)
    p, lo = _score(m, codes, 16, None)
    p2, lo2 = _score(m, _reverse_complement(codes), 16, None)
    np.testing.assert_allclose(lo, lo2, atol=1e-5)
    np.testing.assert_allclose(p, p2, atol=1e-6)
    r = truth.sites.iloc[0]
    v = pd.DataFrame(
        {
            "chrom": [r.chr],
            "pos": [r.start + 1],
            "ref": [genome.fetch(r.chr, r.start, r.start + 1)],
            "alt": ["N"],
        }
    )
    res = sfp.tl.variant_effects(v, m, genome)
    assert len(res) == 2 and res["prob_ref"].between(0, 1).all()


def test_per_group_weights(sim_scored):
    """GATA1 core mutations weigh most in the cell types whose program has GATA1 (truth.active)."""
    import scfanpy as sfp

    adata, genome, truth = sim_scored
    model = sfp.models.MotifModel(["GATA1"])
    core, outside = _core_and_outside(genome, truth, "GATA1", 10, model.pwms["GATA1"])
    res = sfp.tl.variant_effects(pd.concat([core, outside]), model, genome, adata=adata, groupby="cell_type")
    groups = list(adata.obs["cell_type"].cat.categories)
    assert len(res) == 20 * len(groups)
    cols = ["group", "peak", "accessibility", "activity", "weighted_effect"]
    assert set(cols) <= set(res.columns)
    assert (res.loc[res["peak"].isna(), "accessibility"] == 0).all()
    per_group = res.groupby("group", observed=True)["weighted_effect"].sum()
    active = truth.active["GATA1"]
    assert per_group[active[active].index].max() < per_group[active[~active].index].min()
    assert (res.loc[res["group"].isin(active[~active].index), "weighted_effect"] > -0.05).all()
    with pytest.raises(ValueError, match="go together"):
        sfp.tl.variant_effects(core, model, genome, adata=adata)
