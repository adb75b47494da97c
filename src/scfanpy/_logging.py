"""Logging that follows scanpy's verbosity (``sc.settings.verbosity``), as scanpy's own functions do.

Use ``from .. import _logging as logg`` then ``start = logg.info("computing ...")`` and
``logg.info("    finished", time=start)``: messages go through :mod:`scanpy.logging`, so
``sc.settings.verbosity = 'info'`` (or 2) shows progress, ``'warning'`` (scanpy's default) shows only
warnings, and ``sc.settings.logfile`` / ``sc.settings.logpath`` apply. Placeholders are formatted
with ``%``-style ``args`` like the standard library.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

__all__ = ["debug", "info", "hint", "warning", "error"]


def _fmt(msg: str, args: tuple[Any, ...]) -> str:
    return msg % args if args else msg


def _logg():
    from scanpy import logging as sc_logging  # scanpy is a dependency; imported on first message

    return sc_logging


def error(msg: str, *args: Any, time: datetime | None = None, deep: str | None = None) -> datetime:
    """Log an error (always shown)."""
    return _logg().error(_fmt(msg, args), time=time, deep=deep)


def warning(msg: str, *args: Any, time: datetime | None = None, deep: str | None = None) -> datetime:
    """Log a warning (shown at verbosity >= 1, scanpy's default)."""
    return _logg().warning(_fmt(msg, args), time=time, deep=deep)


def info(msg: str, *args: Any, time: datetime | None = None, deep: str | None = None) -> datetime:
    """Log progress (shown at verbosity >= 2, ``'info'``); returns the time, for ``time=`` later."""
    return _logg().info(_fmt(msg, args), time=time, deep=deep)


def hint(msg: str, *args: Any, time: datetime | None = None, deep: str | None = None) -> datetime:
    """Log a hint (verbosity >= 3)."""
    return _logg().hint(_fmt(msg, args), time=time, deep=deep)


def debug(msg: str, *args: Any, time: datetime | None = None, deep: str | None = None) -> datetime:
    """Log details (verbosity >= 4)."""
    return _logg().debug(_fmt(msg, args), time=time, deep=deep)
