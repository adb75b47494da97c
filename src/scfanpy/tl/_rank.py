"""Key TFs per group, and the cells x TFs AnnData for scanpy chaining."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _logging as logg
from .._constants import ACTIVITY_IN_X, TF_ACTIVITY
from .._docs import doc_params
from .._utils import get_adata, log_added

if TYPE_CHECKING:  # pragma: no cover
    from mudata import MuData

__all__ = ["rank_tfs", "tf_activity_adata", "top_tfs"]


def _is_activity_adata(adata: AnnData, key: str) -> bool:
    """Whether the activity is ``X`` (a cells x TFs AnnData, flagged) rather than ``obsm[key]``.

    Raises when neither holds: peaks in ``X`` are never read as TFs.
    """
    if key in adata.obsm:
        return False
    if adata.uns.get(ACTIVITY_IN_X, False):
        return True
    raise KeyError(
        f"no TF activity here: obsm[{key!r}] not found and X is not a cells x TFs activity. Run "
        "sfp.tl.predict_tf_binding(adata, genome=...) first (or pass key= the obsm key you used); a cells x TFs "
        f"AnnData of your own can be flagged with adata.uns[{ACTIVITY_IN_X!r}] = True."
    )


def _to_archetypes(adata: AnnData, key: str, X: np.ndarray, var: pd.DataFrame):
    """Activity of each archetype (its most variable member), and the archetypes' ``var``."""
    from ._correction import archetype_activity

    mapping = adata.uns.get(key, {}).get("archetypes") if not _is_activity_adata(adata, key) else None
    if not mapping:
        raise KeyError(
            f"uns[{key!r}]['archetypes'] not found: score with sfp.tl.predict_tf_binding (correct_bias=True)"
        )
    arch = pd.Series([mapping.get(t, t) for t in var.index], index=var.index)
    A, rep = archetype_activity(X, arch)
    members = arch.groupby(arch.to_numpy()).apply(lambda s: ", ".join(s.index))
    var = pd.DataFrame(
        {"tfs": members.reindex(A.columns).to_numpy(), "representative": rep.reindex(A.columns).to_numpy()},
        index=pd.Index(A.columns.astype(str)),
    )
    return A.to_numpy(np.float32), var


@doc_params()
def tf_activity_adata(
    data: AnnData | MuData,
    *,
    key: str = TF_ACTIVITY,
    scale: bool = False,
    max_value: float | None = 10.0,
    mod: str | None = None,
    obsm_keys: list[str] | None = None,
    level: Literal["tf", "archetype"] = "tf",
) -> AnnData:
    """A cells x TFs AnnData of the TF activity, for scanpy (``sc.pp.neighbors``, ``sc.tl.leiden``, ``sc.tl.umap``).

    Parameters
    ----------
    data
        AnnData / MuData scored by :func:`~scfanpy.tl.predict_tf_binding` (activity in ``obsm[key]``), or
        an AnnData that already is cells x TFs (the activity is ``X``; e.g.
        :func:`scfanpy.datasets.scfan_tf_activity`).
    key
        ``obsm`` key of the activity.
    scale
        Z-score each TF over cells (``X`` scaled, the raw activity kept in ``layers['activity']``). Helps
        clustering when TFs differ in spread, as with scFAN's vote score.
    max_value
        Clip of the z-scores (``scale=True``).
    {mod}
    obsm_keys
        ``obsm`` entries copied along (default: all 2-D arrays except the activity, e.g. ``X_lsi``,
        ``X_umap``).
    level
        ``'tf'``: one column per TF; ``'archetype'``: one per motif archetype
        (``uns[key]['archetypes']`` from :func:`predict_tf_binding`): the activity of its most variable
        member (NaN read as 0; the members' mean would let flat members dilute a responding one), with ``var['tfs']`` listing the members and ``var['representative']`` the one
        standing for the archetype.

    Returns
    -------
    tfa : :class:`anndata.AnnData`
        Cells x TFs: ``X`` float32 (z-scores with ``scale``), ``obs`` copied, ``var`` indexed by TF,
        ``layers['activity']`` (the raw activity), the chosen ``obsm`` entries and the ``uns`` colours.

    Examples
    --------
    >>> import scanpy as sc
    >>> tfa = sfp.tl.tf_activity_adata(adata, scale=True)  # doctest: +SKIP
    >>> sc.pp.neighbors(tfa, use_rep="X")  # doctest: +SKIP
    >>> sc.tl.leiden(tfa)  # doctest: +SKIP
    """
    adata = get_adata(data, mod)
    if _is_activity_adata(adata, key):
        X = np.asarray(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X, dtype=np.float32)
        var = pd.DataFrame(index=adata.var_names.copy())
    else:
        A = adata.obsm[key]
        if isinstance(A, pd.DataFrame):
            X = A.to_numpy(np.float32)
            var = pd.DataFrame(index=pd.Index(A.columns.astype(str)))
        else:
            X = np.asarray(A, dtype=np.float32)
            names = adata.uns.get(key, {}).get("tf_names", [f"TF{i}" for i in range(X.shape[1])])
            var = pd.DataFrame(index=pd.Index(list(names)))
    if level == "archetype":
        X, var = _to_archetypes(adata, key, X, var)
    elif level != "tf":
        raise ValueError(f"level must be 'tf' or 'archetype', got {level!r}")
    out = AnnData(X=X.copy(), obs=adata.obs.copy(), var=var)
    out.layers["activity"] = X.copy()
    out.uns[ACTIVITY_IN_X] = True
    keep = obsm_keys
    if keep is None:
        keep = [
            k
            for k, v in adata.obsm.items()
            if k != key and not isinstance(v, pd.DataFrame) and np.ndim(v) == 2
        ]
    for k in keep:
        out.obsm[k] = np.asarray(adata.obsm[k])
    for k, v in adata.uns.items():
        if k.endswith("_colors"):
            out.uns[k] = v
    if scale:
        mu = X.mean(0)
        sd = X.std(0)
        sd[sd == 0] = 1
        Z = (X - mu) / sd
        if max_value is not None:
            Z = np.clip(Z, -max_value, max_value)
        out.X = Z.astype(np.float32)
    return out


