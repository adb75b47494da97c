"""How strongly does each cell's capture depend on a peak's GC content? Real cells against the simulator.

The simulator's GC bias model (``sfp.datasets.simulate_scatac(gc_bias_sd=...)``) gives each cell a capture
slope ``b[c] ~ N(0, gc_bias_sd)`` (log-rate change per +0.1 GC). This script estimates the spread of that
slope the same way on real cells and on simulated ones, so the simulator's setting can be read against
real data:

- counts binarised (a cell has the peak or not); expected ``E[c, p]`` = the cell's number of peaks times
  the peak's share within the cell's own type (so type-specific accessibility is not read as bias);
- per cell, a one-step Poisson score estimate of the slope on ``g[p] = (GC[p] - mean) / 0.1``:
  ``b[c] = sum_p g (y - E) / sum_p g^2 E``;
- the spread of ``b`` minus its spread when ``g`` is permuted across peaks (20 permutations: the noise of
  the estimate), in quadrature: the bias spread.

Real cells: chromVAR's GM12878/H1 counts (50 cells) with the GC of the known bases of the partial hg19
(peaks with at most ``--max-n`` N; GC from a part of the peak is noisier, which lowers the estimate).
Simulator: the TF-activity benchmark's regime (1,200 cells, 4,000 peaks, 6 types, counts capped at 2) at
several ``gc_bias_sd``.

Usage: ``python benchmarks/gc_capture_bias.py --genome /tmp/hg19p/hg19_partial.fa``
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse as sp
from bench_tf_activity_real import load_buenrostro2015, simulator_settings


def peak_gc(chrom, start, end, fasta) -> tuple[np.ndarray, np.ndarray]:
    """GC share of the known bases and N share of each peak."""
    import pyfaidx

    f = pyfaidx.Fasta(str(fasta), sequence_always_upper=True)
    gc, nf = np.full(len(chrom), np.nan), np.ones(len(chrom))
    for i, (c, s, e) in enumerate(zip(chrom, start, end)):
        q = str(f[c][int(s) : int(e)])
        n = q.count("N")
        nf[i] = n / max(len(q), 1)
        if len(q) > n:
            gc[i] = (q.count("G") + q.count("C")) / (len(q) - n)
    return gc, nf


def bias_spread(X, labels, gc, rng, n_perm: int = 20) -> tuple[float, float, float]:
    """(sd of the slopes, sd under permuted GC, bias sd = sqrt(difference of variances))."""
    Y = (sp.csr_matrix(X) > 0).astype(np.float64).toarray()
    g = (gc - gc.mean()) / 0.1
    E = np.zeros_like(Y)
    for t in np.unique(labels):
        m = labels == t
        share = Y[m].sum(0) + 0.5
        E[m] = Y[m].sum(1, keepdims=True) * share / share.sum()

    def slopes(gg):
        return ((Y - E) * gg).sum(1) / (E * gg**2).sum(1)

    b = slopes(g)
    null = np.array([slopes(rng.permutation(g)).std() for _ in range(n_perm)])
    return float(b.std()), float(null.mean()), float(np.sqrt(max(b.var() - (null**2).mean(), 0.0)))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--genome", required=True, help="partial hg19 FASTA (build_partial_hg19.py)")
    p.add_argument("--max-n", type=float, nargs="+", default=[0.5, 0.3])
    p.add_argument("--sim-bias", type=float, nargs="+", default=[0.0, 0.3, 0.5, 1.0])
    args = p.parse_args(argv)

    import scfanpy as sfp

    rng = np.random.default_rng(0)
    real = load_buenrostro2015()
    X, labels = real.X, real.obs["cell_type"].astype(str).to_numpy()
    gc, nf = peak_gc(real.var["chr"], real.var["start"], real.var["end"], args.genome)
    print("| cells | peaks used | slope sd | permuted-GC sd | GC capture bias sd |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for max_n in args.max_n:
        ok = (nf <= max_n) & np.isfinite(gc)
        ok &= np.asarray((X > 0).sum(0)).ravel() > 0
        s = bias_spread(X[:, ok], labels, gc[ok], rng)
        print(f"| GM12878/H1, peaks <= {max_n:.0%} N | {ok.sum()} | {s[0]:.3f} | {s[1]:.3f} | {s[2]:.3f} |")
    for b in args.sim_bias:
        sim = sfp.datasets.simulate_scatac(**{**simulator_settings("gcsim_r"), "gc_bias_sd": b})
        a = sim.adata
        gc_s, _ = peak_gc(a.var["chr"], a.var["start"], a.var["end"], sim.genome)
        s = bias_spread(a.X, a.obs["cell_type"].astype(str).to_numpy(), gc_s, rng)
        print(f"| simulator, gc_bias_sd={b} | {a.n_vars} | {s[0]:.3f} | {s[1]:.3f} | {s[2]:.3f} |")


if __name__ == "__main__":
    main()
