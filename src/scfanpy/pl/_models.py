"""Diagnostics of the TF-binding sequence models: training curves, ROC / PR curves, filter logos."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["training_curves", "roc_pr_curves", "filter_logos", "filter_motifs"]


def _finish(fig, axes, show: bool | None, save: str | None):
    import matplotlib.pyplot as plt

    if save:
        fig.savefig(save, bbox_inches="tight", dpi=150)
    if show is None:
        show = plt.isinteractive()
    if show:
        plt.show()
        return None
    return axes


def training_curves(
    model_or_history: Any,
    *,
    axes=None,
    show: bool | None = None,
    save: str | None = None,
):
    """Loss and validation AUROC / AUPRC per epoch of a trained sequence model.

    Parameters
    ----------
    model_or_history
        A trained :class:`~scfanpy.models.DANQ` / ``FACTORNET`` / ``SCFAN`` (its ``history``) or the
        history DataFrame itself (index epoch; columns ``train_loss``, ``valid_loss``, ``valid_auroc``,
        ``valid_auprc``; any subset).
    axes
        Two matplotlib axes (loss, metrics); new ones by default.
    show, save
        Show the figure / save it to this path.

    Returns
    -------
    The two axes when ``show`` is false.

    Examples
    --------
    >>> model.train(max_epochs=10)  # doctest: +SKIP
    >>> sfp.pl.training_curves(model)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    hist = (
        model_or_history
        if isinstance(model_or_history, pd.DataFrame)
        else getattr(model_or_history, "history", None)
    )
    if hist is None or len(hist) == 0:
        raise ValueError("no training history: train the model first")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    else:
        fig = axes[0].figure
    epochs = np.asarray(hist.index) + 1
    for col, style in (("train_loss", "-o"), ("valid_loss", "--o")):
        if col in hist:
            axes[0].plot(epochs, hist[col], style, label=col.replace("_", " "), ms=3)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("masked BCE")
    axes[0].legend(frameon=False)
    for col in ("valid_auroc", "valid_auprc"):
        if col in hist:
            axes[1].plot(epochs, hist[col], "-o", label="valid " + col.split("_")[1].upper(), ms=3)
    best = getattr(model_or_history, "best_epoch_", None)
    if best is not None and best >= 0:
        axes[1].axvline(best + 1, color="grey", lw=0.8, ls=":", label="kept weights")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("mean over TFs")
    if axes[1].lines:
        axes[1].legend(frameon=False)
    fig.tight_layout()
    return _finish(fig, axes, show, save)


def roc_pr_curves(
    model: Any,
    adata=None,
    *,
    split: str | None = "test",
    tfs: Sequence[str] | None = None,
    batch_size: int = 256,
    axes=None,
    show: bool | None = None,
    save: str | None = None,
):
    """ROC and precision-recall curves per TF on one split of a region AnnData.

    Parameters
    ----------
    model
        A sequence model (``DANQ``, ``FACTORNET``, ``SCFAN``).
    adata
        Region AnnData with labels (default: the model's training data).
    split
        Value of the split column to evaluate (None: all regions).
    tfs
        TFs to draw (default: all, at most 12).
    axes
        Two matplotlib axes (ROC, PR).
    show, save
        Show the figure / save it to this path.

    Returns
    -------
    The two axes when ``show`` is false. Legends give each TF's AUROC / AUPRC.

    Examples
    --------
    >>> sfp.pl.roc_pr_curves(model, test_regions, split="test")  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    adata = model.adata if adata is None else adata
    if adata is None:
        raise ValueError("pass adata=")
    _, _, labels = model._arrays(adata, need_labels=True)
    idx = model._split_indices(adata, split)
    pred = model.predict(adata, batch_size=batch_size, indices=idx).to_numpy()
    names = list(model.tf_names)
    tfs = names[:12] if tfs is None else ([tfs] if isinstance(tfs, str) else list(tfs))
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
    else:
        fig = axes[0].figure
    y_all = labels[idx]
    for tf in tfs:
        j = names.index(tf)
        obs = np.isfinite(y_all[:, j])
        y, p = y_all[obs, j] > 0.5, pred[obs, j]
        if y.all() or not y.any():
            continue
        fpr, tpr, _ = roc_curve(y, p)
        prec, rec, _ = precision_recall_curve(y, p)
        axes[0].plot(fpr, tpr, lw=1.2, label=f"{tf} ({roc_auc_score(y, p):.3f})")
        axes[1].plot(rec, prec, lw=1.2, label=f"{tf} ({average_precision_score(y, p):.3f})")
    axes[0].plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    axes[0].set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (AUROC)")
    axes[1].set(xlabel="recall", ylabel="precision", title="precision-recall (AUPRC)", ylim=(0, 1.02))
    for a in axes:
        if a.get_legend_handles_labels()[0]:
            a.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return _finish(fig, axes, show, save)


# ---------------------------------------------------------------------------------------------------
# filters -> position frequency matrices -> closest JASPAR motif
# ---------------------------------------------------------------------------------------------------
def _first_conv(model: Any):
    module = getattr(model, "module", model)
    conv = getattr(module, "conv", None)
    if conv is None:
        raise TypeError("model has no first convolution (module.conv)")
    return conv


def _filter_pfms(
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
    maximum over the sequences (DeepBind / Basset style), counted into frequencies. Without: the
    filter weights through a per-column softmax (``exp(w) / sum exp(w)``).
    """
    import torch

    from ..models._seqmodules import encode_batch

    conv = _first_conv(model)
    w = conv.weight.detach().float().cpu().numpy()[:, :4]  # (F, 4, k)
    k = w.shape[2]
    filters = list(filters)
    if codes is None:
        out = {}
        for f in filters:
            e = np.exp(w[f] - w[f].max(0, keepdims=True))
            out[f] = (e / e.sum(0, keepdims=True)).T.astype(np.float64)
        return out
    codes = np.asarray(codes)[:max_seqs]
    n_tracks = conv.weight.shape[1] - 4
    device = conv.weight.device
    acts = []
    with torch.no_grad():
        for s in range(0, len(codes), batch_size):
            c = torch.from_numpy(np.ascontiguousarray(codes[s : s + batch_size])).to(device)
            x = encode_batch(c, None, n_tracks)
            acts.append(torch.nn.functional.conv1d(x, conv.weight[filters], conv.bias[filters]).cpu().numpy())
    act = np.concatenate(acts)  # (n, len(filters), L - k + 1)
    eye = np.vstack([np.eye(4), np.full((1, 4), 0.25)])
    out = {}
    for i, f in enumerate(filters):
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
        out[f] = counts / counts.sum(1, keepdims=True)
    return out


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


