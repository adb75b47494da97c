"""The numeric core of :func:`scfanpy.pp.make_training_windows`: scan a genome interval into labelled bins.

Each function takes arrays (or the fixed :class:`ScanPlan` of one call) and returns arrays; nothing here
touches AnnData. One interval is scanned in chunks of bins (:func:`scan_chunk`: clean windows, labels,
unbound candidates), its unbound bins are sampled (:func:`sample_negatives`), and the kept windows are
read from the genome and the accessibility tracks (:func:`read_windows`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import _logging as logg
from .._constants import N_CODE
from ..genome import Genome
from ._intervals import Cover, canon_chrom, covers_by_chrom, read_intervals

__all__: list[str] = []  # private helpers, not part of sfp.pp

_RECORD_RE = re.compile(r"^(?P<chrom>[^:]+):(?P<start>\d+)-(?P<end>\d+)$")

#: one scanned interval: ``(chrom, start, end, genome record, offset of the record on the chromosome)``
Interval = tuple[str, int, int, str, int]


# ---------------------------------------------------------------------------------------- genome records
def locate(genome: Genome, chrom: str, start: int, end: int) -> tuple[str, int]:
    """Record of ``genome`` holding ``chrom:[start, end)`` and the record's offset on the chromosome.

    A chromosome in the file is used directly (offset 0). Otherwise a record named like a samtools
    region, ``chrom:START-END`` (1-based, inclusive; e.g. ``22:20000001-21000000``), that covers the
    interval is used with offset ``START - 1``.
    """
    r = genome.resolve(chrom)
    if r is not None:
        return r, 0
    want = canon_chrom(chrom)
    for rec in genome.chrom_sizes:
        m = _RECORD_RE.match(rec)
        if m and canon_chrom(m["chrom"]) == want:
            off = int(m["start"]) - 1
            if off <= start and end <= int(m["end"]):
                return rec, off
    raise KeyError(
        f"{chrom}:{start}-{end} is in no record of genome {genome.name} ({list(genome.chrom_sizes)[:8]})"
    )


def scan_intervals(
    genome: Genome,
    regions: pd.DataFrame | Sequence[tuple[str, int, int]] | str | os.PathLike | None,
    chroms: Sequence[str] | None,
    covers: Mapping[str, Cover],
) -> list[Interval]:
    """The intervals whose bins are scanned: ``regions``, else ``chroms``, else chromosomes with peaks."""
    if regions is not None:
        if isinstance(regions, (list, tuple)):
            reg = pd.DataFrame(list(regions), columns=["chr", "start", "end"])
        else:
            reg = read_intervals(regions, "regions")
        out = []
        for c, s, e in reg[["chr", "start", "end"]].itertuples(index=False):
            rec, off = locate(genome, str(c), int(s), int(e))
            out.append((str(c), int(s), int(e), rec, off))
        return out
    names = list(genome.chrom_sizes)
    if chroms is not None:
        keep = {canon_chrom(c) for c in chroms}
        names = [n for n in names if canon_chrom(n) in keep]
    else:  # chromosomes carrying at least one peak
        names = [n for n in names if canon_chrom(n) in covers and "_" not in n]
    return [(n, 0, genome.chrom_sizes[n], n, 0) for n in names]


# ---------------------------------------------------------------------------------------- accessibility
def _open_bigwig(src: str | os.PathLike):
    try:
        import pyBigWig
    except ImportError as e:
        raise ImportError(
            "reading bigWig accessibility needs pyBigWig: pip install 'scfanpy[bigwig]' "
            "(or pass accessibility peaks as a DataFrame / BED file)"
        ) from e
    bw = pyBigWig.open(str(src))
    if bw is None:
        raise OSError(f"cannot open bigWig {src}")
    return bw


def _bigwig_values(bw, chrom: str, lo: int, hi: int, out: np.ndarray) -> None:
    """Write the bigWig's values on ``chrom:[lo, hi)`` into ``out`` (NaN and missing data stay 0)."""
    sizes = bw.chroms()
    name = next((c for c in (chrom, "chr" + canon_chrom(chrom), canon_chrom(chrom)) if c in sizes), None)
    if name is None:
        return
    a, b = max(lo, 0), min(hi, sizes[name])
    if b > a:
        v = np.asarray(bw.values(name, a, b, numpy=True), dtype=np.float32)
        out[a - lo : b - lo] = np.nan_to_num(v, nan=0.0)


