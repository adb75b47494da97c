"""CPU training and inference throughput (sequences/s) and peak memory of the sequence models.

Each architecture at its published input size (DanQ: 1,000 bp DNA; FactorNet: 1,002 bp + 2 tracks;
scFAN: 1,000 bp + 1 track; 10 TF outputs) is run through the package's model class
(``model.train`` for one epoch: scvi-tools' DataSplitter, TrainingPlan and TrainRunner over Lightning;
``model.predict_codes``) and through the same torch net driven by a plain loop (Adam + masked BCE; ``torch.no_grad`` forward), each in a fresh process
so that peak resident memory (``ru_maxrss``) is its own. Random sequences (throughput does not depend
on the data).

Run::

    nice -n 10 python benchmarks/bench_seqmodel_throughput.py

It prints the markdown table and writes it into ``docs/benchmarks/sequence_models.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ARCHS = {
    "DanQ": ("DANQ", "DanQModule", 1000, 0),
    "FactorNet": ("FACTORNET", "FactorNetModule", 1002, 2),
    "scFAN": ("SCFAN", "ScFANModule", 1000, 1),
}
N_TF = 10


def _data(n: int, window: int, n_tracks: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(n, window)).astype(np.uint8)
    tracks = rng.random((n, n_tracks, window), dtype=np.float32) if n_tracks else None
    labels = (rng.random((n, N_TF)) < 0.3).astype(np.float32)
    return codes, tracks, labels


def worker(arch: str, engine: str, mode: str, n: int, batch_size: int, threads: int) -> dict:
    """One measurement in this process: sequences per second and peak RSS (MB)."""
    import logging

    import torch

    torch.set_num_threads(threads)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "scfanpy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    cls_name, mod_name, window, n_tracks = ARCHS[arch]
    codes, tracks, labels = _data(n, window, n_tracks)
    torch.manual_seed(0)
    if engine == "package":
        import anndata as ad
        import pandas as pd

        import scfanpy as sfp

        idx = pd.Index([f"r{i}" for i in range(n)])
        a = ad.AnnData(obs=pd.DataFrame({"split": ["train"] * n}, index=idx))
        a.obsm["dna_code"] = codes
        a.obsm["labels"] = pd.DataFrame(labels, index=idx, columns=[f"TF{j}" for j in range(N_TF)])
        if n_tracks:
            a.obsm["signal"] = tracks
        cls = getattr(sfp.models, cls_name)
        cls.setup_anndata(a, signal_key="signal" if n_tracks else None)
        model = cls(a)
        if mode == "train":
            t0 = time.perf_counter()
            model.train(max_epochs=1, batch_size=batch_size, early_stopping=False, enable_progress_bar=False)
            dt = time.perf_counter() - t0
        else:
            model.module.eval()
            model.predict_codes(
                codes[:batch_size], None if tracks is None else tracks[:batch_size], batch_size=batch_size
            )
            t0 = time.perf_counter()
            model.predict_codes(codes, tracks, batch_size=batch_size)
            dt = time.perf_counter() - t0
    else:
        from scfanpy.models import _seqmodules as sm

        module = getattr(sm, mod_name)(N_TF, window=window, n_tracks=n_tracks)
        ct = torch.from_numpy(codes)
        tt = None if tracks is None else torch.from_numpy(tracks)
        yt = torch.from_numpy(labels)
        if mode == "train":
            module.train()
            opt = torch.optim.Adam(module.parameters(), lr=1e-3)
            t0 = time.perf_counter()
            for s in range(0, n, batch_size):
                x = sm.encode_batch(
                    ct[s : s + batch_size], None if tt is None else tt[s : s + batch_size], n_tracks
                )
                loss = sm.masked_bce_with_logits(module(x), yt[s : s + batch_size])
                opt.zero_grad()
                loss.backward()
                opt.step()
            dt = time.perf_counter() - t0
        else:
            module.eval()
            with torch.no_grad():
                module(sm.encode_batch(ct[:batch_size], None if tt is None else tt[:batch_size], n_tracks))
                t0 = time.perf_counter()
                for s in range(0, n, batch_size):
                    x = sm.encode_batch(
                        ct[s : s + batch_size], None if tt is None else tt[s : s + batch_size], n_tracks
                    )
                    torch.sigmoid(module(x))
                dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MB on Linux
    return {
        "arch": arch,
        "engine": engine,
        "mode": mode,
        "n": n,
        "seconds": dt,
        "seq_per_s": n / dt,
        "peak_rss_mb": rss,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=768)
    ap.add_argument("--n-infer", type=int, default=4096)
    ap.add_argument("--batch-train", type=int, default=64)
    ap.add_argument("--batch-infer", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=1, help="runs per cell; the median is reported")
    ap.add_argument("--archs", nargs="*", default=list(ARCHS))
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--worker", nargs=3, metavar=("ARCH", "ENGINE", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        arch, engine, mode = args.worker
        n = args.n_train if mode == "train" else args.n_infer
        b = args.batch_train if mode == "train" else args.batch_infer
        print("RESULT " + json.dumps(worker(arch, engine, mode, n, b, args.threads)))
        return None

    import pandas as pd

    rows = []
    load = [os.getloadavg()[0]]
    for arch in args.archs:
        for mode in ("train", "infer"):
            for engine in ("package", "plain torch"):
                for _ in range(args.repeats):
                    cmd = [
                        sys.executable,
                        __file__,
                        "--worker",
                        arch,
                        engine,
                        mode,
                        "--n-train",
                        str(args.n_train),
                        "--n-infer",
                        str(args.n_infer),
                        "--batch-train",
                        str(args.batch_train),
                        "--batch-infer",
                        str(args.batch_infer),
                        "--threads",
                        str(args.threads),
                    ]
                    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
                    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
                    if not line:
                        print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
                        raise RuntimeError(f"worker failed: {arch} {engine} {mode}")
                    r = json.loads(line[0][7:])
                    rows.append(r)
                    load.append(os.getloadavg()[0])
                    print(
                        f"{arch:10s} {engine:12s} {mode:6s} {r['seq_per_s']:9.1f} seq/s  peak RSS {r['peak_rss_mb']:7.0f} MB",
                        flush=True,
                    )
    res = (
        pd.DataFrame(rows)
        .groupby(["arch", "mode", "engine"], sort=False)[["seq_per_s", "peak_rss_mb"]]
        .median()
    )
    wide = []
    for arch in args.archs:
        row = {"model": arch, "window + tracks": f"{ARCHS[arch][2]} + {ARCHS[arch][3]}"}
        for mode, label in (("train", "train"), ("infer", "inference")):
            pk, pt = res.loc[(arch, mode, "package")], res.loc[(arch, mode, "plain torch")]
            row[f"{label} seq/s (package)"] = f"{pk.seq_per_s:.1f}"
            row[f"{label} seq/s (plain torch)"] = f"{pt.seq_per_s:.1f}"
            row[f"{label} ratio"] = f"{pk.seq_per_s / pt.seq_per_s:.2f}"
            row[f"{label} peak RSS MB (package / plain)"] = f"{pk.peak_rss_mb:.0f} / {pt.peak_rss_mb:.0f}"
        wide.append(row)
    md = pd.DataFrame(wide).to_markdown(index=False)
    argv_s = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    cmd = f"nice -n 10 python benchmarks/bench_seqmodel_throughput.py {argv_s}".strip()
    text = f"""## CPU throughput and peak memory

Command: `{cmd}`

Random sequences at each model's published input size, {N_TF} TF outputs, {args.threads} torch thread(s).
Training: one epoch over {args.n_train} sequences, batch {args.batch_train} (package: `model.train`,
scvi-tools / Lightning set-up included; plain torch: the same module, Adam + masked BCE in a bare loop). Inference:
{args.n_infer} sequences, batch {args.batch_infer} (package: `model.predict_codes`; plain torch: the
module under `torch.no_grad`). Each cell is its own process; peak RSS is its `ru_maxrss` (imports
included: the package process loads scvi-tools and Lightning); median of {args.repeats} run(s). One-minute
load average {min(load):.1f}-{max(load):.1f} over the run on {os.cpu_count()} cores (a load above the
thread count means other jobs shared the CPU: absolute speeds are then indicative only); the
package/plain ratio is the number to read.

{md}
"""
    print(text)
    if not args.no_doc:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _seqbench_doc import write_section

        print("written to", write_section("throughput", text))
    return res


if __name__ == "__main__":
    main()
