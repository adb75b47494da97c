"""Per-cell binding probabilities at each cell's accessible peaks, read back after ``predict_tf_binding``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _logging as logg
from .._constants import TF_ACTIVITY, TF_BINDING
from .._docs import doc_params
from .._utils import get_adata
from . import _scoring as sc
from ._predict import _read_signal

if TYPE_CHECKING:  # pragma: no cover
    from mudata import MuData

__all__ = ["cell_tf_binding"]


@doc_params()
def cell_tf_binding(
    data: AnnData | MuData, cells: Any, *, mod: str | None = None, key: str = TF_ACTIVITY
) -> pd.DataFrame:
    """Binding probabilities of each given cell at its accessible peaks (after :func:`~scfanpy.tl.predict_tf_binding`).

    Parameters
    ----------
    data
        The AnnData / MuData scored by :func:`~scfanpy.tl.predict_tf_binding`.
    cells
        Cell names, integer positions or a boolean mask.
    {mod}
    key
        The ``key_added`` used by :func:`~scfanpy.tl.predict_tf_binding`.

    Returns
    -------
    probabilities : :class:`pandas.DataFrame`
        One row per accessible peak of each cell (a ``(cell, peak)`` MultiIndex), a column ``signal``
        (the cell's signal ``v`` at the peak) and one column per TF.

    Examples
    --------
    >>> df = sfp.tl.cell_tf_binding(adata, [0, 1])  # doctest: +SKIP
    """
    adata = get_adata(data, mod)
    if key not in adata.uns or "params" not in adata.uns[key]:
        raise KeyError(f"uns[{key!r}] missing: run sfp.tl.predict_tf_binding first")
    info = adata.uns[key]
    params = info["params"]
    bkey = params.get("binding_key", TF_BINDING)
    layer = params.get("layer", None)
    idx = _cell_positions(adata, cells)
    V, _ = _read_signal(adata, None if layer == "X" else layer)
    Vc = V[idx]
    rows = np.repeat(idx, np.diff(Vc.indptr))
    lev_key = f"{bkey}_levels"
    levels = np.asarray(info.get("levels", []), dtype=np.float32)
    if lev_key in adata.varm and len(levels) == adata.varm[lev_key].shape[1]:
        probs = sc.cell_probabilities(adata.varm[lev_key], Vc.indices, Vc.data, levels)
    else:
        if params.get("model_kind") == "accessibility-track":
            logg.warning("per-level table not stored: returning the per-peak average binding")
        probs = np.asarray(adata.varm[bkey], dtype=np.float32)[Vc.indices]
    index = pd.MultiIndex.from_arrays(
        [adata.obs_names[rows], adata.var_names[Vc.indices]], names=["cell", "peak"]
    )
    out = pd.DataFrame(probs, index=index, columns=list(info["tf_names"]))
    out.insert(0, "signal", Vc.data)
    return out


def _cell_positions(adata: AnnData, cells: Any) -> np.ndarray:
    """Integer positions of ``cells`` (names, positions or a boolean mask)."""
    if isinstance(cells, (str, os.PathLike)) or np.isscalar(cells):
        cells = [cells]
    cells = np.asarray(cells)
    if cells.dtype == bool:
        return np.arange(adata.n_obs)[cells]
    if cells.dtype.kind in "iu":
        return cells.astype(int)
    idx = adata.obs_names.get_indexer(cells)
    if (idx < 0).any():
        raise KeyError(f"cells not found: {list(cells[idx < 0])[:5]}")
    return idx
