"""The motif scan alone: scfanpy's numba and torch scans (and the numpy reference) against MOODS as pychromvar calls it.

All 816 matrices of JASPAR 2024 CORE vertebrates (one per TF name, as ``MotifModel(None)`` loads them),
on random peaks drawn from the human base composition (A/T 0.295, C/G 0.205), ``--width`` bp each.

- ``scfanpy numba``: ``MotifModel(None).scan_codes(codes, backend='numba', n_threads=...)``, the exact best
  log-odds score of every (peak, motif) over both strands: the matrices packed 32 to a SIMD vector,
  every window scored in int16, the windows within the rounding bound of the best scored exactly in
  float64 (``--threads`` numba threads; setup includes loading the cached compiled scan, timed on one
  peak). ``scfanpy numba (calibrated)``: the same with ``exact=False``, as ``predict_codes`` calls it:
  ``-inf`` below each motif's calibration floor (the same probabilities).
- ``scfanpy torch``: ``MotifModel(None).scan_codes(codes, backend='torch', device=...)``, the best log-odds score of every
  (peak, motif) over both strands, torch's intra-op threads set to ``--threads``; on ``cuda`` too when
  a GPU is present.
- ``scfanpy numpy``: the same scores from the old numpy scan (``backend='numpy'``, BLAS on the most threads
  asked for), at a small size.
- ``MOODS (pychromvar)``: ``pychromvar.match_motif``'s calls, made directly on the same sequences (as
  strings): JASPAR counts, ``MOODS.tools.log_odds(counts, flat_bg, 0.0001)``, reverse complements,
  thresholds ``threshold_from_p(matrix, flat_bg, 5e-5)``, ``MOODS.scan.Scanner(7)``, one ``scan`` per peak
  and a peaks x motifs hit matrix. One thread (as pychromvar runs it). It answers a different question
  (which peaks hold a hit above a p-value threshold) with less work than an exact best score.

Each method runs in its own child process: wall time of the setup (matrices, thresholds, model) and of
the scan, and the child's peak resident memory (``VmHWM``, imports included).

Correctness: on ``--check-peaks`` N-free peaks, MOODS is handed **our** log-odds matrices (natural log,
pseudocount 0.02 against the human background) and their reverse complements with a threshold below
any score, so it reports every position; its best score per (peak, motif) must equal our best score
(torch and numba; float32 vs MOODS's double: ``atol=1e-4``; the fraction of pairs where the numba
score equals MOODS's rounded to float32 is printed). Also with the p-value thresholds of pychromvar's default
(5e-5), where MOODS reports a hit, its best hit must equal our best score. The check's scanner window
is 5 bp (the shortest motif): with pychromvar's ``Scanner(7)``, MOODS never reports the last offset of a
peak for motifs shorter than 7 bp (found by this check; it affects pychromvar's hits at peak ends).

Run::

    python benchmarks/bench_motif_scan.py --n-peaks 2000 20000 --threads 1 2
    python benchmarks/bench_motif_scan.py --n-peaks 100000 --threads 1 2 --methods moods numba numba-cal

``--methods`` picks the methods (default all; ``numpy`` runs only at ``--numpy-peaks``). ``--quick`` runs
300 peaks (numpy 100, check 20) to try the script. The markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BACKGROUND = (0.295, 0.205, 0.205, 0.295)
PYCHROMVAR_PSEUDOCOUNT = 1e-4  # pychromvar.match_motif defaults
PYCHROMVAR_P = 5e-5
METHODS = ("moods", "numba", "numba-cal", "torch", "numpy")


def random_codes(n: int, width: int, seed: int = 0) -> np.ndarray:
    """Random peaks, uint8 codes ``(n, width)`` with the human base composition, no N."""
    return np.random.default_rng(seed).choice(4, size=(n, width), p=BACKGROUND).astype(np.uint8)


def decode(codes: np.ndarray) -> list[str]:
    """Codes to strings (what pychromvar scans)."""
    letters = np.frombuffer(b"ACGTN", dtype=np.uint8)
    return [letters[np.minimum(c, 4)].tobytes().decode() for c in codes]


def jaspar_records() -> list:
    """pyjaspar records of the matrices ``MotifModel(None)`` uses (the first listed per TF name)."""
    from scfanpy.datasets._jaspar import DEFAULT_RELEASE, _fetch

    by_name: dict[str, object] = {}
    for m in _fetch(DEFAULT_RELEASE, "CORE", "vertebrates"):
        by_name.setdefault(m.name.upper(), m)
    return list(by_name.values())


def moods_pychromvar_setup(records: list):
    """MOODS scanner and matrices built the way ``pychromvar.match_motif`` builds them (even background)."""
    import MOODS.scan
    import MOODS.tools

    bg = MOODS.tools.flat_bg(4)
    n = len(records)
    matrices: list = [None] * (2 * n)
    thresholds: list = [None] * (2 * n)
    for i, motif in enumerate(records):
        counts = tuple(tuple(motif.counts[a]) for a in "ACGT")
        matrices[i] = MOODS.tools.log_odds(counts, bg, PYCHROMVAR_PSEUDOCOUNT)
        matrices[i + n] = MOODS.tools.reverse_complement(matrices[i])
        thresholds[i] = thresholds[i + n] = MOODS.tools.threshold_from_p(matrices[i], bg, PYCHROMVAR_P)
    scanner = MOODS.scan.Scanner(7)
    scanner.set_motifs(matrices=matrices, bg=bg, thresholds=thresholds)
    return scanner, n


def moods_scan_hits(scanner, n_motifs: int, seqs: list[str]) -> np.ndarray:
    """pychromvar's loop: peaks x motifs matrix of 1 where either strand has a hit."""
    out = np.zeros((len(seqs), n_motifs), dtype=np.uint8)
    for i, s in enumerate(seqs):
        res = scanner.scan(s)
        for j in range(n_motifs):
            if len(res[j]) > 0 or len(res[j + n_motifs]) > 0:
                out[i, j] = 1
    return out