@doc_params()
def rank_tfs(
    data: AnnData | MuData,
    groupby: str,
    *,
    key: str = TF_ACTIVITY,
    method: Literal["wilcoxon", "t-test", "t-test_overestim_var", "logreg"] = "wilcoxon",
    groups: str | list[str] = "all",
    reference: str = "rest",
    level: Literal["tf", "archetype"] = "tf",
    mod: str | None = None,
    key_added: str = "rank_tfs",
    copy: bool = False,
    **kwargs: Any,
) -> AnnData | MuData | None:
    """Key TFs of each group: scanpy's :func:`~scanpy.tl.rank_genes_groups` on the TF activity.

    Parameters
    ----------
    data
        AnnData / MuData with ``obsm[key]`` from :func:`~scfanpy.tl.predict_tf_binding`, or a cells x TFs
        AnnData (activity in ``X``, e.g. :func:`scfanpy.datasets.scfan_tf_activity`).
    groupby
        ``obs`` column with the groups (cell types, Leiden clusters).
    key
        ``obsm`` key of the activity.
    method
        ``'wilcoxon'``, ``'t-test'``, ``'t-test_overestim_var'`` or ``'logreg'`` (scanpy's).
    groups, reference
        As in scanpy.
    level
        Rank TFs (``'tf'``) or motif archetypes (``'archetype'``, see :func:`tf_activity_adata`), so a
        family of near-identical motifs counts once.
    {mod}
    key_added
        ``uns`` key of the result.
    {copy}
    **kwargs
        Passed to :func:`scanpy.tl.rank_genes_groups`.

    Returns
    -------
    None or AnnData or MuData
        A copy of ``data`` when ``copy=True``; otherwise ``data`` is changed in place. These fields are
        written (``adata`` is the modality ``mod`` of a MuData):
    adata.uns['rank_tfs'] : dict
        scanpy's ranking structure (``names``, ``scores``, ``pvals``, ``pvals_adj``: Benjamini-Hochberg
        q-values by default, ``logfoldchanges``; key ``key_added``) plus ``effect``: the mean activity
        in the group minus in the reference, in activity units (z-score units for the corrected
        default). Read it with :func:`top_tfs` (``stats=True`` for effect, p and q) or
        ``sc.get.rank_genes_groups_df(adata, group, key=key_added)``; ``logfoldchanges`` are not
        meaningful for activities that can be negative.
    adata.uns['rank_tfs']['params'] : dict
        scanpy's parameters plus ``activity_key`` (``key``) and ``level``.

    Examples
    --------
    >>> tfa = sfp.datasets.scfan_tf_activity("buenrostro2018", "K562")  # doctest: +SKIP
    >>> sfp.tl.rank_tfs(tfa, "cell_type")  # doctest: +SKIP
    >>> sfp.tl.top_tfs(tfa, n=3).loc["MEP"]  # doctest: +SKIP
    """
    import scanpy as sc

    if copy:
        data = data.copy()
    adata = get_adata(data, mod)
    if groupby not in adata.obs:
        raise KeyError(f"obs[{groupby!r}] not found")
    tfa = tf_activity_adata(adata, key=key, obsm_keys=[], level=level)
    if not isinstance(tfa.obs[groupby].dtype, pd.CategoricalDtype):
        tfa.obs[groupby] = tfa.obs[groupby].astype(str).astype("category")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.rank_genes_groups(
            tfa,
            groupby,
            method=method,
            groups=groups,
            reference=reference,
            key_added=key_added,
            use_raw=False,
            **kwargs,
        )
    result = tfa.uns[key_added]
    result["effect"] = _effects(tfa, groupby, result["names"], reference)
    result["params"]["activity_key"] = key
    result["params"]["level"] = level
    adata.uns[key_added] = result
    logg.info("ranked %d TFs in %d groups of obs[%r]", tfa.n_vars, tfa.obs[groupby].nunique(), groupby)
    log_added("uns", key_added, "scanpy rank_genes_groups on TF activity")
    return data if copy else None


