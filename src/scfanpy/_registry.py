"""The pooch registry and download cache, shared by :mod:`scfanpy.datasets` and :mod:`scfanpy.genome`.

Every real file scfanpy can load is listed in ``datasets/registry.tsv`` with its pinned upstream URL
and sha256 (the public functions are re-exported by :mod:`scfanpy.datasets`). Keys are paths relative to a data root (``scatac/schep2017/subsetSchepData.rda``); files are cached
under :func:`cache_dir` with the same relative path, so a local mirror of the upstream files laid out
the same way can seed the cache (:func:`seed_cache`) and every loader runs offline on the very same
bytes (the sha256 is checked either way).
"""

from __future__ import annotations

import gzip
import os
import shutil
import warnings
from functools import lru_cache
from importlib import resources
from pathlib import Path

from . import _logging as logg
from ._constants import DATA_ENV

__all__ = ["GENOMES", "cache_dir", "fetch", "fetch_genome", "keys", "registry", "seed_cache", "set_cache_dir"]

# Known genomes: UCSC gzip FASTA, decompressed by pooch into the cache and indexed by pyfaidx.
# UCSC publishes md5 sums, not sha256, for these; no hash is pinned, pooch logs the one it computes.
GENOMES = {
    "hg19": "https://hgdownload.soe.ucsc.edu/goldenPath/hg19/bigZips/hg19.fa.gz",
    "hg38": "https://hgdownload.soe.ucsc.edu/goldenPath/hg38/bigZips/hg38.fa.gz",
    "mm10": "https://hgdownload.soe.ucsc.edu/goldenPath/mm10/bigZips/mm10.fa.gz",
}

#: the registry file, relative to the package root (it ships with :mod:`scfanpy.datasets`)
REGISTRY_FILE = "datasets/registry.tsv"

_cache_override: Path | None = None


def cache_dir() -> Path:
    """Folder where downloaded data live: ``set_cache_dir()`` > ``$SCFANPY_DATA_DIR`` > the OS cache."""
    if _cache_override is not None:
        return _cache_override
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("scfanpy"))


def set_cache_dir(path: str | os.PathLike | None) -> Path:
    """Point the data cache elsewhere for this process (``None`` restores the default).

    The environment variable ``SCFANPY_DATA_DIR`` does the same for every process.

    Examples
    --------
    >>> import scfanpy as sfp
    >>> sfp.datasets.set_cache_dir("/scratch/scfanpy-data")  # doctest: +SKIP
    """
    global _cache_override
    _cache_override = None if path is None else Path(path).expanduser()
    _pooch.cache_clear()
    return cache_dir()


@lru_cache(maxsize=1)
def registry() -> dict[str, tuple[str, str]]:
    """``{key: (sha256, url)}`` for every registered file."""
    out = {}
    text = resources.files(__package__).joinpath(REGISTRY_FILE).read_text()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, sha, url = line.split("\t")
        out[key] = (sha, url)
    return out


@lru_cache(maxsize=4)
def _pooch():
    import pooch

    reg = registry()
    return pooch.create(
        path=cache_dir(),
        base_url="",
        registry={k: f"sha256:{v[0]}" for k, v in reg.items()},
        urls={k: v[1] for k, v in reg.items()},
        retry_if_failed=2,
    )


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fill_cache_hint(key: str) -> str:
    return (
        f"Fill the cache without the network: put the file at {cache_dir() / key} (the cache folder is set "
        f"by ${DATA_ENV} or sfp.datasets.set_cache_dir), or copy a mirror laid out like the registry keys "
        "with sfp.datasets.seed_cache(mirror_folder)"
    )


def _set_aside_if_corrupt(path: Path, expected: str) -> bool:
    """Whether the cached ``path`` is intact; a damaged one is renamed ``<name>.corrupt`` (logged)."""
    if not path.exists():  # also a link whose target is gone
        if path.is_symlink():
            path.unlink()
        return False
    found = _sha256(path)
    if found == expected:
        return True
    bad = path.with_name(path.name + ".corrupt")
    os.replace(path, bad)  # a link into a mirror is moved, its target left alone
    warnings.warn(
        f"the cached {path} is damaged: its sha256 is {found}, the registry expects {expected}; moved aside "
        f"to {bad.name}, fetching it again",
        UserWarning,
        stacklevel=3,
    )
    return False


