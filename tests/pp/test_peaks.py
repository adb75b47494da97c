from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import scfanpy as sfp


def _adata(names):
    return ad.AnnData(np.zeros((3, len(names)), dtype=np.float32), var=pd.DataFrame(index=names))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("chr1:100-600", ("chr1", 100, 600)),
        ("chr1-100-600", ("chr1", 100, 600)),
        ("chr1_100_600", ("chr1", 100, 600)),
        ("chrUn_gl000220_5_50", ("chrUn_gl000220", 5, 50)),
        ("GL000194.1:10-20", ("GL000194.1", 10, 20)),
    ],
)
def test_parse_formats(name, expected):
    a = _adata([name])
    sfp.pp.parse_peaks(a)
    assert (a.var["chr"].iloc[0], a.var["start"].iloc[0], a.var["end"].iloc[0]) == expected
    assert a.var["start"].dtype == np.int64


@pytest.mark.parametrize(
    ("names", "match"),
    [
        (["chr1:100-600", "peak_7", "junk"], r"2 name\(s\).*'peak_7'"),
        (["chr1:600-100", "chr1:5-5"], r"2 peak\(s\) with start >= end.*'chr1:600-100'"),
        (["chr1:-5-100"], r"negative positions.*'chr1:-5-100'"),
        (["chr1:10.5-100"], r"non-integer positions"),
    ],
)
def test_bad_names_raise_and_write_nothing(names, match):
    a = _adata(names)
    with pytest.raises(ValueError, match=match):
        sfp.pp.parse_peaks(a)
    assert "chr" not in a.var.columns


def test_from_columns_and_one_based():
    a = _adata(["p1", "p2"])
    a.var["seqnames"] = ["chr2", "chrX"]
    a.var["s"] = [11, 21]
    a.var["e"] = [20, 30]
    sfp.pp.parse_peaks(a, columns=("seqnames", "s", "e"), one_based=True)
    assert a.var["start"].tolist() == [10, 20]
    assert a.var["end"].tolist() == [20, 30]


def test_from_bed_by_name_and_order(tmp_path):
    bed = tmp_path / "peaks.bed"
    bed.write_text("chr3\t5\t10\tp2\nchr1\t0\t100\tp1\n")
    a = _adata(["p1", "p2"])
    sfp.pp.parse_peaks(a, bed=bed)
    assert a.var["chr"].tolist() == ["chr1", "chr3"]
    bed2 = tmp_path / "noname.bed"
    bed2.write_text("chr1\t0\t100\nchr3\t5\t10\n")
    b = _adata(["x", "y"])
    sfp.pp.parse_peaks(b, bed=bed2)
    assert b.var["end"].tolist() == [100, 10]
    c = _adata(["x", "y", "z"])
    with pytest.raises(ValueError, match="BED has 2 rows but the data has 3 peaks"):
        sfp.pp.parse_peaks(c, bed=bed2)


def test_copy_and_mudata(tmp_path):
    import mudata as md

    a = _adata(["chr1:1-10", "chr2:5-50"])
    b = sfp.pp.parse_peaks(a, copy=True)
    assert "chr" not in a.var.columns
    assert b.var["end"].tolist() == [10, 50]
    rna = ad.AnnData(np.zeros((3, 2)), var=pd.DataFrame(index=["g1", "g2"]))
    m = md.MuData({"rna": rna, "atac": a})
    sfp.pp.parse_peaks(m, mod="atac")
    assert m.mod["atac"].var["start"].tolist() == [1, 5]
    p = tmp_path / "x.h5mu"
    m.write(p)
    back = md.read_h5mu(p)
    assert back.mod["atac"].var["chr"].tolist() == ["chr1", "chr2"]
    with pytest.raises(ValueError, match="pass mod="):
        sfp.pp.parse_peaks(md.MuData({"a": a.copy(), "b": a.copy()}))


def test_real_dataset_var_names_parse():
    a = sfp.datasets.granja2019()
    b = a.copy()
    b.var = pd.DataFrame(index=a.var_names)
    sfp.pp.parse_peaks(b)
    pd.testing.assert_frame_equal(b.var[["chr", "start", "end"]], a.var[["chr", "start", "end"]])
