"""First-layer filters of a sequence model -> position frequency matrices -> closest JASPAR motif."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import _logging as logg

__all__ = ["filter_motifs"]


def _first_conv(model: Any):
    module = getattr(model, "module", model)
    conv = getattr(module, "conv", None)
    if conv is None:
        raise TypeError("model has no first convolution (module.conv)")
    return conv


def _softmax_pfm(w: np.ndarray) -> np.ndarray:
    """Filter weights ``(4, k)`` -> frequencies ``(k, 4)`` by a column softmax."""
    e = np.exp(w - w.max(0, keepdims=True))
    return (e / e.sum(0, keepdims=True)).T.astype(np.float64)


def _filter_activations(conv, codes: np.ndarray, filters: list[int], batch_size: int) -> np.ndarray:
    """Activations ``(n, len(filters), L - k + 1)`` of the chosen filters on codes ``(n, L)`` (tracks zero)."""
    import torch

    from .._torch import one_hot_torch, predict_batched

    weight = conv.weight.detach()[filters]
    bias = None if conv.bias is None else conv.bias.detach()[filters]
    n_tracks = conv.weight.shape[1] - 4

    def forward(c):
        x = one_hot_torch(c)
        if n_tracks:
            x = torch.cat([x, x.new_zeros((len(x), n_tracks, x.shape[2]))], dim=1)
        return torch.nn.functional.conv1d(x, weight, bias)

    return predict_batched(forward, [codes], batch_size=batch_size, device=conv.weight.device)


def _activation_pfms(act: np.ndarray, codes: np.ndarray, k: int, threshold: float) -> list[np.ndarray]:
    """Per filter, the k-mers where its activation exceeds ``threshold`` x its maximum, as frequencies.

    At most the 5,000 strongest k-mers; a pseudocount of 0.1 per cell; N counts 0.25 for each base.
    """
    eye = np.vstack([np.eye(4), np.full((1, 4), 0.25)])
    out = []
    for i in range(act.shape[1]):
        a = act[:, i]
        mx = a.max()
        counts = np.full((k, 4), 0.1)
        if mx > 0:
            rows, pos = np.nonzero(a > threshold * mx)
            if len(rows) > 5000:
                keep = np.argsort(a[rows, pos])[-5000:]
                rows, pos = rows[keep], pos[keep]
            win = codes[rows[:, None], pos[:, None] + np.arange(k)]  # (m, k)
            counts += eye[win].sum(0)
        out.append(counts / counts.sum(1, keepdims=True))
    return out


def filter_pfms(
    model: Any,
    codes: np.ndarray | None,
    filters: Sequence[int],
    *,
    threshold: float = 0.5,
    max_seqs: int = 2000,
    batch_size: int = 256,
) -> dict[int, np.ndarray]:
    """Position frequency matrices ``(k, 4)`` of the first-layer filters.

    With ``codes``: the k-mers at positions where a filter's activation exceeds ``threshold`` x its
    maximum over the first ``max_seqs`` sequences (DeepBind / Basset style), counted into frequencies.
    Without: the filter weights through a per-column softmax (``exp(w) / sum exp(w)``).
    """
    conv = _first_conv(model)
    filters = list(filters)
    if codes is None:
        w = conv.weight.detach().float().cpu().numpy()[:, :4]  # (F, 4, k)
        return {f: _softmax_pfm(w[f]) for f in filters}
    codes = np.asarray(codes)[:max_seqs]
    act = _filter_activations(conv, codes, filters, batch_size)
    pfms = _activation_pfms(act, codes, conv.weight.shape[2], threshold)
    return dict(zip(filters, pfms, strict=True))


def _information(pfm: np.ndarray) -> np.ndarray:
    p = np.clip(pfm, 1e-6, 1)
    return 2 + (p * np.log2(p)).sum(1)


def _trim(pfm: np.ndarray, min_ic: float = 0.3) -> np.ndarray:
    ic = _information(pfm)
    keep = np.flatnonzero(ic >= min_ic)
    if len(keep) == 0:
        return pfm
    return pfm[keep[0] : keep[-1] + 1]


def _column_z(m: np.ndarray) -> np.ndarray:
    c = m - m.mean(1, keepdims=True)
    return c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-9)


def match_motif(
    pfm: np.ndarray, motifs: dict[str, np.ndarray], min_overlap: int = 5
) -> tuple[str, float, str]:
    """Closest motif by mean column Pearson correlation over the best ungapped alignment (both strands).

    The filter is trimmed to its informative columns first. The score is the sum of column correlations
    over the overlap divided by ``max(overlap, length of the shorter matrix)``, so partial overlaps are
    penalised; overlaps shorter than ``min_overlap`` columns are skipped. Returns ``(name, score,
    strand)``.
    """
    q = _column_z(_trim(pfm))
    kq = q.shape[0]
    best = ("", -np.inf, "+")
    for name, m in motifs.items():
        t = _column_z(np.asarray(m, dtype=float))
        kt = t.shape[0]
        # diagonal d of the (kq, kt) column-correlation matrix = alignment with offset d - (kq - 1)
        diag = (np.arange(kt)[None, :] - np.arange(kq)[:, None] + kq - 1).ravel()
        length = np.bincount(diag, minlength=kq + kt - 1)
        ok = length >= min(min_overlap, kq, kt)
        denom = np.maximum(length, min(kq, kt))
        for strand, tt in (("+", t), ("-", t[::-1, ::-1])):
            sums = np.bincount(diag, weights=(q @ tt.T).ravel(), minlength=kq + kt - 1)
            score = np.where(ok, sums / denom, -np.inf).max()
            if score > best[1]:
                best = (name, float(score), strand)
    return best


def filter_motifs(
    model: Any,
    codes: np.ndarray | None = None,
    *,
    filters: Sequence[int] | None = None,
    n_filters: int = 12,
    motifs: dict[str, Any] | None = None,
    threshold: float = 0.5,
    max_seqs: int = 2000,
    batch_size: int = 256,
) -> pd.DataFrame:
    """First-layer filters of a sequence model as frequency matrices with their closest JASPAR motif.

    Parameters
    ----------
    model
        A sequence model (or its torch module) with a first convolution ``module.conv``.
    codes
        uint8 codes ``(n, L)`` to collect filter activations on (recommended: e.g. the positives);
        without them each filter's weights are turned into frequencies by a column softmax.
    filters
        Filter indices (default: the ``n_filters`` with the largest weight norm).
    n_filters
        How many filters when ``filters`` is None.
    motifs
        ``{name: (L, 4) probabilities}`` to match against (default
        :func:`scfanpy.datasets.jaspar_motifs`, JASPAR CORE vertebrates).
    threshold
        A k-mer counts when the filter's activation exceeds this fraction of its maximum.
    max_seqs
        Sequences of ``codes`` used (the first ones).
    batch_size
        Sequences per forward pass of the first convolution.

    Returns
    -------
    motifs : :class:`pandas.DataFrame`
        Indexed by filter: ``pfm`` (array ``(k, 4)``), ``information`` (total bits), ``jaspar``
        (closest motif), ``similarity`` (mean column correlation), ``strand``. Draw it with
        :func:`scfanpy.pl.filter_logos`.

    Examples
    --------
    >>> tab = sfp.tl.filter_motifs(model, positives_codes)  # doctest: +SKIP
    >>> sfp.pl.filter_logos(tab)  # doctest: +SKIP
    """
    conv = _first_conv(model)
    if filters is None:
        w = conv.weight.detach().float().cpu().numpy()
        filters = list(np.argsort(-np.linalg.norm(w[:, :4].reshape(len(w), -1), axis=1))[:n_filters])
    start = logg.info("matching %d filters to motifs", len(filters))
    pfms = filter_pfms(model, codes, filters, threshold=threshold, max_seqs=max_seqs, batch_size=batch_size)
    if motifs is None:
        from ..datasets import jaspar_motifs

        motifs = jaspar_motifs()
    mot = {k: np.asarray(v, dtype=float) for k, v in motifs.items()}
    rows = []
    for f in filters:
        name, score, strand = match_motif(pfms[f], mot) if mot else ("", np.nan, "+")
        rows.append(
            {
                "filter": int(f),
                "pfm": pfms[f],
                "information": float(_information(pfms[f]).sum()),
                "jaspar": name,
                "similarity": score,
                "strand": strand,
            }
        )
    logg.info("    finished", time=start)
    return pd.DataFrame(rows).set_index("filter")
