"""Small helpers shared by pp / tl / pl: MuData access, writing results with a log line."""

from __future__ import annotations

from typing import Any

import anndata as ad
import numpy as np

from . import _logging as logg


def is_mudata(data: Any) -> bool:
    """Whether ``data`` is a :class:`mudata.MuData` (without importing mudata eagerly)."""
    return type(data).__name__ == "MuData" and hasattr(data, "mod")


def get_adata(data: Any, mod: str | None = None) -> ad.AnnData:
    """Return the AnnData to work on: ``data`` itself, or ``data.mod[mod]`` for MuData.

    For a MuData without ``mod``, the modality ``'atac'`` is used when present, else the only one.
    """
    if is_mudata(data):
        if mod is None:
            if "atac" in data.mod:
                mod = "atac"
            elif len(data.mod) == 1:
                mod = next(iter(data.mod))
            else:
                raise ValueError(
                    f"MuData has modalities {list(data.mod)}; pass mod= to choose one (e.g. mod='atac')."
                )
        if mod not in data.mod:
            raise KeyError(f"modality {mod!r} not in MuData (has {list(data.mod)})")
        return data.mod[mod]
    if mod is not None:
        raise TypeError(f"mod={mod!r} given but data is a {type(data).__name__}, not a MuData")
    if not isinstance(data, ad.AnnData):
        raise TypeError(f"expected AnnData or MuData, got {type(data).__name__}")
    return data


def progress(it, desc: str, *, total: int | None = None, disable: bool = False, leave: bool = True):
    """``it`` wrapped in a tqdm progress bar (``it`` itself when tqdm is missing)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return it
    return tqdm(it, desc=desc, total=total, disable=disable, leave=leave)


def log_added(where: str, key: str, what: str = "") -> None:
    """Log one written field the way scanpy does ("added ... 'key'")."""
    logg.info("    added %s[%r]%s", where, key, f" ({what})" if what else "")


def uns_params(adata: ad.AnnData, key: str, params: dict[str, Any]) -> None:
    """Store ``params`` under ``adata.uns[key]['params']`` (h5ad-safe values)."""
    clean = {}
    for k, v in params.items():
        if v is None:
            clean[k] = "None"
        elif isinstance(v, (str, int, float, bool, np.integer, np.floating, np.bool_)):
            clean[k] = v
        elif isinstance(v, (list, tuple)) and all(isinstance(x, (str, int, float)) for x in v):
            clean[k] = list(v)
        else:
            clean[k] = str(v)
    adata.uns.setdefault(key, {})
    adata.uns[key]["params"] = clean
    log_added("uns", key, "params")


def check_random_state(random_state: int | np.random.Generator | None) -> np.random.Generator:
    """A numpy Generator from a seed or a Generator."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def h5_safe_columns(df) -> None:
    """Make ``df``'s object columns writable to ``.h5ad`` / ``.h5mu``, in place.

    A MuData's global ``var`` / ``obs`` gets columns that one modality has and another lacks, as object
    columns mixing values and NaN (e.g. a peak's ``chr`` beside the TFs of ``mod['tf']``), which h5py cannot
    write. Such a column becomes a categorical of its values as strings, NaN kept missing.
    """
    import pandas as pd

    for col in df.columns:
        s = df[col]
        if s.dtype == object and not all(isinstance(v, str) for v in s):
            df[col] = pd.Categorical([v if pd.isna(v) else str(v) for v in s])
