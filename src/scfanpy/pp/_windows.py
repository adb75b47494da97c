"""Bulk training sets for the sequence models: genome bins labelled by TF ChIP-seq peaks.

The recipe of FactorNet (Quang & Xie 2019) and scFAN (Fu et al. 2020): 200-bp bins at a 50-bp stride,
each the centre of a 1,000-bp input window; a bin is bound by a TF when that TF's peaks cover at least
half of it; unbound bins are sampled away from every peak and from the blacklist; whole chromosomes are
held out for validation and test. This module checks the arguments and builds the AnnData; the scan
itself is in :mod:`scfanpy.pp._window_scan`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _logging as logg
from .._constants import DNA_CODE, UNS
from .._docs import doc_params
from .._utils import check_random_state, log_added, uns_params
from ..genome import Genome, as_genome
from ._intervals import Cover, canon_chrom, covers_by_chrom, read_intervals
from ._window_scan import Interval, ScannedInterval, ScanPlan, Tracks, scan_interval, scan_intervals

__all__ = ["make_training_windows"]

_SPLITS = ["train", "valid", "test"]
_Bed = pd.DataFrame | str | os.PathLike  # intervals: a DataFrame or a BED / narrowPeak path


def _check_numbers(
    bin_size: int, stride: int, context: int, min_overlap: float, negative_ratio: float
) -> None:
    if bin_size <= 0 or stride <= 0 or context < bin_size:
        raise ValueError(
            f"need bin_size > 0, stride > 0 and context >= bin_size (got {bin_size}, {stride}, {context})"
        )
    if not 0 < min_overlap <= 1:
        raise ValueError(f"min_overlap must be in (0, 1], got {min_overlap}")
    if negative_ratio < 0:
        raise ValueError(f"negative_ratio must be >= 0, got {negative_ratio}")


def _peak_covers(
    peaks: Mapping[str, _Bed] | pd.DataFrame,
) -> tuple[list[str], list[dict[str, Cover]], dict[str, Cover]]:
    """TF names, each TF's merged peaks per chromosome, and the merged peaks of all TFs."""
    if isinstance(peaks, pd.DataFrame):
        if "tf" not in peaks.columns:
            raise ValueError("a single peaks DataFrame needs a 'tf' column; else pass {tf: peaks}")
        peaks = {str(t): g for t, g in peaks.groupby("tf", sort=True)}
    if not peaks:
        raise ValueError("no peaks given")
    tf_names = [str(t) for t in peaks]
    tf_cov = [covers_by_chrom(read_intervals(p, f"peaks[{t!r}]")) for t, p in peaks.items()]
    any_cov = covers_by_chrom(
        pd.concat([read_intervals(p, "peaks") for p in peaks.values()], ignore_index=True)
    )
    return tf_names, tf_cov, any_cov


def _held_out(valid_chroms: Sequence[str], test_chroms: Sequence[str]) -> tuple[set[str], set[str]]:
    valid = {canon_chrom(c) for c in valid_chroms}
    test = {canon_chrom(c) for c in test_chroms}
    if valid & test:
        raise ValueError(f"chromosomes both valid and test: {sorted(valid & test)}")
    return valid, test


def _windows_adata(
    parts: list[ScannedInterval], tf_names: list[str], bin_size: int, valid: set[str], test: set[str]
) -> AnnData:
    """The regions AnnData: ``obs`` (bin, split, n_bound), ``obsm`` codes, labels and signal."""
    chrom_a = np.concatenate([np.full(len(p.starts), p.chrom, dtype=object) for p in parts])
    start_a = np.concatenate([p.starts for p in parts])
    labels = np.concatenate([p.labels for p in parts])
    split = np.array(
        [
            "test" if canon_chrom(c) in test else "valid" if canon_chrom(c) in valid else "train"
            for c in chrom_a
        ],
        dtype=object,
    )
    names = pd.Index([f"{c}:{s}-{s + bin_size}" for c, s in zip(chrom_a, start_a, strict=True)])
    obs = pd.DataFrame(
        {
            "chr": pd.Categorical(chrom_a),
            "start": start_a,
            "end": start_a + bin_size,
            "split": pd.Categorical(split, categories=_SPLITS),
            "n_bound": np.nansum(labels == 1, axis=1).astype(np.int32),
        },
        index=names,
    )
    adata = AnnData(obs=obs)
    adata.obsm[DNA_CODE] = np.concatenate([p.codes for p in parts])
    adata.obsm["labels"] = pd.DataFrame(labels, index=names, columns=pd.Index(tf_names))
    if parts[0].signal is not None:
        adata.obsm["signal"] = np.concatenate([p.signal for p in parts])
    return adata


