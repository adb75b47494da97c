"""Where sequences are read: genomes (plain, bgzip and 2bit FASTA) and small FASTA files.

:class:`Genome` wraps :mod:`pyfaidx` (plain and bgzip FASTA, indexed on first open) or ``py2bit``
(UCSC 2bit, optional). Sequence is always returned upper case (soft-masked bases are real bases),
positions past a chromosome's end read as ``N``, and ``1``/``chr1``, ``MT``/``chrM`` name the same
chromosome. :func:`read_fasta` reads a small FASTA file into a dict. Known assemblies are
downloaded through the shared data cache (:mod:`scfanpy._registry`, the same one
:mod:`scfanpy.datasets` uses); this module imports nothing from :mod:`scfanpy.datasets`.
"""

from __future__ import annotations

import gzip
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from . import _logging as logg
from ._constants import N_CODE
from ._registry import GENOMES, fetch_genome

__all__ = ["Genome", "as_genome", "decode_sequence", "encode_sequence", "encode_sequences", "read_fasta"]

# byte -> code lookup: A=0 C=1 G=2 T=3, anything else (N, IUPAC) = 4; lower case handled too
_LUT = np.full(256, N_CODE, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    _LUT[_b] = _i
    _LUT[_b + 32] = _i  # lower case
#: bytes read as themselves (ACGTN, either case); any other byte is replaced by N and counted
_KNOWN = np.zeros(256, dtype=bool)
_KNOWN[np.frombuffer(b"ACGTNacgtn", dtype=np.uint8)] = True


def _encode_counted(seq: str | bytes) -> tuple[np.ndarray, int, bytes]:
    """Codes of ``seq``, the number of characters outside ACGTN (read as N) and a few of them."""
    if isinstance(seq, str):
        seq = seq.encode("ascii", errors="replace")  # a non-ASCII character becomes one '?'
    raw = np.frombuffer(seq, dtype=np.uint8)
    codes = _LUT[raw]
    bad = ~_KNOWN[raw]
    n_bad = int(np.count_nonzero(bad))
    return codes, n_bad, (np.unique(raw[bad])[:5].tobytes() if n_bad else b"")


def warn_replaced(
    n_bad: int, examples: bytes | str, n_seqs: int | None = None, *, stacklevel: int = 3
) -> None:
    """One :class:`UserWarning` saying how many characters outside ACGTN were read as N (none: silent)."""
    if not n_bad:
        return
    if isinstance(examples, bytes):
        examples = examples.decode("ascii", errors="replace")
    shown = ", ".join(repr(c) for c in dict.fromkeys(examples))
    where = f" in {n_seqs} sequence(s)" if n_seqs is not None else ""
    warnings.warn(
        f"{n_bad} character(s) outside ACGTN{where} (e.g. {shown}: IUPAC ambiguity codes, digits, "
        "gaps) were read as N. Replace or remove them first if they are not meant as unknown bases.",
        UserWarning,
        stacklevel=stacklevel,
    )


def encode_sequence(seq: str | bytes, *, warn: bool = True) -> np.ndarray:
    """Encode DNA as uint8 codes A=0 C=1 G=2 T=3 N=4 (case-insensitive).

    Characters outside ACGTN (IUPAC ambiguity codes such as ``R``/``Y``, digits, ``-``) are read as N;
    with ``warn=True`` one :class:`UserWarning` gives their number. To encode many sequences with a
    single warning use ``scfanpy.genome.encode_sequences``.

    Examples
    --------
    >>> encode_sequence("ACgTn")
    array([0, 1, 2, 3, 4], dtype=uint8)
    """
    codes, n_bad, ex = _encode_counted(seq)
    if warn:
        warn_replaced(n_bad, ex)
    return codes


def encode_sequences(seqs: Iterable[str | bytes]) -> list[np.ndarray]:
    """:func:`encode_sequence` of each sequence, with one warning for all the replaced characters.

    Returns
    -------
    codes : list of numpy.ndarray
        uint8 codes of each sequence, in order.
    """
    out, n_bad, n_seqs, ex = [], 0, 0, b""
    for s in seqs:
        c, nb, e = _encode_counted(s)
        out.append(c)
        if nb:
            n_bad, n_seqs, ex = n_bad + nb, n_seqs + 1, (ex + e)[:20]
    warn_replaced(n_bad, ex, n_seqs)
    return out


def decode_sequence(codes: np.ndarray) -> str:
    """Inverse of :func:`~scfanpy.genome.encode_sequence`."""
    return np.frombuffer(b"ACGTN", dtype=np.uint8)[np.asarray(codes, dtype=np.intp)].tobytes().decode()


def _alias_candidates(name: str) -> list[str]:
    """Other spellings of a chromosome name (UCSC vs Ensembl/NCBI)."""
    out = [name]
    if name.startswith("chr"):
        bare = name[3:]
        out.append(bare)
        if bare == "M":
            out += ["MT"]
    else:
        out.append("chr" + name)
        if name in {"MT", "M"}:
            out += ["chrM", "MT", "M"]
    return out


class Genome:
    """A reference genome read lazily from disk.

    Parameters
    ----------
    path
        FASTA (plain or bgzip-compressed with its ``.fai``/``.gzi``; indexed on first open) or a UCSC
        ``.2bit`` file (needs the optional ``py2bit`` package).
    name
        Assembly name, e.g. ``'hg19'``; recorded in ``uns['scfanpy']['genome']`` by
        :func:`scfanpy.pp.add_sequences`.
    aliases
        Extra chromosome aliases, ``{name_used_in_peaks: name_in_file}``. ``chr1``/``1`` and
        ``chrM``/``MT`` are understood without it.

    Examples
    --------
    >>> import scfanpy as sfp
    >>> g = sfp.Genome("hg19.fa", name="hg19")  # doctest: +SKIP
    >>> g.fetch("chr1", 10_000, 10_010)  # doctest: +SKIP
    'TAACCCTAAC'
    """

    def __init__(
        self, path: str | os.PathLike, *, name: str | None = None, aliases: Mapping[str, str] | None = None
    ):
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(
                f"genome: {str(self.path)!r} is a directory; pass a FASTA/2bit file (e.g. "
                f"{str(self.path / 'hg19.fa')!r}) or a known assembly name ('hg19', 'hg38', 'mm10')"
            )
        if not self.path.exists():
            raise FileNotFoundError(f"genome file not found: {self.path}")
        self.name = name or self.path.name
        self._twobit = self.path.suffix.lower() == ".2bit"
        if self._twobit:
            try:
                import py2bit
            except ImportError as e:  # pragma: no cover - optional dependency
                raise ImportError("reading .2bit needs py2bit: pip install 'scfanpy[twobit]'") from e
            self._handle = py2bit.open(str(self.path))
            self._sizes = {k: int(v) for k, v in self._handle.chroms().items()}
        else:
            self._handle = _open_fasta(self.path)
            self._sizes = {k: len(self._handle[k]) for k in self._handle.keys()}
        self._aliases = dict(aliases or {})

    # ------------------------------------------------------------------ names and sizes
    @property
    def chrom_sizes(self) -> dict[str, int]:
        """Chromosome lengths as named in the file."""
        return dict(self._sizes)

    def resolve(self, chrom: str) -> str | None:
        """Name of ``chrom`` in the file (through aliases), or ``None`` when absent."""
        chrom = str(chrom)
        if chrom in self._aliases:
            chrom = self._aliases[chrom]
        for c in _alias_candidates(chrom):
            if c in self._sizes:
                return c
        return None

    def __contains__(self, chrom: str) -> bool:
        return self.resolve(chrom) is not None

    def size(self, chrom: str) -> int:
        """Length of ``chrom`` (any alias)."""
        r = self.resolve(chrom)
        if r is None:
            raise KeyError(f"chromosome {chrom!r} not in genome {self.name} (has {self._preview_chroms()})")
        return self._sizes[r]

    def _preview_chroms(self) -> str:
        names = list(self._sizes)
        return ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")

    def __repr__(self) -> str:
        return f"Genome({self.name!r}, {len(self._sizes)} chromosomes, {sum(self._sizes.values()):,} bp)"

    # ------------------------------------------------------------------ sequence
    def _raw(self, chrom: str, start: int, end: int) -> str:
        if self._twobit:
            return self._handle.sequence(chrom, start, end).upper()
        return self._handle[chrom][start:end]

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Sequence of ``[start, end)`` (0-based, half-open), upper case, ``N`` past the ends."""
        return self.fetch_codes(chrom, start, end, warn=False).tobytes().translate(_DECODE_TABLE).decode()

    def fetch_codes(self, chrom: str, start: int, end: int, *, warn: bool = True) -> np.ndarray:
        """Codes (A=0 C=1 G=2 T=3 N=4) of ``[start, end)``, padded with 4 past the chromosome's ends.

        Letters other than ACGTN in the file (IUPAC ambiguity codes of the assembly) are read as N, with
        one warning giving their number unless ``warn=False``.
        """
        codes, n_bad, ex = self._fetch_counted(chrom, start, end)
        if warn:
            warn_replaced(n_bad, ex)
        return codes

    def _fetch_counted(self, chrom: str, start: int, end: int) -> tuple[np.ndarray, int, bytes]:
        """:meth:`fetch_codes` and the number of letters outside ACGTN read as N (with a few of them)."""
        start, end = int(start), int(end)
        if end < start:
            raise ValueError(f"end < start: {chrom}:{start}-{end}")
        r = self.resolve(chrom)
        out = np.full(end - start, N_CODE, dtype=np.uint8)
        if r is None:
            raise KeyError(f"chromosome {chrom!r} not in genome {self.name} (has {self._preview_chroms()})")
        size = self._sizes[r]
        lo, hi = max(start, 0), min(end, size)
        n_bad, ex = 0, b""
        if hi > lo:
            out[lo - start : hi - start], n_bad, ex = _encode_counted(self._raw(r, lo, hi))
        return out, n_bad, ex

    # ------------------------------------------------------------------ build checks
    def check_intervals(
        self, chrom: Iterable[str], start: Iterable[int], end: Iterable[int], *, drop: bool = False
    ) -> np.ndarray:
        """Check that intervals fit this genome.

        When an interval lies on no known chromosome or ends past one and ``drop`` is False, raises
        :class:`ValueError` saying how many and which; with ``drop=True`` it only logs them and the
        caller removes them with the mask.

        Returns
        -------
        ok : numpy.ndarray
            Boolean mask of the intervals that lie on a known chromosome and end within it.
        """
        chrom = pd.Series(np.asarray(chrom, dtype=object)).astype(str)
        start = np.asarray(start, dtype=np.int64)
        end = np.asarray(end, dtype=np.int64)
        uniq = chrom.unique()
        resolved = {c: self.resolve(c) for c in uniq}
        missing = sorted(c for c, r in resolved.items() if r is None)
        size = chrom.map(lambda c: self._sizes[resolved[c]] if resolved[c] is not None else -1).to_numpy()
        on_missing = size < 0
        past_end = (~on_missing) & (end > size)
        ok = ~(on_missing | past_end)
        if not ok.all():
            parts = []
            if on_missing.any():
                parts.append(
                    f"{int(on_missing.sum())} interval(s) on chromosome(s) missing from genome {self.name}: "
                    + ", ".join(missing[:10])
                    + (" ..." if len(missing) > 10 else "")
                )
            if past_end.any():
                idx = np.flatnonzero(past_end)[:5]
                ex = ", ".join(f"{chrom.iloc[i]}:{start[i]}-{end[i]} (size {size[i]})" for i in idx)
                parts.append(f"{int(past_end.sum())} interval(s) past a chromosome end, e.g. {ex}")
            msg = "; ".join(parts) + ". Is this the right genome build?"
            if not drop:
                raise ValueError(msg + " Pass drop=True to drop them.")
            logg.warning("%s Dropping %d interval(s).", msg, int((~ok).sum()))
        return ok

    # ------------------------------------------------------------------ known genomes
    @classmethod
    def from_known(cls, name: str, *, progressbar: bool = True) -> Genome:
        """Download (once, via :mod:`pooch`) and open a known assembly: ``'hg19'``, ``'hg38'``, ``'mm10'``.

        The UCSC FASTA is downloaded, decompressed and indexed in the cache folder (see
        :func:`scfanpy.datasets.set_cache_dir`).
        """
        return cls(fetch_genome(name, progressbar=progressbar), name=name)


def _fai_end(fai: Path) -> int:
    """Byte offset just past the last record that the ``.fai`` describes (as pyfaidx computes it)."""
    end = 0
    for line in fai.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 5:
            return -1  # not a .fai
        rlen, offset, lenc, lenb = (int(x) for x in parts[1:5])
        newlines = -(-rlen // lenc) * (lenb - lenc) if lenc else 0
        end = max(end, offset + rlen + newlines)
    return end


def _stale_reason(fasta: Path, fai: Path) -> str | None:
    """Why the index ``fai`` no longer describes ``fasta`` (None: it does)."""
    if os.path.getmtime(fasta) > os.path.getmtime(fai):
        return f"the FASTA was modified after its index (mtime of {fasta.name} newer than {fai.name})"
    if fasta.name.lower().endswith((".gz", ".bgz")):
        return None  # compressed offsets cannot be checked against the file size
    try:
        end = _fai_end(fai)
    except (ValueError, OSError):
        end = -1
    size = fasta.stat().st_size
    if end < 0:
        return f"{fai.name} is not a valid FASTA index"
    if size + 2 < end:  # a missing final newline (or CRLF) shortens the file by 1-2 bytes
        return f"the index describes {end:,} bytes but {fasta.name} has {size:,}"
    if size > end:
        with open(fasta, "rb") as fh:
            fh.seek(end)
            if b">" in fh.read(1 << 20):
                return f"{fasta.name} has records after the last one its index lists"
    return None


def _refresh_index(fasta: Path) -> None:
    """Remove a stale ``.fai`` (and an outdated ``.gzi``) so that pyfaidx builds fresh ones; logs it.

    Raises :class:`PermissionError` when a stale index cannot be replaced (read-only folder): reading
    through it would return the wrong bases.
    """
    fai, gzi = Path(str(fasta) + ".fai"), Path(str(fasta) + ".gzi")
    reason = _stale_reason(fasta, fai) if fai.exists() else None
    if reason is None and gzi.exists() and os.path.getmtime(fasta) > os.path.getmtime(gzi):
        reason = f"the FASTA was modified after its BGZF index {gzi.name}"
    if reason is None:
        return
    if not os.access(fai.parent, os.W_OK):
        raise PermissionError(
            f"the FASTA index of {fasta} is stale ({reason}) and its folder is not writable: index the "
            f"FASTA again where you can write (samtools faidx), or copy {fasta.name} to a writable folder "
            "and pass that path"
        )
    logg.warning("rebuilding the index of %s: %s", fasta, reason)
    for f in (fai, gzi):
        if f.exists() or f.is_symlink():
            f.unlink()  # a link into a read-only mirror is removed, never written through


def _open_fasta(path: Path):
    """A :class:`pyfaidx.Fasta` of ``path``, its index checked (rebuilt when stale), pyfaidx's errors said plainly."""
    import pyfaidx

    _refresh_index(path)
    fai = Path(str(path) + ".fai")
    try:
        return pyfaidx.Fasta(
            str(path), sequence_always_upper=True, rebuild=False, build_index=True, as_raw=True
        )
    except pyfaidx.UnsupportedCompressionFormat as e:
        raise ValueError(
            f"{path}: a compressed FASTA must be bgzip-compressed (block gzip), not plain gzip: run "
            f"'gunzip {path.name}' and pass the .fa, or recompress it with 'bgzip'"
        ) from e
    except pyfaidx.FastaIndexingError as e:
        raise ValueError(f"{path} is not a valid FASTA file: {e}") from e
    except OSError as e:
        if "rebuild=False" not in str(e):
            raise
        raise PermissionError(
            f"cannot write the FASTA index {fai}: its folder is not writable (or the file could not be "
            f"read). Index the FASTA once where you can write (samtools faidx {path.name}), or copy it to a "
            "writable folder and pass that path"
        ) from e


_DECODE_TABLE = bytes.maketrans(bytes(range(5)), b"ACGTN")


def as_genome(genome: Genome | str | os.PathLike | None) -> Genome:
    """Coerce a :class:`Genome`, a path, or a known assembly name to a :class:`Genome`."""
    if isinstance(genome, Genome):
        return genome
    if genome is None:
        raise ValueError("a genome is needed: pass a Genome, a FASTA path, or one of 'hg19', 'hg38', 'mm10'")
    if isinstance(genome, str) and genome in GENOMES and not Path(genome).exists():
        return Genome.from_known(genome)
    return Genome(genome)


def read_fasta(path: str | os.PathLike) -> dict[str, str]:
    """A small FASTA file (plain or gzip) as ``{name: sequence}``.

    Sequence names are the first word of each header line; lines are joined as they are (case kept).
    For a genome, use :class:`Genome`, which reads lazily.

    Examples
    --------
    >>> from scfanpy.genome import read_fasta
    >>> seqs = read_fasta("peaks.fa")  # doctest: +SKIP
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    out: dict[str, list[str]] = {}
    name = None
    with opener(path, "rt") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            if line.startswith(">"):
                name = line[1:].split()[0]
                out[name] = []
            elif name is not None:
                out[name].append(line)
    return {k: "".join(v) for k, v in out.items()}
