"""Where the scFAN CNN's GPU inference time goes (docs/benchmarks/device_check.md, "What limits it").

* A: the module's forward pass on a batch already on the device (fp32 and bf16, batch 4,096 and 8,192);
* B: the package's ``(peak, level)`` table path (``tl._scoring.binding_table`` over the predictor of
  ``predict_tf_binding``), with a cProfile of the last bf16 run;
* C: ``torch.compile`` of the net in bf16 (compile time, then windows/s).

Run: ``python benchmarks/gpu_forward_profile.py`` on a GPU machine (about 1 minute on one H200);
``--only-forward`` stops after A; ``--small`` runs tiny sizes on any device.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

import numpy as np
import torch

import scfanpy as sfp
from scfanpy.models._seqmodules import encode_batch
from scfanpy.tl import _scoring as sc
from scfanpy.tl._predict_model import predictor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="tiny sizes (any device)")
    ap.add_argument("--only-forward", action="store_true", help="part A only")
    args = ap.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    n, w, n_levels = (200, 1000, 16) if args.small else (100_000, 1000, 16)
    batches = (64, 128) if args.small else (4096, 8192)
    reps = 2 if args.small else 10
    total = n * n_levels  # windows of the table

    model = sfp.models.SCFAN(
        tf_names=[f"t{i}" for i in range(33)], window=w, n_tracks=1, track_names=["dnase"]
    )
    module = model.module.to(dev).eval()
    codes = np.random.default_rng(0).integers(0, 4, (n, w), dtype=np.uint8)
    levels = np.linspace(0.5, 8, n_levels).astype(np.float32)
    torch.backends.cudnn.benchmark = True

    def sync() -> None:
        if dev == "cuda":
            torch.cuda.synchronize()

    def autocast(prec: str):
        return torch.autocast(dev, dtype=torch.bfloat16, enabled=prec == "bf16")

    for bs in batches:  # A: the forward pass alone
        c = torch.from_numpy(np.resize(codes, (bs, w))).to(dev)
        t = torch.full((bs, 1), 2.0, device=dev)
        for prec in ("32", "bf16"):
            with torch.no_grad(), autocast(prec):
                for _ in range(2):
                    module.inference(c, t)
                sync()
                t0 = time.perf_counter()
                for _ in range(reps):
                    module.inference(c, t)
                sync()
            rate = bs * reps / (time.perf_counter() - t0)
            print(f"A forward bs={bs} {prec}: {rate:,.0f} win/s ({total / rate:.2f} s for {total:,} windows)")
    if args.only_forward:
        return

    for prec in ("32", "bf16"):  # B: the package's table path
        for bs in batches:
            predict = predictor(model, None, bs, prec)
            sc.binding_table(predict, codes[:512], levels, n_tfs=33, batch_size=bs)  # warm-up
            prof = cProfile.Profile() if (prec, bs) == ("bf16", batches[-1]) else None
            sync()
            t0 = time.perf_counter()
            if prof:
                prof.enable()
            sc.binding_table(predict, codes, levels, n_tfs=33, batch_size=bs)
            sync()
            secs = time.perf_counter() - t0
            if prof:
                prof.disable()
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
                print(out.getvalue())
            print(
                f"B table {prec} bs={bs}: {secs:.2f} s for {n:,} peaks x {n_levels} levels ({total / secs:,.0f} win/s)"
            )

    if args.small:
        return
    bs = batches[-1]  # C: torch.compile of the net
    t0 = time.perf_counter()
    net = torch.compile(module.net)
    c = torch.from_numpy(np.resize(codes, (bs, w))).to(dev)
    with torch.no_grad(), autocast("bf16"):
        x = encode_batch(c, torch.full((bs, 1), 2.0, device=dev), 1)
        for _ in range(2):
            net(x)
        sync()
        print(f"C compile + warm-up {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        for _ in range(reps):
            net(x)
        sync()
    rate = bs * reps / (time.perf_counter() - t0)
    print(f"C compiled bf16 bs={bs}: {rate:,.0f} win/s ({total / rate:.2f} s for {total:,} windows)")


if __name__ == "__main__":
    main()
