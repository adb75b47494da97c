from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_is_light():
    """``import scfanpy`` and touching pp/tl/pl/datasets must not import torch or scvi-tools."""
    code = (
        "import sys, scfanpy as sfp; sfp.pp; sfp.tl; sfp.pl; sfp.datasets; sfp.pp.parse_peaks; "
        "assert 'torch' not in sys.modules, 'torch imported'; assert 'scvi' not in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_version_and_dir():
    import scfanpy as sfp

    assert sfp.__version__.count(".") >= 2
    assert {"pp", "tl", "pl", "models", "datasets", "Genome"} <= set(dir(sfp))
    with pytest.raises(AttributeError):
        sfp.not_a_thing  # noqa: B018


def test_public_names_resolve():
    """Every name the subpackages advertise resolves to an object with a docstring."""
    import scfanpy as sfp

    for sub in (sfp.pp, sfp.tl, sfp.pl, sfp.models, sfp.datasets):
        for name in sub.__all__:
            obj = getattr(sub, name)
            assert obj.__doc__, f"{sub.__name__}.{name} has no docstring"


def test_ci_runs_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text()
    cmd = next(line for line in readme.splitlines() if 'pip install -e ".[test' in line)
    assert cmd.strip() in ci


@pytest.mark.skipif(
    subprocess.run(
        [sys.executable, "-c", "import sphinx, myst_nb"], capture_output=True, check=False
    ).returncode
    != 0,
    reason="docs extra not installed",
)
def test_docs_build_without_warnings(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(ROOT / "docs"),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-5000:]


def _public_callables():
    import inspect

    import scfanpy as sfp

    for sub in (sfp.pp, sfp.tl, sfp.pl, sfp.models, sfp.datasets):
        for name in sub.__all__:
            obj = getattr(sub, name)
            yield f"{sub.__name__}.{name}", obj
            if inspect.isclass(obj):
                for meth_name, meth in vars(obj).items():
                    if not meth_name.startswith("_") and callable(meth) and getattr(meth, "__doc__", None):
                        yield f"{sub.__name__}.{name}.{meth_name}", meth


def test_returns_sections_are_field_lists():
    """Returns sections render as lists of written keys: every unindented line is ``name : type`` or a name.

    The docs render Returns in parameter style (docs/conf.py), so an unindented free sentence, a bullet or a
    backquote in the name part is shown garbled; this finds them in every public docstring.
    """
    import inspect

    bad = []
    for qual, obj in _public_callables():
        doc = inspect.getdoc(obj) or ""
        lines = doc.splitlines()
        for i, line in enumerate(lines):
            if line.strip() == "Returns" and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}:
                j = i + 2
                while j < len(lines) and not (
                    j + 1 < len(lines) and lines[j].strip() and set(lines[j + 1].strip()) == {"-"}
                ):
                    ln = lines[j]
                    if ln and not ln.startswith(" "):
                        name = ln.split(" : ")[0]
                        if "`" in name or name.startswith(("- ", "* ")) or name.rstrip().endswith((".", ":")):
                            bad.append(f"{qual}: {ln!r}")
                    j += 1
    assert not bad, "garbled Returns entries:\n" + "\n".join(bad)
