from __future__ import annotations

import hashlib

import numpy as np
import pytest
import scipy.sparse as sp

import scfanpy as sfp


def test_registry_is_consistent():
    reg = sfp.datasets.registry()
    assert len(reg) > 500
    for key, (sha, url) in reg.items():
        assert len(sha) == 64
        assert url.startswith("https://")
        assert not key.startswith("/")


def test_registry_urls_pinned_to_full_commits():
    """Raw-file URLs name a full 40-hex commit (a short hash or a tag resolves only by courtesy)."""
    import re

    for key, (_, url) in sfp.datasets.registry().items():
        if "raw.githubusercontent.com" in url:
            ref = url.split("/")[5]
            assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{key}: {url} is pinned to {ref!r}"


def test_corrupt_cached_file_is_set_aside(tmp_path, monkeypatch, data_cache):
    """A cached file whose sha256 differs is named, moved to <name>.corrupt, then fetched again; offline,
    the error says how to fill the cache (before: a ConnectionError, the bad file left in place)."""
    import pooch
    import requests

    key = "reference/scfan/model/GM12878/chip.txt"
    good = sfp.datasets.fetch(key).read_bytes()
    sha = sfp.datasets.registry()[key][0]

    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError("no network")

    try:
        sfp.datasets.set_cache_dir(tmp_path)
        bad = tmp_path / key
        bad.parent.mkdir(parents=True)
        bad.write_bytes(b"truncated")
        monkeypatch.setattr(pooch.Pooch, "fetch", offline)
        with (
            pytest.raises(ConnectionError, match="SCFANPY_DATA_DIR.*seed_cache") as e,
            pytest.warns(UserWarning, match="damaged") as w,
        ):
            sfp.datasets.fetch(key)
        assert key in str(e.value)
        assert sha in str(w[0].message) and hashlib.sha256(b"truncated").hexdigest() in str(w[0].message)
        assert not bad.exists() and (bad.parent / "chip.txt.corrupt").read_bytes() == b"truncated"
        bad.write_bytes(good)  # a good file is used as it is, without the network
        assert sfp.datasets.fetch(key) == bad
    finally:
        sfp.datasets.set_cache_dir(data_cache)


def test_fetch_checks_hash(tmp_path):
    key = "reference/scfan/model/GM12878/chip.txt"
    path = sfp.datasets.fetch(key)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sfp.datasets.registry()[key][0]
    with pytest.raises(KeyError, match="not a registered"):
        sfp.datasets.fetch("nope/nothing.txt")


def test_set_cache_dir_and_env(tmp_path, monkeypatch, data_cache):
    try:
        assert sfp.datasets.set_cache_dir(tmp_path) == tmp_path
        assert sfp.datasets.cache_dir() == tmp_path
    finally:
        sfp.datasets.set_cache_dir(data_cache)
    sfp.datasets.set_cache_dir(None)
    monkeypatch.setenv("SCFANPY_DATA_DIR", str(tmp_path / "env"))
    assert sfp.datasets.cache_dir() == tmp_path / "env"
    sfp.datasets.set_cache_dir(data_cache)


def test_schep2017():
    a = sfp.datasets.schep2017()
    assert a.shape == (600, 5036)
    assert sp.issparse(a.X)
    assert a.obs["cell_type"].nunique() == 12
    assert (a.obs["cell_type"].value_counts() == 50).all()
    assert set(a.obs["source"]) == {"Buenrostro2015", "Corces2016", "unpublished_K562"}
    assert (a.obs.loc[a.obs["cell_type"] == "Monocyte", "source"] == "Corces2016").all()
    assert (a.var["end"] - a.var["start"] == 500).all()
    assert a.var["chr"].iloc[0] == "chr1" and a.var["start"].iloc[0] == 1051394
    assert float(a.X.sum()) > 0 and np.allclose(a.X.data, np.round(a.X.data))


def test_granja2019(tmp_path):
    a = sfp.datasets.granja2019()
    assert a.shape == (600, 5000)
    assert sorted(a.obs["cell_type"].unique()) == ["B", "CD8.N", "CLP.2", "CMP.LMPP", "GMP", "HSC"]
    assert (a.obs["cell_type"].value_counts() == 100).all()
    assert a.obs["TotalReads"].iloc[0] == 80228
    assert a.obsm["X_umap_original"].shape == (600, 2)
    p = tmp_path / "g.h5ad"
    a.write_h5ad(p)
    import anndata as ad

    b = ad.read_h5ad(p)
    assert (b.X != a.X).nnz == 0


