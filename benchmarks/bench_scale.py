"""Scale benchmark: scfanpy's TF activity against pychromvar at 10^4-10^6 cells x 10^5 peaks, end to end.

Simulated data at 10x-like density, all JASPAR 2024 CORE vertebrate motifs (816, as ``MotifModel(None)``
loads them), every method in its own child process (wall time and peak resident memory, ``VmHWM``):

- ``scfanpy``: ``sfp.tl.predict_tf_binding(adata, genome=fasta)`` with its defaults (sequences from the
  FASTA, k-NN smoothing, all motifs, bias-corrected z-scores). Up to ``--in-memory-max`` cells the h5ad is
  read into memory; above, it is opened backed (``backed='r'``) and handed over as it is (the
  out-of-core path; an error is recorded as the row's note), with the settings ``docs/scale.md``
  recommends for atlases: ``smooth=False, store_raw=False, store_deviation=False,
  background='expected', tf_neighbors=0`` (``--atlas`` applies them in memory too);
- ``pychromvar``: ``add_peak_seq``, ``add_gc_bias``, ``get_bg_peaks``, ``match_motif`` (the same 816
  matrices) and ``compute_deviations``, one job each. ``compute_deviations`` makes ``X`` dense (cells x
  peaks), so the child runs under an address-space cap (``--mem-cap-gb``, ``RLIMIT_AS``, every child gets
  the same): beyond it pychromvar fails with a ``MemoryError``, recorded with the step;
- ``scan-scfanpy`` / ``scan-moods``: the motif scan alone on the same peaks and matrices, once per
  number of peaks (it does not depend on the cells): ``MotifModel.scan_codes`` (``backend='auto'``)
  against MOODS as ``pychromvar.match_motif`` calls it (``bench_motif_scan.py``'s functions).

Data (cached under ``--work``, reused by later runs): a genome of random sequence with the human base
composition (A/T 0.295, C/G 0.205), ``--n-peaks`` peaks of 500 bp (300 bp apart) on 10 chromosomes; counts
as a CSR matrix written to the h5ad in chunks of cells (never whole in memory): per-cell depth and per-peak
accessibility log-normal, 5 cell types each with a type-specific peak set (30% of peaks, 5x more
accessible in their type); each cell draws ``density x n_peaks x depth`` reads over peaks, repeated
peaks becoming counts above 1 (so the realised density is a little below ``--density``; it is reported).

Run::

    python benchmarks/bench_scale.py --sizes 10000 100000 --n-peaks 100000
    python benchmarks/bench_scale.py --quick     # 500 cells x 2,000 peaks x 20 motifs, a smoke test
    python benchmarks/bench_scale.py --table     # the table of every result saved under --work

Each child's result is saved as JSON under ``--work/results``; the markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_motif_scan import (
    BACKGROUND,
    decode,
    jaspar_records,
    moods_pychromvar_setup,
    moods_scan_hits,
    peak_rss_mb,
)

WIDTH, GAP, N_CHROM, N_TYPES = 500, 300, 10, 5
E2E = ("scfanpy", "pychromvar")
SCAN = ("scan-scfanpy", "scan-moods")
NAMES = {
    "scfanpy": "scfanpy",
    "pychromvar": "pychromvar",
    "scan-scfanpy": "scfanpy MotifModel.scan_codes",
    "scan-moods": "MOODS (as pychromvar)",
}


# ------------------------------------------------------------------------------------------- data
def make_genome(work: Path, n_peaks: int, seed: int = 0) -> tuple[Path, Path, Path]:
    """FASTA, peak codes ``(n_peaks, 500)`` (.npy) and peak table (.tsv) for ``n_peaks``; cached."""
    fasta, codes_path, bed = (work / f"genome_{n_peaks}{s}" for s in (".fa", "_codes.npy", "_peaks.tsv"))
    if fasta.exists() and codes_path.exists() and bed.exists():
        return fasta, codes_path, bed
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    per_chrom = np.array_split(np.arange(n_peaks), N_CHROM)
    codes = np.empty((n_peaks, WIDTH), dtype=np.uint8)
    rows = []
    tmp = fasta.with_suffix(".fa.tmp")
    with open(tmp, "wb") as fh:
        for c, idx in enumerate(per_chrom):
            name = f"chr{c + 1}"
            length = GAP + len(idx) * (WIDTH + GAP)
            seq = rng.choice(4, size=length, p=BACKGROUND).astype(np.uint8)
            starts = GAP + np.arange(len(idx)) * (WIDTH + GAP)
            codes[idx] = seq[starts[:, None] + np.arange(WIDTH)]
            rows += [f"{name}\t{s}\t{s + WIDTH}" for s in starts]
            fh.write(f">{name}\n".encode())
            text = letters[seq]
            n_full = len(text) // 60 * 60
            lines = np.hstack(
                [text[:n_full].reshape(-1, 60), np.full((n_full // 60, 1), ord("\n"), np.uint8)]
            )
            fh.write(lines.tobytes())
            if n_full < len(text):
                fh.write(text[n_full:].tobytes() + b"\n")
    np.save(codes_path, codes)
    bed.write_text("chr\tstart\tend\n" + "\n".join(rows) + "\n")
    tmp.rename(fasta)
    return fasta, codes_path, bed


def _peak_model(n_peaks: int, seed: int) -> np.ndarray:
    """Cumulative peak probabilities per cell type ``(N_TYPES, n_peaks)``."""
    rng = np.random.default_rng([seed, 1])
    access = rng.lognormal(0.0, 1.0, n_peaks)
    owner = np.where(rng.random(n_peaks) < 0.3, rng.integers(N_TYPES, size=n_peaks), -1)
    p = np.tile(access, (N_TYPES, 1))
    for t in range(N_TYPES):
        p[t, owner == t] *= 5.0
    cdf = np.cumsum(p, axis=1)
    return cdf / cdf[:, -1:]


def _count_chunk(rng, cdf, types, depth, n_peaks, density):
    """CSR pieces (indptr counts, indices, data) of one chunk of cells."""
    draws = rng.poisson(density * n_peaks * depth)
    keys = []
    for t in range(N_TYPES):
        cells = np.flatnonzero(types == t)
        rows = np.repeat(cells, draws[cells])
        peaks = np.minimum(np.searchsorted(cdf[t], rng.random(len(rows))), n_peaks - 1)
        keys.append(rows.astype(np.int64) * n_peaks + peaks)
    keys, counts = np.unique(np.concatenate(keys), return_counts=True)
    per_cell = np.bincount(keys // n_peaks, minlength=len(types))
    return per_cell, (keys % n_peaks).astype(np.int32), counts.astype(np.float32)


def make_counts(work: Path, n_cells: int, n_peaks: int, density: float, bed: Path, seed: int = 0) -> Path:
    """``counts_<cells>x<peaks>_d<density>.h5ad``: CSR written in chunks of cells with h5py; cached."""
    import anndata as ad
    import h5py
    import pandas as pd

    path = work / f"counts_{n_cells}x{n_peaks}_d{density:g}.h5ad"
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    types = rng.integers(N_TYPES, size=n_cells)
    depth = rng.lognormal(0.0, 0.5, n_cells)
    depth /= depth.mean()
    var = pd.read_csv(bed, sep="\t")
    var.index = [f"{c}:{s}-{e}" for c, s, e in zip(var["chr"], var["start"], var["end"])]
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical([f"type{t}" for t in types])}, index=[f"cell{i}" for i in range(n_cells)]
    )
    tmp = path.with_suffix(".tmp")
    ad.AnnData(obs=obs, var=var).write_h5ad(tmp)
    cdf = _peak_model(n_peaks, seed)
    step = max(1, int(2e7 // max(density * n_peaks, 1)))
    with h5py.File(tmp, "a") as f:
        g = f.create_group("X")
        g.attrs.update(
            {"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": (n_cells, n_peaks)}
        )
        kw = {"shape": (0,), "maxshape": (None,), "chunks": (1 << 20,)}
        d_data = g.create_dataset("data", dtype=np.float32, **kw)
        d_ind = g.create_dataset("indices", dtype=np.int32, **kw)
        indptr = np.zeros(n_cells + 1, dtype=np.int64)
        for ci, lo in enumerate(range(0, n_cells, step)):
            hi = min(n_cells, lo + step)
            crng = np.random.default_rng([seed, 2, ci])
            per_cell, ind, dat = _count_chunk(crng, cdf, types[lo:hi], depth[lo:hi], n_peaks, density)
            indptr[lo + 1 : hi + 1] = indptr[lo] + np.cumsum(per_cell)
            n0 = d_data.shape[0]
            for ds, arr in ((d_data, dat), (d_ind, ind)):
                ds.resize((n0 + len(arr),))
                ds[n0:] = arr
        g.create_dataset("indptr", data=indptr)
    tmp.rename(path)
    return path


# ---------------------------------------------------------------------------------------- children
def motif_records(n_motifs: int | None) -> list:
    """The pyjaspar records of ``MotifModel(None)``'s matrices, the first ``n_motifs`` of them."""
    recs = jaspar_records()
    return recs if n_motifs is None else recs[:n_motifs]