def _match(pfm: np.ndarray, motifs: dict[str, np.ndarray], min_overlap: int = 5) -> tuple[str, float, str]:
    """Closest motif by mean column Pearson correlation over the best ungapped alignment (both strands).

    The filter is trimmed to its informative columns first. The score is the sum of column correlations
    over the overlap divided by ``max(overlap, length of the shorter matrix)``, so partial overlaps are
    penalised; overlaps shorter than ``min_overlap`` columns are skipped.
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
) -> pd.DataFrame:
    """First-layer filters as frequency matrices with their closest JASPAR motif.

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

    Returns
    -------
    DataFrame indexed by filter: ``pfm`` (array ``(k, 4)``), ``information`` (total bits),
    ``jaspar`` (closest motif), ``similarity`` (mean column correlation), ``strand``.

    Examples
    --------
    >>> sfp.pl.filter_motifs(model, positives_codes).head()  # doctest: +SKIP
    """
    conv = _first_conv(model)
    w = conv.weight.detach().float().cpu().numpy()
    if filters is None:
        filters = list(np.argsort(-np.linalg.norm(w[:, :4].reshape(len(w), -1), axis=1))[:n_filters])
    pfms = _filter_pfms(model, codes, filters)
    if motifs is None:
        from ..datasets import jaspar_motifs

        motifs = jaspar_motifs()
    mot = {k: np.asarray(v, dtype=float) for k, v in motifs.items()}
    rows = []
    for f in filters:
        name, score, strand = _match(pfms[f], mot) if mot else ("", np.nan, "+")
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
    return pd.DataFrame(rows).set_index("filter")


def filter_logos(
    model: Any,
    codes: np.ndarray | None = None,
    *,
    filters: Sequence[int] | None = None,
    n_filters: int = 12,
    motifs: dict[str, Any] | None = None,
    ncols: int = 4,
    show: bool | None = None,
    save: str | None = None,
):
    """First-layer filters as sequence logos (logomaker), each titled with its closest JASPAR motif.

    Parameters
    ----------
    model
        A sequence model (``DANQ``, ``FACTORNET``, ``SCFAN``; trained or imported).
    codes
        uint8 codes ``(n, L)`` on which filter activations are collected (see :func:`filter_motifs`).
    filters, n_filters, motifs
        See :func:`filter_motifs`.
    ncols
        Logos per row.
    show, save
        Show the figure / save it to this path.

    Returns
    -------
    The array of axes when ``show`` is false; the matches are in ``axes.flat[i].get_title()`` and
    ``filter_motifs`` returns them as a table.

    Examples
    --------
    >>> sfp.pl.filter_logos(model, regions.obsm["dna_code"][:2000])  # doctest: +SKIP
    """
    import logomaker
    import matplotlib.pyplot as plt

    tab = filter_motifs(model, codes, filters=filters, n_filters=n_filters, motifs=motifs)
    n = len(tab)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 1.6 * nrows), squeeze=False)
    for ax, (f, row) in zip(axes.flat, tab.iterrows(), strict=False):
        df = pd.DataFrame(np.asarray(row["pfm"], dtype=np.float64), columns=list("ACGT"))
        info = logomaker.transform_matrix(df, from_type="probability", to_type="information")
        logomaker.Logo(info, ax=ax, color_scheme="classic")
        ax.set_ylim(0, 2)
        ax.set_xticks([])
        match = (
            f"{row['jaspar']} ({row['similarity']:.2f}{'' if row['strand'] == '+' else ', rc'})"
            if row["jaspar"]
            else ""
        )
        ax.set_title(f"filter {f}: {match}", fontsize=8)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return _finish(fig, axes, show, save)