# ------------------------------------------------------------------------------------------ children
def child(method: str, path: str, threads: int) -> dict:
    """Run one method on the codes saved at ``path``; timings and peak RSS of this process."""
    codes = np.load(path)
    t0 = time.perf_counter()
    if method == "moods":
        seqs = decode(codes)  # pychromvar already holds strings: not timed
        t0 = time.perf_counter()
        scanner, n_motifs = moods_pychromvar_setup(jaspar_records())
        t1 = time.perf_counter()
        hits = moods_scan_hits(scanner, n_motifs, seqs)
        extra = {"hit_fraction": float(hits.mean())}
    elif method.startswith("numba"):
        from scfanpy.models import MotifModel

        model = MotifModel(None)
        exact = method == "numba"
        model.scan_codes(codes[:1], backend="numba", exact=exact, n_threads=threads)  # load the compiled scan
        n_motifs = len(model.tf_names)
        t1 = time.perf_counter()
        model.scan_codes(codes, backend="numba", exact=exact, n_threads=threads)
        extra = {}
    else:
        import torch

        from scfanpy.models import MotifModel

        torch.set_num_threads(threads)
        model = MotifModel(None)
        n_motifs = len(model.tf_names)
        t1 = time.perf_counter()
        if method == "numpy":
            model.scan_codes(codes, backend="numpy")
        else:
            model.scan_codes(codes, backend="torch", device=method.split("-", 1)[1])
        extra = {}
    t2 = time.perf_counter()
    return {"setup_s": t1 - t0, "scan_s": t2 - t1, "rss_mb": peak_rss_mb(), "n_motifs": n_motifs, **extra}