def child_scfanpy(a) -> dict:
    import anndata as ad

    import scfanpy as sfp

    t0 = time.perf_counter()
    backed = a.n_cells > a.in_memory_max
    adata = ad.read_h5ad(a.h5ad, backed="r" if backed else None)
    tfs = None if a.n_motifs is None else [r.name for r in motif_records(a.n_motifs)]
    t1 = time.perf_counter()
    atlas = backed or a.atlas  # docs/scale.md's settings for atlases: no k-NN smoothing, only z kept
    kw = {"smooth": False, "store_raw": False, "store_deviation": False, "background": "expected"}
    kw["tf_neighbors"] = 0  # X_tf without the neighbour pooling (its lazy reads grow as cells^2)
    kw = kw if atlas else {}
    out = {"load_s": t1 - t0, "backed": backed, "settings": kw}
    try:
        sfp.tl.predict_tf_binding(adata, genome=a.genome, tfs=tfs, verbose=a.verbose, **kw)
    except Exception as e:  # noqa: BLE001 - recorded in the table (e.g. backed mode not supported yet)
        return {**out, "ok": False, "step": "predict_tf_binding", "error": f"{type(e).__name__}: {e}"}
    out.update(ok=True, wall_s=time.perf_counter() - t1, n_motifs=int(adata.obsm["tf_activity"].shape[1]))
    return out


