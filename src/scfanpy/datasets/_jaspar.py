"""JASPAR motifs through pyjaspar (the JASPAR SQLite database ships inside that package: no download)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

DEFAULT_RELEASE = "JASPAR2024"


@lru_cache(maxsize=8)
def _fetch(release: str, collection: str, tax_group: str | None):
    from pyjaspar import jaspardb

    db = jaspardb(release=release)
    kw = {"collection": collection}
    if tax_group:
        kw["tax_group"] = [tax_group]
    return tuple(db.fetch_motifs(**kw))


def _probs(motif) -> np.ndarray:
    counts = np.array([motif.counts[b] for b in "ACGT"], dtype=np.float64).T  # (L, 4)
    return counts / counts.sum(1, keepdims=True)


def jaspar_table(
    *, release: str = DEFAULT_RELEASE, collection: str = "CORE", tax_group: str | None = "vertebrates"
) -> pd.DataFrame:
    """One row per JASPAR matrix (latest versions): ``matrix_id``, ``name``, ``length``, ``tf_class``, ``tf_family``."""
    rows = []
    for m in _fetch(release, collection, tax_group):
        rows.append(
            {
                "matrix_id": m.matrix_id,
                "name": m.name,
                "length": m.length,
                "tf_class": "; ".join(m.tf_class or []),
                "tf_family": "; ".join(m.tf_family or []),
            }
        )
    return pd.DataFrame(rows)


def jaspar_motifs(
    names: Sequence[str] | None = None,
    *,
    release: str = DEFAULT_RELEASE,
    collection: str = "CORE",
    tax_group: str | None = "vertebrates",
) -> dict[str, pd.DataFrame]:
    """JASPAR position probability matrices, one per TF name.

    Parameters
    ----------
    names
        TF names as JASPAR spells them (``'GATA1'``, ``'SPI1'``, ``'FOS::JUN'``); case-insensitive.
        ``None`` returns every matrix of the collection. Where a TF has several matrices, the first
        listed by JASPAR is used.
    release
        JASPAR release known to the installed pyjaspar (default pinned for reproducibility).
    collection, tax_group
        JASPAR collection and taxonomic group (``None``: all groups).

    Returns
    -------
    motifs : dict
        ``{name: DataFrame}``, one row per motif position and columns ``A C G T`` (probabilities); each
        frame's ``attrs['matrix_id']`` holds the JASPAR id.

    Examples
    --------
    >>> import scfanpy as sfp
    >>> m = sfp.datasets.jaspar_motifs(["GATA1"])
    >>> list(m["GATA1"].columns)
    ['A', 'C', 'G', 'T']
    """
    motifs = _fetch(release, collection, tax_group)
    by_name: dict[str, object] = {}
    for m in motifs:
        by_name.setdefault(m.name.upper(), m)
    wanted = list(by_name) if names is None else [n.upper() for n in names]
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise KeyError(f"not in JASPAR {release} {collection} {tax_group or ''}: {missing}")
    out = {}
    for n in wanted:
        m = by_name[n]
        df = pd.DataFrame(_probs(m), columns=list("ACGT"))
        df.attrs["matrix_id"] = m.matrix_id
        df.attrs["name"] = m.name
        out[m.name if names is None else next(x for x in names if x.upper() == n)] = df
    return out
