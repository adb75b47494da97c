"""scfanpy: single-cell TF binding and TF activity from scATAC-seq (scFAN) on the scverse stack.

``import scfanpy as sfp`` is fast: the submodules :mod:`~scfanpy.pp`, :mod:`~scfanpy.tl`,
:mod:`~scfanpy.pl`, :mod:`~scfanpy.models` and :mod:`~scfanpy.datasets` are imported on first use,
and torch / scvi-tools only when a model is touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from . import datasets, models, pl, pp, tl
    from .genome import Genome

_SUBMODULES = {"pp", "tl", "pl", "models", "datasets", "genome"}
_ATTRS = {"Genome": ("genome", "Genome")}

__all__ = ["Genome", "__version__", "datasets", "models", "pl", "pp", "tl"]


def __getattr__(name: str):
    if name in _SUBMODULES:
        mod = importlib.import_module(f".{name}", __name__)
        globals()[name] = mod
        return mod
    if name in _ATTRS:
        modname, attr = _ATTRS[name]
        obj = getattr(importlib.import_module(f".{modname}", __name__), attr)
        globals()[name] = obj
        return obj
    raise AttributeError(f"module 'scfanpy' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES | set(_ATTRS))
