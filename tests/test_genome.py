from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

import scfanpy as sfp
from scfanpy.genome import decode_sequence, encode_sequence, read_fasta

# Real hg19 sequences at known coordinates (Zeng et al. 2016 CTCF peaks, 1-based inclusive headers)
KNOWN = {
    ("chr20", 10057865, 10057965): "CCCAGGTAAAGAGAAAAGCGCACCTGAGGC",
    ("chr20", 10628234, 10628334): "ATGGCCTGGGGCTCCCATACCTGACCGTGC",
    ("chr22", 20226193, 20226293): "GGGCCCGACATCTGAGGGTTGCTTGCCCCT",
    ("chr22", 20098781, 20098881): "ACCTGTGCAGAGTGCCGTGTGCTTGTGGTG",
}
CHR22_RECORD = "22:20000001-21000000"
CHR22_OFFSET = 20_000_000


def _chr20() -> sfp.Genome:
    return sfp.Genome(sfp.datasets.hg19_chr20(), name="hg19")


def _chr22() -> sfp.Genome:
    return sfp.Genome(sfp.datasets.hg19_chr22_block(), name="hg19_chr22_20-21M")


def test_dataset_genomes_are_fasta_paths():
    """datasets does not import genome: its genome loaders return FASTA paths, which any genome argument takes."""
    from pathlib import Path

    from scfanpy.genome import as_genome

    p = sfp.datasets.hg19_chr20()
    assert isinstance(p, Path) and p.name.endswith(".fasta.gz")
    assert Path(str(p) + ".fai").is_file() and Path(str(p) + ".gzi").is_file()
    g = as_genome(p)
    assert g.path == p and g.name == p.name
    assert isinstance(sfp.datasets.hg19_chr22_block(), Path)


def test_encode_decode_roundtrip():
    s = "ACGTNacgtnRY"
    with pytest.warns(UserWarning, match=r"2 character\(s\) outside ACGTN"):
        codes = encode_sequence(s)
    assert codes.dtype == np.uint8
    assert codes.tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 4, 4]
    assert decode_sequence(codes) == "ACGTNACGTNNN"


def test_bgzip_fasta_known_sequences():
    g = _chr20()
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
    g = _chr22()
    assert g.chrom_sizes[CHR22_RECORD] == 1_000_000
    for (c, s, _e), prefix in KNOWN.items():
        if c != "chr22":
            continue
        assert g.fetch(CHR22_RECORD, s - 1 - CHR22_OFFSET, s - 1 - CHR22_OFFSET + 30) == prefix


def test_known_sequences_match_shared_fasta(shared_data):
    """Every CTCF peak of the real test set that lies in the chr20 block matches the genome exactly."""
    fasta = read_fasta(shared_data / "sequences/keras_genomics_ctcf/test.fa")
    g = _chr20()
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
    g = _chr20()
    seq = g.fetch("chr20", 10_000_000, 10_100_000)
    assert seq == seq.upper()
    assert set(seq) <= set("ACGTN")
    # the raw file has lower case (soft-masked) bases in this stretch
    import pyfaidx

    raw = pyfaidx.Fasta(str(g.path), as_raw=True)["chr20"][10_000_000:10_100_000]
    assert any(ch.islower() for ch in raw)


def test_padding_past_ends_and_missing_chrom():
    g = _chr22()
    size = g.size(CHR22_RECORD)
    codes = g.fetch_codes(CHR22_RECORD, size - 5, size + 5)
    assert codes.shape == (10,)
    assert (codes[5:] == 4).all()
    assert (g.fetch_codes(CHR22_RECORD, -3, 2)[:3] == 4).all()
    with pytest.raises(KeyError, match="not in genome"):
        g.fetch("chrZ", 0, 10)


def test_check_intervals_reports_and_drops():
    g = _chr20()
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
    with pytest.raises(Exception):  # noqa: B017 - pyfaidx refuses non-BGZF gzip
        sfp.Genome(gz)


def test_read_fasta_plain_and_gzip(tmp_path):
    text = ">a desc\nACGT\nac\n\n>b\nNNtt\n"
    fa = tmp_path / "s.fa"
    fa.write_text(text)
    gz = tmp_path / "s.fa.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(text)
    assert read_fasta(fa) == read_fasta(gz) == {"a": "ACGTac", "b": "NNtt"}


def test_from_known_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="hg19"):
        sfp.Genome.from_known("hg99")


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        sfp.Genome("/nonexistent/genome.fa")


def _write_2bit(path, records: dict[str, str]) -> None:
    """Minimal UCSC .2bit writer (format spec: genome.ucsc.edu FAQ), with N blocks and soft-mask blocks."""
    import re
    import struct

    names = list(records)
    header = struct.pack("<IIII", 0x1A412743, 0, len(names), 0)
    index_size = sum(1 + len(n) + 4 for n in names)
    offset = len(header) + index_size
    blobs = []
    for n in names:
        s = records[n]
        nblocks = [(m.start(), m.end() - m.start()) for m in re.finditer(r"[Nn]+", s)]
        mblocks = [(m.start(), m.end() - m.start()) for m in re.finditer(r"[a-z]+", s)]
        code = {"T": 0, "C": 1, "A": 2, "G": 3}
        bits = [code.get(ch.upper(), 0) for ch in s]
        bits += [0] * (-len(bits) % 4)
        packed = bytes(
            (bits[i] << 6) | (bits[i + 1] << 4) | (bits[i + 2] << 2) | bits[i + 3]
            for i in range(0, len(bits), 4)
        )
        blob = struct.pack("<II", len(s), len(nblocks))
        blob += b"".join(struct.pack("<I", st) for st, _ in nblocks) + b"".join(
            struct.pack("<I", ln) for _, ln in nblocks
        )
        blob += struct.pack("<I", len(mblocks))
        blob += b"".join(struct.pack("<I", st) for st, _ in mblocks) + b"".join(
            struct.pack("<I", ln) for _, ln in mblocks
        )
        blob += struct.pack("<I", 0) + packed
        blobs.append(blob)
    index = b""
    for n, blob in zip(names, blobs):
        index += struct.pack("<B", len(n)) + n.encode() + struct.pack("<I", offset)
        offset += len(blob)
    with open(path, "wb") as fh:
        fh.write(header + index + b"".join(blobs))


def test_twobit_genome(tmp_path):
    pytest.importorskip("py2bit")
    real = _chr20().fetch("chr20", 10_057_864, 10_057_965)
    seq = "NNNNacgt" + real + "NN"
    p = tmp_path / "g.2bit"
    _write_2bit(p, {"chr20": seq, "chrM": "ACGTACGTAA"})
    g = sfp.Genome(p, name="tiny")
    assert g.chrom_sizes == {"chr20": len(seq), "chrM": 10}
    assert g.fetch("20", 0, 8) == "NNNNACGT"  # N block kept, soft mask read as upper case
    assert g.fetch("chr20", 8, 8 + 101) == real
    assert g.fetch("MT", 0, 4) == "ACGT"
    assert g.fetch_codes("chrM", 8, 12).tolist() == [0, 0, 4, 4]