def peak_rss_mb() -> float:
    """Peak resident memory of this process: ``VmHWM`` (``ru_maxrss`` keeps the parent's peak from fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(method: str, codes: np.ndarray, threads: int) -> dict:
    """One method in a fresh process (its own peak RSS and imports)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "codes.npy")
        np.save(path, codes)
        cmd = [sys.executable, __file__, "--child", method, path, "--threads", str(threads)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        env["NUMBA_NUM_THREADS"] = str(threads)
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{out.stderr[-3000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res.update(method=method, n_peaks=len(codes), threads=threads)
    return res


# ------------------------------------------------------------------------------------------ check
def check_against_moods(n_peaks: int, width: int) -> dict:
    """Our best scores vs MOODS's on our own log-odds matrices (all positions, then p-value hits)."""
    import MOODS.scan
    import MOODS.tools

    from scfanpy.models import MotifModel

    model = MotifModel(None)
    codes = random_codes(n_peaks, width, seed=1)
    ours = model.scan_codes(codes, backend="torch", device="cpu")
    ref_np = model.scan_codes(codes, backend="numpy")
    nb = model.scan_codes(codes, backend="numba")
    nb_cal = model.predict_codes(codes, backend="numba")
    mats = [[list(model.log_odds[t][:, a]) for a in range(4)] for t in model.tf_names]
    n = len(mats)
    mats = mats + [MOODS.tools.reverse_complement(m) for m in mats]
    bg = list(model.background)
    seqs = decode(codes)
    out = {
        "numpy_max_abs_diff": float(np.abs(ours - ref_np).max()),
        "numba_vs_numpy_max_abs_diff": float(np.abs(nb - ref_np).max()),
        "numba_calibrated_vs_numpy_max_abs_diff": float(
            np.abs(nb_cal - model.calibrate(ref_np, width)).max()
        ),
    }
    assert out["numba_vs_numpy_max_abs_diff"] < 1e-4
    low = [-1e6] * (2 * n)
    p_thr = [MOODS.tools.threshold_from_p(m, bg, PYCHROMVAR_P) for m in mats[:n]] * 2
    # Scanner(7), as pychromvar, never reports the last offset of a motif shorter than 7 bp (measured):
    # a window no longer than the shortest motif reports every offset
    window = int(min(7, model.lengths.min()))
    for label, thr in (("all_positions", low), ("p_5e-5_hits", p_thr)):
        scanner = MOODS.scan.Scanner(window)
        scanner.set_motifs(matrices=mats, bg=bg, thresholds=thr)
        best = np.full((n_peaks, n), -np.inf)
        for i, s in enumerate(seqs):
            res = scanner.scan(s)
            for j in range(2 * n):
                if res[j]:
                    best[i, j % n] = max(best[i, j % n], max(h.score for h in res[j]))
        seen = np.isfinite(best)
        diff = np.abs(best[seen] - ours[seen]).max() if seen.any() else 0.0
        nb_diff = np.abs(best[seen] - nb[seen]).max() if seen.any() else 0.0
        out[label] = {
            "pairs": int(seen.sum()),
            "max_abs_diff": float(diff),
            "numba_max_abs_diff": float(nb_diff),
            # MOODS's double best rounded to float32 vs the numba scan's float32: the same number
            "numba_identical_fraction": float((best[seen].astype(np.float32) == nb[seen]).mean()),
        }
        assert max(diff, nb_diff) < 1e-4, f"{label}: best scores differ from MOODS by {max(diff, nb_diff)}"
    assert out["all_positions"]["pairs"] == n_peaks * n
    return out


# ------------------------------------------------------------------------------------------ table
def table(rows: list[dict]) -> str:
    """Markdown table; ratios against MOODS at the same number of peaks."""
    moods = {r["n_peaks"]: r for r in rows if r["method"] == "moods"}
    names = {
        "moods": "MOODS (pychromvar)",
        "numpy": "scfanpy numpy (reference)",
        "numba": "scfanpy numba",
        "numba-cal": "scfanpy numba (calibrated)",
    }
    lines = [
        "| method | peaks | motifs | threads | setup (s) | scan (s) | peaks x motifs / s | "
        "scan time vs MOODS | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rate = r["n_peaks"] * r["n_motifs"] / r["scan_s"]
        m = moods.get(r["n_peaks"])
        ratio = f"{r['scan_s'] / m['scan_s']:.2f}x" if m else "-"
        name = names.get(r["method"]) or f"scfanpy torch ({r['method'].split('-', 1)[-1]})"
        lines.append(
            f"| {name} | {r['n_peaks']:,} | {r['n_motifs']} | {r['threads']} | {r['setup_s']:.1f} | "
            f"{r['scan_s']:.1f} | {rate:,.0f} | {ratio} | {r['rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-peaks", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--width", type=int, default=500)
    ap.add_argument("--threads", type=int, nargs="+", default=[len(os.sched_getaffinity(0))])
    ap.add_argument("--numpy-peaks", type=int, default=1000, help="size of the old numpy scan's run")
    ap.add_argument("--check-peaks", type=int, default=50)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", nargs=2, metavar=("METHOD", "CODES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.threads[0])))
        return
    if args.quick:
        args.n_peaks, args.numpy_peaks, args.check_peaks = [300], 100, 20
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    check = check_against_moods(args.check_peaks, args.width)
    print(f"check ({args.check_peaks} peaks): {json.dumps(check)}", flush=True)
    rows: list[dict] = []
    sizes = [args.numpy_peaks] * ("numpy" in args.methods) + args.n_peaks
    for n in dict.fromkeys(sizes):
        codes = random_codes(n, args.width)
        runs = [("moods", 1)] * ("moods" in args.methods)
        runs += [(m, k) for m in ("numba", "numba-cal") if m in args.methods for k in args.threads]
        runs += [(f"torch-{d}", k) for d in devices for k in args.threads if "torch" in args.methods]
        runs += [("numpy", max(args.threads))] if n == args.numpy_peaks and "numpy" in args.methods else []
        rows += [run_child(m, codes, k) for m, k in runs]
        print(table(rows[-len(runs) :]), flush=True)
    print(f"\nCommand: `{shlex.join(['python', *sys.argv])}`; {args.width} bp peaks\n")
    print(table(rows))


if __name__ == "__main__":
    main()
