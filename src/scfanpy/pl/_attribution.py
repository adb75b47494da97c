"""Plots of model interpretation: attribution tracks as logos with their JASPAR match; variant effects.

Only drawing: the attributions come from :func:`scfanpy.tl.attribution`, the effects from
:func:`scfanpy.tl.variant_effects`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._docs import doc_params
from ._models import _save_show_or_return

__all__ = ["attribution_logo", "variant_effects"]


def _candidate_motifs(motifs: Any) -> dict[str, np.ndarray]:
    """``motifs`` as ``{name: (L, 4)}``: a dict, a list of JASPAR names, or None (all of JASPAR)."""
    if isinstance(motifs, Mapping):
        return {str(k): np.asarray(v, dtype=np.float64) for k, v in motifs.items()}
    from ..datasets import jaspar_motifs

    got = jaspar_motifs(None if motifs is None else list(motifs))
    return {str(k): np.asarray(v, dtype=np.float64) for k, v in got.items()}


@doc_params()
def attribution_logo(
    result: Any,
    index: int | str = 0,
    tf: str | int = 0,
    *,
    start: int | None = None,
    end: int | None = None,
    motifs: Mapping[str, Any] | Sequence[str] | None = None,
    match: bool = True,
    key: str = "attribution",
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: str | None = None,
):
    """One sequence's attribution track as a logo, with the best-matching JASPAR motif drawn below it.

    The top panel draws each reference base with the height of its contribution
    (``Attribution.contributions``: above the axis where it raises the TF's log-odds, below where it
    lowers it). The bottom panel draws the JASPAR motif that matches the track best (offset- and
    strand-aware correlation, ``align_motif`` in ``scfanpy.tl._model_motifs``) as an information logo at
    the matched position, reverse-complemented when it matched the minus strand.

    Parameters
    ----------
    result
        The :class:`~scfanpy.tl.Attribution` of :func:`scfanpy.tl.attribution`, or an AnnData holding it
        in ``uns[key]``.
    index
        Which sequence: a position or a name (peak name, region).
    tf
        Which TF of the attribution (name or position).
    start, end
        Positions (0-based, half-open, in the track) to draw; default the whole track.
    motifs
        Candidates for the match: ``{name: (L, 4) probabilities}``, a list of JASPAR names, or None (all
        of JASPAR CORE vertebrates).
    match
        Draw the matching motif (False: the track alone).
    key
        ``uns`` key of an AnnData's attribution.
    figsize
        Figure size (default scales with the drawn width).
    {show_save}

    Returns
    -------
    axes : numpy.ndarray of matplotlib.axes.Axes or None
        ``[track, motif]`` (or ``[track]`` with ``match=False``) when the figure is not shown; the motif
        panel's title reads ``<motif> (<score>, <strand>)``.

    Examples
    --------
    >>> res = sfp.tl.attribution(sfp.models.MotifModel(["GATA1"]), seqs)  # doctest: +SKIP
    >>> sfp.pl.attribution_logo(res, 0, "GATA1")  # doctest: +SKIP
    """
    import logomaker
    import matplotlib.pyplot as plt

    from ..tl._model_motifs import _as_attribution, align_motif

    res = _as_attribution(result, key)
    i = res.names.index(str(index)) if isinstance(index, str) else int(index)
    j = res.tf_index(tf)
    width = res.codes.shape[1]
    lo, hi = max(0, start or 0), min(width, width if end is None else end)
    contrib = res.contributions[i, j, lo:hi]
    n_panels = 2 if match else 1
    if figsize is None:
        figsize = (min(max(4.0, 0.12 * (hi - lo)), 20.0), 1.8 * n_panels)
    fig, axes = plt.subplots(n_panels, 1, figsize=figsize, sharex=True, squeeze=False)
    axes = axes[:, 0]
    df = pd.DataFrame(contrib, columns=list("ACGT"), index=np.arange(lo, hi))
    logomaker.Logo(df, ax=axes[0], color_scheme="classic")
    axes[0].axhline(0, color="0.6", lw=0.5)
    axes[0].set_ylabel("contribution")
    axes[0].set_title(f"{res.names[i]}: {res.tfs[j]} ({res.method})", fontsize=9)
    if match:
        cands = _candidate_motifs(motifs)
        name, score, offset, strand = align_motif(res.values[i, j, lo:hi], cands)
        ax = axes[1]
        if name:
            p = cands[name] if strand == "+" else cands[name][::-1, ::-1]
            m = pd.DataFrame(p, columns=list("ACGT"), index=np.arange(lo + offset, lo + offset + len(p)))
            info = logomaker.transform_matrix(m, from_type="probability", to_type="information")
            logomaker.Logo(info, ax=ax, color_scheme="classic")
            ax.set_title(f"{name} ({score:.2f}, {strand})", fontsize=9)
        else:
            ax.set_title("no attribution to match", fontsize=9)
        ax.set_ylim(0, 2)
        ax.set_ylabel("bits")
        ax.set_xlim(lo - 0.5, hi - 0.5)
    axes[-1].set_xlabel("position")
    fig.tight_layout()
    return _save_show_or_return(fig, axes, show, save)


@doc_params()
def variant_effects(
    effects: pd.DataFrame,
    n: int = 20,
    *,
    value: str | None = None,
    group: str | None = None,
    ax: Any = None,
    show: bool | None = None,
    save: str | None = None,
):
    """The variants with the largest effects on TF binding: one dot per (variant, TF) and group.

    Parameters
    ----------
    effects
        The table of :func:`scfanpy.tl.variant_effects`.
    n
        How many (variant, TF) pairs to show, the largest ``|value|`` first.
    value
        Column to rank and place on the x axis: default ``'weighted_effect'`` when the table has groups,
        else ``'delta_logodds'``.
    group
        Show only this group (default: every group, coloured).
    ax
        Axes to draw in (default a new figure).
    {show_save}

    Returns
    -------
    ax : matplotlib.axes.Axes or None
        The axes when the figure is not shown; rows are labelled ``variant TF``, the dots' x is
        ``value``; a vertical line marks 0.

    Examples
    --------
    >>> df = sfp.tl.variant_effects(vcf, model, genome, adata=adata, groupby="cell_type")  # doctest: +SKIP
    >>> sfp.pl.variant_effects(df, n=15)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    has_groups = "group" in effects.columns
    value = value or ("weighted_effect" if has_groups else "delta_logodds")
    if value not in effects.columns:
        raise KeyError(f"column {value!r} not in the table (has {list(effects.columns)})")
    df = effects if group is None or not has_groups else effects[effects["group"] == group]
    df = df.assign(label=df["variant"].astype(str) + " " + df["tf"].astype(str))
    top = df.groupby("label", sort=False)[value].apply(lambda v: np.nanmax(np.abs(v.to_numpy())))
    labels = list(top.sort_values(ascending=False).index[:n])[::-1]
    ypos = {lab: k for k, lab in enumerate(labels)}
    df = df[df["label"].isin(labels)]
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 0.3 * len(labels) + 1.2))
    if has_groups:
        for g, part in df.groupby("group", observed=True, sort=False):
            ax.scatter(part[value], part["label"].map(ypos), s=30, label=str(g))
        ax.legend(title="group", fontsize=7, title_fontsize=8, loc="best", frameon=False)
    else:
        colors = np.where(df[value] < 0, "tab:blue", "tab:red")
        ax.scatter(df[value], df["label"].map(ypos), s=30, c=colors)
    ax.axvline(0, color="0.5", lw=0.8)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel(value)
    ax.set_title("variant effects on TF binding", fontsize=9)
    ax.figure.tight_layout()
    return _save_show_or_return(ax.figure, ax, show, save)
