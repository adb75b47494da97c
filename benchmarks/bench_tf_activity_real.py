"""Benchmark: does the TF activity name the right TFs? Real cells with real sequence, and the GC-bias simulator.

Side by side in one run, each method in its own process (wall time and peak RSS from ``/usr/bin/time``):

- ``scfanpy``: the one call ``sfp.tl.predict_tf_binding(adata, genome=...)`` (sequences, k-NN smoothing,
  all JASPAR CORE vertebrate motifs, bias-corrected z-scores); its uncorrected score (``tf_activity_raw``)
  and ``X_tf`` are read from the same run;
- ``scfanpy_shuffled``: the same call on the dinucleotide-shuffled genome (same coverage, no real motifs):
  the control; what survives shuffling does not come from the sequence;
- ``chromvar``: pychromvar (GC bias, background peaks, MOODS motif matches of the same JASPAR motifs,
  deviations z-scores);
- ``lsi``: LSI of the peaks (no TFs), for the clustering reference;
- ``chromvar_shuffled`` and ``chromvar_usable`` (controls, not in the default ``--methods``): chromVAR on the
  shuffled genome, and on only the peaks with at most 50% N (the peaks our correction reads). On the partial
  hg19 the known bases of a mostly-N peak are a ChIP-bound window of one of a few cell lines, so which peaks
  have sequence at all carries cell-type information; these two rows measure how much of chromVAR's figure
  comes from that rather than from motifs;
- ``scfanpy_permuted`` and ``chromvar_permuted`` (controls, not in the default): each method with each peak
  given another peak's coordinates (one seeded permutation), so the motifs it reads are unrelated to its
  counts; the control for the simulated sets, which have no shuffled genome.

Metrics: ARI of Leiden clusters at the number of labels (k-NN on each representation), purity (the share
of each cell's 10 nearest cells with its label: steadier than the ARI on small sets), and key-TF hits:
for each labelled type with a known lineage TF family, whether one of its TFs is among the 5 TFs with the
largest mean difference (type vs rest). Families are regular expressions over JASPAR names (below).

Data sets (``--dataset``):
- ``buenrostro2015``: chromVAR's example counts, GM12878 vs H1 (50 cells, 29,269 hg19 peaks), from
  ``../shared/data/scatac/buenrostro2015_gm12878_h1``; needs ``--genome`` = the partial hg19 of
  ``python ../shared/tools/build_partial_hg19.py --out DIR`` (and ``--shuffled`` its ``--shuffle 1`` build);
- ``granja2019``: 600 hematopoietic cells (6 types) x 5,000 peaks (only ~1.4% of its peaks have >= 50% real
  sequence in the partial hg19: a weak check);
- ``schep2017``: 600 cells, 12 labels (9 with a known lineage family) x 5,036 peaks: the independent
  evaluation set (42% of its peak bases have real sequence); report on it, never tune on it;
- ``gcsim``: ``simulate_scatac`` with the GC bias model (6 types, one TF programme each, GC-rich motifs active
  everywhere, 2% non-zeros).
- ``gcsim_c``: ``gcsim`` with each count capped at 2 (``max_count=2``): the simulator's Poisson draws are
  heavy-tailed (mean 28 per non-zero, single entries above 10^5), real cells have a few fragments per peak;
- ``gcsim_n``: the same model in the regime of the Schep 2017 subset's inputs (not its results): 600 cells x
  5,000 peaks at 22% non-zeros (Schep: 22.5%, 1,011 non-zeros per cell), counts capped at 2 (mean 1.51 per
  non-zero; Schep: 1.52), and 58% of the peaks all N in the genome both methods read (Schep: 42% of its
  peak bases carry real sequence), chosen at random.

Usage: ``python benchmarks/bench_tf_activity_real.py --dataset buenrostro2015 --genome DIR/hg19_partial.fa
--shuffled DIR/hg19_partial.shuf1.fa``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FAMILIES = {
    "buenrostro2015": {
        "GM": r"^(EBF|PAX5|IRF[48]|REL|RELA|RELB|NFKB|POU2F2|SPI1|SPIB|ETS1|ELF|FLI1|RUNX3|MEF2)",
        "H1": r"^(POU5F1|Pou5f1|SOX2|NANOG|ZIC|TEAD|OTX2|POU2F1::SOX2)",
    },
    "granja2019": {
        "B": r"^(EBF|PAX5|IRF[48]|REL|RELA|RELB|NFKB|POU2F2|SPIB|MEF2C)",
        "CD8.N": r"^(TCF7|LEF1|RUNX|ETS1|TBX21|EOMES)",
        "GMP": r"^(CEBP|SPI1|Spi1)",
        "HSC": r"^(GATA2|HLF|MEIS|HOXA9|Hoxa9|ERG|FLI1|RUNX1)",
        "CMP.LMPP": r"^(GATA2|HLF|MEIS|HOXA9|Hoxa9|ERG|FLI1|RUNX1|CEBP|SPI1|Spi1)",
        "CLP.2": r"^(TCF3|TCF4|TCF12|Tcf12|EBF|RUNX|IKZF1)",
    },
}
# the independent real-cell check (issue text): erythroid GATA/TAL1; HL60 and monocytes SPI1/CEBP; LCL
# EBF/IRF/NF-kB/PAX; H1 (ESCs) POU/SOX; fibroblasts AP-1. Evaluation only: never tuned on.
_AP1 = r"^(FOS|JUN|Jun|FOSL|BATF|Atf3|ATF3|JDP2)"
_ERY = r"^(GATA|Gata|TAL1)"
_MYE = r"^(SPI1|Spi1|CEBP)"
_LCL = r"^(EBF|Ebf|IRF|Irf|REL|RELA|RELB|NFKB|PAX)"
FAMILIES["schep2017"] = {
    "Erythroblast": _ERY,
    "K562 Erythroleukemia": _ERY,
    "HL60 Leukemia": _MYE,
    "Monocyte": _MYE,
    "LCL 1": _LCL,
    "LCL 2 Rep1": _LCL,
    "LCL 2 Rep2": _LCL,
    "ESCs": r"^(POU|Pou|SOX|Sox)",
    "Fibroblasts": _AP1,
}
GCSIM_KEY = ["GATA1", "CEBPB", "SPI1", "EBF1", "POU5F1", "FOSL2"]
GCSIM_UBIQ = ["CTCF", "SP1", "KLF4", "ZNF263"]


def simulator_settings(dataset: str, seed: int = 0) -> dict:
    """``simulate_scatac`` arguments of a ``gcsim*`` data set (``benchmarks/gc_capture_bias.py`` uses them).

    ``seed`` draws another data set of the same model (another genome, motif sites and cells).
    """
    hard = dataset == "gcsim_n"
    return {
        "n_cells": 600 if hard else 1200,
        "n_peaks": 5000 if hard else 4000,
        "n_cell_types": 6,
        "tfs": GCSIM_KEY + GCSIM_UBIQ,
        "ubiquitous": tuple(GCSIM_UBIQ),
        "motif_rate": 0.06,
        "gc_sd": 0.08,
        "gc_accessibility": 0.5,
        "gc_bias_sd": 0.3 if dataset in ("gcsim_r", "gcsim_h") else 1.0,
        "effect": 0.7 if dataset == "gcsim_h" else 2.5,
        "n_active": 2 if dataset == "gcsim_h" else 1,
        "target_density": 0.22 if hard else 0.03,
        "max_count": None if dataset == "gcsim" else 2,
        "random_state": int(seed),
    }


def _env():
    os.environ.setdefault("SCFANPY_DATA_DIR", "/tmp/sfpcache")
    import scfanpy as sfp

    if SHARED.is_dir():
        sfp.datasets.seed_cache(SHARED)
    return sfp


# -------------------------------------------------------------------------------------------- data
def load_buenrostro2015():
    """chromVAR's GM12878/H1 example counts (MTX export in shared/data) as AnnData.

    ``X`` float32 CSR cells x peaks, ``obs['cell_type']`` (``GM`` / ``H1``), ``var['chr', 'start', 'end']``.
    """
    import anndata as ad
    import pandas as pd
    import scipy.io
    import scipy.sparse as sp

    d = SHARED / "scatac" / "buenrostro2015_gm12878_h1"
    X = sp.csr_matrix(scipy.io.mmread(d / "counts_peaks_x_cells.mtx").T.astype(np.float32))
    meta = pd.read_csv(d / "cell_metadata.tsv", sep="\t", index_col=0)
    bed = pd.read_csv(d / "peaks.bed", sep="\t", header=None)
    var = pd.DataFrame({"chr": bed[0].to_numpy(), "start": bed[1].to_numpy(), "end": bed[2].to_numpy()})
    var.index = [f"{c}:{s}-{e}" for c, s, e in zip(var.chr, var.start, var.end)]
    return ad.AnnData(X, obs=meta.rename(columns={"Cell_Type": "cell_type"}), var=var)


def prepare(dataset: str, work: Path, seed: int = 0) -> dict:
    """Write ``work/adata.h5ad`` (counts, ``obs['cell_type']``, ``var['chr', 'start', 'end']``)."""

    sfp = _env()
    info: dict = {}
    if dataset == "buenrostro2015":
        adata = load_buenrostro2015()
    elif dataset == "granja2019":
        adata = sfp.datasets.granja2019()
    elif dataset == "schep2017":
        adata = sfp.datasets.schep2017()
    elif dataset.startswith("gcsim"):
        hard = dataset == "gcsim_n"
        adata, genome, truth = sfp.datasets.simulate_scatac(**simulator_settings(dataset, seed))
        key = {ct: [t for t in GCSIM_KEY if truth.active.loc[ct, t]] for ct in truth.active.index}
        if hard:
            genome = _masked_genome(genome, adata.var, 0.58, work / "genome_masked.fa")
        info = {"genome": str(genome), "key": key}
    else:
        raise ValueError(dataset)
    adata.obs["cell_type"] = adata.obs["cell_type"].astype(str)
    adata.write_h5ad(work / "adata.h5ad")
    return info


def _masked_genome(src, var, fraction: float, out: Path, seed: int = 0) -> Path:
    """``src`` with a random ``fraction`` of the peaks of ``var`` (chr, start, end) written as N."""
    from scfanpy.genome import read_fasta

    seqs = {k: bytearray(v.encode()) for k, v in read_fasta(src).items()}
    rng = np.random.default_rng(seed)
    for i in np.flatnonzero(rng.random(len(var)) < fraction):
        c, a, b = var["chr"].iloc[i], int(var["start"].iloc[i]), int(var["end"].iloc[i])
        seqs[c][a:b] = b"N" * (b - a)
    with open(out, "w") as f:
        for k, v in seqs.items():
            f.write(f">{k}\n")
            for lo in range(0, len(v), 60):
                f.write(v[lo : lo + 60].decode() + "\n")
    return out


# ----------------------------------------------------------------------------------------- children
def child(method: str, work: Path, genome: str) -> None:
    import anndata as ad

    sfp = _env()
    adata = ad.read_h5ad(work / "adata.h5ad")
    t0 = time.perf_counter()
    out = {}
    if method.endswith("_permuted"):  # each peak reads another peak's sequence: motifs unlinked to counts
        perm = np.random.default_rng(0).permutation(adata.n_vars)
        for c in ("chr", "start", "end"):
            adata.var[c] = adata.var[c].to_numpy()[perm]
    if method.startswith("scfanpy"):
        sfp.tl.predict_tf_binding(adata, genome=genome, verbose=False)
        for k in ("tf_activity", "tf_activity_raw"):
            out[k] = adata.obsm[k].to_numpy()
        out["X_tf"] = adata.obsm["X_tf"]
        out["tfs"] = np.array(adata.obsm["tf_activity"].columns, dtype=object)
        out["usable"] = np.array([adata.var["usable_sequence"].mean()])
        arch = adata.uns["tf_activity"]["archetypes"]
        out["archetype"] = np.array([arch[t] for t in out["tfs"]], dtype=object)
    elif method.startswith("chromvar"):
        import pychromvar as pc
        import scipy.sparse as sp
        from pyjaspar import jaspardb

        adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
        adata = adata[:, np.asarray(adata.X.sum(0)).ravel() > 0].copy()
        adata.var_names = [f"{c}-{s}-{e}" for c, s, e in zip(adata.var.chr, adata.var.start, adata.var.end)]
        pc.add_peak_seq(adata, genome_file=genome, delimiter="-")
        if method == "chromvar_usable":  # only the peaks our correction reads (at most 50% N)
            from scfanpy.genome import encode_sequences
            from scfanpy.tl._correction import MAX_N_FRACTION
            from scfanpy.tl._deviations import peak_composition

            seqs = adata.uns["peak_seq"]
            n_frac = [peak_composition(c[None, :])[1][0] for c in encode_sequences(seqs)]
            keep = np.asarray(n_frac) <= MAX_N_FRACTION
            adata = adata[:, keep].copy()
            adata.uns["peak_seq"] = [s for s, k in zip(seqs, keep) if k]
        pc.add_gc_bias(adata)
        pc.get_bg_peaks(adata, n_jobs=1)
        motifs = list(
            jaspardb(release="JASPAR2024").fetch_motifs(collection="CORE", tax_group=["vertebrates"])
        )
        pc.match_motif(adata, motifs=motifs)
        dev = pc.compute_deviations(adata, n_jobs=1)
        out[method] = np.asarray(dev.X, dtype=np.float32)
        out["tfs"] = np.array([m.name for m in motifs], dtype=object)
    elif method == "lsi":
        out["lsi"] = sfp.pp.lsi(adata.X, n_comps=30)
    out["t_run"] = np.array([time.perf_counter() - t0])
    np.savez(work / f"{method}.npz", **out)


def run_child(method: str, work: Path, genome: str) -> dict:
    cmd = ["/usr/bin/time", "-v", sys.executable, __file__, "_child", method, str(work), genome]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr)
    rss = int(m.group(1)) / 1024**2 if m else float("nan")
    if res.returncode != 0:
        return {
            "ok": False,
            "error": res.stderr.split("Command being timed")[0][-600:],
            "wall": wall,
            "rss": rss,
        }
    z = np.load(work / f"{method}.npz", allow_pickle=True)
    return {"ok": True, "wall": wall, "rss": rss, **{k: z[k] for k in z.files}}


# -------------------------------------------------------------------------------------------- scoring
def ari_at_k(X: np.ndarray, labels: np.ndarray) -> float:
    import anndata as ad
    import scanpy as sc
    from sklearn.metrics import adjusted_rand_score

    X = np.nan_to_num(np.asarray(X, dtype=np.float32))
    b = ad.AnnData(X)
    sc.pp.neighbors(b, use_rep="X", n_neighbors=min(15, len(X) - 1), transformer="sklearn", random_state=0)
    k_true, best = len(set(labels)), None
    for res in (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2, 1.6, 2.0):
        sc.tl.leiden(b, resolution=res, flavor="igraph", n_iterations=2, random_state=0, key_added="l")
        k = b.obs["l"].nunique()
        if best is None or abs(k - k_true) < best[0]:
            best = (abs(k - k_true), adjusted_rand_score(labels, b.obs["l"]))
    return float(best[1])


def purity(X: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Share of each cell's ``k`` nearest other cells (Euclidean) that have its label, averaged.

    Steadier than Leiden's ARI on small sets (on the 50 GM12878/H1 cells, ARIs of near-identical
    representations move by +-0.3 with Leiden's resolution grid). Chance: the labels' squared shares.
    """
    from sklearn.neighbors import NearestNeighbors

    X = np.nan_to_num(np.asarray(X, dtype=np.float32))
    k = min(k, len(X) - 1)
    idx = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X, return_distance=False)
    own = idx == np.arange(len(X))[:, None]
    own[~own.any(1), -1] = True  # duplicates can push a cell out of its own list: drop the farthest
    same = labels[idx] == labels[:, None]
    return float(same[~own].reshape(len(X), k).mean())


