"""Evaluation of a TF-binding sequence model on a region AnnData: per-TF ROC and precision-recall curves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _logging as logg
from .._docs import doc_params
from .._utils import log_added, uns_params

__all__ = ["roc_pr"]


def _tf_curves(y: np.ndarray, p: np.ndarray) -> dict[str, Any] | None:
    """ROC and PR curves and their areas for labels ``y`` (bool ``(n,)``) and scores ``p`` (``(n,)``).

    Returns None when ``y`` has one class only; otherwise ``fpr``, ``tpr``, ``precision``, ``recall``
    (arrays, as :func:`sklearn.metrics.roc_curve` / :func:`~sklearn.metrics.precision_recall_curve`),
    ``auroc`` and ``auprc`` (:func:`~sklearn.metrics.average_precision_score`).
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    if y.all() or not y.any():
        return None
    fpr, tpr, _ = roc_curve(y, p)
    prec, rec, _ = precision_recall_curve(y, p)
    return {
        "fpr": fpr,
        "tpr": tpr,
        "precision": prec,
        "recall": rec,
        "auroc": float(roc_auc_score(y, p)),
        "auprc": float(average_precision_score(y, p)),
    }


def _curves(labels: np.ndarray, pred: np.ndarray, names: Sequence[str]) -> tuple[pd.DataFrame, dict]:
    """Per-TF metrics table and curves over the observed (finite) labels of each TF."""
    rows, curves = [], {}
    for j, tf in enumerate(names):
        obs = np.isfinite(labels[:, j])
        y, p = labels[obs, j] > 0.5, pred[obs, j]
        res = _tf_curves(y, p)
        rows.append(
            {
                "auroc": np.nan if res is None else res["auroc"],
                "auprc": np.nan if res is None else res["auprc"],
                "n_pos": int(y.sum()),
                "n": int(obs.sum()),
            }
        )
        if res is not None:
            curves[tf] = {k: res[k] for k in ("fpr", "tpr", "precision", "recall")}
    return pd.DataFrame(rows, index=pd.Index(list(names), name="tf")), curves


@doc_params()
def roc_pr(
    model: Any,
    regions: AnnData | None = None,
    *,
    split: str | None = "test",
    tfs: Sequence[str] | None = None,
    batch_size: int = 256,
    key_added: str = "roc_pr",
    copy: bool = False,
) -> AnnData | None:
    """ROC and precision-recall curves per TF of a sequence model on one split of a region AnnData.

    The model predicts the regions of ``split`` (as :meth:`~scfanpy.models.SCFAN.evaluate` does) and each
    TF's curves and areas are computed over its observed labels; :func:`scfanpy.pl.roc_pr_curves` draws
    them.

    Parameters
    ----------
    model
        A trained sequence model (``DANQ``, ``FACTORNET``, ``SCFAN``).
    regions
        Region AnnData with labels, set up for the model (default: the model's own data, with the split
        used in training).
    split
        Value of the split column to evaluate (None: all regions).
    tfs
        TFs to evaluate (default: all of the model's).
    {batch_size}
    key_added
        ``uns`` key of the result.
    {copy}

    Returns
    -------
    None or AnnData
        A copy of ``regions`` when ``copy=True``; otherwise ``regions`` is changed in place. These
        fields are written:
    regions.uns['roc_pr']['metrics'] : :class:`pandas.DataFrame`
        Indexed by TF: ``auroc``, ``auprc`` (NaN when a TF has one class only), ``n_pos`` and ``n``
        (observed labels); key ``key_added``. Regions without sequence (empty or all N), which the model
        predicts as NaN, are left out (their number is logged), as in
        :meth:`~scfanpy.models.SCFAN.evaluate`.
    regions.uns['roc_pr']['curves'] : dict
        ``{{tf: {{'fpr', 'tpr', 'precision', 'recall'}}}}`` arrays, for the TFs with both classes.
    regions.uns['roc_pr']['params'] : dict
        ``split``, ``model`` (class name), ``n_regions``, ``n_no_sequence`` (regions left out).

    Examples
    --------
    >>> sfp.tl.roc_pr(model, test_regions, split="test")  # doctest: +SKIP
    >>> test_regions.uns["roc_pr"]["metrics"]  # doctest: +SKIP
    >>> sfp.pl.roc_pr_curves(test_regions)  # doctest: +SKIP
    """
    regions = model.adata if regions is None else regions
    if regions is None:
        raise ValueError("pass regions= (the model has no AnnData)")
    names = list(model.tf_names)
    tfs = names if tfs is None else ([tfs] if isinstance(tfs, str) else list(tfs))
    missing = [t for t in tfs if t not in names]
    if missing:
        raise KeyError(f"TFs not in the model: {missing}")
    _, _, labels = model._arrays(regions, need_labels=True)
    idx = model._split_indices(regions, split)
    start = logg.info("evaluating %s on %d regions (split %r)", type(model).__name__, len(idx), split)
    pred = model.predict(regions, batch_size=batch_size, indices=idx).to_numpy()
    cols = [names.index(t) for t in tfs]
    y, p = labels[idx][:, cols].astype(np.float32), pred[:, cols]
    no_seq = np.isnan(p).any(1)
    if no_seq.any():  # the model gives NaN for a region without sequence (empty or all N): left out
        logg.warning(
            "%d of %d regions have no sequence (empty or all N) and no prediction: left out of the metrics",
            int(no_seq.sum()),
            len(idx),
        )
        y[no_seq], p = np.nan, np.where(no_seq[:, None], 0.0, p)
    metrics, curves = _curves(y, p, tfs)
    logg.info("    finished", time=start)
    if copy:
        regions = regions.copy()
    regions.uns[key_added] = {"metrics": metrics, "curves": curves}
    log_added("uns", key_added, f"metrics and curves of {len(tfs)} TFs")
    uns_params(
        regions,
        key_added,
        {
            "split": split,
            "model": type(model).__name__,
            "n_regions": len(idx),
            "n_no_sequence": int(no_seq.sum()),
        },
    )
    return regions if copy else None