class Tracks:
    """Per-base accessibility tracks: bigWig files (pyBigWig) and/or peak sets (0/1 coverage)."""

    def __init__(self, accessibility):
        if accessibility is None:
            self.sources, self.names = [], []
            return
        if isinstance(accessibility, Mapping):
            items = list(accessibility.items())
        elif isinstance(accessibility, (str, os.PathLike, pd.DataFrame)):
            items = [("accessibility", accessibility)]
        else:
            items = [(f"track{i}", a) for i, a in enumerate(accessibility)]
        self.names = [str(k) for k, _ in items]
        self.sources = []
        for name, src in items:
            if isinstance(src, (str, os.PathLike)) and str(src).lower().endswith((".bw", ".bigwig")):
                self.sources.append(("bw", _open_bigwig(src)))
            else:
                self.sources.append(
                    ("peaks", covers_by_chrom(read_intervals(src, f"accessibility[{name!r}]")))
                )

    def values(self, chrom: str, lo: int, hi: int) -> np.ndarray:
        """``(n_tracks, hi - lo)`` float32 for ``chrom:[lo, hi)`` (0 outside data)."""
        out = np.zeros((len(self.sources), hi - lo), dtype=np.float32)
        for k, (kind, src) in enumerate(self.sources):
            if kind == "bw":
                _bigwig_values(src, chrom, lo, hi, out[k])
            else:
                cov = src.get(canon_chrom(chrom))
                if cov is not None:
                    out[k] = cov.base_mask(lo, hi)
        return out


# ---------------------------------------------------------------------------------------- scanning
@dataclass
class ScanPlan:
    """Everything the scan of one :func:`~scfanpy.pp.make_training_windows` call needs (fixed per call)."""

    genome: Genome
    tf_cov: list[dict[str, Cover]]  # per TF: {canonical chromosome: merged peaks}
    any_cov: dict[str, Cover]  # peaks of all TFs
    black: dict[str, Cover]
    tracks: Tracks
    bin_size: int
    stride: int
    context: int
    min_overlap: float
    negative_ratio: float
    negative_margin: int
    max_n_frac: float
    chunk_bp: int
    flank: int = field(init=False)

    def __post_init__(self):
        self.flank = (self.context - self.bin_size) // 2


@dataclass
class ScannedInterval:
    """The kept windows of one interval, sorted by position."""

    chrom: str
    starts: np.ndarray  # (n,) int64 bin starts
    labels: np.ndarray  # (n, n_tfs) float32: 1 bound, 0 unbound, NaN ambiguous
    codes: np.ndarray  # (n, context) uint8
    signal: np.ndarray | None  # (n, n_tracks, context) float32


def label_bins(
    covers: Sequence[Mapping[str, Cover]], key: str, b: np.ndarray, bin_size: int, min_overlap: float
) -> np.ndarray:
    """``(len(b), n_tfs)`` labels of the bins ``[b, b + bin_size)``: 1, NaN (some overlap) or 0."""
    labs = np.zeros((len(b), len(covers)), dtype=np.float32)
    for j, cov in enumerate(covers):
        c = cov.get(key)
        if c is None:
            continue
        ov = c.overlap(b, b + bin_size)
        labs[:, j] = np.where(ov >= min_overlap * bin_size, 1.0, np.where(ov > 0, np.nan, 0.0))
    return labs


def clean_windows(plan: ScanPlan, key: str, rec: str, off: int, w0: np.ndarray) -> np.ndarray:
    """Whether each window ``[w0, w0 + context)`` has at most ``max_n_frac`` N and misses the blacklist."""
    context = plan.context
    seq = plan.genome.fetch_codes(rec, int(w0[0]) - off, int(w0[-1]) + context - off)
    cn = np.concatenate([[0], np.cumsum(seq == N_CODE, dtype=np.int64)])
    rel = w0 - w0[0]
    ok = (cn[rel + context] - cn[rel]) <= plan.max_n_frac * context
    if key in plan.black:
        ok &= plan.black[key].overlap(w0, w0 + context) == 0
    return ok