def _effects(tfa: AnnData, groupby: str, names: np.ndarray, reference: str) -> np.ndarray:
    """Mean activity in each group minus in the reference (``'rest'``: all other cells).

    Aligned with scanpy's ``names`` record array (same fields and order).
    """
    X = np.asarray(tfa.X, dtype=np.float64)
    lab = tfa.obs[groupby].astype(str).to_numpy()
    col = {v: i for i, v in enumerate(tfa.var_names)}
    out = {}
    for g in names.dtype.names:
        m = lab == g
        ref = ~m if reference == "rest" else lab == reference
        diff = np.nanmean(X[m], 0) - np.nanmean(X[ref], 0)
        out[g] = np.array([diff[col[t]] for t in names[g]], dtype=np.float32)
    return np.rec.fromarrays(list(out.values()), names=list(out))


@doc_params()
def top_tfs(
    data: AnnData | MuData, *, n: int = 5, key: str = "rank_tfs", stats: bool = False, mod: str | None = None
) -> pd.DataFrame:
    """The ``n`` top-ranked TFs of each group after :func:`rank_tfs`.

    Parameters
    ----------
    data
        AnnData / MuData ranked by :func:`rank_tfs`.
    n
        TFs per group.
    key
        The ``key_added`` of :func:`rank_tfs`.
    stats
        Return one row per (group, rank) with the statistics instead of the names only.
    {mod}

    Returns
    -------
    top : :class:`pandas.DataFrame`
        Groups x rank (1 to ``n``), the TF names; with ``stats``: columns ``group``, ``rank``, ``tf``,
        ``effect`` (activity units), ``score``, ``pval`` and ``qval`` (Benjamini-Hochberg).

    Examples
    --------
    >>> sfp.tl.top_tfs(adata, n=3)  # doctest: +SKIP
    """
    adata = get_adata(data, mod)
    res = adata.uns[key]
    names = res["names"]
    groups = list(names.dtype.names)
    if stats:
        k = min(n, len(names))
        rows = [
            {
                "group": g,
                "rank": i + 1,
                "tf": names[g][i],
                "effect": float(res["effect"][g][i]) if "effect" in res else np.nan,
                "score": float(res["scores"][g][i]),
                "pval": float(res["pvals"][g][i]) if "pvals" in res else np.nan,
                "qval": float(res["pvals_adj"][g][i]) if "pvals_adj" in res else np.nan,
            }
            for g in groups
            for i in range(k)
        ]
        return pd.DataFrame(rows)
    return pd.DataFrame(
        {g: [names[g][i] for i in range(min(n, len(names)))] for g in groups},
        index=pd.RangeIndex(1, min(n, len(names)) + 1, name="rank"),
    ).T
