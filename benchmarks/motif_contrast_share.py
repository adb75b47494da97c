"""How much of a peak's cell-type contrast do the motifs explain? Real cells against the simulator.

For two cell types, each peak's log fold change of pseudo-bulk accessibility (counts summed over the type's
cells, 0.5 added, per-type library size) is predicted from the peak's binding weights of every motif (the
weights of ``sfp.tl.predict_tf_binding``: ``max(2 P - 1, 0)``; ridge regression, 5-fold cross-validated
R^2). The contrast is itself noisy, so its reliability is measured too: the correlation of the fold changes
of two random halves of each type's cells (mean of 5 splits), Spearman-Brown corrected to all cells. The
share of the reproducible contrast the motifs explain is R^2 / reliability.

Peaks: those the bias correction reads (at most 50% N) with at least 10 reads in the two types together.

- Real cells: chromVAR's GM12878/H1 counts (25 + 25 cells) on the partial hg19 (``--genome``);
- simulator: the TF-activity benchmark's ``gcsim_r`` (``bench_tf_activity_real.simulator_settings``), type 0
  against type 1, at the seeds of ``--seeds``.

Usage: ``python benchmarks/motif_contrast_share.py --genome /tmp/hg19p/hg19_partial.fa``
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse as sp
from bench_tf_activity_real import _env, load_buenrostro2015, simulator_settings


def _log_fold_change(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.log((x + 0.5) / x.sum()) - np.log((y + 0.5) / y.sum())


def contrast_share(adata, a: str, b: str, *, n_splits: int = 5, seed: int = 0) -> dict:
    """R^2 of the motif weights on the ``a`` vs ``b`` fold changes, their reliability and the share.

    ``adata`` has been through ``predict_tf_binding`` (``varm['tf_binding']``, ``var['usable_sequence']``) and
    has counts in ``X`` and ``obs['cell_type']``.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, cross_val_predict

    from scfanpy.tl._correction import peak_weights

    labels = adata.obs["cell_type"].astype(str).to_numpy()
    X = sp.csr_matrix(adata.X)
    ia, ib = np.flatnonzero(labels == a), np.flatnonzero(labels == b)

    def sums(rows):
        return np.asarray(X[rows].sum(0)).ravel()

    ca, cb = sums(ia), sums(ib)
    keep = adata.var["usable_sequence"].to_numpy().astype(bool) & (ca + cb >= 10)
    y = _log_fold_change(ca, cb)[keep]
    w = peak_weights(np.asarray(adata.varm["tf_binding"], dtype=np.float64), keep)[keep]
    ridge = RidgeCV(alphas=np.logspace(-2, 4, 13))
    pred = cross_val_predict(ridge, w, y, cv=KFold(5, shuffle=True, random_state=seed))
    r2 = 1.0 - np.mean((y - pred) ** 2) / np.var(y)
    rng = np.random.default_rng(seed)
    rs = []
    for _ in range(n_splits):
        pa, pb = rng.permutation(ia), rng.permutation(ib)
        halves = [_log_fold_change(sums(pa[h::2]), sums(pb[h::2]))[keep] for h in (0, 1)]
        rs.append(np.corrcoef(*halves)[0, 1])
    r = float(np.mean(rs))
    reliability = 2.0 * r / (1.0 + r)
    return {"peaks": int(keep.sum()), "r2": float(r2), "reliability": reliability, "share": r2 / reliability}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--genome", required=True, help="partial hg19 FASTA (build_partial_hg19.py)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = p.parse_args(argv)
    sfp = _env()
    runs = [("GM12878 vs H1", load_buenrostro2015(), "GM", "H1", args.genome)]
    for seed in args.seeds:
        sim = sfp.datasets.simulate_scatac(**simulator_settings("gcsim_r", seed))
        runs.append((f"simulator gcsim_r, seed {seed}: type 0 vs 1", sim.adata, "type0", "type1", sim.genome))
    print("| cells | peaks | motif R^2 | reliability | share explained |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, adata, a, b, genome in runs:
        sfp.tl.predict_tf_binding(adata, genome=str(genome), tf_neighbors=0, verbose=False)
        s = contrast_share(adata, a, b)
        print(
            f"| {name} | {s['peaks']} | {s['r2']:.3f} | {s['reliability']:.3f} | {s['share']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
