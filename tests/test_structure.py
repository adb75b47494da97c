"""The package's layout rules, checked on the source (issue: one structure a scverse maintainer adopts).

- pp never imports tl or pl; pl never trains or predicts (it imports no model code and no torch);
- the pure torch modules import no AnnData / scanpy / mudata;
- ``genome`` and ``datasets`` do not import each other;
- no import cycle between scfanpy modules (imports inside functions count too);
- no source file over 600 lines, no function over 100 lines (docstring not counted) unless listed below
  with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "scfanpy"
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 100
# function -> why it may be longer than MAX_FUNCTION_LINES (keep this short)
LONG_FUNCTIONS_ALLOWED: dict[str, str] = {}
# modules that are pure torch (models' networks and the shared torch plumbing)
TORCH_ONLY = ("_torch", "models._seqmodules", "models._sailer_module", "models._dgex_module")


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(SRC.rglob("*.py")):
        rel = p.relative_to(SRC).with_suffix("")
        parts = [x for x in rel.parts if x != "__init__"]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _resolve(mod: str, node: ast.ImportFrom | ast.Import, is_pkg: bool) -> list[str]:
    """scfanpy-internal module names an import statement refers to (relative to the package root)."""
    names = []
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.name == "scfanpy" or a.name.startswith("scfanpy."):
                names.append(a.name[len("scfanpy.") :] if "." in a.name else "")
        return names
    if node.level == 0:
        if not (node.module or "").startswith("scfanpy"):
            return []
        base = (node.module or "")[len("scfanpy") :].lstrip(".")
    else:
        pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
        pkg = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
        base = ".".join([*pkg, node.module] if node.module else pkg)
    for a in node.names:
        cand = f"{base}.{a.name}" if base else a.name
        names.append(cand if cand in MODULES else base)
    return names


def _in_type_checking(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
            for b in n.body:
                lines.update(range(b.lineno, (b.end_lineno or b.lineno) + 1))
    return lines


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text())
        skip = _in_type_checking(tree)
        deps: set[str] = set()
        for n in ast.walk(tree):
            if isinstance(n, (ast.Import, ast.ImportFrom)) and n.lineno not in skip:
                deps.update(_resolve(mod, n, path.name == "__init__.py"))
        graph[mod] = {d for d in deps if d != mod}
    return graph


def _external(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    skip = _in_type_checking(tree)
    out = set()
    for n in ast.walk(tree):
        if getattr(n, "lineno", 0) in skip:
            continue
        if isinstance(n, ast.Import):
            out.update(a.name.split(".")[0] for a in n.names)
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            out.add(n.module.split(".")[0])
    return out


GRAPH = _imports()


def _top(mod: str) -> str:
    return mod.split(".")[0]


def test_pp_imports_neither_tl_nor_pl():
    bad = {
        m: sorted(d for d in deps if _top(d) in ("tl", "pl")) for m, deps in GRAPH.items() if _top(m) == "pp"
    }
    assert not {m: d for m, d in bad.items() if d}


def test_pl_neither_trains_nor_predicts():
    for mod, path in MODULES.items():
        if _top(mod) != "pl":
            continue
        assert not {d for d in GRAPH[mod] if _top(d) == "models"}, f"{mod} imports model code"
        assert "torch" not in _external(path), f"{mod} imports torch"
        text = path.read_text()
        for call in (".predict(", ".predict_codes(", ".train(", ".fit("):
            assert call not in text, f"{mod} calls {call}"


@pytest.mark.parametrize("mod", TORCH_ONLY)
def test_torch_modules_do_not_import_anndata(mod):
    ext = _external(MODULES[mod])
    assert not ext & {"anndata", "scanpy", "mudata", "muon"}, f"{mod} imports {ext}"
    assert not {d for d in GRAPH[mod] if _top(d) in ("pp", "tl", "pl", "datasets")}


def test_genome_and_datasets_do_not_import_each_other():
    assert not {d for d in GRAPH["genome"] if _top(d) == "datasets"}
    for mod in MODULES:
        if _top(mod) == "datasets":
            assert "genome" not in GRAPH[mod], f"{mod} imports genome"


def test_no_import_cycles():
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(GRAPH.get(m, ())):
            if d not in GRAPH:
                continue
            if state.get(d) == 1 and not (m.startswith(d + ".") or d == ""):
                # importing one's own package __init__ (lazy maps) is not a cycle
                cycles.append([*stack[stack.index(d) :], d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)
    real = [
        c
        for c in cycles
        if not all(x == "" or "." not in x and x in ("pp", "tl", "pl", "models", "datasets") for x in c)
    ]
    assert not real, "import cycles: " + "; ".join(" -> ".join(c) for c in real)


def test_file_lengths():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES}
    assert not long, f"files over {MAX_FILE_LINES} lines: {long}"


def test_function_lengths():
    long = {}
    for mod, path in MODULES.items():
        for n in ast.walk(ast.parse(path.read_text())):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (n.end_lineno or n.lineno) - n.lineno + 1
                doc = n.body[0] if n.body and isinstance(n.body[0], ast.Expr) else None
                if doc is not None and isinstance(getattr(doc, "value", None), ast.Constant):
                    length -= (doc.end_lineno or doc.lineno) - doc.lineno + 1  # the docstring is not logic
                name = f"{mod}.{n.name}"
                if length > MAX_FUNCTION_LINES and name not in LONG_FUNCTIONS_ALLOWED:
                    long[name] = length
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split, or list with a reason): {long}"
