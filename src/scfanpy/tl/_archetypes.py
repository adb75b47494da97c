"""Motif archetypes: JASPAR motifs grouped by similarity, so that TF families count once.

Similarity of two motifs (probability matrices ``(L, 4)``): the columns of each are centred and scaled
(per column over the four bases), the Pearson correlation of every column pair is formed, and for every
relative offset and both strands of the second motif the correlations along the overlap are summed and
divided by the length of the shorter motif (so a short partial overlap cannot score high; the overlap must
be at least ``min_overlap`` columns or the whole shorter motif). The similarity is the best offset and
strand: 1 for identical or reverse-complement motifs, about 0 for unrelated ones.

Archetypes: average-linkage hierarchical clustering on ``1 - similarity``, cut at ``1 - threshold``.
The default ``threshold=0.7`` keeps GATA1/GATA2/GATA3, CEBPA/CEBPB, SPI1/SPIB/SPIC, the AP-1 bZIPs and the
SP/KLF zinc fingers each together while keeping these families apart (checked in
``tests/tl/test_archetypes.py``). Each archetype is named after its most central member (highest mean
similarity to the others) followed by the number of members, e.g. ``'GATA2 (6)'``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["motif_similarity", "motif_archetypes"]


def _standardise(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    m = m - m.mean(1, keepdims=True)
    sd = np.sqrt((m**2).mean(1, keepdims=True))
    return np.where(sd > 0, m / np.where(sd > 0, sd, 1), 0.0)


def motif_similarity(motifs: Mapping[str, np.ndarray], *, min_overlap: int = 5) -> pd.DataFrame:
    """Offset- and strand-aware column-correlation similarity of every pair of motifs.

    Parameters
    ----------
    motifs
        ``{name: (L, 4) probabilities}`` in A C G T order.
    min_overlap
        Fewest overlapping columns considered (or the shorter motif's length, if smaller).

    Returns
    -------
    similarity : pandas.DataFrame
        Symmetric motifs x motifs, diagonal 1.
    """
    names = list(motifs)
    mats = [_standardise(motifs[k]) for k in names]
    n = len(mats)
    lens = np.array([len(m) for m in mats])
    lmax = int(lens.max()) if n else 0
    # all motifs padded to lmax (zeros add nothing to a correlation sum), both strands
    pad = np.zeros((n, lmax, 4))
    pad_rc = np.zeros((n, lmax, 4))
    for i, m in enumerate(mats):
        pad[i, : len(m)] = m
        pad_rc[i, : len(m)] = m[::-1, ::-1]
    sim = np.eye(n)
    for i in range(n):
        a = mats[i]
        la = len(a)
        denom = np.minimum(la, lens).astype(np.float64)
        need = np.minimum(min_overlap, np.minimum(la, lens))
        best = np.full(n, -np.inf)
        for strand in (pad, pad_rc):
            c = np.einsum("ik,njk->nij", a, strand) / 4.0  # (n, la, lmax) column correlations
            for off in range(-(lmax - 1), la):
                # column i of a against column i - off of b
                s = np.trace(c, offset=-off, axis1=1, axis2=2)
                lo = max(0, off)
                overlap = np.clip(np.minimum(la, lens + off) - lo, 0, None)
                ok = overlap >= need
                best = np.where(ok, np.maximum(best, s / denom), best)
        sim[i] = np.clip(best, -1, 1)
    sim = np.maximum(sim, sim.T)  # the two directions differ only in rounding
    np.fill_diagonal(sim, 1.0)
    return pd.DataFrame(sim, index=names, columns=names)


def motif_archetypes(
    motifs: Mapping[str, np.ndarray] | pd.DataFrame,
    *,
    threshold: float = 0.7,
    min_overlap: int = 5,
) -> pd.Series:
    """Group motifs into archetypes (families of similar motifs).

    Parameters
    ----------
    motifs
        ``{name: (L, 4) probabilities}``, or a similarity table from :func:`motif_similarity`.
    threshold
        Similarity at which the average-linkage tree is cut: members of an archetype are on average at
        least this similar.
    min_overlap
        See :func:`motif_similarity`.

    Returns
    -------
    archetype : pandas.Series
        Archetype name for each motif (index: motif names), e.g. ``'GATA2 (6)'``.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    sim = motifs if isinstance(motifs, pd.DataFrame) else motif_similarity(motifs, min_overlap=min_overlap)
    names = list(sim.index)
    if len(names) == 1:
        return pd.Series([f"{names[0]} (1)"], index=names, name="archetype")
    dist = np.clip(1.0 - sim.to_numpy(), 0, 2)
    np.fill_diagonal(dist, 0)
    tree = linkage(squareform(dist, checks=False), method="average")
    labels = fcluster(tree, t=1.0 - threshold, criterion="distance")
    out = pd.Series(index=names, dtype=object, name="archetype")
    s = sim.to_numpy()
    for lab in np.unique(labels):
        members = np.flatnonzero(labels == lab)
        central = members[np.argmax(s[np.ix_(members, members)].mean(1))]
        out.iloc[members] = f"{names[central]} ({len(members)})"
    return out
