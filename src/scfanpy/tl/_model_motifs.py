"""What a model has learned: motifs found in its attributions (TF-MoDISco) matched to JASPAR (TOMTOM).

:func:`model_motifs` runs modisco-lite (``modiscolite``) on the hypothetical contributions of
:func:`scfanpy.tl.attribution` over many sequences and compares each pattern with JASPAR by TOMTOM
(memelite). Both libraries are optional: ``pip install scfanpy[interpret]``.

:func:`align_motif` (offset- and strand-aware correlation of an attribution track with motifs) is what
:func:`scfanpy.pl.attribution_logo` uses to draw the matching JASPAR logo under a track.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import _logging as logg
from ._attribution import Attribution

__all__ = ["model_motifs", "align_motif"]

_HINT = "pip install scfanpy[interpret]"


def _as_attribution(attributions: Any, key: str) -> Attribution:
    if isinstance(attributions, Attribution):
        return attributions
    uns = getattr(attributions, "uns", None)
    if uns is not None:
        if key not in uns:
            raise KeyError(f"uns[{key!r}] not found: run sfp.tl.attribution on this AnnData first")
        return Attribution.from_dict(uns[key])
    if isinstance(attributions, Mapping):
        return Attribution.from_dict(attributions)
    raise TypeError("attributions: expected an Attribution, an AnnData with uns[key], or its dict")


def align_motif(
    track: np.ndarray, motifs: Mapping[str, np.ndarray], *, min_overlap: int = 0
) -> tuple[str, float, int, str]:
    """Best placement of any motif on an attribution track: ``(name, correlation, offset, strand)``.

    The track ``(W, 4)`` (hypothetical contributions, centred per position) is compared with each
    motif's centred log-odds ``log(p / 0.25)`` (pseudocount 0.01) at every offset where the motif fits
    (``offset`` = the track position of the motif's first column) and on both strands (``'-'``: the
    reverse complement matrix sits there); the score is the Pearson correlation of the two flattened
    ``(L, 4)`` blocks times ``sqrt`` of the block's share of the track's total squared attribution, so
    that a placement on the attributed bases wins over one on noise. ``min_overlap`` is unused (motifs
    are placed whole). A track without attribution (all 0) matches nothing: ``('', nan, 0, '+')``.
    """
    t = np.asarray(track, dtype=np.float64)
    t = t - t.mean(1, keepdims=True)
    total = float((t**2).sum())
    best = ("", -np.inf, 0, "+")
    if total < 1e-12:  # no attribution: nothing to match
        return ("", float("nan"), 0, "+")
    for name, m in motifs.items():
        p = np.asarray(m, dtype=np.float64)
        p = (p + 0.01) / (p + 0.01).sum(1, keepdims=True)
        lo = np.log(p / 0.25)
        length = len(lo)
        if length > len(t):
            continue
        win = np.lib.stride_tricks.sliding_window_view(t, (length, 4))[:, 0]  # (n_off, L, 4)
        wn = np.sqrt((win**2).sum((1, 2)))
        share = np.sqrt((wn**2) / total)
        for strand, q in (("+", lo), ("-", lo[::-1, ::-1])):
            q = q - q.mean(1, keepdims=True)
            q = q / max(np.linalg.norm(q), 1e-12)
            corr = np.einsum("olk,lk->o", win, q) / np.maximum(wn, 1e-12)
            score = corr * share
            o = int(np.argmax(score))
            if score[o] > best[1]:
                best = (str(name), float(score[o]), o, strand)
    return best


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values of one row of p-values."""
    order = np.argsort(p)
    q = p[order] * len(p) / np.arange(1, len(p) + 1)
    q = np.minimum.accumulate(q[::-1])[::-1]
    out = np.empty_like(q)
    out[order] = np.minimum(q, 1)
    return out


def _tomtom(queries: list[np.ndarray], motifs: Mapping[str, np.ndarray], n_matches: int) -> list[dict]:
    """The best ``n_matches`` JASPAR motifs of each query PPM with TOMTOM p- and q-values."""
    try:
        from memelite import tomtom
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"model_motifs needs memelite (TOMTOM): {_HINT}") from e
    names = list(motifs)
    targets = [np.asarray(motifs[k], dtype=np.float64).T for k in names]
    p = tomtom([np.asarray(q, dtype=np.float64).T for q in queries], targets, n_jobs=1)[0]
    out = []
    for row in np.atleast_2d(p):
        q = _bh(row)
        order = np.argsort(row, kind="stable")[:n_matches]
        out.append({"matches": [names[i] for i in order], "p": row[order], "q": q[order]})
    return out


def _modisco(values: np.ndarray, codes: np.ndarray, kwargs: dict) -> list[tuple[str, Any]]:
    try:
        from modiscolite.tfmodisco import TFMoDISco
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"model_motifs needs modisco-lite: {_HINT}") from e
    one_hot = np.eye(5, dtype=np.float32)[codes][..., :4]
    pos, neg = TFMoDISco(one_hot, np.ascontiguousarray(values, dtype=np.float32), **kwargs)
    out = [(f"pos_{i}", p) for i, p in enumerate(pos or [])]
    return out + [(f"neg_{i}", p) for i, p in enumerate(neg or [])]


