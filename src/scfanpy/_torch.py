"""Torch plumbing shared by every model, tool and plot: one place for it.

- :func:`resolve_device`: ``'auto'`` / ``'cpu'`` / ``'gpu'`` / ``'cuda:1'`` / a :class:`torch.device`.
- :func:`fit_window`, :func:`tile_starts`, :func:`tile_windows`: centre-crop or pad sequences (codes
  ``(n, L)``) or tracks (``(n, T, L)``) to a model's window, and cut long sequences into windows.
- :func:`one_hot` (numpy) and :func:`one_hot_torch` (on the device): codes to ``(..., 4, L)``.
- :func:`predict_batched`: memory-aware batched inference; inputs stay compact (uint8 codes) on the CPU
  and are moved and upcast one batch at a time; a CUDA out-of-memory error halves the batch.

Shapes, everywhere in scfanpy: codes ``(n, L)`` uint8 with A=0 C=1 G=2 T=3 N=4; one-hot
``(n, 4, L)`` (rows A, C, G, T; N is all zeros); tracks ``(n, T)`` (constant over the window) or
``(n, T, L)``.

Torch is imported inside the functions that need it, so that numpy-only callers (the JASPAR motif model,
the window helpers) never import it. Nothing here touches AnnData.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._constants import N_CODE

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "resolve_device",
    "fit_window",
    "tile_starts",
    "tile_windows",
    "one_hot",
    "one_hot_torch",
    "predict_batched",
]


def resolve_device(device: Any = "auto") -> torch.device:
    """The :class:`torch.device` for ``device``.

    Parameters
    ----------
    device
        ``None`` or ``'auto'``: the first GPU when one is present, else the CPU. ``'gpu'``/``'cuda'``:
        the first GPU (error without one). Anything else (``'cpu'``, ``'cuda:1'``, ``'mps'``, a
        :class:`torch.device`) is taken as it is.
    """
    import torch

    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} asked for a GPU but torch sees none; use 'auto' or 'cpu'")
        return torch.device("cuda")
    return torch.device(device)


def fit_window(x: np.ndarray, window: int, *, fill: float | int | None = None) -> np.ndarray:
    """Centre-crop or centre-pad the last axis of ``x`` to ``window``.

    Parameters
    ----------
    x
        Codes ``(n, L)`` or tracks ``(n, T, L)`` (any leading shape).
    window
        Target length.
    fill
        Padding value: default N (code 4) for integer arrays, 0 for float arrays.

    Returns
    -------
    ``x`` itself when it already has ``window`` columns, else a new array ``(..., window)``. When padding,
    the sequence sits at offset ``(window - L) // 2``; when cropping, ``(L - window) // 2`` is dropped on
    the left.
    """
    length = x.shape[-1]
    if length == window:
        return x
    if length > window:
        s = (length - window) // 2
        return x[..., s : s + window]
    if fill is None:
        fill = N_CODE if np.issubdtype(x.dtype, np.integer) else 0
    out = np.full((*x.shape[:-1], window), fill, dtype=x.dtype)
    s = (window - length) // 2
    out[..., s : s + length] = x
    return out


def tile_starts(length: int, window: int, stride: int | None = None) -> list[int]:
    """Start positions of windows covering ``length`` bp.

    One window every ``stride`` (default half a window), plus one window flush with the end; ``[0]`` when
    ``length <= window``.
    """
    if length <= window:
        return [0]
    stride = stride or max(1, window // 2)
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def tile_windows(codes: np.ndarray, window: int, stride: int | None = None) -> tuple[np.ndarray, int]:
    """Cut codes ``(n, L)`` with ``L > window`` into windows.

    Returns
    -------
    ``(tiles, n_tiles)``: ``tiles`` is ``(n * n_tiles, window)``, sequence-major (the tiles of sequence
    ``i`` are rows ``i * n_tiles ... (i + 1) * n_tiles - 1``). Sequences no longer than the window are
    fitted with :func:`fit_window` (one tile each).
    """
    codes = np.asarray(codes)
    if codes.shape[1] <= window:
        return fit_window(codes, window), 1
    starts = tile_starts(codes.shape[1], window, stride)
    tiles = np.stack([codes[:, s : s + window] for s in starts], axis=1)
    return tiles.reshape(-1, window), len(starts)


def one_hot(codes: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """One-hot ``(..., L)`` codes to ``(..., 4, L)``; N (code 4) and any code above 4 become all zeros.

    Examples
    --------
    >>> one_hot(np.array([[0, 3, 4]], dtype=np.uint8))[0]
    array([[1., 0., 0.],
           [0., 0., 0.],
           [0., 0., 0.],
           [0., 1., 0.]], dtype=float32)
    """
    codes = np.asarray(codes)
    eye = np.vstack([np.eye(4, dtype=dtype), np.zeros((1, 4), dtype=dtype)])
    return np.moveaxis(eye[np.minimum(codes, N_CODE)], -1, -2)


def one_hot_torch(codes: torch.Tensor, dtype: Any = None) -> torch.Tensor:
    """:func:`one_hot` on a tensor (on its device): codes ``(n, L)`` -> float ``(n, 4, L)``."""
    import torch
    import torch.nn.functional as F

    x = F.one_hot(codes.long().clamp(0, N_CODE), N_CODE + 1)[..., :4].transpose(1, 2)
    return x.to(dtype or torch.float32)


def predict_batched(
    fn: Callable[..., torch.Tensor],
    arrays: Sequence[np.ndarray | None],
    *,
    batch_size: int = 256,
    device: Any = "cpu",
    prepare: Callable[[int, int], Sequence[np.ndarray | None]] | None = None,
    out_dtype: Any = np.float32,
) -> np.ndarray:
    """Run ``fn`` over the rows of ``arrays`` in batches, under :func:`torch.no_grad`.

    Parameters
    ----------
    fn
        Takes one tensor per array (None stays None), on ``device``, and returns a tensor ``(b, ...)``.
    arrays
        Row-aligned arrays (first axis = items), kept as they are on the CPU; each batch is sliced,
        made contiguous and moved to ``device`` alone, so inputs are never copied or upcast whole.
    batch_size
        Rows per call. On a CUDA out-of-memory error the batch is halved and retried.
    device
        Where ``fn`` runs (see :func:`resolve_device`).
    prepare
        Optional ``prepare(lo, hi)`` that returns the numpy arrays of rows ``lo:hi`` (e.g. cropping or
        building tracks per batch); replaces slicing ``arrays``.
    out_dtype
        dtype of the returned array.

    Returns
    -------
    ``(n, ...)`` numpy array of ``fn``'s outputs, in row order.
    """
    import torch

    dev = resolve_device(device)
    n = len(next(a for a in arrays if a is not None)) if arrays else 0
    out: np.ndarray | None = None
    lo, bs = 0, max(1, int(batch_size))
    with torch.no_grad():
        while lo < n:
            hi = min(n, lo + bs)
            parts = (
                prepare(lo, hi) if prepare is not None else [None if a is None else a[lo:hi] for a in arrays]
            )
            try:
                tens = [
                    None if a is None else torch.from_numpy(np.ascontiguousarray(a)).to(dev) for a in parts
                ]
                res = fn(*tens).detach().float().cpu().numpy()
            except torch.cuda.OutOfMemoryError:  # pragma: no cover - needs a GPU
                if bs == 1:
                    raise
                torch.cuda.empty_cache()
                bs = max(1, bs // 2)
                continue
            if out is None:
                out = np.empty((n, *res.shape[1:]), dtype=out_dtype)
            out[lo:hi] = res
            lo = hi
    if out is None:
        return np.empty((0,), dtype=out_dtype)
    return out
