from __future__ import annotations

import os

import numpy as np
from anndata import AnnData

from .._constants import DNA_CODE, N_CODE, UNS
from .._utils import get_adata, log_added, logger, progress
from ..genome import Genome, as_genome
from ._peaks import get_peak_coords


def add_sequences(
    data,
    genome: Genome | str | os.PathLike,
    *,
    width: int = 1000,
    mod: str | None = None,
    drop_invalid: bool = False,
    key_added: str = DNA_CODE,
    chunk_size: int = 10_000,
    copy: bool = False,
):
    """Read a fixed-width DNA window centred on each peak into ``varm[key_added]``.

    Windows are ``width`` bp centred on the peak midpoint, stored as uint8 codes (A=0 C=1 G=2 T=3
    N=4) and padded with N past chromosome ends. Peaks are read chromosome by chromosome in chunks of
    ``chunk_size``, so memory holds the codes themselves (``n_peaks x width`` bytes) and one chunk.
    One-hot encodings are made per batch from the codes by the models, never stored.

    Parameters
    ----------
    data
        AnnData (cells x peaks, or regions x tracks) or MuData.
    genome
        A :class:`~scfanpy.Genome`, a FASTA/2bit path, or ``'hg19'``/``'hg38'``/``'mm10'`` (downloaded).
    width
        Window length in bp.
    mod
        MuData modality (default ``'atac'``).
    drop_invalid
        Peaks on chromosomes missing from the genome or past a chromosome end raise an error saying how
        many and which; with ``True`` they are dropped from ``data`` (in place) instead.
    key_added
        ``varm`` key.
    chunk_size
        Peaks read per chunk.
    copy
        Return a modified copy instead of writing in place.

    Returns
    -------
    ``None``, or a copy when ``copy=True``. Sets

    - ``varm[key_added]`` : uint8 array ``(n_peaks, width)``;
    - ``uns['scfanpy']['genome']`` : dict with the genome ``name``, ``path`` and the window ``width``;
    - ``var['chr']``, ``var['start']``, ``var['end']`` when they were not parsed yet.

    Examples
    --------
    >>> import scfanpy as sfp
    >>> sim = sfp.datasets.simulate_scatac(n_cells=50, n_peaks=100, random_state=0)
    >>> sfp.pp.add_sequences(sim.adata, sim.genome, width=200)
    >>> sim.adata.varm["dna_code"].shape
    (100, 200)
    """
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    genome = as_genome(genome)
    if copy:
        data = data.copy()
    adata: AnnData = get_adata(data, mod)
    if not all(k in adata.var.columns for k in ("chr", "start", "end")):
        from ._peaks import parse_peaks

        parse_peaks(adata)
    chrom, start, end = get_peak_coords(adata)
    ok = genome.check_intervals(chrom, start, end, drop=drop_invalid)
    if not ok.all():
        if mod is not None or type(data).__name__ == "MuData":
            raise ValueError("drop_invalid with MuData: subset the modality yourself with the returned mask")
        adata._inplace_subset_var(np.flatnonzero(ok))
        chrom, start, end = chrom[ok], start[ok], end[ok]
    mid = (start + end) // 2
    w_start = mid - width // 2
    codes = np.full((adata.n_vars, width), N_CODE, dtype=np.uint8)
    order = np.lexsort((w_start, chrom))
    it = progress(range(0, len(order), chunk_size), "reading sequences", disable=len(order) < 50_000)
    for lo in it:
        idx = order[lo : lo + chunk_size]
        for i in idx:
            codes[i] = genome.fetch_codes(chrom[i], w_start[i], w_start[i] + width)
    adata.varm[key_added] = codes
    adata.uns.setdefault(UNS, {})
    adata.uns[UNS]["genome"] = {"name": str(genome.name), "path": str(genome.path), "width": int(width)}
    frac_n = float((codes == N_CODE).mean()) if codes.size else 0.0
    logger.info("read %d x %d bp windows from %s (%.1f%% N)", adata.n_vars, width, genome.name, 100 * frac_n)
    log_added("varm", key_added, f"uint8 {adata.n_vars} x {width}")
    log_added("uns", UNS, "['genome']")
    return data if copy else None


def one_hot(codes: np.ndarray, dtype=np.float32) -> np.ndarray:
    """One-hot ``(..., L)`` codes to ``(..., 4, L)``; N (code 4) becomes all zeros.

    Examples
    --------
    >>> one_hot(np.array([[0, 3, 4]], dtype=np.uint8))[0]
    array([[1., 0., 0.],
           [0., 0., 0.],
           [0., 0., 0.],
           [0., 1., 0.]], dtype=float32)
    """
    codes = np.asarray(codes)
    eye = np.vstack([np.eye(4, dtype=dtype), np.zeros((1, 4), dtype=dtype)])
    return np.moveaxis(eye[codes], -1, -2)
