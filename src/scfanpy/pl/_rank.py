"""Key TFs with their effect and significance (after :func:`scfanpy.tl.rank_tfs`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._docs import doc_params
from .._utils import get_adata
from ._models import _save_show_or_return

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData
    from mudata import MuData

__all__ = ["rank_tfs_effects"]


def _stars(q: float) -> str:
    return "***" if q < 1e-3 else "**" if q < 1e-2 else "*" if q < 0.05 else "n.s."


@doc_params()
def rank_tfs_effects(
    data: AnnData | MuData,
    *,
    key: str = "rank_tfs",
    n_tfs: int = 5,
    ncols: int = 4,
    mod: str | None = None,
    show: bool | None = None,
    save: str | None = None,
):
    """The top TFs of each group as bars of their effect, labelled with their q-value.

    One panel per group: the ``n_tfs`` top-ranked TFs (or archetypes) of :func:`scfanpy.tl.rank_tfs`,
    bar length = effect (mean activity in the group minus the reference, activity units), label = the
    Benjamini-Hochberg q-value and its stars (``*`` < 0.05, ``**`` < 0.01, ``***`` < 0.001).

    Parameters
    ----------
    data
        AnnData / MuData ranked by :func:`scfanpy.tl.rank_tfs`.
    key
        The ``key_added`` of :func:`scfanpy.tl.rank_tfs`.
    n_tfs
        TFs per group.
    ncols
        Panels per row.
    {mod}
    {show_save}

    Returns
    -------
    axes : numpy.ndarray
        The panels' axes when ``show`` is false, else None.

    Examples
    --------
    >>> sfp.tl.rank_tfs(adata, "cell_type")  # doctest: +SKIP
    >>> sfp.pl.rank_tfs_effects(adata, n_tfs=5)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    from ..tl._rank import top_tfs

    adata = get_adata(data, mod)
    if key not in adata.uns or "effect" not in adata.uns[key]:
        raise KeyError(
            f"uns[{key!r}] with effects missing: run sfp.tl.rank_tfs(..., key_added={key!r}) first"
        )
    st = top_tfs(adata, n=n_tfs, key=key, stats=True)
    groups = list(dict.fromkeys(st["group"]))
    ncols = max(1, min(ncols, len(groups)))
    nrows = int(np.ceil(len(groups) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 0.45 * n_tfs * nrows + 1.2), squeeze=False)
    for ax, g in zip(axes.flat, groups):
        sub = st[st["group"] == g].iloc[::-1]
        ax.barh(sub["tf"], sub["effect"], color=np.where(sub["qval"] < 0.05, "tab:red", "lightgrey"))
        for y, (eff, q) in enumerate(zip(sub["effect"], sub["qval"])):
            ax.text(eff, y, f" q={q:.1g} {_stars(q)}", va="center", fontsize=7)
        ax.axvline(0, color="k", lw=0.5)
        ax.set_title(str(g))
        ax.set_xlabel("effect (activity)")
    for ax in list(axes.flat)[len(groups) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return _save_show_or_return(fig, axes, show, save)