def child_pychromvar(a) -> dict:
    import anndata as ad
    import pychromvar as pc
    import scipy.sparse as sp

    t0 = time.perf_counter()
    steps: dict[str, float] = {}
    step = "read"
    try:
        adata = ad.read_h5ad(a.h5ad)
        adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
        adata = adata[:, np.asarray(adata.X.sum(0)).ravel() > 0].copy()  # pychromvar divides by peak sums
        adata.var_names = [f"{c}-{s}-{e}" for c, s, e in zip(adata.var.chr, adata.var.start, adata.var.end)]
        motifs = motif_records(a.n_motifs)
        steps[step] = time.perf_counter() - t0
        t1 = time.perf_counter()
        calls = (
            ("add_peak_seq", lambda: pc.add_peak_seq(adata, genome_file=a.genome, delimiter="-")),
            ("add_gc_bias", lambda: pc.add_gc_bias(adata)),
            ("get_bg_peaks", lambda: pc.get_bg_peaks(adata, n_jobs=1)),
            ("match_motif", lambda: pc.match_motif(adata, motifs=motifs)),
            ("compute_deviations", lambda: pc.compute_deviations(adata, n_jobs=1)),
        )
        for step, call in calls:
            print(f"@step {step} at {time.perf_counter() - t1:.0f} s", file=sys.stderr, flush=True)
            ts = time.perf_counter()
            dev = call()
            steps[step] = time.perf_counter() - ts
    except Exception as e:  # noqa: BLE001 - MemoryError and any other failure, recorded with the step
        return {"ok": False, "step": step, "error": f"{type(e).__name__}: {e}"[:300], "steps": steps}
    return {
        "ok": True,
        "load_s": steps.pop("read"),
        "wall_s": time.perf_counter() - t1,
        "steps": steps,
        "n_motifs": int(dev.shape[1]),
    }


