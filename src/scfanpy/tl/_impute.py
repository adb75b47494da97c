"""Impute target genes from landmark genes with a trained D-GEX (or baseline) model."""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy
from typing import TYPE_CHECKING, Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._docs import doc_params
from .._utils import get_adata, log_added, uns_params

if TYPE_CHECKING:
    from mudata import MuData

__all__ = ["impute_from_landmarks"]

_DATA = """\
data
    AnnData (cells x genes), or MuData with ``mod``."""


@doc_params(data=_DATA)
def impute_from_landmarks(
    data: ad.AnnData | MuData,
    model: Any,
    *,
    layer: str | None = None,
    genes: Sequence[str] | None = None,
    key_added: str = "imputed",
    batch_size: int = 4096,
    mod: str | None = None,
    copy: bool = False,
) -> ad.AnnData | MuData | None:
    """Predict target genes from the landmark genes measured in ``data``.

    ``model`` is a trained :class:`~scfanpy.models.DGEX`, :class:`~scfanpy.models.LinearLandmarkRegressor`
    or :class:`~scfanpy.models.KNNLandmarkRegressor`; ``data`` must hold all of its landmark genes, in the
    units the model was trained on.

    Where the predictions go, and why. A layer has the data's shape, so it can only hold genes that are
    already in ``var_names``. Hence:

    * every requested target is in ``var_names`` (e.g. re-predicting measured but noisy genes, or
      validating a panel): the predictions are written to ``layers[key_added]``, a dense copy of the
      measured ``layer`` / ``X`` with the target columns replaced (layer mode). Plot with
      ``sc.pl.umap(adata, color=gene, layer=key_added)``.
    * some targets are absent (the usual panel case: imputing genes the panel lacks): a **new AnnData**
      is returned and ``data`` is not modified (panel mode). Its ``obsm`` embeddings carry over, so
      ``sc.pl.umap(imputed, color=gene)`` works. To get this AnnData when all targets are measured, pass
      the landmarks only: ``data[:, model.landmarks_]``.

    Parameters
    ----------
    {data}
    model
        A trained landmark regressor.
    {layer}
    genes
        Targets to impute (default: all of the model's targets). The output is dense cells x genes, so
        restrict it for large data.
    key_added
        Layer and ``var`` column (layer mode) and ``uns`` key of the run's parameters.
    {batch_size}
    {mod}
    {copy}
        In panel mode ``data`` is never modified and the new AnnData is returned either way.

    Returns
    -------
    None, AnnData or MuData
        Layer mode: None, or the copy of ``data`` when ``copy=True``; these fields are written (the
        names shown are for ``key_added='imputed'``):
    adata.layers['imputed'] : :class:`numpy.ndarray`
        Cells x genes, dense ``float32``: the measured ``layer`` / ``X`` with the target columns
        replaced by the predictions.
    adata.var['imputed'] : bool
        True for the predicted genes.
    adata.uns['imputed']['params'] : dict
        Model class, numbers of landmarks and targets, ``layer``, ``mode='layer'``.
    imputed : :class:`anndata.AnnData`
        Panel mode, returned instead: ``var`` = the model's landmarks then the requested targets,
        ``X`` = measured landmarks then predicted targets (dense ``float32``); ``obs``, ``obsm``,
        ``obsp`` and ``uns`` copied from ``data`` (without scvi-tools' ``_scvi_*`` registration keys);
        and these fields:
    imputed.var['landmark'] : bool
        True for the measured landmarks.
    imputed.var['imputed'] : bool
        True for the predicted targets.
    imputed.uns['imputed']['params'] : dict
        As in layer mode, with ``mode='new_anndata'``.

    Examples
    --------
    >>> sfp.models.DGEX.setup_anndata(reference, landmarks=panel_genes)
    >>> model = sfp.models.DGEX(reference)
    >>> model.train()
    >>> imputed = sfp.tl.impute_from_landmarks(panel_adata, model)  # panel lacks the targets
    >>> sc.pl.umap(imputed, color=["CD8A", "MS4A1"])
    """
    adata = get_adata(data, mod)
    targets = _check_inputs(adata, model, layer, genes)
    layer_mode = bool((adata.var_names.get_indexer(targets) >= 0).all())
    pred = model.predict(adata, layer=layer, genes=targets, batch_size=batch_size)
    params = {
        "model": type(model).__name__,
        "n_landmarks": len(model.landmarks_),
        "n_targets": len(targets),
        "layer": layer,
        "mode": "layer" if layer_mode else "new_anndata",
    }
    if not layer_mode:
        return _panel_anndata(adata, list(model.landmarks_), targets, pred, layer, key_added, params)
    if copy:
        data = data.copy()
        adata = get_adata(data, mod)
    _write_layer(adata, targets, pred, layer, key_added, params)
    return data if copy else None


def _check_inputs(
    adata: ad.AnnData, model: Any, layer: str | None, genes: Sequence[str] | str | None
) -> list[str]:
    """Validate the model and the layer; the requested targets."""
    if not getattr(model, "is_trained", False):
        raise ValueError("model is not trained; call model.train() first")
    if layer is not None and layer not in adata.layers:
        raise KeyError(f"layer {layer!r} not in adata.layers (has {list(adata.layers)})")
    if genes is None:
        return list(model.targets_)
    return [genes] if isinstance(genes, str) else list(genes)


def _dense(m) -> np.ndarray:
    """A new dense float32 array holding ``m``."""
    return m.toarray().astype(np.float32, copy=False) if sp.issparse(m) else np.array(m, dtype=np.float32)


def _measured(adata: ad.AnnData, layer: str | None):
    return adata.X if layer is None else adata.layers[layer]


def _write_layer(
    adata: ad.AnnData, targets: list[str], pred: np.ndarray, layer: str | None, key_added: str, params: dict
) -> None:
    """Layer mode: the measured matrix with the target columns replaced, a ``var`` flag, the parameters."""
    idx = adata.var_names.get_indexer(targets)
    out = _dense(_measured(adata, layer))
    out[:, idx] = pred
    adata.layers[key_added] = out
    log_added("layers", key_added, f"{len(targets)} predicted genes")
    flag = np.zeros(adata.n_vars, dtype=bool)
    flag[idx] = True
    adata.var[key_added] = flag
    log_added("var", key_added)
    uns_params(adata, key_added, params)


def _panel_anndata(
    adata: ad.AnnData,
    landmarks: list[str],
    targets: list[str],
    pred: np.ndarray,
    layer: str | None,
    key_added: str,
    params: dict,
) -> ad.AnnData:
    """Panel mode: a new AnnData of measured landmarks then predicted targets, with ``data``'s cell fields."""
    measured = _dense(_measured(adata, layer)[:, adata.var_names.get_indexer(landmarks)])
    var = pd.DataFrame(
        {
            "landmark": [True] * len(landmarks) + [False] * len(targets),
            "imputed": [False] * len(landmarks) + [True] * len(targets),
        },
        index=pd.Index(landmarks + targets, name=adata.var_names.name),
    )
    new = ad.AnnData(
        X=np.hstack([measured, pred]),
        obs=adata.obs.copy(),
        var=var,
        obsm={k: v.copy() for k, v in adata.obsm.items()},
        obsp={k: v.copy() for k, v in adata.obsp.items()},
        # scvi-tools' registration keys stay with the registered data
        uns=deepcopy({k: v for k, v in adata.uns.items() if not k.startswith("_scvi")}),
    )
    uns_params(new, key_added, params)
    return new
