"""benchmarks/device_check.py at smoke sizes on the CPU: every row present, none failing."""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("scvi")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "device_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("device_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["device_check"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_device_check_smoke(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "device_check", raising=False)
    from scfanpy.models import MotifModel

    if "device" not in inspect.signature(MotifModel.scan_codes).parameters:
        # exercise the device branch of the motif row with the numpy scan standing in
        orig = MotifModel.scan_codes

        def scan_codes(self, codes, *, batch_size=256, device=None):
            return orig(self, codes, batch_size=batch_size)

        monkeypatch.setattr(MotifModel, "scan_codes", scan_codes)
    dc = _load()
    out = tmp_path / "device_check.md"
    rows = dc.main(["--smoke", "--device", "cpu", "--out", str(out)])
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == set(dc.ROW_NAMES)
    bad = {r["name"]: r["note"] for r in rows if r["result"] != "pass"}
    assert not bad, bad
    md = out.read_text()
    assert all(name in md for name in dc.ROW_NAMES)
    saved = json.loads(out.with_suffix(".json").read_text())
    assert [r["name"] for r in saved["rows"]] == [r["name"] for r in rows]
    assert "SAILER/PeakVI" in by_name["SAILER epoch"]["note"]
    assert by_name["motif scan"]["max_diff"] <= 1e-3