def scan_chunk(
    plan: ScanPlan, key: str, rec: str, off: int, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bound bin starts, their labels, and clean unbound candidates among the bins ``b``."""
    ok = clean_windows(plan, key, rec, off, b - plan.flank)
    labs = label_bins(plan.tf_cov, key, b, plan.bin_size, plan.min_overlap)
    bound = ok & (labs == 1).any(axis=1)
    if key in plan.any_cov:
        margin = plan.negative_margin
        free = plan.any_cov[key].overlap(b - margin, b + plan.bin_size + margin) == 0
    else:
        free = np.ones(len(b), dtype=bool)
    return b[bound], labs[bound], b[ok & free]


def scan_bins(
    plan: ScanPlan, chrom: str, lo: int, hi: int, rec: str, off: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int] | None:
    """Bound starts, their labels, unbound candidates and the number of bins scanned in ``[lo, hi)``.

    Bins lie on multiples of ``stride`` and their whole window lies in ``[lo, hi)``; ``None`` when no
    bin fits. Bins are scanned ``chunk_bp`` at a time.
    """
    key = canon_chrom(chrom)
    first = -(-(lo + plan.flank) // plan.stride) * plan.stride  # bins aligned to multiples of stride
    last = hi - plan.context + plan.flank  # the window [b - flank, b - flank + context) must end by hi
    if last < first:
        return None
    pos_s, pos_l, neg_s = [], [], []
    n_bins = 0
    step = max(1, plan.chunk_bp // plan.stride) * plan.stride  # chunks keep the bins on the stride grid
    for c_lo in range(first, last + 1, step):
        b = np.arange(c_lo, min(c_lo + step, last + 1), plan.stride, dtype=np.int64)
        if not len(b):
            continue
        n_bins += len(b)
        s, lab, free = scan_chunk(plan, key, rec, off, b)
        pos_s.append(s)
        pos_l.append(lab)
        neg_s.append(free)
    if not pos_s:
        return None
    return np.concatenate(pos_s), np.concatenate(pos_l), np.concatenate(neg_s), n_bins


def sample_negatives(
    random_state: np.random.Generator,
    bound: np.ndarray,
    labels: np.ndarray,
    candidates: np.ndarray,
    ratio: float,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Bound bins plus ``ratio`` sampled unbound bins per bound bin, sorted: ``(starts, labels, n_sampled)``.

    Draws from ``random_state`` only when at least one unbound bin is wanted.
    """
    rng = random_state
    n_want = min(len(candidates), int(round(ratio * len(bound))))
    pick = np.sort(rng.choice(candidates, size=n_want, replace=False)) if n_want else candidates[:0]
    starts = np.concatenate([bound, pick])
    labs = np.concatenate([labels, np.zeros((len(pick), labels.shape[1]), dtype=np.float32)])
    o = np.argsort(starts, kind="stable")
    return starts[o], labs[o], len(pick)


def read_windows(
    plan: ScanPlan, chrom: str, rec: str, off: int, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Codes ``(n, context)`` and signal ``(n, n_tracks, context)`` (or None) of the bins at ``starts``.

    Sorted ``starts`` are read in spans of nearby windows (at most about ``chunk_bp`` apart).
    """
    context, flank = plan.context, plan.flank
    codes = np.empty((len(starts), context), dtype=np.uint8)
    n_tracks = len(plan.tracks.sources)
    sig = np.empty((len(starts), n_tracks, context), dtype=np.float32) if n_tracks else None
    i = 0
    while i < len(starts):
        j = max(int(np.searchsorted(starts, starts[i] + plan.chunk_bp, side="left")), i + 1)
        s_lo = int(starts[i]) - flank
        s_hi = int(starts[j - 1]) - flank + context
        span = plan.genome.fetch_codes(rec, s_lo - off, s_hi - off)
        idx = (starts[i:j] - flank - s_lo)[:, None] + np.arange(context)[None, :]
        codes[i:j] = span[idx]
        if sig is not None:
            sig[i:j] = np.moveaxis(plan.tracks.values(chrom, s_lo, s_hi)[:, idx], 0, 1)
        i = j
    return codes, sig


def scan_interval(
    plan: ScanPlan, random_state: np.random.Generator, interval: Interval
) -> ScannedInterval | None:
    """The windows kept in one interval (bound bins and sampled unbound ones), or None when none is."""
    chrom, lo, hi, rec, off = interval
    scanned = scan_bins(plan, chrom, lo, hi, rec, off)
    if scanned is None:
        return None
    bound, labels, candidates, n_bins = scanned
    starts, labs, n_sampled = sample_negatives(random_state, bound, labels, candidates, plan.negative_ratio)
    logg.info(
        "%s: %d bins scanned, %d bound, %d of %d clean unbound sampled",
        chrom,
        n_bins,
        len(bound),
        n_sampled,
        len(candidates),
    )
    if not len(starts):
        return None
    codes, sig = read_windows(plan, chrom, rec, off, starts)
    return ScannedInterval(chrom, starts, labs, codes, sig)
