"""tl.variant_effects on real hg19: ChIP-seq-supported CTCF sites of the chr20 block (issue 15, goal 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

BLOCK = (9_995_001, 11_095_000)  # the real bases of the chr20 block (1-based, inclusive)


def _strong_ctcf_sites(shared, genome, log_odds, n=8):
    """The best CTCF motif match within 100 bp of each H1-hESC CTCF ChIP-seq summit in the block: the ``n`` strongest."""
    pk = pd.read_csv(
        shared / "chip/encode_dream/H1-hESC/ChIPseq.H1-hESC.CTCF.conservative.train.narrowPeak.gz",
        sep="\t",
        header=None,
    )
    pk = pk[(pk[0] == "chr20") & (pk[1] > BLOCK[0] + 200) & (pk[2] < BLOCK[1] - 200)]
    w = len(log_odds)
    strands = {"+": log_odds, "-": log_odds[::-1, ::-1]}
    rows = []
    for start, summit in zip(pk[1], pk[9], strict=True):
        lo = int(start + summit - 100)
        codes = np.array(["ACGT".find(c) for c in genome.fetch("chr20", lo, lo + 200).upper()])
        if (codes < 0).any():
            continue
        scores = [
            (m[np.arange(w), codes[i : i + w]].sum(), lo + i, strand)
            for i in range(200 - w + 1)
            for strand, m in strands.items()
        ]
        rows.append(max(scores))  # the peak's best match
    best = pd.DataFrame(rows, columns=["score", "start", "strand"]).sort_values("score", ascending=False)
    return best.head(n), len(pk)


def _variants(genome, sites, pwm, offset):
    """At each site: its most informative column mutated to the PWM's least likely base (core), and the
    base ``offset`` bp upstream of the site mutated to the next base (outside)."""
    ic = (pwm * np.log2(np.clip(pwm, 1e-9, 1) * 4)).sum(1)
    k, w = int(np.argmax(ic)), len(pwm)
    core, out = [], []
    for r in sites.itertuples():
        if r.strand == "+":
            p0, alt = r.start + k, "ACGT"[int(np.argmin(pwm[k]))]
        else:
            p0, alt = r.start + w - 1 - k, "TGCA"[int(np.argmin(pwm[k]))]
        core.append(("chr20", p0 + 1, genome.fetch("chr20", p0, p0 + 1).upper(), alt))
        q0 = r.start - offset
        ref = genome.fetch("chr20", q0, q0 + 1).upper()
        out.append(("chr20", q0 + 1, ref, "ACGT"[("ACGT".index(ref) + 1) % 4]))
    cols = ["chrom", "pos", "ref", "alt"]
    return pd.DataFrame(core, columns=cols), pd.DataFrame(out, columns=cols)


def test_real_ctcf_sites_core_vs_outside(shared_data):
    """8 strong CTCF sites (best motif matches at H1-hESC CTCF summits, log-odds 9.6-15.6 nats) in real
    hg19. Motif model: the core mutation costs 5.47 nats at every site, a mutation 25 bp away nothing
    (0 exactly: the site stays the best match). The shipped deep model ``danq_multi158`` (101-bp window,
    both strands): core -4.4 to -11.1 logits at all 8; 25 bp away within -1.0 to +1.7 (measured)."""
    import scfanpy as sfp

    fasta = shared_data / "genome/hg19_chr20_block/ucsc.hg19.chr20.unittest.fasta.gz"
    if not fasta.exists():
        pytest.skip(f"{fasta} not found")
    genome = sfp.Genome(fasta)
    motif = sfp.models.MotifModel(["CTCF"])
    sites, n_peaks = _strong_ctcf_sites(shared_data, genome, motif.log_odds["CTCF"])
    assert n_peaks >= 20 and len(sites) == 8 and sites["score"].min() > 9
    core, outside = _variants(genome, sites, motif.pwms["CTCF"], offset=25)

    m_core = sfp.tl.variant_effects(core, motif, genome, tfs="CTCF")
    m_out = sfp.tl.variant_effects(outside, motif, genome, tfs="CTCF", window=201)
    assert m_core["ref_matches"].all() and m_out["ref_matches"].all()
    assert (m_core["delta_logodds"] < -5).all() and (m_core["delta_prob"] <= 0).all()
    assert (m_out["delta_logodds"] == 0).all()

    deep = sfp.models.pretrained("danq_multi158")
    d_core = sfp.tl.variant_effects(core, deep, genome, tfs="CTCF")
    d_out = sfp.tl.variant_effects(outside, deep, genome, tfs="CTCF")
    assert (d_core["prob_ref"] > 0.99).all()  # the model calls every site bound
    assert (d_core["delta_logodds"] < -3).all()  # measured -4.4 to -11.1
    assert np.abs(d_out["delta_logodds"]).max() < 2.5  # measured 1.7
    assert np.median(-d_core["delta_logodds"]) > 5 * np.median(np.abs(d_out["delta_logodds"]))
