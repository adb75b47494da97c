"""Lazy attribute loading for the subpackages, so that ``import scfanpy`` never imports torch.

Each subpackage maps its public names to the private module defining them; a name missing from the
map is looked up in the ``__all__`` of the subpackage's private modules.
"""

from __future__ import annotations

import importlib
import pkgutil


def attach(package: str, mapping: dict[str, str]):
    """Return ``(__getattr__, __dir__, __all__)`` for ``package`` given ``{name: '._module'}``."""

    def __getattr__(name: str):
        if name.startswith("_"):  # private names are submodules: the import system loads those
            raise AttributeError(name)
        if name in mapping:
            mod = importlib.import_module(mapping[name], package)
            return getattr(mod, name)
        pkg = importlib.import_module(package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_") or info.name.startswith("__"):
                continue
            mod = importlib.import_module(f".{info.name}", package)
            if name in getattr(mod, "__all__", ()):
                return getattr(mod, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(mapping)

    return __getattr__, __dir__, sorted(mapping)