def top5(A: np.ndarray, tfs, labels, n: int = 5) -> dict:
    out = {}
    for ct in sorted(set(labels)):
        m = labels == ct
        eff = np.nanmean(A[m], 0) - np.nanmean(A[~m], 0)
        out[ct] = [str(tfs[i]) for i in np.argsort(-np.nan_to_num(eff, nan=-np.inf))[:n]]
    return out


def archetype_tops(A: np.ndarray, tfs, archetype: dict, labels, n: int = 5) -> dict:
    """Per type, the member TFs of the ``n`` archetypes with the largest mean difference (type vs rest).

    The archetype's activity is that of its most variable member (``sfp.tl.rank_tfs(level='archetype')``);
    a hit counts when any member of a top archetype belongs to the family, so a list of five AP-1
    variants counts once and leaves room for four other motif families.
    """
    import pandas as pd

    from scfanpy.tl._correction import archetype_activity

    arch = pd.Series([archetype.get(str(t), str(t)) for t in tfs], index=[str(t) for t in tfs])
    B, _ = archetype_activity(np.where(np.isnan(A), 0.0, A), arch)
    tops = top5(B.to_numpy(), list(B.columns), labels, n)
    return {ct: [m for a in names for m in arch.index[arch == a]] for ct, names in tops.items()}