def _log_windows(adata: AnnData, n_tf: int, context: int) -> None:
    counts = adata.obs["split"].value_counts()
    logg.info(
        "%d windows (%d bound by >= 1 TF), %d TFs; split %s",
        adata.n_obs,
        int((adata.obs["n_bound"] > 0).sum()),
        n_tf,
        {k: int(v) for k, v in counts.items()},
    )
    log_added("obsm", DNA_CODE, f"uint8 {adata.n_obs} x {context}")
    log_added("obsm", "labels", f"{adata.n_obs} x {n_tf} TFs, NaN = ambiguous")
    if "signal" in adata.obsm:
        log_added("obsm", "signal", f"{adata.n_obs} x {adata.obsm['signal'].shape[1]} x {context}")


def _prepare_scan(
    genome: Genome,
    peaks: Mapping[str, _Bed] | pd.DataFrame,
    regions: pd.DataFrame | Sequence[tuple[str, int, int]] | str | os.PathLike | None,
    chroms: Sequence[str] | None,
    blacklist: _Bed | None,
    accessibility: _Bed | Sequence[_Bed] | Mapping[str, _Bed] | None,
    numbers: dict,
) -> tuple[ScanPlan, list[str], list[Interval]]:
    """Read the peaks, blacklist and tracks; the scan plan, the TF names and the intervals to scan."""
    tf_names, tf_cov, any_cov = _peak_covers(peaks)
    black = covers_by_chrom(read_intervals(blacklist, "blacklist")) if blacklist is not None else {}
    tracks = Tracks(accessibility)
    intervals = scan_intervals(genome, regions, chroms, any_cov)
    if not intervals:
        raise ValueError("nothing to scan: no chromosome of the genome carries peaks (check names / regions)")
    return ScanPlan(genome, tf_cov, any_cov, black, tracks, **numbers), tf_names, intervals


def _add_uns(adata: AnnData, genome: Genome, tf_names: list[str], tracks: Tracks, params: dict) -> None:
    adata.uns["tf_names"] = list(tf_names)
    if tracks.sources:
        adata.uns["signal_names"] = list(tracks.names)
    width = int(params["context"])
    adata.uns[UNS] = {"genome": {"name": str(genome.name), "path": str(genome.path), "width": width}}
    uns_params(adata, "training_windows", params)


