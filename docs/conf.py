"""Sphinx configuration for scfanpy (myst-nb; notebooks are rendered, not executed, at build time)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

import scfanpy  # noqa: E402

project = "scfanpy"
author = "scfanpy developers"
copyright = "2026, scfanpy developers"
version = release = scfanpy.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx_autodoc_typehints",
]
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = True
napoleon_custom_sections = [("Returns", "params_style")]
typehints_defaults = "comma"
always_document_param_types = False
nb_execution_mode = "off"
myst_enable_extensions = ["colon_fence", "dollarmath"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path = ["_templates"]
html_theme = "sphinx_book_theme"
html_title = "scfanpy"
html_static_path = ["_static"]
intersphinx_mapping = {}
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]
# Every cross-reference must resolve (a link to a page that is not rendered fails the build); targets in
# other projects are not checked here (no intersphinx inventories offline), so they are ignored by prefix.
nitpicky = True
_EXTERNAL = (
    "anndata|mudata|muon|scanpy|scvi|torch|lightning|numpy|pandas|scipy|sklearn|matplotlib|pooch|pyfaidx|"
    "logomaker|pyjaspar|dask|collections|typing|os|pathlib|datetime|abc|Ellipsis|None|np|pd|ad|sp|"
    "AnnData|MuData|Path|DataFrame|Self"
)
# private base classes and mixins of the public models are not rendered: links to them are not checked
nitpick_ignore_regex = [(r"py:.*", rf"({_EXTERNAL})(\..*)?"), (r"py:class", r"scfanpy\.models\._\w+\.\w*(Mixin|Base\w*)")]
autodoc_inherit_docstrings = False


def _copy_tutorials(app):
    """Tutorial notebooks live in ROOT/tutorials; copy them beside the docs sources for the build."""
    dst = HERE / "tutorials"
    dst.mkdir(exist_ok=True)
    for nb in sorted((ROOT / "tutorials").glob("*.ipynb")):
        shutil.copyfile(nb, dst / nb.name)


def setup(app):
    app.connect("builder-inited", _copy_tutorials)