def hits(tops: dict, dataset: str, info: dict, first: int | None = 3) -> tuple[int, int]:
    if dataset.startswith(
        "gcsim"
    ):  # the type's programme TF among its top 3 (``first=None``: the whole list)
        key = info["key"]
        up = {ct: [t.upper() for t in tops[ct][:first]] for ct in key}  # JASPAR spells some names Spi1
        return sum(any(t.upper() in up[ct] for t in key[ct]) for ct in key), len(key)
    fam = FAMILIES[dataset]
    n = sum(any(re.match(fam[ct], t, re.I) for t in tops[ct]) for ct in tops if ct in fam)
    return n, sum(ct in fam for ct in tops)


# ------------------------------------------------------------------------------------------------ main
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--dataset",
        choices=[
            "buenrostro2015",
            "granja2019",
            "schep2017",
            "gcsim",
            "gcsim_c",
            "gcsim_n",
            "gcsim_r",
            "gcsim_h",
        ],
        required=True,
    )
    p.add_argument("--genome", help="partial hg19 FASTA (real data sets)")
    p.add_argument("--shuffled", help="its dinucleotide-shuffled build (control)")
    p.add_argument("--methods", default="scfanpy,scfanpy_shuffled,chromvar,lsi")
    p.add_argument("--work", default="/tmp/bench_tfa_real")
    p.add_argument("--seed", type=int, default=0, help="gcsim data sets: the simulator's seed")
    args = p.parse_args(argv)
    import anndata as ad

    work = Path(args.work) / (args.dataset + (f"_seed{args.seed}" if args.seed else ""))
    work.mkdir(parents=True, exist_ok=True)
    info = prepare(args.dataset, work, args.seed)
    genome = info.get("genome", args.genome)
    labels = ad.read_h5ad(work / "adata.h5ad").obs["cell_type"].astype(str).to_numpy()
    rows, tops_all, archetypes = [], {}, {}
    for method in args.methods.split(","):
        g = args.shuffled if method.endswith("_shuffled") else genome
        if method.endswith("_shuffled") and not g:
            continue
        r = run_child(method, work, g or "")
        if not r["ok"]:
            last = (r["error"].strip().splitlines() or ["killed (no error text)"])[-1]
            rows.append(f"| {method} | failed: {last[:120]} | | | | |")
            continue
        reps = {
            "scfanpy": [("corrected z", "tf_activity"), ("uncorrected", "tf_activity_raw"), ("X_tf", "X_tf")],
            "scfanpy_shuffled": [("corrected z, shuffled genome", "tf_activity"), ("X_tf, shuffled", "X_tf")],
            "scfanpy_permuted": [("corrected z, permuted peaks", "tf_activity"), ("X_tf, permuted", "X_tf")],
            "chromvar": [("chromVAR z", "chromvar")],
            "chromvar_shuffled": [("chromVAR z, shuffled genome", "chromvar_shuffled")],
            "chromvar_usable": [("chromVAR z, peaks <= 50% N", "chromvar_usable")],
            "chromvar_permuted": [("chromVAR z, permuted peaks", "chromvar_permuted")],
            "lsi": [("LSI (no TFs)", "lsi")],
        }[method]
        if "archetype" in r:
            archetypes = dict(zip(map(str, r["tfs"]), map(str, r["archetype"])))
        for name, k in reps:
            ari, pur = ari_at_k(r[k], labels), purity(r[k], labels)
            h = ""
            if k not in ("X_tf", "lsi"):
                tops = top5(r[k], r["tfs"], labels)
                tops_all[f"{method}: {name}"] = tops
                n, tot = hits(tops, args.dataset, info)
                h = f"{n}/{tot}"
                if archetypes:  # the same motif families for every method (chromVAR's names are JASPAR's)
                    n_top = 3 if args.dataset.startswith("gcsim") else 5
                    atops = archetype_tops(r[k], r["tfs"], archetypes, labels, n_top)
                    na, _ = hits(atops, args.dataset, info, first=None)
                    h += f"; archetypes {na}/{tot}"
            rows.append(
                f"| {method}: {name} | {ari:.3f} | {pur:.3f} | {h} | {float(r['t_run'][0]):.0f} s ({r['wall']:.0f} s wall) | {r['rss']:.2f} |"
            )
        print(rows[-1], flush=True)
    print(f"\n{args.dataset}: {len(labels)} cells, labels {sorted(set(labels))}\n")
    print(
        "| method: representation | ARI | purity | key-TF hits (top 5; gcsim: top 3); same, per archetype"
        " | time | peak RSS GB |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print("\nTop 5 per type:")
    for name, tops in tops_all.items():
        print(f"- {name}: " + "; ".join(f"{ct}: {', '.join(t)}" for ct, t in tops.items()))
    (work / "result.json").write_text(json.dumps({"rows": rows, "tops": tops_all}, indent=1))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child(sys.argv[2], Path(sys.argv[3]), sys.argv[4])
    else:
        main()
