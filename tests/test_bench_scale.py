"""benchmarks/bench_scale.py --quick (500 cells x 2,000 peaks x 20 motifs): a row for every method."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_scale.py"
METHODS = ("scfanpy", "pychromvar", "scan-scfanpy", "scan-moods")


def _load():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("bench_scale", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_counts_written_in_chunks_read_back(tmp_path):
    """The chunked h5py CSR is a valid AnnData X with the asked density, and cached."""
    import anndata as ad

    bs = _load()
    _, codes, bed = bs.make_genome(tmp_path, 300)
    assert np.load(codes).shape == (300, 500)
    path = bs.make_counts(tmp_path, 1234, 300, 0.05, bed)
    a = ad.read_h5ad(path)
    assert a.shape == (1234, 300) and a.X.format == "csr"
    a.X.check_format(full_check=True)
    assert 0.03 < a.X.nnz / (1234 * 300) <= 0.05
    assert (a.X.data >= 1).all() and set(a.obs["cell_type"]) == {f"type{t}" for t in range(5)}
    with h5py.File(path) as f:
        assert f["X"]["data"].chunks is not None
    assert bs.make_counts(tmp_path, 1234, 300, 0.05, bed) == path


def test_bench_scale_quick(tmp_path, capsys):
    """Every method has a row; scfanpy's runs succeed. pychromvar's child is cut at 20 s (pynndescent
    compiles for ~90 s in a fresh process): its row then records the time limit."""
    bs = _load()
    rows = bs.main(["--quick", "--work", str(tmp_path), "--methods", "scfanpy,scan-scfanpy,scan-moods"])
    rows += bs.main(["--quick", "--work", str(tmp_path), "--methods", "pychromvar", "--timeout-min", "0.34"])
    capsys.readouterr()
    saved = bs.main(["--table", "--work", str(tmp_path)])  # every saved result, read back
    table = capsys.readouterr().out
    for m in METHODS:
        assert f"| {bs.NAMES[m]} |" in table, m
    assert len(table.strip().splitlines()) == 2 + len(METHODS) and len(saved) == len(METHODS)
    by = {r["method"]: r for r in rows}
    assert set(by) == set(METHODS)
    for m in ("scfanpy", "scan-scfanpy"):
        assert by[m]["ok"], by[m]
    assert by["scfanpy"]["n_motifs"] == 20 and by["scan-scfanpy"]["n_motifs"] == 20
    assert by["pychromvar"]["ok"] or by["pychromvar"]["error"]


@pytest.mark.slow
def test_bench_scale_quick_pychromvar(tmp_path):
    """pychromvar to the end at the quick size (minutes: pynndescent compiles in the child)."""
    pytest.importorskip("pychromvar")
    bs = _load()
    rows = bs.main(["--quick", "--work", str(tmp_path), "--methods", "pychromvar"])
    assert rows[0]["ok"], rows[0]
    assert rows[0]["n_motifs"] == 20