def fetch(key: str, *, progressbar: bool = False) -> Path:
    """Local path of registered file ``key``, downloading it (once) and checking its sha256.

    A cached file whose sha256 differs from the registry's is renamed ``<name>.corrupt`` (with a
    warning giving both hashes) before the file is downloaded again; when that download fails the
    :class:`ConnectionError` says how to fill the cache offline.
    """
    reg = registry()
    if key not in reg:
        import difflib

        close = difflib.get_close_matches(key, list(reg), n=3)
        raise KeyError(
            f"{key!r} is not a registered scfanpy data file"
            + (f"; did you mean {close}?" if close else "; list them with sfp.datasets.keys()")
        )
    sha, url = reg[key]
    path = cache_dir() / key
    if _set_aside_if_corrupt(path, sha):
        return path
    try:
        return Path(_pooch().fetch(key, progressbar=progressbar))
    except OSError as e:  # requests' errors are OSErrors too
        raise ConnectionError(
            f"{key} is not in the cache ({cache_dir()}) and could not be downloaded from {url} "
            f"({type(e).__name__}: {e}). {_fill_cache_hint(key)}."
        ) from e


def keys(prefix: str = "") -> list[str]:
    """Registered keys starting with ``prefix``."""
    return [k for k in registry() if k.startswith(prefix)]


def seed_cache(mirror: str | os.PathLike, *, link: bool = True) -> int:
    """Fill the cache from a local mirror laid out like the registry keys (e.g. a shared data folder).

    Files are symlinked (or copied with ``link=False``); a mirror file stored gzipped where upstream
    serves it plain (``key + '.gz'``) is decompressed. Hashes are still checked when a loader fetches
    the file.

    Returns
    -------
    n_placed : int
        The number of files placed.

    Examples
    --------
    >>> import scfanpy as sfp
    >>> sfp.datasets.seed_cache("/shared/scfanpy-mirror")  # doctest: +SKIP
    """
    mirror = Path(mirror)
    if not mirror.is_dir():
        raise FileNotFoundError(
            f"seed_cache: mirror folder {str(mirror)!r} does not exist (or is not a folder)"
        )
    root = cache_dir()
    n = 0
    for key in registry():
        dst = root / key
        if dst.exists():
            continue
        src = mirror / key
        gz = mirror / (key + ".gz")
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            if link:
                try:
                    dst.symlink_to(src.resolve())
                except OSError:
                    shutil.copyfile(src, dst)
            else:
                shutil.copyfile(src, dst)
            n += 1
        elif gz.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            with gzip.open(gz, "rb") as fi, open(dst, "wb") as fo:
                shutil.copyfileobj(fi, fo)
            n += 1
    logg.info("seeded %d file(s) into %s from %s", n, root, mirror)
    return n


def fetch_genome(name: str, *, progressbar: bool = True) -> Path:
    """Download, decompress and cache a known UCSC genome FASTA; returns the ``.fa`` path."""
    if name not in GENOMES:
        raise KeyError(f"unknown genome {name!r}; known: {sorted(GENOMES)} (or pass a FASTA path)")
    import pooch

    url = GENOMES[name]
    out = cache_dir() / "genomes" / f"{name}.fa"
    if out.exists():
        return out
    try:
        path = pooch.retrieve(
            url,
            known_hash=None,
            fname=f"{name}.fa.gz",
            path=cache_dir() / "genomes",
            processor=pooch.Decompress(method="gzip", name=f"{name}.fa"),
            progressbar=progressbar,
        )
    except OSError as e:
        raise ConnectionError(
            f"genome {name!r} is not in the cache ({out}) and could not be downloaded from {url} "
            f"({type(e).__name__}: {e}). Put an uncompressed FASTA at {out} (the cache folder is set by "
            f"${DATA_ENV} or sfp.datasets.set_cache_dir), or pass the path of a local FASTA instead of {name!r}."
        ) from e
    return Path(path)
