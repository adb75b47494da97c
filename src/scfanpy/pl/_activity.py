"""Plots of TF activity (per cell and per group), key TFs, and per-peak binding; thin wrappers of scanpy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from .._constants import TF_ACTIVITY, TF_BINDING
from .._docs import doc_params
from .._utils import get_adata
from ._models import _save_show_or_return

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData
    from mudata import MuData

_doc_grouped = """\
data
    AnnData / MuData with ``obsm[key]`` from :func:`scfanpy.tl.predict_tf_binding`, or a cells x TFs
    AnnData (activity in ``X``).
groupby
    ``obs`` column with the groups.
tfs
    TFs to show (default: all, the 30 most variable when there are more).
key
    ``obsm`` key of the activity.
scale
    Z-score each TF over cells first.
mod
    MuData modality (default ``'atac'``).
**kwargs
    Passed to scanpy (``show``, ``save``, ``cmap``, ``dendrogram``, ...)."""

_doc_scanpy_returns = """\
axes : dict or scanpy plot object or None
    What scanpy returns (the axes when ``show=False``)."""

_BINDING_KINDS = ("violin", "heatmap", "accessibility")

__all__ = [
    "tf_activity_embedding",
    "tf_activity_heatmap",
    "tf_activity_matrixplot",
    "tf_activity_dotplot",
    "rank_tfs",
    "tf_binding",
]


def _tfa(data, key, scale, mod, obsm_keys=None):
    from ..tl._rank import tf_activity_adata

    return tf_activity_adata(data, key=key, scale=scale, mod=mod, obsm_keys=obsm_keys)


def _pick_tfs(tfa, tfs, n_max: int = 30) -> list[str]:
    if tfs is None:
        names = list(tfa.var_names)
        if len(names) > n_max:  # the most variable ones
            order = np.argsort(-np.asarray(tfa.X).var(0))[:n_max]
            names = [names[i] for i in sorted(order)]
        return names
    tfs = [tfs] if isinstance(tfs, str) else list(tfs)
    missing = [t for t in tfs if t not in tfa.var_names]
    if missing:
        raise KeyError(f"TFs without activity: {missing}")
    return tfs


@doc_params(scanpy_returns=_doc_scanpy_returns)
def tf_activity_embedding(
    data: AnnData | MuData,
    tfs: str | Sequence[str],
    *,
    basis: str = "umap",
    key: str = TF_ACTIVITY,
    scale: bool = False,
    mod: str | None = None,
    **kwargs,
):
    """Cells in an embedding coloured by TF activity (:func:`scanpy.pl.embedding`).

    Parameters
    ----------
    data
        AnnData / MuData with ``obsm[key]`` (or a cells x TFs AnnData) and ``obsm['X_' + basis]``.
    tfs
        TF(s) to colour by; ``obs`` columns are accepted too (e.g. ``'cell_type'``).
    basis
        Embedding (``'umap'``, ``'tsne'``, ``'lsi'``, ...).
    key
        ``obsm`` key of the activity.
    scale
        Z-score each TF over cells first.
    {mod}
    **kwargs
        Passed to :func:`scanpy.pl.embedding` (``show``, ``save``, ``cmap``, ``ncols``, ...).

    Returns
    -------
    {scanpy_returns}

    Examples
    --------
    >>> sfp.pl.tf_activity_embedding(adata, ["GATA1", "SPI1"], basis="umap")  # doctest: +SKIP
    """
    import scanpy as sc

    tfa = _tfa(data, key, scale, mod)
    obsm_key = basis if basis in tfa.obsm else f"X_{basis}"
    if obsm_key not in tfa.obsm:
        raise KeyError(f"obsm[{obsm_key!r}] not found: compute the embedding first (e.g. sc.tl.umap)")
    colors = [tfs] if isinstance(tfs, str) else list(tfs)
    kwargs.setdefault("cmap", "RdBu_r" if scale else "viridis")
    return sc.pl.embedding(tfa, obsm_key, color=colors, **kwargs)


@doc_params(grouped=_doc_grouped, scanpy_returns=_doc_scanpy_returns)
def tf_activity_heatmap(
    data: AnnData | MuData,
    groupby: str,
    tfs: Sequence[str] | None = None,
    *,
    key: str = TF_ACTIVITY,
    scale: bool = True,
    mod: str | None = None,
    **kwargs,
):
    """Heatmap of TF activity, cells grouped by ``groupby`` (:func:`scanpy.pl.heatmap`).

    Parameters
    ----------
    {grouped}

    Returns
    -------
    {scanpy_returns}

    Examples
    --------
    >>> sfp.pl.tf_activity_heatmap(adata, "leiden")  # doctest: +SKIP
    """
    import scanpy as sc

    tfa = _tfa(data, key, scale, mod, obsm_keys=[])
    kwargs.setdefault("cmap", "RdBu_r" if scale else "viridis")
    if scale:
        kwargs.setdefault("vcenter", 0)
    return sc.pl.heatmap(tfa, _pick_tfs(tfa, tfs), groupby, use_raw=False, **kwargs)


@doc_params(grouped=_doc_grouped, scanpy_returns=_doc_scanpy_returns)
def tf_activity_matrixplot(
    data: AnnData | MuData,
    groupby: str,
    tfs: Sequence[str] | None = None,
    *,
    key: str = TF_ACTIVITY,
    scale: bool = True,
    mod: str | None = None,
    **kwargs,
):
    """Mean TF activity per group (:func:`scanpy.pl.matrixplot`); ``scale`` z-scores each TF over cells.

    Parameters
    ----------
    {grouped}

    Returns
    -------
    {scanpy_returns}

    Examples
    --------
    >>> sfp.pl.tf_activity_matrixplot(adata, "cell_type", dendrogram=True)  # doctest: +SKIP
    """
    import scanpy as sc

    tfa = _tfa(data, key, scale, mod, obsm_keys=[])
    kwargs.setdefault("cmap", "RdBu_r" if scale else "viridis")
    kwargs.setdefault("colorbar_title", "mean TF activity\n(z-score)" if scale else "mean TF activity")
    if scale:
        kwargs.setdefault("vcenter", 0)
    return sc.pl.matrixplot(tfa, _pick_tfs(tfa, tfs), groupby, use_raw=False, **kwargs)


@doc_params(grouped=_doc_grouped, scanpy_returns=_doc_scanpy_returns)
def tf_activity_dotplot(
    data: AnnData | MuData,
    groupby: str,
    tfs: Sequence[str] | None = None,
    *,
    key: str = TF_ACTIVITY,
    scale: bool = True,
    mod: str | None = None,
    **kwargs,
):
    """Dot plot of TF activity per group (:func:`scanpy.pl.dotplot`).

    Colour: mean activity (z-scored over cells with ``scale``); dot size: fraction of the group's cells
    whose activity is above the TF's mean over all cells (z > 0).

    Parameters
    ----------
    {grouped}

    Returns
    -------
    {scanpy_returns}

    Examples
    --------
    >>> sfp.pl.tf_activity_dotplot(adata, "cell_type")  # doctest: +SKIP
    """
    import scanpy as sc

    tfa = _tfa(data, key, True, mod, obsm_keys=[])
    if not scale:  # colour by the raw activity, size from the z-score
        tfa.layers["z"] = tfa.X.copy()
        tfa.X = tfa.layers["activity"].copy()
        kwargs.setdefault("expression_cutoff", float(np.median(tfa.X)))
    else:
        kwargs.setdefault("expression_cutoff", 0.0)
        kwargs.setdefault("cmap", "RdBu_r")
        kwargs.setdefault("vcenter", 0)
    kwargs.setdefault("colorbar_title", "mean TF activity\n(z-score)" if scale else "mean TF activity")
    kwargs.setdefault("size_title", "fraction of cells\nabove the mean")
    return sc.pl.dotplot(tfa, _pick_tfs(tfa, tfs), groupby, use_raw=False, **kwargs)


@doc_params(scanpy_returns=_doc_scanpy_returns)
def rank_tfs(
    data: AnnData | MuData, *, key: str = "rank_tfs", n_tfs: int = 10, mod: str | None = None, **kwargs
):
    """Key TFs per group from :func:`scfanpy.tl.rank_tfs` (:func:`scanpy.pl.rank_genes_groups`).

    Parameters
    ----------
    data
        AnnData / MuData ranked by :func:`scfanpy.tl.rank_tfs`.
    key
        The ``key_added`` of :func:`scfanpy.tl.rank_tfs`.
    n_tfs
        TFs shown per group.
    {mod}
    **kwargs
        Passed to :func:`scanpy.pl.rank_genes_groups` (``show``, ``save``, ``ncols``, ...).

    Returns
    -------
    {scanpy_returns}

    Examples
    --------
    >>> sfp.tl.rank_tfs(adata, "cell_type")  # doctest: +SKIP
    >>> sfp.pl.rank_tfs(adata, n_tfs=5)  # doctest: +SKIP
    """
    import scanpy as sc

    adata = get_adata(data, mod)
    if key not in adata.uns:
        raise KeyError(f"uns[{key!r}] missing: run sfp.tl.rank_tfs first")
    akey = adata.uns[key]["params"].get("activity_key", TF_ACTIVITY)
    tfa = _tfa(adata, akey, False, None, obsm_keys=[])
    tfa.uns[key] = adata.uns[key]
    return sc.pl.rank_genes_groups(tfa, n_genes=n_tfs, key=key, **kwargs)


@doc_params()
def tf_binding(
    data: AnnData | MuData,
    tfs: str | Sequence[str] | None = None,
    *,
    key: str = TF_BINDING,
    kind: Literal["violin", "heatmap", "accessibility"] = "violin",
    mod: str | None = None,
    ax=None,
    show: bool | None = None,
    save: str | None = None,
):
    """Per-TF binding probability across peaks (``varm[key]`` of :func:`~scfanpy.tl.predict_tf_binding`).

    Parameters
    ----------
    data
        AnnData / MuData with ``varm[key]``.
    tfs
        TFs to show (default: all, at most 30).
    kind
        ``'violin'``: distribution over peaks per TF; ``'heatmap'``: peaks (sorted by their best TF) x
        TFs; ``'accessibility'``: probability against the peak's mean accessibility, one panel per TF.
    {mod}
    ax
        Matplotlib axes (``'violin'`` and ``'heatmap'``).
    {show_save}

    Returns
    -------
    axes : matplotlib.axes.Axes or numpy.ndarray or None
        The axes (one for ``'violin'`` / ``'heatmap'``, an array of panels for ``'accessibility'``) when
        the figure is not shown.

    Examples
    --------
    >>> sfp.pl.tf_binding(adata, ["GATA1", "SPI1"])  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    if kind not in _BINDING_KINDS:
        raise ValueError(f"kind must be one of {_BINDING_KINDS}, got {kind!r}")
    adata = get_adata(data, mod)
    if key not in adata.varm:
        raise KeyError(f"varm[{key!r}] missing: run sfp.tl.predict_tf_binding first")
    B = adata.varm[key]
    if not isinstance(B, pd.DataFrame):
        names = adata.uns.get(TF_ACTIVITY, {}).get("tf_names", [f"TF{i}" for i in range(np.shape(B)[1])])
        B = pd.DataFrame(np.asarray(B), index=adata.var_names, columns=list(names))
    if tfs is None:
        tfs = list(B.columns[:30])
    elif isinstance(tfs, str):
        tfs = [tfs]
    B = B[list(tfs)]
    if kind == "violin":
        if ax is None:
            _, ax = plt.subplots(figsize=(max(3, 0.5 * len(tfs) + 1), 3))
        ax.violinplot([B[t].to_numpy() for t in tfs], showmedians=True)
        ax.set_xticks(np.arange(1, len(tfs) + 1), tfs, rotation=90)
        ax.set_ylabel("binding probability")
        ax.set_title("TF binding across peaks")
        axes = ax
    elif kind == "heatmap":
        if ax is None:
            _, ax = plt.subplots(figsize=(max(3, 0.3 * len(tfs) + 2), 4))
        M = B.to_numpy()
        order = np.lexsort((-M.max(1), M.argmax(1)))
        im = ax.imshow(M[order], aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(np.arange(len(tfs)), tfs, rotation=90)
        ax.set_yticks([])
        ax.set_ylabel(f"{len(M)} peaks")
        plt.colorbar(im, ax=ax, label="binding probability")
        axes = ax
    else:  # accessibility
        X = adata.X
        mean_acc = np.asarray(X.mean(0)).ravel()
        ncol = min(4, len(tfs))
        nrow = int(np.ceil(len(tfs) / ncol))
        fig, axs = plt.subplots(nrow, ncol, figsize=(3 * ncol, 2.6 * nrow), squeeze=False)
        for a, t in zip(axs.ravel(), tfs):
            a.scatter(np.log1p(mean_acc * 1e2), B[t].to_numpy(), s=3, alpha=0.5, rasterized=True)
            a.set_title(t)
            a.set_xlabel("log1p(100 x mean count)")
            a.set_ylabel("P(bound)")
        for a in axs.ravel()[len(tfs) :]:
            a.set_visible(False)
        fig.tight_layout()
        axes = axs
    return _save_show_or_return(plt.gcf(), axes, show, save)
