"""Bulk training sets for the sequence models: genome bins labelled by TF ChIP-seq peaks.

The recipe of FactorNet (Quang & Xie 2019) and scFAN (Fu et al. 2020): 200-bp bins at a 50-bp stride,
each the centre of a 1,000-bp input window; a bin is bound by a TF when that TF's peaks cover at least
half of it; unbound bins are sampled away from every peak and from the blacklist; whole chromosomes are
held out for validation and test.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from .._constants import DNA_CODE, N_CODE, UNS
from .._utils import check_random_state, log_added, logger, uns_params
from ..genome import Genome, as_genome

__all__ = ["make_training_windows"]

_RECORD_RE = re.compile(r"^(?P<chrom>[^:]+):(?P<start>\d+)-(?P<end>\d+)$")


# ---------------------------------------------------------------------------------------- intervals
def _canon(chrom: str) -> str:
    """Chromosome name without a ``chr`` prefix (for matching UCSC and Ensembl spellings)."""
    chrom = str(chrom)
    return chrom[3:] if chrom.startswith("chr") else chrom


def _read_intervals(obj, what: str) -> pd.DataFrame:
    """A BED-like DataFrame or file (BED / narrowPeak, gzip ok) as ``chr, start, end`` (0-based)."""
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if not path.exists():
            raise FileNotFoundError(f"{what}: file not found: {path}")
        df = pd.read_csv(path, sep="\t", header=None, comment="#", usecols=[0, 1, 2], dtype={0: str})
        df.columns = ["chr", "start", "end"]
    elif isinstance(obj, pd.DataFrame):
        if {"chr", "start", "end"} <= set(obj.columns):
            df = obj[["chr", "start", "end"]].copy()
        elif {"chrom", "start", "end"} <= set(obj.columns):
            df = obj[["chrom", "start", "end"]].rename(columns={"chrom": "chr"})
        else:
            df = obj.iloc[:, :3].copy()
            df.columns = ["chr", "start", "end"]
    else:
        raise TypeError(f"{what}: expected a DataFrame or a BED/narrowPeak path, got {type(obj).__name__}")
    df["chr"] = df["chr"].astype(str)
    df["start"] = df["start"].astype(np.int64)
    df["end"] = df["end"].astype(np.int64)
    if (df["end"] < df["start"]).any():
        raise ValueError(f"{what}: {(df['end'] < df['start']).sum()} interval(s) with end < start")
    return df


class _Cover:
    """Merged intervals of one chromosome; ``overlap(a, b)`` = bp of ``[a, b)`` they cover (vectorised)."""

    def __init__(self, starts: np.ndarray, ends: np.ndarray):
        if len(starts):
            o = np.argsort(starts, kind="stable")
            s, e = starts[o], ends[o]
            run_end = np.maximum.accumulate(e)
            new = np.ones(len(s), dtype=bool)
            new[1:] = s[1:] > run_end[:-1]
            grp = np.cumsum(new) - 1
            self.s = s[new]
            self.e = np.zeros(len(self.s), dtype=np.int64)
            np.maximum.at(self.e, grp, e)
        else:
            self.s = np.zeros(0, dtype=np.int64)
            self.e = np.zeros(0, dtype=np.int64)
        self.len = self.e - self.s
        self.before = np.concatenate([[0], np.cumsum(self.len)])  # covered bp before interval i

    def _cum(self, x: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.s, x, side="right") - 1
        ok = i >= 0
        out = np.zeros(x.shape, dtype=np.int64)
        ii = i[ok]
        out[ok] = self.before[ii] + np.minimum(x[ok] - self.s[ii], self.len[ii])
        return out

    def overlap(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if len(self.s) == 0:
            return np.zeros(np.shape(a), dtype=np.int64)
        return self._cum(np.asarray(b, dtype=np.int64)) - self._cum(np.asarray(a, dtype=np.int64))

    def base_mask(self, lo: int, hi: int) -> np.ndarray:
        """Boolean per-base coverage of ``[lo, hi)``."""
        m = np.zeros(hi - lo, dtype=bool)
        i0 = np.searchsorted(self.e, lo, side="right")
        i1 = np.searchsorted(self.s, hi, side="left")
        for s, e in zip(self.s[i0:i1], self.e[i0:i1], strict=True):
            m[max(s, lo) - lo : min(e, hi) - lo] = True
        return m


def _by_chrom(df: pd.DataFrame) -> dict[str, _Cover]:
    return {
        c: _Cover(g["start"].to_numpy(np.int64), g["end"].to_numpy(np.int64))
        for c, g in df.groupby(df["chr"].map(_canon), sort=False)
    }


# ---------------------------------------------------------------------------------------- genome records
def _locate(genome: Genome, chrom: str, start: int, end: int) -> tuple[str, int]:
    """Record of ``genome`` holding ``chrom:[start, end)`` and the record's offset on the chromosome.

    A chromosome in the file is used directly (offset 0). Otherwise a record named like a samtools
    region, ``chrom:START-END`` (1-based, inclusive; e.g. ``22:20000001-21000000``), that covers the
    interval is used with offset ``START - 1``.
    """
    r = genome.resolve(chrom)
    if r is not None:
        return r, 0
    want = _canon(chrom)
    for rec in genome.chrom_sizes:
        m = _RECORD_RE.match(rec)
        if m and _canon(m["chrom"]) == want:
            off = int(m["start"]) - 1
            if off <= start and end <= int(m["end"]):
                return rec, off
    raise KeyError(
        f"{chrom}:{start}-{end} is in no record of genome {genome.name} ({list(genome.chrom_sizes)[:8]})"
    )


def _scan_intervals(genome: Genome, regions, chroms, covers: dict) -> list[tuple[str, int, int, str, int]]:
    """``(chrom, start, end, record, offset)`` intervals whose bins are scanned."""
    out = []
    if regions is not None:
        reg = _read_intervals(regions, "regions") if not isinstance(regions, (list, tuple)) else None
        if reg is None:
            reg = pd.DataFrame(list(regions), columns=["chr", "start", "end"])
        for c, s, e in reg[["chr", "start", "end"]].itertuples(index=False):
            rec, off = _locate(genome, str(c), int(s), int(e))
            out.append((str(c), int(s), int(e), rec, off))
        return out
    names = list(genome.chrom_sizes)
    if chroms is not None:
        keep = {_canon(c) for c in chroms}
        names = [n for n in names if _canon(n) in keep]
    else:  # chromosomes carrying at least one peak
        names = [n for n in names if _canon(n) in covers and "_" not in n]
    for n in names:
        out.append((n, 0, genome.chrom_sizes[n], n, 0))
    return out


# ---------------------------------------------------------------------------------------- accessibility
class _Tracks:
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
                self.sources.append(("bw", bw))
            else:
                self.sources.append(("peaks", _by_chrom(_read_intervals(src, f"accessibility[{name!r}]"))))

    def values(self, chrom: str, lo: int, hi: int) -> np.ndarray:
        """``(n_tracks, hi - lo)`` float32 for ``chrom:[lo, hi)`` (0 outside data)."""
        out = np.zeros((len(self.sources), hi - lo), dtype=np.float32)
        for k, (kind, src) in enumerate(self.sources):
            if kind == "bw":
                sizes = src.chroms()
                name = next((c for c in (chrom, "chr" + _canon(chrom), _canon(chrom)) if c in sizes), None)
                if name is None:
                    continue
                a, b = max(lo, 0), min(hi, sizes[name])
                if b > a:
                    v = np.asarray(src.values(name, a, b, numpy=True), dtype=np.float32)
                    out[k, a - lo : b - lo] = np.nan_to_num(v, nan=0.0)
            else:
                cov = src.get(_canon(chrom))
                if cov is not None:
                    out[k] = cov.base_mask(lo, hi)
        return out


# ---------------------------------------------------------------------------------------- main
def make_training_windows(
    genome: Genome | str | os.PathLike,
    peaks: Mapping[str, pd.DataFrame | str | os.PathLike] | pd.DataFrame,
    *,
    regions: pd.DataFrame | Sequence[tuple[str, int, int]] | str | os.PathLike | None = None,
    chroms: Sequence[str] | None = None,
    bin_size: int = 200,
    stride: int = 50,
    context: int = 1000,
    min_overlap: float = 0.5,
    negative_ratio: float = 1.0,
    negative_margin: int = 200,
    blacklist: pd.DataFrame | str | os.PathLike | None = None,
    accessibility=None,
    valid_chroms: Sequence[str] = ("chr11",),
    test_chroms: Sequence[str] = ("chr1", "chr8", "chr21"),
    max_n_frac: float = 0.1,
    chunk_bp: int = 2_000_000,
    seed: int | np.random.Generator | None = 0,
) -> AnnData:
    """Build a labelled regions AnnData for training the sequence models on bulk ChIP-seq.

    The genome is cut into ``bin_size`` bins every ``stride`` bp; each bin is the centre of a
    ``context``-bp input window. A bin is *bound* by a TF (label 1) when that TF's peaks cover at least
    ``min_overlap`` of it, *ambiguous* (NaN, masked in the loss) when they cover less but some, and
    unbound (0) otherwise. Every bin bound by at least one TF is kept; unbound bins (no peak of any TF
    within ``negative_margin`` bp of the bin) are sampled at ``negative_ratio`` per bound bin, per
    chromosome. Windows overlapping the blacklist, reaching past the scanned interval, or with more than
    ``max_n_frac`` N are skipped. Chromosomes are scanned one at a time in ``chunk_bp`` chunks, so memory
    holds one chunk's bins, not the genome's. This is the recipe of FactorNet and scFAN.

    Parameters
    ----------
    genome
        A :class:`~scfanpy.Genome`, FASTA/2bit path, or ``'hg19'``/``'hg38'``/``'mm10'``. Records named
        like a samtools region (``22:20000001-21000000``, 1-based) are used for intervals they cover.
    peaks
        ``{tf: peaks}`` with each a DataFrame (``chr``, ``start``, ``end``, 0-based) or a BED/narrowPeak
        path; or one DataFrame with a ``tf`` column (e.g. :func:`scfanpy.datasets.encode_dream_peaks`).
    regions
        Restrict bins to these intervals (``[(chrom, start, end), ...]``, a DataFrame or a BED path),
        e.g. the part of a genome whose sequence is known. Default: whole chromosomes.
    chroms
        Chromosomes to scan when ``regions`` is ``None``. Default: those with at least one peak.
    bin_size, stride, context
        Bin length, step between bins and input window length (bp), the window centred on the bin.
    min_overlap
        Fraction of the bin a TF's (merged) peaks must cover for the bin to be bound.
    negative_ratio
        Unbound bins sampled per bound bin (per chromosome; fewer when fewer exist).
    negative_margin
        Unbound bins have no peak of any TF within this many bp.
    blacklist
        Excluded regions (DataFrame or BED path), e.g. :func:`scfanpy.datasets.hg19_blacklist`.
    accessibility
        Optional per-base input tracks for ``obsm['signal']``: a bigWig path (needs ``pyBigWig``), a
        peak DataFrame / BED path (0/1 coverage), or a list / ``{name: source}`` of these.
    valid_chroms, test_chroms
        Chromosomes held out for validation and test (any spelling, ``chr1`` = ``1``); the rest train.
    max_n_frac
        Largest fraction of ``N`` allowed in a window.
    chunk_bp
        Bases scanned per chunk.
    seed
        Seed for the negative sampling.

    Returns
    -------
    AnnData with one observation per window (``n_vars = 0``), sorted by position:

    - ``obs['chr']``, ``obs['start']``, ``obs['end']``: the bin (0-based, half-open); the input window
      is ``[start - (context - bin_size) // 2, ... + context)``;
    - ``obs['split']``: ``'train'``, ``'valid'`` or ``'test'`` (categorical);
    - ``obs['n_bound']``: number of TFs binding the bin;
    - ``obsm['dna_code']``: uint8 ``(n, context)`` codes, A=0 C=1 G=2 T=3 N=4;
    - ``obsm['labels']``: float32 DataFrame ``(n, n_tfs)``, 1 bound, 0 unbound, NaN ambiguous;
    - ``obsm['signal']``: float32 ``(n, n_tracks, context)`` when ``accessibility`` is given;
    - ``uns['tf_names']``, ``uns['signal_names']`` (with ``accessibility``),
      ``uns['scfanpy']['genome']`` and ``uns['training_windows']['params']``.

    Examples
    --------
    >>> import scfanpy as sfp
    >>> peaks = sfp.datasets.encode_dream_peaks("GM12878")  # doctest: +SKIP
    >>> w = sfp.pp.make_training_windows(
    ...     sfp.datasets.hg19_chr20(),
    ...     peaks,
    ...     regions=[("chr20", 9_995_000, 11_095_000)],
    ...     blacklist=sfp.datasets.hg19_blacklist(),
    ...     valid_chroms=[],
    ...     test_chroms=[],
    ... )  # doctest: +SKIP
    >>> w.obsm["dna_code"].shape[1], list(w.obsm["labels"].columns)[:3]  # doctest: +SKIP
    (1000, ['ATF7', 'CREB1', 'E2F1'])
    """
    if bin_size <= 0 or stride <= 0 or context < bin_size:
        raise ValueError(
            f"need bin_size > 0, stride > 0 and context >= bin_size (got {bin_size}, {stride}, {context})"
        )
    if not 0 < min_overlap <= 1:
        raise ValueError(f"min_overlap must be in (0, 1], got {min_overlap}")
    if negative_ratio < 0:
        raise ValueError(f"negative_ratio must be >= 0, got {negative_ratio}")
    genome = as_genome(genome)
    rng = check_random_state(seed)

    # ---- peaks per TF, merged per chromosome
    if isinstance(peaks, pd.DataFrame):
        if "tf" not in peaks.columns:
            raise ValueError("a single peaks DataFrame needs a 'tf' column; else pass {tf: peaks}")
        peaks = {str(t): g for t, g in peaks.groupby("tf", sort=True)}
    if not peaks:
        raise ValueError("no peaks given")
    tf_names = [str(t) for t in peaks]
    tf_cov = [_by_chrom(_read_intervals(p, f"peaks[{t!r}]")) for t, p in peaks.items()]
    any_cov = _by_chrom(pd.concat([_read_intervals(p, "peaks") for p in peaks.values()], ignore_index=True))
    black = _by_chrom(_read_intervals(blacklist, "blacklist")) if blacklist is not None else {}
    tracks = _Tracks(accessibility)
    valid = {_canon(c) for c in valid_chroms}
    test = {_canon(c) for c in test_chroms}
    if valid & test:
        raise ValueError(f"chromosomes both valid and test: {sorted(valid & test)}")
    flank = (context - bin_size) // 2
    n_tf = len(tf_names)

    chrom_out, start_out, lab_out, code_out, sig_out = [], [], [], [], []
    intervals = _scan_intervals(genome, regions, chroms, any_cov)
    if not intervals:
        raise ValueError("nothing to scan: no chromosome of the genome carries peaks (check names / regions)")
    for chrom, lo, hi, rec, off in intervals:
        key = _canon(chrom)
        first = -(-(lo + flank) // stride) * stride  # bins aligned to multiples of stride
        last = hi - context + flank  # the window [b - flank, b - flank + context) must end by hi
        if last < first:
            continue
        pos_s, pos_l, neg_s = [], [], []
        n_bins = 0
        step = max(1, chunk_bp // stride) * stride  # chunks keep the bins on the stride grid
        for c_lo in range(first, last + 1, step):
            b = np.arange(c_lo, min(c_lo + step, last + 1), stride, dtype=np.int64)
            if not len(b):
                continue
            n_bins += len(b)
            w0 = b - flank
            # N fraction of each window
            seq = genome.fetch_codes(rec, int(w0[0]) - off, int(w0[-1]) + context - off)
            cn = np.concatenate([[0], np.cumsum(seq == N_CODE, dtype=np.int64)])
            rel = w0 - w0[0]
            ok = (cn[rel + context] - cn[rel]) <= max_n_frac * context
            if key in black:
                ok &= black[key].overlap(w0, w0 + context) == 0
            labs = np.zeros((len(b), n_tf), dtype=np.float32)
            for j, cov in enumerate(tf_cov):
                c = cov.get(key)
                if c is None:
                    continue
                ov = c.overlap(b, b + bin_size)
                labs[:, j] = np.where(ov >= min_overlap * bin_size, 1.0, np.where(ov > 0, np.nan, 0.0))
            bound = ok & (labs == 1).any(axis=1)
            if key in any_cov:
                free = any_cov[key].overlap(b - negative_margin, b + bin_size + negative_margin) == 0
            else:
                free = np.ones(len(b), dtype=bool)
            pos_s.append(b[bound])
            pos_l.append(labs[bound])
            neg_s.append(b[ok & free])
        if not pos_s:
            continue
        p_s = np.concatenate(pos_s)
        p_l = np.concatenate(pos_l)
        n_cand = np.concatenate(neg_s)
        n_want = min(len(n_cand), int(round(negative_ratio * len(p_s))))
        n_pick = np.sort(rng.choice(n_cand, size=n_want, replace=False)) if n_want else n_cand[:0]
        starts = np.concatenate([p_s, n_pick])
        labs = np.concatenate([p_l, np.zeros((len(n_pick), n_tf), dtype=np.float32)])
        o = np.argsort(starts, kind="stable")
        starts, labs = starts[o], labs[o]
        logger.info(
            "%s: %d bins scanned, %d bound, %d of %d clean unbound sampled",
            chrom,
            n_bins,
            len(p_s),
            len(n_pick),
            len(n_cand),
        )
        if not len(starts):
            continue
        codes = np.empty((len(starts), context), dtype=np.uint8)
        sig = (
            np.empty((len(starts), len(tracks.sources), context), dtype=np.float32)
            if tracks.sources
            else None
        )
        # read in spans of nearby windows
        i = 0
        while i < len(starts):
            j = int(np.searchsorted(starts, starts[i] + chunk_bp, side="left"))
            j = max(j, i + 1)
            s_lo = int(starts[i]) - flank
            s_hi = int(starts[j - 1]) - flank + context
            span = genome.fetch_codes(rec, s_lo - off, s_hi - off)
            rel = starts[i:j] - flank - s_lo
            idx = rel[:, None] + np.arange(context)[None, :]
            codes[i:j] = span[idx]
            if sig is not None:
                tv = tracks.values(chrom, s_lo, s_hi)
                sig[i:j] = np.moveaxis(tv[:, idx], 0, 1)
            i = j
        chrom_out.append(np.full(len(starts), chrom, dtype=object))
        start_out.append(starts)
        lab_out.append(labs)
        code_out.append(codes)
        if sig is not None:
            sig_out.append(sig)

    if not start_out:
        raise ValueError("no bound bin found in the scanned intervals; check chromosome names and regions")
    chrom_a = np.concatenate(chrom_out)
    start_a = np.concatenate(start_out)
    labels = np.concatenate(lab_out)
    split = np.array(
        ["test" if _canon(c) in test else "valid" if _canon(c) in valid else "train" for c in chrom_a],
        dtype=object,
    )
    names = pd.Index([f"{c}:{s}-{s + bin_size}" for c, s in zip(chrom_a, start_a, strict=True)])
    obs = pd.DataFrame(
        {
            "chr": pd.Categorical(chrom_a),
            "start": start_a,
            "end": start_a + bin_size,
            "split": pd.Categorical(split, categories=["train", "valid", "test"]),
            "n_bound": np.nansum(labels == 1, axis=1).astype(np.int32),
        },
        index=names,
    )
    adata = AnnData(obs=obs)
    adata.obsm[DNA_CODE] = np.concatenate(code_out)
    adata.obsm["labels"] = pd.DataFrame(labels, index=names, columns=pd.Index(tf_names))
    adata.uns["tf_names"] = list(tf_names)
    if sig_out:
        adata.obsm["signal"] = np.concatenate(sig_out)
        adata.uns["signal_names"] = list(tracks.names)
    adata.uns[UNS] = {"genome": {"name": str(genome.name), "path": str(genome.path), "width": int(context)}}
    uns_params(
        adata,
        "training_windows",
        {
            "bin_size": bin_size,
            "stride": stride,
            "context": context,
            "min_overlap": min_overlap,
            "negative_ratio": negative_ratio,
            "negative_margin": negative_margin,
            "max_n_frac": max_n_frac,
            "valid_chroms": [str(c) for c in valid_chroms],
            "test_chroms": [str(c) for c in test_chroms],
            "blacklist": blacklist is not None,
            "seed": seed if isinstance(seed, int) else str(seed),
        },
    )
    counts = adata.obs["split"].value_counts()
    logger.info(
        "%d windows (%d bound by >= 1 TF), %d TFs; split %s",
        adata.n_obs,
        int((adata.obs["n_bound"] > 0).sum()),
        n_tf,
        {k: int(v) for k, v in counts.items()},
    )
    log_added("obsm", DNA_CODE, f"uint8 {adata.n_obs} x {context}")
    log_added("obsm", "labels", f"{adata.n_obs} x {n_tf} TFs, NaN = ambiguous")
    if sig_out:
        log_added("obsm", "signal", f"{adata.n_obs} x {len(tracks.names)} x {context}")
    return adata
