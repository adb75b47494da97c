"""Every GPU path of scfanpy, checked in one go (issue 14, item 5): one markdown table.

Rows (each in its own try/except: one failing row leaves the others running):

* ``DANQ`` / ``FACTORNET`` / ``SCFAN``: a short training run (scvi-tools ``train`` with
  ``precision='bf16-mixed'`` on a GPU, ``'32-true'`` on the CPU), then ``predict_codes`` of the same
  weights on the same windows on the device (the check in full fp32, TF32 off) and on the CPU: max abs
  difference of the probabilities and windows/s on each;
* ``scFAN table``: the ``(peak, level)`` table inference of :func:`scfanpy.tl.predict_tf_binding`
  (``tl._scoring.binding_table`` over ``tl._predict._predictor``: 16 signal levels + the median-signal
  reference = 17 passes per peak) with the published scFAN CNN (window 1,000, 1 track, 33 TFs), in
  fp32 and bf16 (``precision='bf16'``, the package's path; an autocast wrapper on older versions); achieved TFLOP/s and the time against
  the issue's estimate (FLOPs / half an H200's dense bf16 peak, 989 TFLOP/s); agreement with the CPU on
  a subsample;
* ``motif scan``: :meth:`scfanpy.models.MotifModel.scan_codes` with ``device=`` (when the method has
  that keyword) against the numpy scan on a subsample, all JASPAR CORE vertebrate motifs (read from
  ``benchmarks/data/jaspar_core_vertebrates.npz``, so no pyjaspar is needed);
* ``SAILER`` / ``PeakVI``: seconds per training epoch on the same cells x peaks matrix, and their ratio.

Run: ``python benchmarks/device_check.py --out $OUT/device_check.md`` (one H200: under 8 minutes);
``--smoke --device cpu``: tiny sizes, any device.

Printed and written to ``--out`` and a ``.json`` twin (default ``$OUT/device_check.md``); exit 1 on a fail.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
JASPAR_NPZ = ROOT / "benchmarks" / "data" / "jaspar_core_vertebrates.npz"
H200_BF16_PEAK = 989e12  # dense bf16 FLOP/s of an H200 (SXM); the estimate uses half of it
SEQ_MODELS = ("DANQ", "FACTORNET", "SCFAN")
ROW_NAMES = (
    *(f"{m} train + predict" for m in SEQ_MODELS),
    "scFAN table fp32",
    "scFAN table bf16",
    "motif scan",
    "SAILER epoch",
    "PeakVI epoch",
)

FULL = {
    "seq_n": 20_000, "seq_window": 1000, "seq_epochs": 2, "seq_batch": 256, "seq_cpu": 1024,
    "seq_arch": {},
    "table_peaks": 100_000, "table_levels": 16, "table_window": 1000, "table_tfs": 33, "table_cpu": 512,
    "table_batch": 8192, "table_arch": {},
    "motif_peaks": 100_000, "motif_width": 500, "motif_cpu": 256, "motif_max": None,
    "cells": 10_000, "peaks": 20_000, "peaks_per_cell": 1000, "epochs": 4,
}  # fmt: skip
# small architectures (those of tests/models/test_seqmodels.py) and sizes: every path in seconds
SMOKE = {
    "seq_n": 192, "seq_window": 200, "seq_epochs": 1, "seq_batch": 64, "seq_cpu": 64,
    "seq_arch": {
        "DANQ": {"n_filters": 16, "lstm_hidden": 8, "n_dense": 16},
        "FACTORNET": {"n_filters": 8, "filter_width": 20, "pool": 8, "lstm_hidden": 8, "n_dense": 16},
        "SCFAN": {"channels": (16, 16, 16), "n_dense": 16},
    },
    "table_peaks": 96, "table_levels": 4, "table_window": 200, "table_tfs": 5, "table_cpu": 32,
    "table_batch": 64, "table_arch": {"channels": (16, 16, 16), "n_dense": 16},
    "motif_peaks": 48, "motif_width": 200, "motif_cpu": 24, "motif_max": 40,
    "cells": 200, "peaks": 300, "peaks_per_cell": 40, "epochs": 2,
}  # fmt: skip


@dataclass
class Row:
    """One line of the table."""

    name: str
    device: str = ""
    dtype: str = ""
    size: str = ""
    seconds: float | None = None
    throughput: str = ""
    max_diff: float | None = None
    tol: float | None = None
    result: str = "error"  # pass / fail / n/a / error
    note: str = ""

    def judge(self) -> None:
        """``pass`` when the difference is within the tolerance (or there is nothing to compare)."""
        if self.max_diff is None or self.tol is None:
            self.result = "pass"
        else:
            self.result = "pass" if np.isfinite(self.max_diff) and self.max_diff <= self.tol else "fail"


# ------------------------------------------------------------------------------------------ helpers
def _sync(dev) -> None:
    import torch

    if str(dev).startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn: Callable, dev) -> tuple[object, float]:
    """``fn()`` and its wall time, the device synchronised on both sides."""
    _sync(dev)
    t0 = time.perf_counter()
    out = fn()
    _sync(dev)
    return out, time.perf_counter() - t0


def _is_cuda(dev) -> bool:
    return str(dev).startswith("cuda")


def _fp32_tol(dev) -> tuple[str, float]:
    """Label and tolerance of an fp32 comparison: CUDA convolutions run in TF32 unless it is switched off."""

    if not _is_cuda(dev):
        return "fp32", 1e-4
    return ("fp32 (tf32)", 5e-3) if _tf32() else ("fp32", 1e-4)


def _tf32() -> bool:
    """Whether CUDA convolutions / matmuls may run in TF32 (assumed so when the flags cannot be read)."""
    import torch

    try:
        return bool(torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32)
    except Exception:  # noqa: BLE001 - torch's new fp32_precision API refuses the legacy flags when mixed
        return True


@contextlib.contextmanager
def _strict_fp32():
    """CUDA convolutions and matmuls in full fp32 (TF32 off) inside the block."""
    import torch

    flags = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags


def _rate(n: float, secs: float) -> str:
    return f"{n / secs:,.0f}" if secs > 0 else "inf"


def _random_codes(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    codes = rng.integers(0, 4, size=(n, width), dtype=np.uint8)
    codes[rng.random(codes.shape) < 0.002] = 4  # a few N
    return codes


def _regions(n: int, window: int, n_tracks: int, per_base: bool, rng: np.random.Generator):
    """Region AnnData: random DNA, 3 TFs whose positives carry a planted site, a signal track."""
    import anndata as ad
    import pandas as pd

    codes = _random_codes(rng, n, window)
    sites = {"TFA": [2, 0, 3, 0, 0, 2, 2], "TFB": [1, 1, 0, 1, 2, 2, 3], "TFC": [3, 2, 0, 1, 2, 3, 0]}
    labels = {}
    mid = window // 2
    for j, (tf, site) in enumerate(sites.items()):
        pos = rng.random(n) < 0.3
        off = mid - 20 + 12 * j
        codes[np.ix_(np.flatnonzero(pos), np.arange(off, off + len(site)))] = np.asarray(site, np.uint8)
        labels[tf] = pos.astype(np.float32)
    a = ad.AnnData(np.zeros((n, 0), dtype=np.float32))
    a.obsm["dna_code"] = codes
    a.obsm["labels"] = pd.DataFrame(labels, index=a.obs_names)
    a.obs["split"] = np.where(rng.random(n) < 0.85, "train", "valid")
    if n_tracks:
        acc = labels["TFA"][:, None] + rng.random((n, n_tracks), dtype=np.float32)
        a.obsm["signal"] = (
            np.repeat(acc[:, :, None], window, axis=2).astype(np.float32)
            if per_base
            else acc.astype(np.float32)
        )
    return a


def _precision(dev) -> str:
    import torch

    if not _is_cuda(dev):
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def _trainer(dev) -> dict:
    return {"accelerator": "gpu" if _is_cuda(dev) else "cpu", "devices": 1, "enable_progress_bar": False}


# ------------------------------------------------------------------------------------------ rows
def row_seqmodel(name: str, cfg: dict, dev) -> Row:
    """Train one sequence model briefly on ``dev``, then predict the same windows on ``dev`` and on the CPU."""
    import torch

    import scfanpy as sfp

    cls = getattr(sfp.models, name)
    n, w = cfg["seq_n"], cfg["seq_window"]
    n_tracks, per_base = {"DANQ": (0, False), "FACTORNET": (1, True), "SCFAN": (1, False)}[name]
    adata = _regions(n, w, n_tracks, per_base, np.random.default_rng(0))
    cls.setup_anndata(adata, signal_key="signal" if n_tracks else None)
    model = cls(adata, **cfg["seq_arch"].get(name, {}))
    prec = _precision(dev)
    kw = {**_trainer(dev), "batch_size": cfg["seq_batch"], "early_stopping": False}
    accepts = "precision" in inspect.signature(cls.train).parameters or any(
        p.kind is p.VAR_KEYWORD for p in inspect.signature(cls.train).parameters.values()
    )
    if accepts:
        kw["precision"] = prec
    else:
        prec = "32-true (precision not passed)"
    _, t_train = _timed(lambda: model.train(max_epochs=cfg["seq_epochs"], **kw), dev)
    n_train = int((adata.obs["split"] == "train").sum()) * cfg["seq_epochs"]
    codes = adata.obsm["dna_code"]
    tracks = adata.obsm["signal"] if n_tracks else None
    bs = 1024 if _is_cuda(dev) else 256
    model.module.to(dev)
    model.predict_codes(codes[:bs], None if tracks is None else tracks[:bs], batch_size=bs)  # warm-up
    p_dev, t_dev = _timed(lambda: model.predict_codes(codes, tracks, batch_size=bs), dev)
    m = cfg["seq_cpu"]
    model.module.to("cpu")
    p_cpu, t_cpu = _timed(
        lambda: model.predict_codes(codes[:m], None if tracks is None else tracks[:m], batch_size=256), "cpu"
    )
    model.module.to(dev)
    label, tol = _fp32_tol(dev)
    tf32_note = ""
    if _is_cuda(dev):  # agreement in full fp32; the TF32 default's difference goes in the note
        with _strict_fp32():
            p_exact = model.predict_codes(codes[:m], None if tracks is None else tracks[:m], batch_size=bs)
        tf32_note = f"; default (TF32) vs cpu max diff {float(np.abs(p_dev[:m] - p_cpu).max()):.2e}"
        p_dev, label, tol = np.concatenate([p_exact, p_dev[m:]]), "fp32 (TF32 off for the check)", 1e-4
    row = Row(
        f"{name} train + predict",
        str(dev),
        f"train {prec.replace('-mixed', ' mixed')}; predict {label}",
        f"{n} x {w} bp, {cfg['seq_epochs']} ep",
        t_train,
        f"train {_rate(n_train, t_train)} win/s; predict {dev} {_rate(n, t_dev)}, cpu {_rate(m, t_cpu)} win/s",
        float(np.abs(p_dev[:m] - p_cpu).max()),
        tol,
        note=f"{sum(p.numel() for p in model.module.parameters()):,} params; torch {torch.__version__}{tf32_note}",
    )
    row.judge()
    if _is_cuda(dev):  # inference in bf16 (predict_codes(precision='bf16')) against the cpu fp32 answer
        p16, t16 = _timed(lambda: model.predict_codes(codes, tracks, batch_size=bs, precision="bf16"), dev)
        d16 = float(np.abs(np.asarray(p16)[:m] - p_cpu).max())
        row.note += f"; predict bf16 {_rate(n, t16)} win/s, max diff vs cpu fp32 {d16:.1e} (tol 2e-2)"
        if not (np.isfinite(d16) and d16 <= 2e-2):  # bfloat16 keeps 8 significant bits
            row.result = "fail"
    return row


def _flops_per_window(model, codes: np.ndarray, tracks: np.ndarray | None) -> float:
    """Multiply-adds x 2 of one window through the net's Conv1d and Linear layers (forward hooks)."""
    import torch

    total = [0.0]

    def hook(mod, inp, out):
        b = inp[0].shape[0]
        if isinstance(mod, torch.nn.Conv1d):
            total[0] += 2.0 * out.numel() / b * mod.in_channels / mod.groups * mod.kernel_size[0]
        else:
            total[0] += 2.0 * mod.in_features * mod.out_features * out.numel() / b / mod.out_features

    hs = [
        m.register_forward_hook(hook)
        for m in model.module.modules()
        if isinstance(m, torch.nn.Conv1d | torch.nn.Linear)
    ]
    try:  # gradients on: the module runs layer by layer (its no-grad path fuses layers, hooks miss them)
        c = torch.from_numpy(np.ascontiguousarray(codes[:2])).to(model.module.device)
        t = None if tracks is None else torch.from_numpy(np.asarray(tracks[:2], np.float32)).to(c.device)
        with torch.enable_grad():
            model.module.inference(c, t)
    finally:
        for h in hs:
            h.remove()
    return total[0]