def model_motifs(
    attributions: Any,
    *,
    tfs: str | Sequence[str] | None = None,
    motifs: Mapping[str, Any] | None = None,
    n_matches: int = 3,
    max_seqlets: int = 2000,
    window: int = 21,
    flank: int = 10,
    trim: float = 0.3,
    key: str = "attribution",
    **modisco_kwargs: Any,
) -> pd.DataFrame:
    """Motifs a model has learned: TF-MoDISco patterns in its attributions, matched to JASPAR by TOMTOM.

    Needs modisco-lite and memelite (``pip install scfanpy[interpret]``).

    Parameters
    ----------
    attributions
        The :class:`~scfanpy.tl.Attribution` of :func:`scfanpy.tl.attribution` over many sequences
        (hundreds or more: modisco needs at least ``min_metacluster_size``, 100, seqlets), or an AnnData
        holding it in ``uns[key]``.
    tfs
        TFs of the attribution to analyse (default all; one modisco run each).
    motifs
        ``{name: (L, 4) probabilities}`` to match against (default JASPAR CORE vertebrates,
        :func:`scfanpy.datasets.jaspar_motifs`).
    n_matches
        JASPAR matches reported per pattern (best first).
    max_seqlets
        Seqlets per metacluster kept by modisco.
    window
        modisco's ``sliding_window_size`` (seqlet core width).
    flank
        modisco's ``flank_size``.
    trim
        A pattern is trimmed to the columns whose contribution is at least this fraction of its maximum
        before TOMTOM.
    key
        ``uns`` key of an AnnData's attribution.
    **modisco_kwargs
        Passed to ``modiscolite.tfmodisco.TFMoDISco`` (e.g. ``n_leiden_runs``, ``target_seqlet_fdr``).

    Returns
    -------
    patterns : pandas.DataFrame
        One row per pattern: ``tf`` (whose attribution), ``pattern`` (``pos_i``: raises the log-odds,
        ``neg_i``: lowers it), ``n_seqlets``, ``match`` (best JASPAR motif), ``p_value`` and ``q_value``
        (TOMTOM; q by Benjamini-Hochberg over the motifs), ``matches`` (the ``n_matches`` best),
        ``ppm`` (trimmed ``(L, 4)`` frequencies) and ``cwm`` (contribution weight matrix, trimmed alike).
        Empty (with these columns) when modisco finds no pattern.

    Examples
    --------
    >>> res = sfp.tl.attribution(model, adata, tfs=["GATA1"])  # doctest: +SKIP
    >>> sfp.tl.model_motifs(adata)  # doctest: +SKIP
    """
    res = _as_attribution(attributions, key)
    idx = list(range(len(res.tfs))) if tfs is None else [res.tf_index(t) for t in np.atleast_1d(tfs)]
    if motifs is None:
        from ..datasets import jaspar_motifs

        motifs = jaspar_motifs()
    motifs = {str(k): np.asarray(v, dtype=np.float64) for k, v in motifs.items()}
    kw = {"max_seqlets_per_metacluster": max_seqlets, "sliding_window_size": window, "flank_size": flank}
    kw.update(modisco_kwargs)
    rows = []
    for j in idx:
        start = logg.info("modisco on %d sequences for %s", len(res.codes), res.tfs[j])
        found = _modisco(res.values[:, j], res.codes, kw)
        trimmed = []
        for name, pat in found:
            cwm = np.asarray(pat.contrib_scores)
            ppm = np.asarray(pat.sequence)
            mag = np.abs(cwm).sum(1)
            keep = np.flatnonzero(mag >= trim * mag.max()) if mag.max() > 0 else np.arange(len(ppm))
            sl = slice(keep[0], keep[-1] + 1)
            trimmed.append((name, len(pat.seqlets), ppm[sl], cwm[sl]))
        hits = _tomtom([t[2] for t in trimmed], motifs, n_matches) if trimmed else []
        for (name, n_seq, ppm, cwm), hit in zip(trimmed, hits, strict=True):
            rows.append(
                {
                    "tf": res.tfs[j],
                    "pattern": name,
                    "n_seqlets": n_seq,
                    "match": hit["matches"][0],
                    "p_value": float(hit["p"][0]),
                    "q_value": float(hit["q"][0]),
                    "matches": hit["matches"],
                    "ppm": ppm,
                    "cwm": cwm,
                }
            )
        logg.info("    found %d pattern(s)", len(trimmed), time=start)
    cols = ["tf", "pattern", "n_seqlets", "match", "p_value", "q_value", "matches", "ppm", "cwm"]
    return pd.DataFrame(rows, columns=cols)
