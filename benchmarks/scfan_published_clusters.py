"""How well do the original scFAN's published per-cell TF activities cluster the cells? The anchor row.

The original scFAN (sperfu/scFAN, ``example/``) published its per-cell TF activity scores for Buenrostro 2018
(2,034 bone-marrow cells, 11 FACS labels) and Corces 2016 (2,210 cells, 21 labels), from each of its three
bulk models (GM12878: 33 TFs, H1: 31, K562: 60), with a t-SNE. Those scores were computed on complete hg19
sequence and on each cell's neighbour-smoothed accessibility (the paper's pseudo-bulk). This script
scores them with the TF-activity benchmark's metrics (``bench_tf_activity_real.ari_at_k`` and ``purity``),
each TF standardised across cells, per model, for the three models side by side, and for the published t-SNE.

Usage: ``python benchmarks/scfan_published_clusters.py``
"""

from __future__ import annotations

import numpy as np
from bench_tf_activity_real import _env, ari_at_k, purity

MODELS = ("GM12878", "H1", "K562")


def main() -> None:
    from sklearn.preprocessing import StandardScaler

    sfp = _env()
    print("| data set | representation | TFs | ARI | purity |")
    print("| --- | --- | ---: | ---: | ---: |")
    for dataset in ("buenrostro2018", "corces2016"):
        runs = {m: sfp.datasets.scfan_tf_activity(dataset, m) for m in MODELS}
        labels = runs["K562"].obs["cell_type"].astype(str).to_numpy()
        reps = {
            f"scFAN {m} model": StandardScaler().fit_transform(np.asarray(a.X, dtype=np.float64))
            for m, a in runs.items()
        }
        reps["scFAN, the three models side by side"] = np.hstack(list(reps.values()))
        reps["scFAN's published t-SNE"] = np.asarray(runs["K562"].obsm["X_tsne_scfan"])
        for name, x in reps.items():
            n_tfs = "" if "t-SNE" in name else x.shape[1]
            print(
                f"| {dataset} ({len(set(labels))} labels) | {name} | {n_tfs} | {ari_at_k(x, labels):.3f} | "
                f"{purity(x, labels):.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
