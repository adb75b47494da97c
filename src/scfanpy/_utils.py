"""Small helpers shared by pp / tl / pl: MuData access, writing results with a log line."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import anndata as ad
import numpy as np

from . import _logging as logg


def is_mudata(data: Any) -> bool:
    """Whether ``data`` is a :class:`mudata.MuData` (without importing mudata eagerly)."""
    return type(data).__name__ == "MuData" and hasattr(data, "mod")


def get_adata(data: Any, mod: str | None = None) -> ad.AnnData:
    """Return the AnnData to work on: ``data`` itself, or ``data.mod[mod]`` for MuData.

    For a MuData without ``mod``, the modality ``'atac'``; a MuData without one raises a
    :class:`ValueError` listing its modalities (another modality is never guessed: an RNA modality
    read as peaks would give wrong answers, not an error).
    """
    if is_mudata(data):
        return data.mod[atac_modality(data, mod)]
    if mod is not None:
        raise TypeError(f"mod={mod!r} given but data is a {type(data).__name__}, not a MuData")
    if not isinstance(data, ad.AnnData):
        raise TypeError(f"expected AnnData or MuData, got {type(data).__name__}")
    return data


def atac_modality(mdata: Any, mod: str | None = None, *, how: str = "mod={}") -> str:
    """The name of a MuData's modality of peaks: ``mod``, else ``'atac'``; another one is never guessed.

    A MuData without ``'atac'`` (and no ``mod``) raises a :class:`ValueError`, a ``mod`` that is not one of
    its modalities a :class:`KeyError`; both list the modalities with their shapes and say how to choose
    one: ``how``, a format string whose ``{}`` stands for a modality name (``"mod={}"`` for pp / tl / pl,
    ``"modalities={{'layer': {}}}"``, i.e. ``modalities={'layer': ...}``, for SAILER).
    """
    shape = ", ".join(f"{k!r} ({v.n_obs} x {v.n_vars})" for k, v in mdata.mod.items()) or "none"
    if mod is None:
        if "atac" not in mdata.mod:
            eg = how.format(repr(next(iter(mdata.mod), "atac")))
            raise ValueError(
                f"this MuData has no 'atac' modality (it has {shape}): pass {how.format('...')} with the name "
                f"of the modality that holds the peaks, e.g. {eg}"
            )
        return "atac"
    if mod not in mdata.mod:
        raise KeyError(
            f"modality {mod!r} not in MuData (it has {shape}): pass one of them as {how.format('...')}"
        )
    return mod


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


def _damaged(path, why: str) -> OSError:
    return OSError(
        f"the saved model file {path} is damaged ({why}): it was truncated or overwritten (an interrupted "
        "save or copy, a full disk). Save the model again, or copy the folder again from where it was made."
    )


def check_model_file(dir_path, prefix: str | None = None, *, backup_url: str | None = None):
    """``<dir_path>/<prefix>model.pt``, checked to exist and to be a whole PyTorch archive.

    A missing folder or file raises :class:`FileNotFoundError` (unless ``backup_url`` will fetch it); an
    empty, truncated or corrupted archive raises :class:`OSError` naming the file and saying it is damaged.
    """
    import zipfile
    from pathlib import Path

    d = Path(dir_path)
    f = d / f"{prefix or ''}model.pt"
    if not d.is_dir():
        raise FileNotFoundError(f"no saved model: {str(d)!r} is not a folder written by model.save()")
    if not f.exists():
        if backup_url is not None:
            return f
        found = sorted(p.name for p in d.iterdir())[:8]
        raise FileNotFoundError(
            f"no saved model in {d}: {f.name} not found (the folder has {found or 'nothing'})"
        )
    if f.stat().st_size == 0:
        raise _damaged(f, "the file is empty")
    if not zipfile.is_zipfile(f):
        raise _damaged(f, "not a complete PyTorch archive: its end is missing")
    try:
        with zipfile.ZipFile(f) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise _damaged(f, f"{type(e).__name__}: {e}") from e
    if bad is not None:
        raise _damaged(f, f"member {bad!r} fails its checksum")
    return f


@contextmanager
def reading_model(path):
    """Context manager: errors of ``torch.load`` that mean a damaged file are re-raised naming ``path``."""
    import pickle
    import zipfile

    try:
        yield
    except (EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        raise _damaged(path, f"{type(e).__name__}: {e}") from e
    except RuntimeError as e:
        if "PytorchStreamReader" in str(e) or "zip archive" in str(e):
            raise _damaged(path, f"{type(e).__name__}: {e}") from e
        raise