def rows_table(cfg: dict, dev) -> list[Row]:
    """The (peak, level) table of the scFAN CNN: fp32 (package path) and bf16 autocast, vs the CPU."""
    import torch

    import scfanpy as sfp
    from scfanpy.tl import _scoring as sc
    from scfanpy.tl._predict import _predictor

    w, n_tfs, n = cfg["table_window"], cfg["table_tfs"], cfg["table_peaks"]
    model = sfp.models.SCFAN(
        tf_names=[f"tf{i}" for i in range(n_tfs)],
        window=w,
        n_tracks=1,
        track_names=["dnase"],
        **cfg["table_arch"],
    )
    model.module.eval()
    codes = _random_codes(np.random.default_rng(1), n, w)
    levels = np.linspace(0.5, 8.0, cfg["table_levels"]).astype(np.float32)
    median = np.array([4.0], np.float32)
    predictors = {"fp32": _predictor(model, None, cfg["table_batch"])}
    if "precision" in inspect.signature(_predictor).parameters:  # predict_tf_binding(precision='bf16')
        predictors["bf16"] = _predictor(model, None, cfg["table_batch"], "bf16")

    def table(
        c: np.ndarray, kind: str = "fp32"
    ) -> np.ndarray:  # predict_tf_binding's: levels + median reference
        predict = predictors.get(kind, predictors["fp32"])
        ref = sc.binding_table(predict, c, median, n_tfs=n_tfs, batch_size=cfg["table_batch"])
        return np.concatenate(
            [sc.binding_table(predict, c, levels, n_tfs=n_tfs, window=w, batch_size=cfg["table_batch"]), ref],
            1,
        )

    flops = _flops_per_window(model, codes, np.ones((2, 1), np.float32))
    m = cfg["table_cpu"]
    model.module.to("cpu")
    ref_cpu, t_cpu = _timed(lambda: table(codes[:m]), "cpu")
    model.module.to(dev)
    passes = cfg["table_levels"] + 1
    total = flops * n * passes
    est = total / (0.5 * H200_BF16_PEAK)
    rows = []
    dev_type = "cuda" if _is_cuda(dev) else "cpu"
    for kind in ("fp32", "bf16"):
        row = Row(f"scFAN table {kind}", str(dev))
        try:
            wrap = kind == "bf16" and kind not in predictors  # older package: autocast around the fp32 path
            ctx = (lambda: torch.autocast(dev_type, dtype=torch.bfloat16)) if wrap else nullcontext

            def run(c, ctx=ctx, kind=kind):
                with ctx():
                    return table(c, kind)

            run(codes[: max(1, cfg["table_batch"] // passes)])  # warm-up
            out, secs = _timed(lambda run=run: run(codes), dev)
            label, tol = (
                _fp32_tol(dev)
                if kind == "fp32"
                else ("bf16 autocast (wrapper)" if wrap else "bf16 (precision='bf16')", 2e-2)
            )
            row.dtype, row.size, row.seconds = label, f"{n:,} peaks x {passes} passes x {w} bp", secs
            row.throughput = f"{_rate(n * passes, secs)} win/s; {total / secs / 1e12:.1f} TFLOP/s; cpu {_rate(m * passes, t_cpu)} win/s"
            row.max_diff, row.tol = float(np.abs(out[:m] - ref_cpu).max()), tol
            row.note = f"{flops / 1e9:.3f} GFLOP/window, {total / 1e15:.3f} PFLOP; est {est:.2f} s (half H200 bf16 peak), time/est {secs / est:.1f}x"
            row.judge()
        except Exception as e:  # noqa: BLE001 - one failing row must not stop the others
            row.note = _err(e)
        rows.append(row)
    return rows


def _jaspar(limit: int | None) -> dict[str, np.ndarray]:
    d = np.load(JASPAR_NPZ)
    ends = np.cumsum(d["lengths"])
    mats = np.split(d["probs"], ends[:-1])
    out = {str(k): v for k, v in zip(d["names"], mats, strict=True)}
    return dict(list(out.items())[:limit]) if limit else out


def row_motif(cfg: dict, dev) -> Row:
    """JASPAR scan on ``dev`` (``scan_codes(..., device=)``) vs the numpy scan on a subsample."""
    import scfanpy as sfp

    motifs = _jaspar(cfg["motif_max"])
    mm = sfp.models.MotifModel(motifs=motifs)
    n, width, m = cfg["motif_peaks"], cfg["motif_width"], cfg["motif_cpu"]
    codes = _random_codes(np.random.default_rng(2), n, width)
    row = Row("motif scan", str(dev), "", f"{n:,} x {width} bp x {len(motifs)} motifs x 2 strands")
    params = inspect.signature(mm.scan_codes).parameters
    ref_kw = {"backend": "numpy"} if "backend" in params else {}
    ref, t_cpu = _timed(lambda: mm.scan_codes(codes[:m], **ref_kw), "cpu")
    if "device" not in params:
        row.result, row.dtype = "n/a", "fp32 (numpy)"
        row.throughput = f"cpu (numpy) {_rate(m, t_cpu)} peaks/s"
        row.note = "not available: MotifModel.scan_codes has no device keyword"
        return row
    kw = {"device": str(dev), "batch_size": 2048 if _is_cuda(dev) else 256}
    if "backend" in params:
        kw["backend"] = "torch"
    mm.scan_codes(codes[: min(n, 256)], **kw)  # warm-up
    out, secs = _timed(lambda: mm.scan_codes(codes, **kw), dev)
    row.seconds, row.dtype = secs, "fp32 (torch conv)"
    row.throughput = f"{_rate(n, secs)} peaks/s; cpu (numpy) {_rate(m, t_cpu)} peaks/s"
    ok = np.isfinite(ref)
    row.max_diff, row.tol = float(np.abs(out[:m][ok] - ref[ok]).max()), 1e-3
    row.note = f"best log-odds vs the numpy scan on {m} peaks; {', '.join(f'{k}={v}' for k, v in kw.items())}"
    row.judge()
    return row


def _cells(cfg: dict):
    """Random binary cells x peaks (log-normal depths, 2 batches) as an AnnData."""
    import anndata as ad
    import scipy.sparse as sp

    rng = np.random.default_rng(3)
    nc, npk = cfg["cells"], cfg["peaks"]
    k = np.clip(rng.lognormal(np.log(cfg["peaks_per_cell"]), 0.5, nc).astype(int), 5, npk)
    rows = np.repeat(np.arange(nc), k)
    cols = rng.integers(0, npk, k.sum())
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(nc, npk))
    X.data[:] = 1.0
    a = ad.AnnData(X)
    a.obs["batch"] = np.where(rng.random(nc) < 0.5, "b0", "b1")
    return a


def _epoch_timer():
    import lightning.pytorch as pl

    class EpochTimer(pl.Callback):
        def __init__(self):
            self.stamps: list[float] = []

        def _stamp(self, trainer):
            if trainer.strategy.root_device.type == "cuda":
                _sync("cuda")
            self.stamps.append(time.perf_counter())

        def on_train_epoch_start(self, trainer, pl_module):
            self._stamp(trainer)

        def on_train_end(self, trainer, pl_module):
            self._stamp(trainer)

        def per_epoch(self) -> float:
            d = np.diff(self.stamps)
            return float(np.median(d[1:] if len(d) > 1 else d))

    return EpochTimer()


def rows_sailer(cfg: dict, dev) -> list[Row]:
    """Seconds per epoch of SAILER and of scvi-tools' PeakVI on the same cells x peaks (each's defaults)."""
    import scvi

    import scfanpy as sfp

    base = _cells(cfg)
    size = f"{cfg['cells']:,} cells x {cfg['peaks']:,} peaks, {cfg['epochs']} ep"
    res = {}
    rows = []
    for name in ("SAILER", "PeakVI"):
        row = Row(f"{name} epoch", str(dev), "fp32 (default)", size)
        try:
            a = base.copy()
            timer = _epoch_timer()
            kw = {**_trainer(dev), "max_epochs": cfg["epochs"], "callbacks": [timer]}
            if name == "SAILER":
                sfp.models.SAILER.setup_anndata(a, batch_key="batch")
                model, bs = sfp.models.SAILER(a), 400
            else:
                scvi.model.PEAKVI.setup_anndata(a, batch_key="batch")
                model, bs = scvi.model.PEAKVI(a), 128
            _, secs = _timed(lambda m=model, kw=kw, bs=bs: m.train(batch_size=bs, **kw), dev)
            res[name] = timer.per_epoch()
            row.seconds = res[name]
            row.throughput = f"{_rate(cfg['cells'], res[name])} cells/s; {secs:.1f} s in all"
            row.note = f"batch {bs}; median s/epoch after the first"
            row.judge()
        except Exception as e:  # noqa: BLE001 - one failing row must not stop the others
            row.note = _err(e)
        rows.append(row)
    if len(res) == 2:
        rows[0].note += f"; SAILER/PeakVI s/epoch = {res['SAILER'] / res['PeakVI']:.2f}"
    return rows


# ------------------------------------------------------------------------------------------ driver
def _err(e: BaseException) -> str:
    tb = traceback.format_exception(type(e), e, e.__traceback__)
    where = next((ln.strip() for ln in reversed(tb) if ln.strip().startswith("File ")), "")
    return f"{type(e).__name__}: {str(e)[:300]} [{where[:200]}]".replace("|", "/").replace("\n", " ")


def _guard(name: str | tuple[str, ...], fn: Callable, *args) -> list[Row]:
    """Run one row function; an exception becomes an 'error' row (one per expected name)."""
    t0 = time.perf_counter()
    try:
        out = fn(*args)
        rows = out if isinstance(out, list) else [out]
    except Exception as e:  # noqa: BLE001 - one failing row must not stop the others
        traceback.print_exc()
        names = (name,) if isinstance(name, str) else name
        rows = [Row(nm, str(args[-1]), note=_err(e)) for nm in names]
    for r in rows:
        print(f"[{time.perf_counter() - t0:7.1f} s] {r.name}: {r.result} {r.note}", flush=True)
    return rows


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2e}" if (v != 0 and abs(v) < 1e-2) else f"{v:.{digits}g}"
    return str(v)


def to_markdown(rows: list[Row], header: dict) -> str:
    cols = ["name", "device", "dtype", "size", "seconds", "throughput", "max_diff", "tol", "result", "note"]
    lines = [
        "| " + " | ".join(h.replace("max_diff", "CPU/GPU max diff") for h in cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for r in rows:
        d = asdict(r)
        lines.append("| " + " | ".join(_fmt(d[c]) for c in cols) + " |")
    meta = "; ".join(f"{k}: {v}" for k, v in header.items())
    return f"{meta}\n\n" + "\n".join(lines) + "\n"


def _header(dev, smoke: bool, total: float) -> dict:
    import torch

    try:
        import scvi

        scvi_v = scvi.__version__
    except Exception:  # noqa: BLE001
        scvi_v = "missing"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "mode": "smoke" if smoke else "full",
        "device": str(dev),
        "gpu": gpu,
        "torch": torch.__version__,
        "scvi-tools": scvi_v,
        "python": platform.python_version(),
        "cpu threads": torch.get_num_threads(),
        "total s": f"{total:.0f}",
    }


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes (any device; for tests)")
    p.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    p.add_argument("--out", default=None, help="markdown output (default $OUT/device_check.md)")
    p.add_argument("--only", nargs="*", default=None, help="row groups: seq table motif sailer")
    p.add_argument(
        "--budget", type=float, default=400.0, help="seconds after which remaining groups are skipped"
    )
    return p.parse_args(argv)


def _write(out: Path | None, rows: list[Row], header: dict) -> str:
    md = to_markdown(rows, header)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(md)
        payload = {"header": header, "rows": [asdict(r) for r in rows]}
        out.with_suffix(".json").write_text(json.dumps(payload, indent=1))
    return md


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the checks; return the rows as dicts (also printed and written, after each group)."""
    args = _parse(argv)
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # jax, if scvi-tools imports it
    for msg in (".*LeafSpec.*", ".*logging interval.*", ".*does not have many workers.*", ".*Tensor Cores.*"):
        warnings.filterwarnings("ignore", message=msg)
    import torch

    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cfg = SMOKE if args.smoke else FULL
    out = args.out or (os.path.join(os.environ["OUT"], "device_check.md") if os.environ.get("OUT") else None)
    out = None if out is None else Path(out)
    groups = [
        *(("seq", f"{m} train + predict", row_seqmodel, (m, cfg, dev)) for m in SEQ_MODELS),
        ("table", ("scFAN table fp32", "scFAN table bf16"), rows_table, (cfg, dev)),
        ("motif", "motif scan", row_motif, (cfg, dev)),
        ("sailer", ("SAILER epoch", "PeakVI epoch"), rows_sailer, (cfg, dev)),
    ]
    only = set(args.only or ("seq", "table", "motif", "sailer"))
    t0 = time.perf_counter()
    rows: list[Row] = []
    for group, names, fn, fargs in groups:
        if group not in only:
            continue
        if time.perf_counter() - t0 > args.budget:
            names = (names,) if isinstance(names, str) else names
            rows += [
                Row(nm, str(dev), result="n/a", note=f"skipped: past the {args.budget:.0f} s budget")
                for nm in names
            ]
            continue
        rows += _guard(names, fn, *fargs)
        _write(
            out, rows, _header(dev, args.smoke, time.perf_counter() - t0)
        )  # partial results survive a kill
    md = _write(out, rows, _header(dev, args.smoke, time.perf_counter() - t0))
    print("\n" + md, flush=True)
    if out is not None:
        print(f"written: {out} and {out.with_suffix('.json')}", flush=True)
    return [asdict(r) for r in rows]


if __name__ == "__main__":
    result = main()
    sys.exit(1 if any(r["result"] in ("fail", "error") for r in result) else 0)
