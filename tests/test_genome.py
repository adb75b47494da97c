from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

import scfanpy as sfp
from scfanpy.genome import decode_sequence, encode_sequence

# Real hg19 sequences at known coordinates (Zeng et al. 2016 CTCF peaks, 1-based inclusive headers)
KNOWN = {
    ("chr20", 10057865, 10057965): "CCCAGGTAAAGAGAAAAGCGCACCTGAGGC",
    ("chr20", 10628234, 10628334): "ATGGCCTGGGGCTCCCATACCTGACCGTGC",
    ("chr22", 20226193, 20226293): "GGGCCCGACATCTGAGGGTTGCTTGCCCCT",
    ("chr22", 20098781, 20098881): "ACCTGTGCAGAGTGCCGTGTGCTTGTGGTG",
}
CHR22_RECORD = "22:20000001-21000000"
CHR22_OFFSET = 20_000_000


def test_encode_decode_roundtrip():
    s = "ACGTNacgtnRY"
    codes = encode_sequence(s)
    assert codes.dtype == np.uint8
    assert codes.tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 4, 4]
    assert decode_sequence(codes) == "ACGTNACGTNNN"


def test_bgzip_fasta_known_sequences():
    g = sfp.datasets.hg19_chr20()
    assert g.chrom_sizes == {"chr20": 63_025_520}
    for (c, s, e), prefix in KNOWN.items():
        if c != "chr20":
            continue
        seq = g.fetch(c, s - 1, e)
        assert len(seq) == 101
        assert seq[:30] == prefix
        # aliases: Ensembl-style name reaches the same record
        assert g.fetch("20", s - 1, s + 29) == prefix


def test_plain_fasta_known_sequences():
    g = sfp.datasets.hg19_chr22_block()
    assert g.chrom_sizes[CHR22_RECORD] == 1_000_000
    for (c, s, _e), prefix in KNOWN.items():
        if c != "chr22":
            continue
        assert g.fetch(CHR22_RECORD, s - 1 - CHR22_OFFSET, s - 1 - CHR22_OFFSET + 30) == prefix


def test_known_sequences_match_shared_fasta(shared_data):
    """Every CTCF peak of the real test set that lies in the chr20 block matches the genome exactly."""
    fasta = sfp.datasets.read_fasta(shared_data / "sequences/keras_genomics_ctcf/test.fa")
    g = sfp.datasets.hg19_chr20()
    n = 0
    for name, seq in fasta.items():
        if not name.startswith("chr20:") or name.endswith("_shuf"):
            continue
        s, e = (int(x) for x in name.split(":")[1].split("-"))
        if 9_995_000 <= s - 1 and e <= 11_095_000:
            assert g.fetch("chr20", s - 1, e) == seq.upper()
            n += 1
    assert n >= 4


def test_soft_masked_bases_are_upper_case():
    g = sfp.datasets.hg19_chr20()
    seq = g.fetch("chr20", 10_000_000, 10_100_000)
    assert seq == seq.upper()
    assert set(seq) <= set("ACGTN")
    # the raw file has lower case (soft-masked) bases in this stretch
    import pyfaidx

    raw = pyfaidx.Fasta(str(g.path), as_raw=True)["chr20"][10_000_000:10_100_000]
    assert any(ch.islower() for ch in raw)


def test_padding_past_ends_and_missing_chrom():
    g = sfp.datasets.hg19_chr22_block()
    size = g.size(CHR22_RECORD)
    codes = g.fetch_codes(CHR22_RECORD, size - 5, size + 5)
    assert codes.shape == (10,)
    assert (codes[5:] == 4).all()
    assert (g.fetch_codes(CHR22_RECORD, -3, 2)[:3] == 4).all()
    with pytest.raises(KeyError, match="not in genome"):
        g.fetch("chrZ", 0, 10)


def test_check_intervals_reports_and_drops():
    g = sfp.datasets.hg19_chr20()
    chrom = ["chr20", "chr20", "chr5", "chrUn_x"]
    start = [100, 63_025_500, 5, 5]
    end = [200, 63_025_600, 50, 50]
    with pytest.raises(
        ValueError, match=r"2 interval\(s\) on chromosome\(s\) missing.*chr5.*1 interval\(s\) past"
    ):
        g.check_intervals(chrom, start, end)
    ok = g.check_intervals(chrom, start, end, drop=True)
    assert ok.tolist() == [True, False, False, False]


def test_mito_aliases(tmp_path):
    fa = tmp_path / "g.fa"
    fa.write_text(">MT\nACGTACGTAC\n>1\nGGGGCCCCAA\n")
    g = sfp.Genome(fa)
    assert g.resolve("chrM") == "MT"
    assert g.resolve("chr1") == "1"
    assert g.fetch("chrM", 0, 4) == "ACGT"
    assert "chr2" not in g


def test_genome_from_gzip_plain_is_rejected_with_clear_error(tmp_path):
    fa = tmp_path / "g.fa"
    fa.write_text(">chr1\nACGT\n")
    gz = tmp_path / "g.fa.gz"
    with open(fa, "rb") as fi, gzip.open(gz, "wb") as fo:
        shutil.copyfileobj(fi, fo)
    with pytest.raises(Exception):  # noqa: B017, PT011 - pyfaidx refuses non-BGZF gzip
        sfp.Genome(gz)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        sfp.Genome("/nonexistent/genome.fa")
