"""The one BED / interval reader shared by parse_peaks and make_training_windows."""

import gzip

import numpy as np
import pandas as pd
import pytest

from scfanpy.pp._intervals import Cover, bed_frame, canon_chrom, read_bed, read_intervals


def test_read_bed_skips_headers_and_reads_gzip(tmp_path):
    text = "browser position chr1:1-100\ttrack\tx\tthing\n# a comment\nchr1\t10\t20\tp1\nchr2\t5\t50\tp2\n"
    p = tmp_path / "a.bed"
    p.write_text(text)
    gz = tmp_path / "a.bed.gz"
    with gzip.open(gz, "wt") as f:
        f.write(text)
    for path in (p, gz, str(p)):
        df = read_bed(path)
        assert list(df.columns) == ["chr", "start", "end", "col3"]
        # values as read: the header line made the columns text, parse_peaks / read_intervals convert
        rows = [[c, int(s), int(e), n] for c, s, e, n in df.itertuples(index=False)]
        assert rows == [["chr1", 10, 20, "p1"], ["chr2", 5, 50, "p2"]]
    with pytest.raises(FileNotFoundError, match="regions: file not found"):
        read_bed(tmp_path / "nope.bed", "regions")
    short = tmp_path / "short.bed"
    short.write_text("chr1\t10\n")
    with pytest.raises(ValueError, match="at least 3 columns"):
        read_bed(short)


def test_coords_only_reads_ragged_files(tmp_path):
    p = tmp_path / "ragged.bed"
    p.write_text("chr1\t1\t5\nchr1\t8\t9\tname\t0\n")
    with pytest.raises(pd.errors.ParserError):
        read_bed(p)
    df = read_intervals(p, "peaks")
    assert df.values.tolist() == [["chr1", 1, 5], ["chr1", 8, 9]]
    assert df["start"].dtype == np.int64


def test_bed_frame_dataframes_by_name_or_position():
    named = pd.DataFrame({"name": ["a"], "end": [9], "chrom": ["chr2"], "start": [3]})
    df = bed_frame(named)
    assert list(df.columns) == ["chr", "start", "end", "name"] and df.iloc[0].tolist() == ["chr2", 3, 9, "a"]
    pos = pd.DataFrame([["chr1", 1, 5, "p"]])
    df = bed_frame(pos)
    assert list(df.columns) == ["chr", "start", "end", 3]
    assert list(pos.columns) == [0, 1, 2, 3]  # the input is not changed
    with pytest.raises(TypeError, match="expected a DataFrame"):
        bed_frame(3, "peaks")


def test_read_intervals_checks():
    with pytest.raises(ValueError, match="1 interval\\(s\\) with end < start"):
        read_intervals(pd.DataFrame({"chr": ["1"], "start": [5], "end": [4]}), "peaks")
    df = read_intervals(pd.DataFrame({"chr": [1], "start": [5.0], "end": [7.0], "x": [0]}), "peaks")
    assert list(df.columns) == ["chr", "start", "end"] and df["chr"].tolist() == ["1"]


def test_cover_overlap_and_mask():
    c = Cover(np.array([10, 15, 40]), np.array([20, 30, 50]))  # merged: [10, 30), [40, 50)
    np.testing.assert_array_equal(c.overlap(np.array([0, 25, 35]), np.array([12, 45, 60])), [2, 10, 10])
    np.testing.assert_array_equal(c.base_mask(28, 42), [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    assert canon_chrom("chrX") == "X" and canon_chrom("7") == "7"


def test_same_bed_file_for_parse_peaks_and_windows(tmp_path):
    """A narrowPeak-like file with a track line is read alike by both users of the reader."""
    import anndata as ad

    import scfanpy as sfp
    from scfanpy.genome import decode_sequence

    rng = np.random.default_rng(0)
    fa = tmp_path / "g.fa"
    fa.write_text(">chr1\n" + decode_sequence(rng.integers(0, 4, 20_000).astype(np.uint8)) + "\n")
    bed = tmp_path / "p.narrowPeak"
    bed.write_text(
        "track\tname=x\tdescription=y\tz\n" + "chr1\t5000\t5400\tpk1\n" + "chr1\t9000\t9300\tpk2\n"
    )
    a = ad.AnnData(np.zeros((1, 2), dtype=np.float32), var=pd.DataFrame(index=["pk2", "pk1"]))
    sfp.pp.parse_peaks(a, bed=bed)
    assert a.var[["chr", "start", "end"]].values.tolist() == [["chr1", 9000, 9300], ["chr1", 5000, 5400]]
    w = sfp.pp.make_training_windows(sfp.Genome(fa), {"T": bed}, valid_chroms=[], test_chroms=[])
    assert (w.obs["n_bound"] > 0).sum() == 9 + 7  # bins 4_900..5_300 and 8_900..9_200 (step 50)
