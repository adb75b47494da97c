"""Genome sequence under each peak, as uint8 codes; one-hot encodings are made from them per batch."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
from anndata import AnnData

from .. import _logging as logg
from .._constants import CHR, DNA_CODE, END, N_CODE, START, UNS
from .._docs import doc_params
from .._torch import one_hot
from .._utils import get_adata, is_mudata, log_added, progress
from ..genome import Genome, as_genome, warn_replaced
from ._peaks import get_peak_coords

if TYPE_CHECKING:  # pragma: no cover
    from mudata import MuData

__all__ = ["add_sequences", "one_hot"]  # one_hot: scfanpy._torch.one_hot, re-exported as sfp.pp.one_hot


def _read_codes(
    genome: Genome, chrom: np.ndarray, w_start: np.ndarray, width: int, chunk_size: int
) -> np.ndarray:
    """uint8 codes ``(n, width)`` of ``chrom:[w_start, w_start + width)``, read in genome order.

    Letters other than ACGTN in the genome (IUPAC codes) are read as N, with one warning for them all.
    """
    codes = np.full((len(chrom), width), N_CODE, dtype=np.uint8)
    order = np.lexsort((w_start, chrom))
    n_bad, n_peaks, ex = 0, 0, b""
    it = progress(range(0, len(order), chunk_size), "reading sequences", disable=len(order) < 50_000)
    for lo in it:
        for i in order[lo : lo + chunk_size]:
            codes[i], nb, e = genome._fetch_counted(chrom[i], w_start[i], w_start[i] + width)
            if nb:
                n_bad, n_peaks, ex = n_bad + nb, n_peaks + 1, (ex + e)[:20]
    warn_replaced(n_bad, ex, n_peaks)
    return codes


def _check_args(width: int, chunk_size: int) -> None:
    """The arguments of :func:`add_sequences` that need no data."""
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width <= 0:
        raise ValueError(f"width must be positive (an integer number of bp), got {width!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")


@doc_params()
def add_sequences(
    data: AnnData | MuData,
    genome: Genome | str | os.PathLike,
    *,
    width: int = 1000,
    mod: str | None = None,
    drop_invalid: bool = False,
    key_added: str = DNA_CODE,
    chunk_size: int = 10_000,
    copy: bool = False,
) -> AnnData | MuData | None:
    """Read a fixed-width DNA window centred on each peak into ``varm[key_added]``.

    Windows are ``width`` bp centred on the peak midpoint, stored as uint8 codes (A=0 C=1 G=2 T=3
    N=4) and padded with N past chromosome ends. Peaks are read chromosome by chromosome in chunks of
    ``chunk_size``, so memory holds the codes themselves (``n_peaks x width`` bytes) and one chunk.
    One-hot encodings are made per batch from the codes by the models, never stored.

    Parameters
    ----------
    {data}
        Regions x tracks AnnData work too.
    genome
        A :class:`~scfanpy.Genome`, a FASTA/2bit path, or ``'hg19'``/``'hg38'``/``'mm10'`` (downloaded).
    width
        Window length in bp.
    {mod}
    drop_invalid
        Peaks on chromosomes missing from the genome or past a chromosome end raise an error saying how
        many and which; with ``True`` they are dropped from ``data`` (in place) instead.
    key_added
        ``varm`` key.
    chunk_size
        Peaks read per chunk.
    {copy}

    Returns
    -------
    None or AnnData or MuData
        A copy of ``data`` when ``copy=True``; otherwise ``data`` is changed in place. These fields are
        written (in the modality ``mod`` of a MuData):
    adata.varm['dna_code'] : :class:`numpy.ndarray`
        uint8 ``(n_peaks, width)`` codes (key ``key_added``).
    adata.uns['scfanpy']['genome'] : dict
        The genome's ``name`` and ``path`` and the window ``width``.
    adata.var['chr'], adata.var['start'], adata.var['end'] : str, int64, int64
        The peak coordinates (see :func:`scfanpy.pp.parse_peaks`), when they were not parsed yet.

    Examples
    --------
    >>> import scfanpy as sfp
    >>> sim = sfp.datasets.simulate_scatac(n_cells=50, n_peaks=100, random_state=0)
    >>> sfp.pp.add_sequences(sim.adata, sim.genome, width=200)
    >>> sim.adata.varm["dna_code"].shape
    (100, 200)
    """
    # ---- check and read (nothing written yet)
    _check_args(width, chunk_size)
    genome = as_genome(genome)
    if copy:
        data = data.copy()
    adata = get_adata(data, mod)
    has_coords = all(k in adata.var.columns for k in (CHR, START, END))
    chrom, start, end = get_peak_coords(adata)  # checked; parses var_names on a copy when needed
    ok = genome.check_intervals(chrom, start, end, drop=drop_invalid)
    if not ok.any() and len(ok):
        raise ValueError(
            f"none of the {len(ok)} peaks lies within genome {genome.name} (chromosomes "
            f"{genome._preview_chroms()}): is this the right genome build? Nothing was written."
        )
    if not ok.all() and (mod is not None or is_mudata(data)):
        raise ValueError(
            f"drop_invalid=True cannot drop {int((~ok).sum())} peak(s) from one modality of a MuData: get "
            "the mask with genome.check_intervals(chr, start, end, drop=True), subset the MuData with it "
            "(mdata[:, ...]) and call add_sequences again. Nothing was written."
        )
    chrom, start, end = chrom[ok], start[ok], end[ok]
    w_start = (start + end) // 2 - width // 2
    codes = _read_codes(genome, chrom, w_start, width, chunk_size)

    # ---- write
    if not ok.all():
        adata._inplace_subset_var(np.flatnonzero(ok))
    if not has_coords:
        adata.var[CHR], adata.var[START], adata.var[END] = chrom, start, end
        for k in (CHR, START, END):
            log_added("var", k)
    adata.varm[key_added] = codes
    adata.uns.setdefault(UNS, {})
    adata.uns[UNS]["genome"] = {"name": str(genome.name), "path": str(genome.path), "width": int(width)}
    frac_n = float((codes == N_CODE).mean()) if codes.size else 0.0
    logg.info("read %d x %d bp windows from %s (%.1f%% N)", adata.n_vars, width, genome.name, 100 * frac_n)
    log_added("varm", key_added, f"uint8 {adata.n_vars} x {width}")
    log_added("uns", UNS, "['genome']")
    return data if copy else None