def test_deepbind():
    exps = sfp.datasets.deepbind_experiments()
    assert len(exps) == 10
    b = sfp.datasets.deepbind_encode("REST", "B")
    assert len(b) == 1000 and b["Bound"].sum() == 500
    assert b["seq"].str.len().eq(101).all()
    ac = sfp.datasets.deepbind_encode("REST", "AC")
    assert (ac["Bound"] == 1).all() and len(ac) > 4000
    auc = sfp.datasets.deepbind_published_auc()
    assert len(auc) == 505
    assert auc["DeepBind*"].mean() == pytest.approx(0.9139, abs=1e-3)
    assert set(exps) <= set(auc.index)
    with pytest.raises(ValueError, match="split must be"):
        sfp.datasets.deepbind_encode("REST", "C")
    with pytest.raises(KeyError):
        sfp.datasets.deepbind_encode("NOPE")


def test_bertsnr():
    tfs = sfp.datasets.bertsnr_tfs()
    assert len(tfs) == 137
    df = sfp.datasets.bertsnr("YY1")
    assert df["bound"].tolist()[:4] == [1, 0, 1, 0]  # positives alternate with their shuffles
    assert df["seq"].str.len().eq(100).all()
    assert df.loc[df["bound"] == 0, "site"].str.contains("1").sum() == 0
    assert (df["assembly"] == "hg19").all()


def test_bertsnr_sites_carry_their_genome_build():
    """84 of the 137 site files upstream (folder JASPAR_bed_hg19) are hg38 coordinates."""
    sites = sfp.datasets.bertsnr_sites(["YY1", "ZNF8"])
    assert sites.groupby("tf")["assembly"].first().to_dict() == {"YY1": "hg19", "ZNF8": "hg38"}
    assert (sites["name"].str[:4] == sites["assembly"]).all()
    assert (sites["end"] > sites["start"]).all()
    assert sfp.datasets.bertsnr("ZNF8")["assembly"].eq("hg38").all()


def test_encode_dream():
    idx = sfp.datasets.encode_dream_index()
    assert set(idx["cell_line"]) == {"GM12878", "K562", "H1-hESC", "HepG2"}
    p = sfp.datasets.encode_dream_peaks("K562", "CTCF")
    assert len(p) > 10_000
    assert not p["chr"].isin(["chr1", "chr8", "chr21"]).any()  # challenge test chromosomes withheld
    assert (p["end"] > p["start"]).all()
    bl = sfp.datasets.hg19_blacklist()
    assert list(bl.columns) == ["chr", "start", "end"] and len(bl) > 100


def test_scfan_published_scores():
    a = sfp.datasets.scfan_tf_activity("buenrostro2018", "GM12878")
    assert a.shape == (2034, 33)
    np.testing.assert_allclose(a.X.sum(1), 1, atol=1e-4)
    assert a.obs["cell_type"].nunique() == 11
    assert "CEBPB" in a.var_names
    k = sfp.datasets.scfan_tf_activity("corces2016", "K562")
    assert k.shape == (2210, 60)
    m = sfp.datasets.scfan_bulk_metrics("GM12878")
    assert m["AUC"].mean() == pytest.approx(0.942, abs=2e-3)


def test_factornet_weights():
    w = sfp.datasets.factornet_weights("MAX")
    assert {"model.json", "best_model.hdf5"} <= set(w)
    with pytest.raises(KeyError, match="available"):
        sfp.datasets.factornet_weights("FOO")


def test_jaspar():
    m = sfp.datasets.jaspar_motifs(["GATA1", "spi1"])
    assert set(m) == {"GATA1", "spi1"}
    np.testing.assert_allclose(m["GATA1"].sum(1), 1)
    assert m["GATA1"].attrs["matrix_id"].startswith("MA")
    t = sfp.datasets.jaspar_table()
    assert len(t) > 500
    with pytest.raises(KeyError):
        sfp.datasets.jaspar_motifs(["NOT_A_TF"])
