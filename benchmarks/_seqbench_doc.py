"""Write a benchmark's markdown into a marked section of docs/benchmarks/sequence_models.md."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "sequence_models.md"
HEADER = """# Sequence models: training windows, pretrained model, DeepBind ENCODE AUC, CPU throughput

Produced by `benchmarks/bench_deepbind.py`, `benchmarks/bench_seqmodel_throughput.py` and
`scripts/train_pretrained.py` (each section states the exact command). Numbers are from one
run on a shared 2-core CPU machine (no GPU), 1 torch thread, `nice -n 10`; absolute timings are only
indicative, compare ratios within one table.
"""


def write_section(name: str, text: str, doc: Path = DOC) -> Path:
    """Replace (or append) the section between ``<!-- name:start -->`` and ``<!-- name:end -->``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    body = doc.read_text() if doc.exists() else HEADER
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in body and end in body:
        pre, rest = body.split(start, 1)
        _, post = rest.split(end, 1)
        body = pre + block + post
    else:
        body = body.rstrip() + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(body)
    return doc