@doc_params()
def make_training_windows(
    genome: Genome | str | os.PathLike,
    peaks: Mapping[str, _Bed] | pd.DataFrame,
    *,
    regions: pd.DataFrame | Sequence[tuple[str, int, int]] | str | os.PathLike | None = None,
    chroms: Sequence[str] | None = None,
    bin_size: int = 200,
    stride: int = 50,
    context: int = 1000,
    min_overlap: float = 0.5,
    negative_ratio: float = 1.0,
    negative_margin: int = 200,
    blacklist: _Bed | None = None,
    accessibility: _Bed | Sequence[_Bed] | Mapping[str, _Bed] | None = None,
    valid_chroms: Sequence[str] = ("chr11",),
    test_chroms: Sequence[str] = ("chr1", "chr8", "chr21"),
    max_n_frac: float = 0.1,
    chunk_bp: int = 2_000_000,
    random_state: int | np.random.Generator | None = 0,
) -> AnnData:
    """Build a labelled regions AnnData for training the sequence models on bulk ChIP-seq.

    FactorNet's and scFAN's recipe: ``bin_size`` bins every ``stride`` bp, each centred in a
    ``context``-bp window, are *bound* by a TF (1) when its peaks cover at least ``min_overlap`` of the
    bin, *ambiguous* (NaN, masked in the loss) when less but some, else unbound (0). Bound bins are kept,
    unbound ones sampled per chromosome; windows on the blacklist, past the scanned interval or with too
    many N are skipped. Chromosomes are scanned in ``chunk_bp`` chunks (memory: one chunk's bins).

    Parameters
    ----------
    genome
        A :class:`~scfanpy.Genome`, FASTA/2bit path, or ``'hg19'``/``'hg38'``/``'mm10'``. Records named
        like a samtools region (``22:20000001-21000000``, 1-based) are used for intervals they cover.
    peaks
        ``{{tf: peaks}}``, each a DataFrame (``chr``, ``start``, ``end``, 0-based) or a BED/narrowPeak
        path; or one DataFrame with a ``tf`` column (e.g. :func:`scfanpy.datasets.encode_dream_peaks`).
    regions, chroms
        Scan only these intervals (``[(chrom, start, end), ...]``, a DataFrame or a BED path), else these
        chromosomes (default: those with at least one peak).
    bin_size, stride, context, min_overlap
        Bin length, step between bins, window length (bp); fraction of a bin a TF's peaks must cover.
    negative_ratio, negative_margin
        Unbound bins sampled per bound bin; they have no peak of any TF within ``negative_margin`` bp.
    blacklist
        Excluded regions (DataFrame or BED path), e.g. :func:`scfanpy.datasets.hg19_blacklist`.
    accessibility
        Per-base input tracks for ``obsm['signal']``: a bigWig path (needs ``pyBigWig``), a peak
        DataFrame / BED path (0/1 coverage), or a list / ``{{name: source}}`` of these.
    valid_chroms, test_chroms
        Chromosomes held out for validation and test (``chr1`` = ``1``); the rest train.
    max_n_frac, chunk_bp
        Largest fraction of ``N`` allowed in a window; bases scanned per chunk.
    {random_state}

    Returns
    -------
    AnnData
        One observation per window (``n_vars = 0``), sorted by position, with these fields:
    obs['chr'], obs['start'], obs['end'] : categorical, int64, int64
        The bin (0-based, half-open); its window starts ``(context - bin_size) // 2`` bp before it.
    obs['split'], obs['n_bound'] : categorical, int32
        ``'train'``, ``'valid'`` or ``'test'``; the number of TFs binding the bin.
    obsm['dna_code'] : :class:`numpy.ndarray`
        uint8 ``(n, context)`` codes of the windows, A=0 C=1 G=2 T=3 N=4.
    obsm['labels'], uns['tf_names'] : :class:`pandas.DataFrame`, list
        float32 ``(n, n_tfs)``, 1 bound, 0 unbound, NaN ambiguous; the TFs, in column order.
    obsm['signal'], uns['signal_names'] : :class:`numpy.ndarray`, list
        float32 ``(n, n_tracks, context)`` and the track names, when ``accessibility`` is given.
    uns['scfanpy']['genome'], uns['training_windows']['params'] : dict
        The genome's ``name``, ``path`` and the window ``width``; the call's parameters.

    Examples
    --------
    >>> import scfanpy as sfp
    >>> peaks = sfp.datasets.encode_dream_peaks("GM12878")  # doctest: +SKIP
    >>> w = sfp.pp.make_training_windows(
    ...     sfp.datasets.hg19_chr20(), peaks, regions=[("chr20", 9_995_000, 11_095_000)]
    ... )  # doctest: +SKIP
    >>> w.obsm["dna_code"].shape[1], list(w.obsm["labels"].columns)[:3]  # doctest: +SKIP
    (1000, ['ATF7', 'CREB1', 'E2F1'])
    """
    # check and read every input, scan interval by interval, build the AnnData
    _check_numbers(bin_size, stride, context, min_overlap, negative_ratio)
    valid, test = _held_out(valid_chroms, test_chroms)
    genome, rng = as_genome(genome), check_random_state(random_state)
    sizes = {"bin_size": bin_size, "stride": stride, "context": context, "min_overlap": min_overlap}
    rules = {"negative_ratio": negative_ratio, "negative_margin": negative_margin, "max_n_frac": max_n_frac}
    plan, tf_names, intervals = _prepare_scan(
        genome, peaks, regions, chroms, blacklist, accessibility, {**sizes, **rules, "chunk_bp": chunk_bp}
    )
    parts = [p for iv in intervals if (p := scan_interval(plan, rng, iv)) is not None]
    if not parts:
        raise ValueError("no bound bin found in the scanned intervals; check chromosome names and regions")
    adata = _windows_adata(parts, tf_names, bin_size, valid, test)
    seed = random_state if isinstance(random_state, int) else str(random_state)
    held_out = {"valid_chroms": [str(c) for c in valid_chroms], "test_chroms": [str(c) for c in test_chroms]}
    other = {"blacklist": blacklist is not None, "random_state": seed}
    _add_uns(adata, genome, tf_names, plan.tracks, {**sizes, **rules, **held_out, **other})
    _log_windows(adata, len(tf_names), context)
    return adata
