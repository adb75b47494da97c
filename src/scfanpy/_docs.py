"""Parameter texts shared by many docstrings (scanpy's ``_doc_params`` pattern).

Use ``{name}`` placeholders in a docstring and decorate the function with ``@doc_params(name=...)``; the
snippets below are already indented for a numpydoc ``Parameters`` section. A literal brace in such a
docstring is written twice (``{{``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

doc_data = """\
data
    AnnData (cells x peaks), or MuData with an ATAC modality (see ``mod``)."""

doc_mod = """\
mod
    Modality of a MuData to work on (default ``'atac'``; a MuData without an ``'atac'`` modality needs
    ``mod=``, as no other modality is guessed); must be None for an AnnData."""

doc_copy = """\
copy
    Work on a copy of ``data`` and return it, leaving ``data`` untouched; otherwise write in place and
    return None."""

doc_random_state = """\
random_state
    Seed (or :class:`numpy.random.Generator`) of every random step; the same value gives the same
    result."""

doc_layer = """\
layer
    Layer to read instead of ``X`` (None: ``X``)."""

doc_batch_size = """\
batch_size
    Items per forward pass (memory-aware: inputs stay on the CPU and move to the device one batch at a
    time)."""

doc_accelerator = """\
accelerator
    ``'auto'`` (a GPU when present, else the CPU), ``'cpu'``, ``'gpu'``, ... as in
    :class:`lightning.pytorch.Trainer`."""

doc_devices = """\
devices
    Number or list of devices, or ``'auto'`` (as in :class:`lightning.pytorch.Trainer`)."""

doc_show_save = """\
show
    Show the figure (None: when not in an interactive backend or a notebook, as scanpy does).
save
    Path to save the figure to (any matplotlib format)."""

_SNIPPETS = {k[4:]: v for k, v in dict(globals()).items() if k.startswith("doc_") and isinstance(v, str)}


def _indent(text: str, prefix: str) -> str:
    lines = text.splitlines()
    return "\n".join([lines[0], *[prefix + ln if ln else ln for ln in lines[1:]]])


def doc_params(**extra: str) -> Callable[[F], F]:
    """Fill ``{name}`` placeholders of the decorated object's docstring with the shared snippets.

    Every snippet above is available by its name without ``doc_`` (``{copy}``, ``{mod}``, ...);
    ``extra`` adds or overrides snippets. Multi-line snippets are indented to the placeholder's column.
    """
    snippets = {**_SNIPPETS, **extra}

    def deco(obj: F) -> F:
        doc = obj.__doc__
        if doc:
            out = []
            for line in doc.splitlines():
                stripped = line.lstrip()
                key = stripped[1:-1] if stripped.startswith("{") and stripped.endswith("}") else None
                if key in snippets:
                    prefix = line[: len(line) - len(stripped)]
                    out.append(prefix + _indent(snippets[key], prefix))
                else:
                    out.append(line.replace("{{", "{").replace("}}", "}"))
            obj.__doc__ = "\n".join(out)
        return obj

    return deco
