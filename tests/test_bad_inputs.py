"""Issue 13: every bad input gets a clear error (naming the argument, showing values, saying what to do),
and a function that raises leaves its input as it was."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scfanpy as sfp
from scfanpy.genome import encode_sequence, encode_sequences


def _fasta(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _peaks(names, n_cells: int = 3) -> ad.AnnData:
    return ad.AnnData(np.ones((n_cells, len(names)), np.float32), var=pd.DataFrame(index=names))


# ------------------------------------------------------------------------------------ 1. sequences
def test_iupac_characters_warn_once_with_a_count():
    with pytest.warns(UserWarning, match=r"3 character\(s\) outside ACGTN.*'R'.*'Y'"):
        codes = encode_sequence("ACRYGT1")
    assert codes.tolist() == [0, 1, 4, 4, 2, 3, 4]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encode_sequence("ACGTNacgtn")  # nothing replaced: silent
        encode_sequence("ACRY", warn=False)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = encode_sequences(["ACGR"] * 50 + ["ACGT"])
    assert len(rec) == 1 and "50 character(s) outside ACGTN in 50 sequence(s)" in str(rec[0].message)
    assert len(out) == 51


def test_add_sequences_warns_once_for_iupac_in_the_genome(tmp_path):
    g = sfp.Genome(_fasta(tmp_path / "g.fa", ">chr1\n" + "ACGTRYACGT" * 10 + "\n"))
    a = _peaks(["chr1:0-20", "chr1:20-40", "chr1:40-60"])
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        sfp.pp.add_sequences(a, g, width=20)
    msgs = [str(w.message) for w in rec if "outside ACGTN" in str(w.message)]
    assert len(msgs) == 1 and msgs[0].startswith("12 character(s) outside ACGTN in 3 sequence(s)")


@pytest.fixture(scope="module")
def tiny_scfan(torch_one_thread):
    a = ad.AnnData(np.zeros((4, 1), np.float32))
    a.obsm["dna_code"] = np.random.default_rng(0).integers(0, 4, (4, 40)).astype(np.uint8)
    sfp.models.SCFAN.setup_anndata(a)
    return sfp.models.SCFAN(a, tf_names=["T1", "T2"], channels=(4, 4, 4), pool=2, n_dense=4)


def test_all_n_sequences_give_no_evidence(tiny_scfan):
    m = tiny_scfan
    codes = np.random.default_rng(1).integers(0, 4, (5, 40)).astype(np.uint8)
    codes[[1, 3]] = 4
    with pytest.warns(UserWarning, match=r"2 of 5 sequence\(s\) entirely N.*NaN"):
        p = m.predict_codes(codes)
    assert np.isnan(p[[1, 3]]).all() and np.isfinite(p[[0, 2, 4]]).all()
    with pytest.warns(UserWarning, match=r"2 of 3 sequence\(s\) empty or entirely N"):
        d = m.predict_sequences({"a": "ACGT" * 10, "empty": "", "gap": "N" * 300})
    assert d.loc[["empty", "gap"]].isna().all().all() and d.loc["a"].notna().all()
    assert list(d.index) == ["a", "empty", "gap"]


def test_predict_sequences_takes_one_string_as_one_sequence(tiny_scfan, tmp_path):
    m = tiny_scfan
    with pytest.warns(UserWarning, match="outside ACGTN"):
        one = m.predict_sequences("ACGTRYACGTACGT")  # IUPAC letters: before, read as a FASTA path
    assert one.shape == (1, len(m.tf_names)) and list(one.index) == ["seq0"]
    fa = _fasta(tmp_path / "s.fa", ">x\nACGTACGTAC\n")
    assert list(m.predict_sequences(str(fa)).index) == ["x"]  # an existing file is still read
    with pytest.raises(FileNotFoundError, match="looks like a path"):
        m.predict_sequences(str(tmp_path / "missing.fa"))
    with pytest.raises(TypeError, match="not strings"):
        m.predict_sequences(["ACGT", np.nan])


# ------------------------------------------------------------------------------------ 3. add_sequences
@pytest.mark.parametrize(
    ("start", "end", "match"),
    [
        ([10, 50], [5, 60], "start >= end"),
        ([10, 50], [10, 60], "start >= end"),
        ([np.nan, 50], [20, 60], "non-numeric"),
        ([-5, 50], [20, 60], "negative"),
    ],
)
def test_add_sequences_checks_existing_var_coordinates(tmp_path, start, end, match):
    g = sfp.Genome(_fasta(tmp_path / "g.fa", ">chr1\n" + "ACGT" * 50 + "\n"))
    a = _peaks(["p1", "p2"])
    a.var["chr"], a.var["start"], a.var["end"] = ["chr1", "chr1"], start, end
    before = a.var.copy()
    with pytest.raises(ValueError, match=f"{match}.*'p1.*var\\['chr'\\]"):
        sfp.pp.add_sequences(a, g, width=20)
    pd.testing.assert_frame_equal(a.var, before)
    assert "dna_code" not in a.varm and "scfanpy" not in a.uns


def test_add_sequences_checks_the_genome_before_writing(tmp_path):
    g = sfp.Genome(_fasta(tmp_path / "g.fa", ">chr1\n" + "ACGT" * 50 + "\n"))
    a = _peaks(["chr1:10-30", "chr1:150-250", "chr9:1-20"])
    with pytest.raises(ValueError, match="missing from genome.*chr9.*past a chromosome end.*chr1:150-250"):
        sfp.pp.add_sequences(a, g, width=20)
    assert list(a.var.columns) == [] and not a.varm and not a.uns
    b = _peaks(["chr5:1-20", "chr9:1-20"])
    with pytest.raises(ValueError, match="none of the 2 peaks"):
        sfp.pp.add_sequences(b, g, width=20, drop_invalid=True)
    assert b.n_vars == 2 and list(b.var.columns) == []


# ------------------------------------------------------------------------------------ 4. Genome
def test_genome_rebuilds_a_stale_index(tmp_path):
    fa = _fasta(tmp_path / "g.fa", ">chr1\nACGTACGTAC\n>chr2\nAAAA\n")
    assert sfp.Genome(fa).chrom_sizes == {"chr1": 10, "chr2": 4}
    old = os.stat(fa)
    # edited, mtime kept older than the index: only the lengths tell
    fa.write_text(">chr1\nACGTACGTAC\n>chr2\nAAAA\n>chr3\nCCCCCC\n")
    os.utime(fa, (old.st_atime, old.st_mtime - 100))
    assert sfp.Genome(fa).chrom_sizes == {"chr1": 10, "chr2": 4, "chr3": 6}
    # edited, mtime newer: before, pyfaidx warned and read at the old offsets
    time.sleep(0.01)
    fa.write_text(">chr1\nGGGG\n")
    os.utime(fa, (time.time() + 5, time.time() + 5))
    g = sfp.Genome(fa)
    assert g.chrom_sizes == {"chr1": 4} and g.fetch("chr1", 0, 4) == "GGGG"


def test_genome_errors_are_ours(tmp_path, monkeypatch):
    with pytest.raises(IsADirectoryError, match="is a directory; pass a FASTA/2bit file"):
        sfp.Genome(tmp_path)
    import gzip

    gz = tmp_path / "plain.fa.gz"
    gz.write_bytes(gzip.compress(b">a\nACGT\n"))
    with pytest.raises(ValueError, match="bgzip"):
        sfp.Genome(gz)
    import pyfaidx

    def unwritable(*args, **kwargs):
        raise OSError("x.fai may not be writable. Please use Fasta(rebuild=False), Faidx(rebuild=False)")

    monkeypatch.setattr(pyfaidx, "Fasta", unwritable)
    with pytest.raises(PermissionError, match="cannot write the FASTA index") as e:
        sfp.Genome(_fasta(tmp_path / "ro.fa", ">a\nACGT\n"))
    assert "rebuild=False" not in str(e.value)


# ------------------------------------------------------------------------------------ 5. model files
@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_damaged_model_file_is_named(tiny_scfan, tmp_path, damage):
    d = tmp_path / "m"
    tiny_scfan.save(d, overwrite=True)
    f = d / "model.pt"
    data = f.read_bytes()
    f.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    with pytest.raises(OSError, match=r"model\.pt is damaged"):
        sfp.models.SeqModelBase.load(d)
    with pytest.raises(FileNotFoundError, match="no saved model"):
        sfp.models.SCFAN.load(tmp_path / "nowhere")


def test_damaged_sailer_and_dgex_files(tmp_path):
    for cls in (sfp.models.SAILER, sfp.models.DGEX):
        d = tmp_path / cls.__name__
        d.mkdir()
        (d / "model.pt").write_bytes(b"PK\x03\x04 not a whole archive")
        with pytest.raises(OSError, match="is damaged"):
            cls.load(str(d))


# ------------------------------------------------------------------------------------ 6. smooth
@pytest.mark.parametrize(("n_cells", "n_peaks"), [(0, 5), (1, 5), (5, 1), (5, 0)])
def test_smooth_too_small(n_cells, n_peaks):
    a = ad.AnnData(sp.random(n_cells, n_peaks, density=0.5, format="csr", dtype=np.float32, random_state=0))
    with pytest.raises(ValueError, match="(at least 2 cells and 1 peak|at least 3 cells and 3 peaks)"):
        sfp.pp.smooth(a, n_neighbors=3)
    assert "smoothed" not in a.layers and "X_lsi" not in a.obsm


def test_smooth_checks_use_rep():
    a = ad.AnnData(sp.random(20, 10, density=0.5, format="csr", dtype=np.float32, random_state=0))
    with pytest.raises(KeyError, match="use_rep='X_pca'"):
        sfp.pp.smooth(a, use_rep="X_pca")
    a.obsm["X_empty"] = np.zeros((20, 0))
    with pytest.raises(ValueError, match="no columns"):
        sfp.pp.smooth(a, use_rep="X_empty")
    z = np.random.default_rng(0).normal(size=(20, 3))
    z[[2, 7]] = np.nan
    a.obsm["X_nan"] = z
    with pytest.raises(ValueError, match=r"NaN or infinite values in 2 cell\(s\), e.g. \['2', '7'\]"):
        sfp.pp.smooth(a, use_rep="X_nan")
    a.X.data[0] = -1
    with pytest.raises(ValueError, match="negative"):
        sfp.pp.smooth(a, n_neighbors=3)
    assert "smoothed" not in a.layers and "X_lsi" not in a.obsm


def test_smooth_reads_a_backed_anndata(tmp_path):
    a = ad.AnnData(sp.random(60, 40, density=0.3, format="csr", dtype=np.float32, random_state=0))
    a.write_h5ad(tmp_path / "a.h5ad")
    b = ad.read_h5ad(tmp_path / "a.h5ad", backed="r")
    sfp.pp.smooth(b, n_neighbors=5)  # before: "setting an array element with a sequence"
    sfp.pp.smooth(a, n_neighbors=5)
    assert (b.layers["smoothed"] != a.layers["smoothed"]).nnz == 0
    b.file.close()


# ------------------------------------------------------------------------------------ 7. MuData
def test_mudata_without_atac_modality():
    import mudata as md

    rna = ad.AnnData(np.ones((3, 2)), var=pd.DataFrame(index=["g1", "g2"]))
    m = md.MuData({"rna": rna})
    with pytest.raises(ValueError, match=r"no 'atac' modality \(it has 'rna' \(3 x 2\)\).*mod='rna'"):
        sfp.pp.parse_peaks(m)  # before: the RNA modality was read as peaks
    with pytest.raises(KeyError, match="pass one of them as mod="):
        sfp.pp.parse_peaks(m, mod="peaks")


# ------------------------------------------------------------------------------------ 9. scanpy chain
def test_installed_pynndescent_within_the_declared_bound():
    """pynndescent 0.7 returns csr_array k-NN graphs that scanpy <= 1.11.5 cannot read (see the slow test)."""
    from importlib.metadata import version

    from packaging.version import Version

    assert Version("0.5.13") <= Version(version("pynndescent")) < Version("0.7"), (
        "pyproject.toml bounds pynndescent to >=0.5.13,<0.7: reinstall with pip install -e ."
    )


@pytest.mark.slow
def test_scanpy_neighbors_and_leiden_on_10000_cells():
    """A fresh install paired scanpy 1.11.5 with pynndescent 0.7, whose csr_array k-NN graph broke
    ``sc.pp.neighbors`` from 8,192 cells ("'csr_array' object has no attribute 'getnnz'").

    Slow: about 60 s on 2 busy cores, nearly all of it numba compiling pynndescent in a fresh process.
    """
    import scanpy as sc

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(4 * i, 1, (2500, 50)) for i in range(4)]).astype(np.float32)
    tfa = ad.AnnData(X)
    tfa.uns["activity_in_X"] = True  # like sfp.tl.tf_activity_adata's output
    sc.pp.neighbors(tfa)
    sc.tl.leiden(tfa, flavor="igraph", n_iterations=2, directed=False)
    assert tfa.obs["leiden"].nunique() > 1