def child_scan(a) -> dict:
    codes = np.load(a.codes)
    recs = motif_records(a.n_motifs)
    t0 = time.perf_counter()
    if a.method == "scan-moods":
        seqs = decode(codes)  # pychromvar holds strings already: not timed
        t0 = time.perf_counter()
        scanner, n_motifs = moods_pychromvar_setup(recs)
        t1 = time.perf_counter()
        moods_scan_hits(scanner, n_motifs, seqs)
    else:
        from scfanpy.models import MotifModel

        model = MotifModel(None if a.n_motifs is None else [r.name for r in recs])
        n_motifs = len(model.tf_names)
        t1 = time.perf_counter()
        model.scan_codes(codes, backend="auto")
    t2 = time.perf_counter()
    mods = sys.modules  # which scan 'auto' chose, from what it imported
    used = "numba" if "scfanpy.models._motif_numba" in mods else "torch" if "torch" in mods else "numpy"
    res = {"ok": True, "setup_s": t1 - t0, "scan_s": t2 - t1, "wall_s": t2 - t0, "n_motifs": n_motifs}
    return {**res, "backend": used if a.method == "scan-scfanpy" else "MOODS"}


def child_main(a) -> None:
    if a.threads:
        try:
            import torch

            torch.set_num_threads(a.threads)
        except ImportError:  # pragma: no cover
            pass
    fn = {"scfanpy": child_scfanpy, "pychromvar": child_pychromvar}.get(a.method, child_scan)
    try:
        res = fn(a)
    except MemoryError as e:  # outside a step's own handler
        res = {"ok": False, "step": "?", "error": f"MemoryError: {e}"}
    res["rss_gb"] = peak_rss_mb() / 1024
    print(json.dumps(res), flush=True)


def _cap(gb: float):
    def preexec():
        os.setsid()  # its own process group: a timeout kills it and its children, nothing else
        if gb > 0:
            lim = int(gb * 1024**3)
            resource.setrlimit(resource.RLIMIT_AS, (lim, lim))

    return preexec


