"""Command line: ``scfanpy predict`` (TF activity of an .h5ad) and ``scfanpy demo`` (the whole pipeline on simulated data)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from ._version import __version__

    p = argparse.ArgumentParser(
        prog="scfanpy",
        description="Single-cell TF binding and TF activity from scATAC-seq (scFAN) on the scverse stack.",
    )
    p.add_argument("--version", action="version", version=f"scfanpy {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    pr = sub.add_parser(
        "predict",
        help="TF binding and per-cell TF activity of a cells x peaks .h5ad",
        description="Smooth (neighbour pseudo-bulk), score the peaks with a TF-binding model and write the "
        "TF activity to obsm['tf_activity'] (and varm['tf_binding']).",
    )
    pr.add_argument(
        "input", help="cells x peaks AnnData (.h5ad) with chr:start-end peak names or var chr/start/end"
    )
    pr.add_argument(
        "--genome", required=False, help="genome FASTA (needed unless varm['dna_code'] is present)"
    )
    pr.add_argument(
        "--model", default="motif", help="'motif' (JASPAR, default), 'pretrained', or a pretrained model name"
    )
    pr.add_argument("--tfs", default=None, help="comma-separated TFs (default: all of the model's)")
    pr.add_argument(
        "--method", default="probability", choices=["probability", "scfan"], help="activity score"
    )
    pr.add_argument(
        "--n-neighbors", type=int, default=100, help="neighbours of the pseudo-bulk (0: no smoothing)"
    )
    pr.add_argument(
        "--use-rep", default=None, help="obsm key of the latent space for the neighbours (default LSI)"
    )
    pr.add_argument("--n-levels", type=int, default=16, help="signal levels of the (peak, level) table")
    pr.add_argument("-o", "--output", required=True, help="output .h5ad")

    de = sub.add_parser(
        "demo",
        help="simulate scATAC-seq and run the whole pipeline, writing an .h5ad and figures",
        description="Simulate data with planted JASPAR motifs, smooth, predict TF activity, cluster on it, "
        "rank key TFs and plot; prints the agreement with the simulator's truth.",
    )
    de.add_argument("--out", default="scfanpy_demo", help="output folder (default ./scfanpy_demo)")
    de.add_argument("--n-cells", type=int, default=1000)
    de.add_argument("--n-peaks", type=int, default=2000)
    de.add_argument("--n-neighbors", type=int, default=50)
    de.add_argument(
        "--random-state", "--seed", dest="random_state", type=int, default=0, help="seed of every random step"
    )
    return p


def _predict(args) -> int:
    import anndata as ad

    import scfanpy as sfp

    adata = ad.read_h5ad(args.input)
    tfs = [t.strip() for t in args.tfs.split(",")] if args.tfs else None
    if args.n_neighbors > 0 and "smoothed" not in adata.layers:
        sfp.pp.smooth(adata, n_neighbors=args.n_neighbors, use_rep=args.use_rep)
    model = None if args.model in ("motif", "jaspar") else args.model
    sfp.tl.predict_tf_binding(
        adata, model=model, genome=args.genome, tfs=tfs, method=args.method, n_levels=args.n_levels
    )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(args.output)
    print(f"wrote {args.output}: obsm['tf_activity'] {adata.obsm['tf_activity'].shape}")
    return 0


def run_demo(
    out: str | Path = "scfanpy_demo",
    *,
    n_cells: int = 1000,
    n_peaks: int = 2000,
    n_neighbors: int = 50,
    random_state: int = 0,
) -> dict:
    """Simulate, smooth, predict, cluster on TF activity, rank key TFs and plot; files go to ``out``.

    Parameters
    ----------
    out
        Output folder (created).
    n_cells, n_peaks
        Size of the simulated data.
    n_neighbors
        Neighbours of the pseudo-bulk (:func:`scfanpy.pp.smooth`).
    random_state
        Seed of the simulation, the neighbour graph, Leiden and UMAP.

    Returns
    -------
    result : dict
        ``h5ad`` (path), ``figures`` (name -> path), ``ari`` and ``spearman`` (scores against the truth).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import scanpy as sc
    from scipy.stats import spearmanr
    from sklearn.metrics import adjusted_rand_score

    import scfanpy as sfp

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sc.settings.figdir = out
    adata, genome, truth = sfp.datasets.simulate_scatac(
        n_cells=n_cells, n_peaks=n_peaks, random_state=random_state
    )
    sfp.pp.smooth(adata, n_neighbors=n_neighbors)
    sfp.tl.predict_tf_binding(adata, genome=genome, tfs=truth.tfs, verbose=False)
    tfa = sfp.tl.tf_activity_adata(adata, scale=True)
    sc.pp.neighbors(tfa, use_rep="X", n_neighbors=15, random_state=random_state, transformer="sklearn")
    sc.tl.leiden(tfa, resolution=0.3, flavor="igraph", n_iterations=2, random_state=random_state)
    sc.tl.umap(tfa, random_state=random_state)
    adata.obs["leiden_tf"] = tfa.obs["leiden"].to_numpy()
    adata.obsm["X_umap_tf"] = tfa.obsm["X_umap"]
    sfp.tl.rank_tfs(adata, "leiden_tf")
    ari = float(adjusted_rand_score(adata.obs["cell_type"], adata.obs["leiden_tf"]))
    rho = {t: float(spearmanr(adata.obsm["tf_activity"][t], truth.activity[t]).statistic) for t in truth.tfs}

    figs = {}
    sc.pl.umap(tfa, color=["cell_type", "leiden"] + truth.tfs[:4], show=False, ncols=3)
    figs["umap"] = out / "umap_tf_activity.png"
    plt.savefig(figs["umap"], bbox_inches="tight", dpi=110)
    plt.close("all")
    sfp.pl.tf_activity_matrixplot(adata, "cell_type", show=False)
    figs["matrixplot"] = out / "matrixplot_tf_activity.png"
    plt.savefig(figs["matrixplot"], bbox_inches="tight", dpi=110)
    plt.close("all")
    sfp.pl.rank_tfs(adata, n_tfs=5, show=False)
    figs["rank_tfs"] = out / "rank_tfs.png"
    plt.savefig(figs["rank_tfs"], bbox_inches="tight", dpi=110)
    plt.close("all")
    sfp.pl.tf_binding(adata, show=False)
    figs["tf_binding"] = out / "tf_binding.png"
    plt.savefig(figs["tf_binding"], bbox_inches="tight", dpi=110)
    plt.close("all")

    h5 = out / "demo.h5ad"
    adata.uns["demo_scores"] = {
        "ari_leiden_tf_vs_cell_type": ari,
        "spearman": np.array([rho[t] for t in truth.tfs]),
    }
    adata.write_h5ad(h5)
    print(f"scfanpy demo: {n_cells} cells x {n_peaks} peaks, {len(truth.tfs)} TFs (JASPAR motif model)")
    print(f"  ARI of Leiden clusters on TF activity vs true cell types: {ari:.3f}")
    print("  Spearman(predicted, true activity): " + ", ".join(f"{t} {r:.2f}" for t, r in rho.items()))
    print(f"  wrote {h5} and {len(figs)} figures to {out}/")
    return {"h5ad": h5, "figures": figs, "ari": ari, "spearman": rho}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scfanpy`` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "predict":
        return _predict(args)
    if args.command == "demo":
        run_demo(
            args.out,
            n_cells=args.n_cells,
            n_peaks=args.n_peaks,
            n_neighbors=args.n_neighbors,
            random_state=args.random_state,
        )
        return 0
    parser.error(f"unknown command {args.command}")  # pragma: no cover
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
