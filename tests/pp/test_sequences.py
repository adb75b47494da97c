from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import scfanpy as sfp
from scfanpy.genome import decode_sequence


def test_add_sequences_real_hg19_and_h5ad_roundtrip(tmp_path):
    g = sfp.Genome(sfp.datasets.hg19_chr20(), name="hg19")
    # peak centred on the real CTCF peak chr20:10057865-10057965 (1-based) -> 0-based [10057864, 10057965)
    names = ["chr20:10057864-10057965", "chr20:10628233-10628334", "chr20:63025400-63025520"]
    a = ad.AnnData(np.ones((2, 3), dtype=np.float32), var=pd.DataFrame(index=names))
    sfp.pp.add_sequences(a, g, width=101)
    codes = a.varm["dna_code"]
    assert codes.dtype == np.uint8 and codes.shape == (3, 101)
    # a 101-bp window centred on a 101-bp peak is the peak itself
    assert decode_sequence(codes[0])[:30] == "CCCAGGTAAAGAGAAAAGCGCACCTGAGGC"
    assert decode_sequence(codes[1])[:30] == "ATGGCCTGGGGCTCCCATACCTGACCGTGC"
    # last peak runs past the end of chr20: padded with N (code 4)
    assert (codes[2, -40:] == 4).all()
    assert a.uns["scfanpy"]["genome"]["width"] == 101
    p = tmp_path / "a.h5ad"
    a.write_h5ad(p)
    b = ad.read_h5ad(p)
    np.testing.assert_array_equal(b.varm["dna_code"], codes)
    assert b.varm["dna_code"].dtype == np.uint8
    assert b.uns["scfanpy"]["genome"]["name"] == "hg19"


def test_add_sequences_build_mismatch(tmp_path):
    g = sfp.datasets.hg19_chr20()
    a = ad.AnnData(
        np.ones((1, 3)), var=pd.DataFrame(index=["chr20:100-200", "chr1:5-10", "chr20:70000000-70000100"])
    )
    with pytest.raises(ValueError, match="right genome build"):
        sfp.pp.add_sequences(a, g, width=50)
    assert "dna_code" not in a.varm
    sfp.pp.add_sequences(a, g, width=50, drop_invalid=True)
    assert a.n_vars == 1 and a.varm["dna_code"].shape == (1, 50)


def test_add_sequences_simulated_matches_planted_sites(sim_small):
    adata, genome, truth = sim_small
    a = adata.copy()
    sfp.pp.add_sequences(a, genome, width=500)
    site = truth.sites.iloc[0]
    p = int(site["peak"])
    off = int(site["start"] - a.var["start"].iloc[p])
    seq = decode_sequence(a.varm["dna_code"][p, off : off + site["end"] - site["start"]])
    assert seq == genome.fetch(site["chr"], site["start"], site["end"])
    assert (a.varm["dna_code"] < 4).all()  # synthetic genome has no N inside peaks


def test_one_hot():
    oh = sfp.pp.one_hot(np.array([[0, 1, 2, 3, 4]], dtype=np.uint8))
    assert oh.shape == (1, 4, 5)
    np.testing.assert_array_equal(oh[0].sum(0), [1, 1, 1, 1, 0])


def test_bad_width():
    a = ad.AnnData(np.ones((1, 1)), var=pd.DataFrame(index=["chr20:100-200"]))
    with pytest.raises(ValueError, match="width must be positive"):
        sfp.pp.add_sequences(a, sfp.datasets.hg19_chr20(), width=0)
