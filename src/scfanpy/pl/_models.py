"""Diagnostics of the TF-binding sequence models: training curves, ROC / PR curves, filter logos.

Only drawing: the curves come from :func:`scfanpy.tl.roc_pr` and the filter motifs from
:func:`scfanpy.tl.filter_motifs`; ``training_curves`` reads a model's ``history``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._docs import doc_params

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["training_curves", "roc_pr_curves", "filter_logos"]


def _save_show_or_return(fig, axes, show: bool | None, save: str | None):
    """Save ``fig`` to ``save``; show it (``show=None``: when matplotlib is interactive) or return ``axes``."""
    import matplotlib.pyplot as plt

    if save:
        fig.savefig(save, bbox_inches="tight", dpi=150)
    if show is None:
        show = plt.isinteractive()
    if show:
        plt.show()
        return None
    return axes


@doc_params()
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
    {show_save}

    Returns
    -------
    axes : numpy.ndarray of matplotlib.axes.Axes or None
        The two axes (loss; validation AUROC / AUPRC) when the figure is not shown.

    Examples
    --------
    >>> sfp.pl.training_curves(model)  # a trained model  # doctest: +SKIP
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
    return _save_show_or_return(fig, axes, show, save)


@doc_params()
def roc_pr_curves(
    regions: AnnData,
    *,
    key: str = "roc_pr",
    tfs: str | Sequence[str] | None = None,
    axes=None,
    show: bool | None = None,
    save: str | None = None,
):
    """ROC and precision-recall curves per TF, as computed by :func:`scfanpy.tl.roc_pr`.

    Parameters
    ----------
    regions
        The region AnnData passed to :func:`scfanpy.tl.roc_pr` (its ``uns[key]``).
    key
        The ``key_added`` of :func:`scfanpy.tl.roc_pr`.
    tfs
        TFs to draw (default: the first 12 evaluated); TFs with one class only have no curve.
    axes
        Two matplotlib axes (ROC, PR); new ones by default.
    {show_save}

    Returns
    -------
    axes : numpy.ndarray of matplotlib.axes.Axes or None
        The two axes (ROC, PR) when the figure is not shown; the legends give each TF's AUROC / AUPRC.

    Examples
    --------
    >>> sfp.tl.roc_pr(model, test_regions, split="test")  # doctest: +SKIP
    >>> sfp.pl.roc_pr_curves(test_regions)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    if key not in regions.uns or "curves" not in regions.uns[key]:
        raise KeyError(f"uns[{key!r}] missing: run sfp.tl.roc_pr first")
    res = regions.uns[key]
    metrics, curves = res["metrics"], res["curves"]
    names = list(metrics.index)
    tfs = names[:12] if tfs is None else ([tfs] if isinstance(tfs, str) else list(tfs))
    missing = [t for t in tfs if t not in names]
    if missing:
        raise KeyError(f"TFs not evaluated: {missing}")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
    else:
        fig = axes[0].figure
    for tf in (t for t in tfs if t in curves):
        c = curves[tf]
        axes[0].plot(c["fpr"], c["tpr"], lw=1.2, label=f"{tf} ({metrics.loc[tf, 'auroc']:.3f})")
        axes[1].plot(c["recall"], c["precision"], lw=1.2, label=f"{tf} ({metrics.loc[tf, 'auprc']:.3f})")
    axes[0].plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    axes[0].set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (AUROC)")
    axes[1].set(xlabel="recall", ylabel="precision", title="precision-recall (AUPRC)", ylim=(0, 1.02))
    for a in axes:
        if a.get_legend_handles_labels()[0]:
            a.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return _save_show_or_return(fig, axes, show, save)


@doc_params()
def filter_logos(
    motifs: pd.DataFrame,
    *,
    ncols: int = 4,
    show: bool | None = None,
    save: str | None = None,
):
    """First-layer filters as sequence logos (logomaker), each titled with its closest JASPAR motif.

    Parameters
    ----------
    motifs
        The table of :func:`scfanpy.tl.filter_motifs` (indexed by filter; ``pfm``, ``jaspar``,
        ``similarity``, ``strand``).
    ncols
        Logos per row.
    {show_save}

    Returns
    -------
    axes : numpy.ndarray of matplotlib.axes.Axes or None
        The grid of axes (rows x ``ncols``; unused ones hidden) when the figure is not shown; each title
        reads ``filter <i>: <motif> (<similarity>[, rc])``.

    Examples
    --------
    >>> tab = sfp.tl.filter_motifs(model, regions.obsm["dna_code"][:2000])  # doctest: +SKIP
    >>> sfp.pl.filter_logos(tab)  # doctest: +SKIP
    """
    import logomaker
    import matplotlib.pyplot as plt

    n = len(motifs)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 1.6 * nrows), squeeze=False)
    for ax, (f, row) in zip(axes.flat, motifs.iterrows(), strict=False):
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
    return _save_show_or_return(fig, axes, show, save)
