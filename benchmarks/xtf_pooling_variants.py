"""Variants of ``X_tf``'s pooled pass, scored from one captured run of the one call per data set.

``sfp.tl.predict_tf_binding`` makes ``X_tf`` in two steps (``tf_neighbors``): the PCA of the cells' own
z-scores (one TF per archetype), then the z-scores of each cell's counts summed over its ``k`` nearest cells
in that first PCA, and their PCA (30 components). This script runs the one call once, keeps its inputs and
corrected z-scores, and scores other choices for the second step on the same data: ``k`` (5-30), repeating
the step (neighbours searched again in the pooled ``X_tf``, counts pooled again), and the number of
components (10, 20, 50). Metrics as in ``bench_tf_activity_real.py``: ARI of Leiden clusters at the number
of labels, and purity (share of a cell's 10 nearest cells with its label).

Usage: ``python benchmarks/xtf_pooling_variants.py --dataset gcsim_c --seed 0`` (simulated sets) or
``--dataset buenrostro2015 --genome /tmp/hg19p/hg19_partial.fa`` (the partial hg19, or its shuffled build).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import bench_tf_activity_real as bench


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--genome", default="", help="FASTA for the real data sets")
    p.add_argument("--work", default="/tmp/xtf_variants")
    args = p.parse_args(argv)
    import anndata as ad

    sfp = bench._env()
    from scfanpy.tl import _predict
    from scfanpy.tl._representation import tf_representation

    tag = Path(args.genome).name if args.genome else "sim"
    work = Path(args.work) / f"{args.dataset}_{args.seed}_{tag}"
    work.mkdir(parents=True, exist_ok=True)
    genome = bench.prepare(args.dataset, work, args.seed).get("genome", args.genome)
    adata = ad.read_h5ad(work / "adata.h5ad")
    labels = adata.obs["cell_type"].astype(str).to_numpy()

    captured = {}
    one_call_step = _predict._archetypes

    def capture(inp, res, **kw):  # the one call's own step, then keep what it worked on
        one_call_step(inp, res, **kw)
        captured.update(inp=inp, res=res)

    _predict._archetypes = capture
    sfp.tl.predict_tf_binding(adata, genome=genome, verbose=False)
    _predict._archetypes = one_call_step
    inp, res = captured["inp"], captured["res"]

    arch = res.archetype.reindex(inp.tf_names).to_numpy()
    first, sel = tf_representation(res.correction.z, archetype=arch, random_state=0)

    def pooled_z(x, k):  # the one call's pooled step, from other neighbours
        return _predict._pooled_z(inp, res, sel, x, k, chunk_size=10_000, random_state=0)

    rows = {}

    def score(name, x):
        rows[name] = (round(bench.ari_at_k(x, labels), 3), round(bench.purity(x, labels), 3))
        print(f"| {name} | {rows[name][0]} | {rows[name][1]} |", flush=True)

    print(f"{args.dataset} seed {args.seed} {tag}\n| X_tf | ARI | purity |\n| --- | ---: | ---: |")
    score("first step only (tf_neighbors=0)", first)
    score("the one call's obsm['X_tf']", adata.obsm["X_tf"])
    for k in (5, 10, 15, 20, 30):
        z = pooled_z(first, k)
        second = tf_representation(z, random_state=0)[0]
        score(f"k={k}", second)
        if k in (10, 20):
            third = tf_representation(pooled_z(second, k), random_state=0)[0]
            score(f"k={k}, step repeated once", third)
            score(f"k={k}, step repeated twice", tf_representation(pooled_z(third, k), random_state=0)[0])
        if k == 10:
            for n in (10, 20, 50):
                score(f"k=10, {n} components", tf_representation(z, n_comps=n, random_state=0)[0])
    (work / "variants.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
