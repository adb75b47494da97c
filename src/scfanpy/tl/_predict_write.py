"""Writing the results of :func:`scfanpy.tl.predict_tf_binding` into the AnnData / MuData (see its Returns)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._constants import DNA_CODE, SMOOTHED, TF_ACTIVITY
from .._utils import h5_safe_columns, is_mudata, log_added, uns_params
from ._predict_model import model_name as _model_name

if TYPE_CHECKING:
    from mudata import MuData

    from ._predict import _Inputs, _Scores

__all__ = ["counts_layer", "write_results"]


def counts_layer(layer: str) -> str:
    """The counts the corrected activity is formed on: ``X`` when the binding was scored on the smoothed layer.

    chromVAR's deviation is a per-cell statistic of the cell's own reads; k-NN pooling first mixes the
    cells whose neighbours were found on a technically biased embedding (on the GC-bias simulator the
    z-scores' ARI fell from 0.84 on the counts to 0.61 on the smoothed layer).
    """
    return "X" if layer == SMOOTHED else layer


def write_results(
    data: AnnData | MuData,
    inp: _Inputs,
    res: _Scores,
    method: str,
    key_added: str,
    binding_key: str,
    *,
    store_levels: bool,
    random_state: Any = 0,
    background: str = "sampled",
) -> None:
    """Write every field of :func:`predict_tf_binding` (see its Returns) and log each one."""
    adata, tf_names, mdl = inp.adata, inp.tf_names, inp.model
    act, table, levels = res.act, res.table, res.levels
    if not inp.had_codes and DNA_CODE in adata.varm:
        log_added("varm", DNA_CODE)
    adata.varm[binding_key] = pd.DataFrame(res.binding, index=adata.var_names, columns=tf_names)
    log_added("varm", binding_key, f"peaks x {len(tf_names)} TFs, binding probability")
    lev_key = f"{binding_key}_levels"
    if table is not None and table.shape[1] > 1 and store_levels and table.size * 2 <= 2**30:
        adata.varm[lev_key] = table.astype(np.float16)
        log_added("varm", lev_key, f"(peaks, {table.shape[1]} levels, TFs) float16")
    elif lev_key in adata.varm:
        del adata.varm[lev_key]
    empty = res.empty
    if res.act is not None:
        res.act[empty] = np.nan
    adata.obs[f"{key_added}_empty"] = empty
    log_added("obs", f"{key_added}_empty", f"{int(empty.sum())} cells without counts (activity NaN)")
    if res.correction is not None:
        act = _write_correction(adata, inp, res, key_added)
    else:
        adata.obsm[key_added] = pd.DataFrame(act, index=adata.obs_names, columns=tf_names)
        log_added("obsm", key_added, f"cells x {len(tf_names)} TFs, method {method!r}, uncorrected")
    params = {
        "model": _model_name(mdl),
        "model_kind": "sequence-only" if inp.n_tracks == 0 else "accessibility-track",
        "method": method,
        "layer": inp.layer,
        "n_levels": "exact" if res.exact else (0 if levels is None else len(levels)),
        "window": int(inp.codes.shape[1]),
        "binding_key": binding_key,
        "correct_bias": res.correction is not None,
        "n_background": 0 if res.correction is None else int(res.correction.background.shape[1]),
        "background": "" if res.correction is None else background,
        "random_state": random_state if isinstance(random_state, (int, np.integer)) else str(random_state),
        "smoothed_here": inp.smoothed_here,
        "counts_layer": counts_layer(inp.layer) if res.correction is not None else "",
        "precision": inp.precision,
        "x_tf_neighbors": int(res.x_tf_neighbors),
    }
    uns_params(adata, key_added, params)
    info = adata.uns[key_added]
    info["tf_names"] = list(tf_names)
    info["model"] = {
        "name": _model_name(mdl),
        "class": type(mdl).__name__,
        "n_tfs": len(mdl.tf_names),
        "repr": repr(mdl)[:200],
    }
    if isinstance(getattr(mdl, "choice", None), dict):  # a CombinedModel: which sub-model scored each TF
        info["model"]["choice"] = {t: str(mdl.choice[t]) for t in tf_names}
    info["levels"] = np.zeros(0, np.float32) if levels is None else levels
    info["background"] = res.background.astype(np.float32)
    if res.archetype is not None:
        info["archetypes"] = {str(k): str(v) for k, v in res.archetype.items()}
    if res.x_tf_tfs is not None:
        info["x_tf_tfs"] = list(res.x_tf_tfs)
    log_added("uns", key_added, "tf_names, model, levels, background, archetypes, x_tf_tfs")
    if is_mudata(data):
        tf_mod = "tf" if key_added == TF_ACTIVITY else key_added
        data.mod[tf_mod] = AnnData(
            X=act.copy(),
            obs=pd.DataFrame(index=adata.obs_names.copy()),
            var=pd.DataFrame(index=pd.Index(tf_names)),
        )
        data.update()
        h5_safe_columns(data.var)
        h5_safe_columns(data.obs)
        log_added("mod", tf_mod, "cells x TFs activity")


def _write_correction(adata: AnnData, inp: _Inputs, res: _Scores, key_added: str) -> np.ndarray:
    """Write the bias-corrected fields (see Returns of :func:`predict_tf_binding`); return the activity."""
    c, tfs, cells = res.correction, inp.tf_names, adata.obs_names
    adata.obsm[key_added] = pd.DataFrame(c.z, index=cells, columns=tfs)
    log_added("obsm", key_added, f"cells x {len(tfs)} TFs, bias-corrected z-score")
    for key, values, what in (
        (f"{key_added}_deviation", c.deviation, "bias-corrected deviation"),
        (f"{key_added}_raw", res.act, "uncorrected score"),
    ):
        if values is not None:
            adata.obsm[key] = pd.DataFrame(values, index=cells, columns=tfs)
            log_added("obsm", key, what)
        elif key in adata.obsm:  # not kept this time (store_raw / store_deviation): no stale result
            del adata.obsm[key]
    adata.var["gc_content"] = c.gc
    adata.var["n_fraction"] = c.n_fraction
    adata.var["usable_sequence"] = c.usable
    log_added("var", "gc_content', 'n_fraction', 'usable_sequence")
    bg_key = f"{key_added}_background_peaks"
    if c.background.shape[1]:
        adata.varm[bg_key] = c.background
        log_added("varm", bg_key, f"{c.background.shape[1]} background peaks per peak")
    elif bg_key in adata.varm:  # background='expected' draws none: no stale draws of an earlier run
        del adata.varm[bg_key]
    adata.obsm["X_tf"] = res.x_tf
    log_added(
        "obsm",
        "X_tf",
        f"{res.x_tf.shape[1]} components, one TF per archetype, pooled over {res.x_tf_neighbors} cells",
    )
    return c.z
