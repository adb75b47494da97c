"""The model side of :func:`scfanpy.tl.predict_tf_binding`: which model, its TFs and tracks, its predictor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import _scoring as sc

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["resolve_model", "is_motif_name", "model_name", "predictor"]

_MOTIF_NAMES = {"motif", "jaspar", "motifs"}
_SIGNAL_TRACK_NAMES = ("accessibility", "atac", "dnase", "signal", "dnase_atac", "chromatin")


def is_motif_name(model: Any) -> bool:
    """Whether ``model`` names the JASPAR motif model (``None``, ``"motif"``, ...)."""
    return model is None or (isinstance(model, str) and model.lower() in _MOTIF_NAMES)


def resolve_model(model: Any = None, tfs: list[str] | None = None):
    """The model object for ``model``: ``None``/``'motif'`` (JASPAR motifs), ``'pretrained'`` or a name, or a model."""
    if is_motif_name(model):
        from ..models._motif import MotifModel

        return MotifModel(tfs)
    if isinstance(model, str):
        try:
            from ..models._pretrained import pretrained
        except ImportError as e:  # pragma: no cover - the shipped model is part of the package
            raise ImportError(f"model={model!r} needs scfanpy.models.pretrained ({e})") from e
        return pretrained() if model == "pretrained" else pretrained(model)
    for attr in ("predict_codes", "tf_names", "input_spec"):
        if not hasattr(model, attr):
            raise TypeError(
                f"model {type(model).__name__} lacks {attr!r}; see the model contract in the docs"
            )
    return model


def model_name(model) -> str:
    name = getattr(model, "pretrained_name", None) or getattr(model, "name", None)
    if isinstance(name, str) and name:
        return name
    return type(model).__name__


def _track_layout(model) -> tuple[int, np.ndarray]:
    """Index of the model's accessibility track and the constant values of all its tracks."""
    spec = model.input_spec
    n_tracks = int(spec.get("n_tracks", 0))
    names = [str(t).lower() for t in spec.get("track_names", [])] or [""] * n_tracks
    j = next((i for i, t in enumerate(names) if t in _SIGNAL_TRACK_NAMES), 0)
    d = getattr(model, "track_defaults", None)
    if d is None:
        d = getattr(model, "track_default_", None)
    defaults = np.zeros(n_tracks, np.float32) if d is None else np.asarray(d, dtype=np.float32)
    return j, defaults


def predictor(model, cols: np.ndarray | None, batch_size: int, precision: str = "32") -> sc.Predict:
    """``predict(codes, values)`` of :mod:`._scoring`: the model's TFs ``cols``, the signal as a constant track."""
    signal_track, defaults = _track_layout(model)
    kw = {} if precision == "32" else {"precision": precision}  # checked by check_precision

    def predict(codes: np.ndarray, values: np.ndarray | None) -> np.ndarray:
        tracks = None if values is None else sc.constant_tracks(values, defaults, signal_track)
        p = model.predict_codes(codes, tracks, batch_size=batch_size, **kw)
        p = p if cols is None else p[:, cols]
        # deep models give NaN for windows without sequence (all N): no evidence, no binding
        return np.nan_to_num(p, nan=0.0) if np.isnan(p).any() else p

    return predict


def check_precision(model, precision: str) -> None:
    """``precision`` is ``'32'`` or ``'bf16'``, and ``'bf16'`` only for a model whose ``predict_codes`` takes it."""
    if precision not in ("32", "bf16"):
        raise ValueError(f"precision must be '32' or 'bf16', got {precision!r}")
    if precision != "32":
        import inspect

        if "precision" not in inspect.signature(model.predict_codes).parameters:
            raise ValueError(
                f"precision={precision!r}: {type(model).__name__} computes in float32 only; bf16 inference is "
                "for the deep sequence models (DANQ, FACTORNET, SCFAN and the pretrained ones)"
            )


METHODS = ("probability", "scfan")


def check_options(method: str, n_levels: int | None) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if n_levels is not None and n_levels < 1:
        raise ValueError("n_levels must be a positive integer or None")


def check_shape(adata: AnnData, layer: str | None) -> None:
    """Cells, peaks and the layer: clear errors before anything is read or written."""
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ValueError(f"predict_tf_binding needs cells and peaks, got an AnnData of shape {adata.shape}")
    if layer not in (None, "X") and layer not in adata.layers:
        raise KeyError(f"layers[{layer!r}] not found (layers: {list(adata.layers)})")
