"""Impute target genes from landmark genes with a trained D-GEX (or baseline) model."""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scfanpy._utils import get_adata, log_added, uns_params

__all__ = ["impute_from_landmarks"]


def impute_from_landmarks(
    data: Any,
    model: Any,
    *,
    layer: str | None = None,
    key_added: str = "imputed",
    genes: Sequence[str] | None = None,
    inplace: bool | None = None,
    batch_size: int = 4096,
    mod: str | None = None,
    copy: bool = False,
) -> ad.AnnData | None:
    """Predict target genes from the landmark genes measured in ``data``.

    ``model`` is a trained :class:`~scfanpy.models.DGEX`, :class:`~scfanpy.models.LinearLandmarkRegressor`
    or :class:`~scfanpy.models.KNNLandmarkRegressor`; ``data`` must hold all of its landmark genes, in the
    units the model was trained on.

    Where the predictions go, and why. A layer has ``adata``'s shape, so it can only hold genes that are
    already in ``var_names``. Hence:

    * every requested target is in ``var_names`` (e.g. re-predicting measured but noisy genes, or
      validating a panel): the predictions are written **in place** to ``layers[key_added]``, a dense copy
      of the measured ``layer`` / ``X`` with the target columns replaced. Plot with
      ``sc.pl.umap(adata, color=gene, layer=key_added)``.
    * some targets are absent (the usual panel case: imputing genes the panel lacks): a **new AnnData** is
      returned with ``var`` = the model's landmarks followed by the requested targets, ``X`` = measured
      landmarks then predicted targets (dense ``float32``), and ``obs``, ``obsm``, ``obsp`` and ``uns``
      of ``data`` (so embeddings carry over and ``sc.pl.umap(imputed, color=gene)`` works). ``data``
      is not modified.

    ``inplace`` forces one of the two (``True`` raises when a target is missing from ``var_names``).

    Parameters
    ----------
    data
        AnnData, or MuData with ``mod``.
    model
        A trained landmark regressor.
    layer
        Layer holding the landmark expression; ``None`` uses ``X``.
    key_added
        Layer name (in-place mode) and ``uns`` key of the run's parameters.
    genes
        Targets to impute (default: all of the model's targets). The output is dense cells x genes, so
        restrict it for large data.
    inplace
        ``None`` chooses as described above.
    batch_size
        Cells per prediction batch.
    mod
        Modality of a MuData.
    copy
        In-place mode only: work on and return a copy.

    Returns
    -------
    In-place mode: ``None`` (or the copy), having written

    * ``layers[key_added]``: measured expression with predicted target columns (dense ``float32``);
    * ``var[key_added]``: ``True`` for the predicted genes;
    * ``uns[key_added]['params']``: model class, number of landmarks and targets, ``layer``.

    Otherwise a new AnnData with ``var['landmark']`` / ``var['imputed']`` flags and
    ``uns[key_added]['params']``.

    Examples
    --------
    >>> model = sfp.models.DGEX().fit(reference, landmarks=panel_genes)
    >>> imputed = sfp.tl.impute_from_landmarks(panel_adata, model)  # panel lacks the targets
    >>> sc.pl.umap(imputed, color=["CD8A", "MS4A1"])
    """
    adata = get_adata(data, mod)
    if not getattr(model, "is_trained", False):
        raise ValueError("model is not trained; call model.fit() first")
    targets = list(model.targets_) if genes is None else ([genes] if isinstance(genes, str) else list(genes))
    present = adata.var_names.get_indexer(targets) >= 0
    if inplace is None:
        inplace = bool(present.all())
    if inplace and not present.all():
        missing = [g for g, p in zip(targets, present) if not p]
        raise KeyError(
            f"inplace=True but {len(missing)} target gene(s) are not in var_names (a layer cannot hold "
            f"them): {', '.join(missing[:10])}; use inplace=False to get a new AnnData"
        )
    pred = model.predict(adata, layer=layer, genes=targets, batch_size=batch_size)
    params = {
        "model": type(model).__name__,
        "n_landmarks": len(model.landmarks_),
        "n_targets": len(targets),
        "layer": layer,
        "mode": "layer" if inplace else "new_anndata",
    }

    if inplace:
        if copy:
            adata = adata.copy()
        base = adata.X if layer is None else adata.layers[layer]
        out = base.toarray() if sp.issparse(base) else np.array(base)
        out = out.astype(np.float32, copy=False)
        out[:, adata.var_names.get_indexer(targets)] = pred
        adata.layers[key_added] = out
        log_added("layers", key_added, f"{len(targets)} predicted genes")
        flag = np.zeros(adata.n_vars, dtype=bool)
        flag[adata.var_names.get_indexer(targets)] = True
        adata.var[key_added] = flag
        log_added("var", key_added)
        uns_params(adata, key_added, params)
        return adata if copy else None

    lm = list(model.landmarks_)
    lm_idx = adata.var_names.get_indexer(lm)
    base = adata.X if layer is None else adata.layers[layer]
    measured = base[:, lm_idx]
    measured = measured.toarray() if sp.issparse(measured) else np.asarray(measured)
    X = np.hstack([measured.astype(np.float32, copy=False), pred])
    var = pd.DataFrame(
        {
            "landmark": [True] * len(lm) + [False] * len(targets),
            "imputed": [False] * len(lm) + [True] * len(targets),
        },
        index=pd.Index(lm + targets, name=adata.var_names.name),
    )
    new = ad.AnnData(
        X=X,
        obs=adata.obs.copy(),
        var=var,
        obsm={k: v.copy() for k, v in adata.obsm.items()},
        obsp={k: v.copy() for k, v in adata.obsp.items()},
        uns=deepcopy(dict(adata.uns)),
    )
    uns_params(new, key_added, params)
    return new