def run_child(method: str, args, n_cells: int | None, n_peaks: int, paths: dict) -> dict:
    """One method in a fresh process under the memory cap and time limit; the result row."""
    cmd = [sys.executable, __file__, "--child", method, "--n-peaks", str(n_peaks)]
    cmd += ["--genome", str(paths["fasta"]), "--codes", str(paths["codes"]), "--threads", str(args.threads)]
    cmd += ["--in-memory-max", str(args.in_memory_max)]
    cmd += ["--atlas"] * args.atlas + ["--verbose"] * args.verbose
    if n_cells is not None:
        cmd += ["--h5ad", str(paths["h5ad"]), "--n-cells", str(n_cells)]
    if args.n_motifs:
        cmd += ["--n-motifs", str(args.n_motifs)]
    env = {**os.environ, **{k: str(args.threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}}
    env.update(OPENBLAS_NUM_THREADS=str(args.threads), NUMBA_NUM_THREADS=str(args.threads))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_cap(args.mem_cap_gb),
    )
    try:
        out, err = proc.communicate(timeout=args.timeout_min * 60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        steps = [ln.split(maxsplit=1)[1] for ln in err.splitlines() if ln.startswith("@step ")]
        step = steps[-1].split()[0] if steps else "?"
        last = f" (last step started: {steps[-1]})" if steps else ""
        res = {
            "ok": False,
            "step": step,
            "error": f"not finished within {args.timeout_min:g} min, killed{last}",
        }
    else:
        try:
            res = json.loads(out.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            tail = err.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
            res = {"ok": False, "step": "?", "error": f"child died (rc {proc.returncode}): {tail[0][:300]}"}
    res.update(
        method=method,
        n_cells=n_cells,
        n_peaks=n_peaks,
        total_s=time.perf_counter() - t0,
        threads=args.threads,
        mem_cap_gb=args.mem_cap_gb,
        density=paths.get("density"),
    )
    res.setdefault("n_motifs", args.n_motifs or 816)
    return res


# ------------------------------------------------------------------------------------------ table
def _fmt(x, spec: str) -> str:
    return "-" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def _notes(r: dict) -> str:
    if not r.get("ok"):
        mem = f" (cap {r['mem_cap_gb']:g} GB)" if "Memory" in r.get("error", "") else ""
        done = (
            "; after " + ", ".join(f"{k} {v:.0f} s" for k, v in r["steps"].items()) if r.get("steps") else ""
        )
        return f"failed in {r.get('step', '?')}: {r.get('error', '')[:160]}{mem}{done}".replace("|", "/")
    if r["method"] == "scan-scfanpy":
        return f"setup {r['setup_s']:.1f} s (model); backend='auto' ({r.get('backend', 'not recorded')}), 1 thread"
    if r["method"] == "scan-moods":
        return f"setup {r['setup_s']:.1f} s (thresholds, scanner); 1 thread"
    note = f"read {r.get('load_s', 0):.0f} s (not in wall)"
    if r.get("backed"):
        note += "; backed"
    if r.get("settings"):
        note += "; " + ", ".join(f"{k}={v}" for k, v in r["settings"].items())
    if r.get("steps"):
        note += "; " + ", ".join(f"{k} {v:.0f} s" for k, v in r["steps"].items())
    return note


def table(rows: list[dict]) -> str:
    """Markdown table; ratios against pychromvar (end to end) or MOODS (scan) at the same size."""
    ref = {(r["method"], r["n_cells"], r["n_peaks"]): r for r in rows if r.get("ok")}
    lines = [
        "| cells x peaks | density | method | step | wall (s) | peak RSS (GB) | peaks x motifs / s | "
        "vs pychromvar (time, RSS) | notes |",
        "|---|---:|---|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        scan = r["method"] in SCAN
        cells = "any" if scan else f"{r['n_cells']:,}"
        dens = "-" if scan or r.get("density") is None else f"{r['density']:.2%}"
        wall = r.get("scan_s" if scan else "wall_s") if r.get("ok") else None
        rate = r["n_peaks"] * r["n_motifs"] / wall if scan and wall else None
        other = ref.get(("scan-moods" if scan else "pychromvar", r["n_cells"], r["n_peaks"]))
        ratio = "-"
        if wall and other and other is not r:
            o_wall = other["scan_s" if scan else "wall_s"]
            ratio = f"{wall / o_wall:.2f}x, {r['rss_gb'] / other['rss_gb']:.2f}x"
        elif r["method"] in ("pychromvar", "scan-moods") and wall:
            ratio = "1.00x, 1.00x"
        lines.append(
            f"| {cells} x {r['n_peaks']:,} | {dens} | {NAMES[r['method']]} | "
            f"{'scan only' if scan else 'end to end'} | {_fmt(wall, '.1f')} | {_fmt(r.get('rss_gb'), '.2f')} | "
            f"{_fmt(rate, ',.0f')} | {ratio} | {_notes(r)} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- main
def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="cells")
    ap.add_argument("--n-peaks", type=int, default=100_000)
    ap.add_argument("--density", type=float, default=0.02, help="reads drawn per cell / peaks (mean)")
    ap.add_argument("--methods", default=",".join(E2E + SCAN))
    ap.add_argument("--work", default="/tmp/bench_scale")
    ap.add_argument("--n-motifs", type=int, default=None, help="first N motifs (default all 816)")
    ap.add_argument("--threads", type=int, default=1, help="threads of every child (pychromvar uses 1)")
    ap.add_argument("--mem-cap-gb", type=float, default=16.0, help="RLIMIT_AS of each child (0: none)")
    ap.add_argument("--timeout-min", type=float, default=120.0, help="time limit of each child")
    ap.add_argument("--in-memory-max", type=int, default=100_000, help="above: scfanpy reads backed")
    ap.add_argument(
        "--atlas",
        action="store_true",
        help="scfanpy with smooth=False, store_raw=False, store_deviation=False, background='expected' "
        "(always when read backed)",
    )
    ap.add_argument("--verbose", action="store_true", help="scfanpy's progress bars (on the child's stderr)")
    ap.add_argument("--quick", action="store_true", help="500 cells x 2,000 peaks x 20 motifs")
    ap.add_argument("--table", action="store_true", help="print the table of the saved results and stop")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    for k in ("--h5ad", "--genome", "--codes"):
        ap.add_argument(k, help=argparse.SUPPRESS)
    ap.add_argument("--n-cells", type=int, help=argparse.SUPPRESS)
    return ap


def _density(h5ad: Path) -> float:
    import h5py

    with h5py.File(h5ad, "r") as f:
        n_cells, n_peaks = f["X"].attrs["shape"]
        return f["X"]["data"].shape[0] / (n_cells * n_peaks)


def _saved(work: Path) -> list[dict]:
    rows = [json.loads(p.read_text()) for p in sorted((work / "results").glob("*.json"))]
    order = {m: i for i, m in enumerate(E2E + SCAN)}
    return sorted(rows, key=lambda r: (r["n_peaks"], r["n_cells"] or 0, order[r["method"]]))


def main(argv: list[str] | None = None) -> list[dict]:
    args = _parser().parse_args(argv)
    if args.child:
        args.method = args.child
        child_main(args)
        return []
    if args.quick:
        args.sizes, args.n_peaks, args.n_motifs = [500], 2000, args.n_motifs or 20
        args.density = 0.03
    work = Path(args.work)
    (work / "results").mkdir(parents=True, exist_ok=True)
    if args.table:
        print(table(_saved(work)))
        return _saved(work)
    methods = args.methods.split(",")
    unknown = set(methods) - set(E2E + SCAN)
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; choose from {E2E + SCAN}")
    t0 = time.perf_counter()
    fasta, codes, bed = make_genome(work, args.n_peaks)
    print(f"genome and peaks: {time.perf_counter() - t0:.0f} s ({fasta})", flush=True)
    paths = {"fasta": fasta, "codes": codes}
    rows = []
    runs = [(m, None) for m in methods if m in SCAN] + [
        (m, n) for n in args.sizes for m in methods if m in E2E
    ]
    for method, n_cells in runs:
        if n_cells is not None and paths.get("n_cells") != n_cells:
            t0 = time.perf_counter()
            paths.update(h5ad=make_counts(work, n_cells, args.n_peaks, args.density, bed), n_cells=n_cells)
            paths["density"] = _density(paths["h5ad"])
            print(f"counts {n_cells:,} x {args.n_peaks:,}: {time.perf_counter() - t0:.0f} s", flush=True)
        r = run_child(method, args, n_cells, args.n_peaks, paths)
        tag = f"{method}_{n_cells or 'scan'}x{args.n_peaks}_m{args.n_motifs or 816}"
        (work / "results" / f"{tag}.json").write_text(json.dumps(r, indent=1))
        rows.append(r)
        print(table([r]).splitlines()[-1], flush=True)
    print(f"\nCommand: `python {' '.join(sys.argv)}`\n")
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
