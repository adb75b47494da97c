import numpy as np
import pandas as pd
import pytest

import scfanpy as sfp
from scfanpy.genome import decode_sequence


@pytest.fixture
def toy(tmp_path):
    rng = np.random.default_rng(0)
    seqs = {
        "chr1": rng.integers(0, 4, 60_000),
        "chr2": rng.integers(0, 4, 40_000),
        "chr3": rng.integers(0, 4, 30_000),
    }
    seqs["chr2"][:5_000] = 4  # leading N
    fa = tmp_path / "toy.fa"
    with open(fa, "w") as f:
        for c, s in seqs.items():
            f.write(f">{c}\n{decode_sequence(s.astype(np.uint8))}\n")
    peaks = {
        "A": pd.DataFrame(
            {
                "chr": ["chr1", "chr1", "chr2", "chr3"],
                "start": [10_000, 30_000, 20_000, 15_000],
                "end": [10_400, 30_300, 20_500, 15_300],
            }
        ),
        "B": pd.DataFrame({"chr": ["chr1", "chr2"], "start": [10_150, 3_000], "end": [10_600, 3_400]}),
    }
    return sfp.Genome(fa), seqs, peaks


def _brute_label(peaks_tf, chrom, s, bin_size=200, min_overlap=0.5):
    cov = np.zeros(100_000, dtype=bool)
    for c, a, b in peaks_tf[["chr", "start", "end"]].itertuples(index=False):
        if c == chrom:
            cov[a:b] = True
    ov = cov[s : s + bin_size].sum()
    return 1.0 if ov >= min_overlap * bin_size else (np.nan if ov > 0 else 0.0)


def test_labels_negatives_splits(toy):
    genome, seqs, peaks = toy
    blk = pd.DataFrame({"chr": ["chr1"], "start": [40_000], "end": [45_000]})
    w = sfp.pp.make_training_windows(
        genome,
        peaks,
        blacklist=blk,
        negative_ratio=2.0,
        valid_chroms=["2"],
        test_chroms=["chr3"],
        random_state=1,
    )
    lab = w.obsm["labels"]
    assert list(lab.columns) == ["A", "B"] and w.uns["tf_names"] == ["A", "B"]
    assert w.obsm["dna_code"].shape == (w.n_obs, 1000) and w.obsm["dna_code"].dtype == np.uint8
    # every label equals the brute-force overlap rule
    for (name, row), labs in zip(w.obs.iterrows(), lab.to_numpy(), strict=True):
        for j, tf in enumerate(["A", "B"]):
            np.testing.assert_equal(labs[j], _brute_label(peaks[tf], row["chr"], row["start"]))
        # the stored window is the genome around the bin
        s = int(row["start"]) - 400
        np.testing.assert_array_equal(
            w.obsm["dna_code"][w.obs_names.get_loc(name)], seqs[row["chr"]][s : s + 1000]
        )
    # all bound bins are present: chr1 TF A peak 10_000-10_400 -> bins 9_900..10_300
    starts_a = set(w.obs.loc[(w.obs["chr"] == "chr1") & (lab["A"] == 1), "start"])
    assert starts_a == set(range(9_900, 10_301, 50)) | set(range(29_900, 30_201, 50))
    # negatives: far from any peak, away from the blacklist, twice the positives per chromosome (capped)
    neg = w.obs[w.obs["n_bound"] == 0]
    allp = pd.concat(peaks.values())
    for c, s in neg[["chr", "start"]].itertuples(index=False):
        near = allp[(allp.chr == c) & (allp.start < s + 400) & (allp.end > s - 200)]
        assert near.empty
        assert not (c == "chr1" and s - 400 < 45_000 and s + 600 > 40_000)
    n_pos = (w.obs["n_bound"] > 0).groupby(w.obs["chr"], observed=True).sum()
    n_neg = (w.obs["n_bound"] == 0).groupby(w.obs["chr"], observed=True).sum()
    np.testing.assert_array_equal(n_neg.to_numpy(), 2 * n_pos.to_numpy())
    assert dict(zip(w.obs["chr"], w.obs["split"], strict=True)) == {
        "chr1": "train",
        "chr2": "valid",
        "chr3": "test",
    }
    # chr2's leading N block: no window with N
    assert (w.obsm["dna_code"] == 4).sum() == 0
    # deterministic
    w2 = sfp.pp.make_training_windows(
        genome,
        peaks,
        blacklist=blk,
        negative_ratio=2.0,
        valid_chroms=["2"],
        test_chroms=["chr3"],
        random_state=1,
    )
    assert (w2.obs_names == w.obs_names).all()
    # chunking does not change the bins
    w3 = sfp.pp.make_training_windows(
        genome,
        peaks,
        blacklist=blk,
        negative_ratio=0.0,
        valid_chroms=["2"],
        test_chroms=["chr3"],
        chunk_bp=777,
    )
    assert list(w3.obs_names) == list(w.obs_names[w.obs["n_bound"] > 0])


def test_regions_offset_record_and_signal(toy, tmp_path):
    genome, seqs, peaks = toy
    # a record named like a samtools region holds chr1:[20_000, 40_000)
    fa = tmp_path / "block.fa"
    fa.write_text(">1:20001-40000\n" + decode_sequence(seqs["chr1"][20_000:40_000].astype(np.uint8)) + "\n")
    acc = pd.DataFrame({"chr": ["chr1"], "start": [29_900], "end": [30_400]})
    w = sfp.pp.make_training_windows(
        sfp.Genome(fa), peaks, regions=[("chr1", 20_000, 40_000)], accessibility=acc, negative_ratio=1.0
    )
    assert set(w.obs["chr"]) == {"chr1"}
    assert w.obs["start"].min() >= 20_400 and w.obs["start"].max() <= 40_000 - 600
    assert (w.obs["n_bound"] > 0).sum() == 7  # TF A peak 30_000-30_300: bins 29_900..30_200
    for name, row in w.obs.iterrows():
        s = int(row["start"]) - 400
        np.testing.assert_array_equal(
            w.obsm["dna_code"][w.obs_names.get_loc(name)], seqs["chr1"][s : s + 1000]
        )
        sig = w.obsm["signal"][w.obs_names.get_loc(name), 0]
        expect = ((np.arange(s, s + 1000) >= 29_900) & (np.arange(s, s + 1000) < 30_400)).astype(np.float32)
        np.testing.assert_array_equal(sig, expect)
    assert w.uns["signal_names"] == ["accessibility"]


def test_errors(toy):
    genome, _, peaks = toy
    with pytest.raises(ValueError, match="tf"):
        sfp.pp.make_training_windows(genome, peaks["A"])
    with pytest.raises(ValueError, match="both valid and test"):
        sfp.pp.make_training_windows(genome, peaks, valid_chroms=["chr1"], test_chroms=["1"])
    with pytest.raises(KeyError):
        sfp.pp.make_training_windows(genome, peaks, regions=[("chr9", 0, 10_000)])
    try:
        import pyBigWig  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pyBigWig"):
            sfp.pp.make_training_windows(genome, peaks, accessibility="x.bw")


def test_real_encode_dream_hg19_blocks():
    peaks = sfp.datasets.encode_dream_peaks("GM12878")
    bl = sfp.datasets.hg19_blacklist()
    w20 = sfp.pp.make_training_windows(
        sfp.datasets.hg19_chr20(),
        peaks,
        regions=[("chr20", 9_995_000, 11_095_000)],
        blacklist=bl,
        valid_chroms=[],
        test_chroms=["chr20"],
    )
    w22 = sfp.pp.make_training_windows(
        sfp.datasets.hg19_chr22_block(), peaks, regions=[("chr22", 20_000_000, 21_000_000)], blacklist=bl
    )
    assert (w20.obs["split"] == "test").all() and (w22.obs["split"] == "train").all()
    assert w20.uns["tf_names"] == w22.uns["tf_names"] == sorted(peaks["tf"].unique())
    for w in (w20, w22):
        assert (w.obsm["dna_code"] == 4).mean() < 0.01
        n_pos = int((w.obs["n_bound"] > 0).sum())
        assert n_pos > 300 and int((w.obs["n_bound"] == 0).sum()) == n_pos
    # a bound bin really lies under a peak: ZNF143 on chr22
    z = peaks[(peaks.tf == "ZNF143") & (peaks.chr == "chr22")]
    pos = w22.obs[w22.obsm["labels"]["ZNF143"] == 1]
    assert len(pos) > 20
    for s in pos["start"].to_numpy()[:20]:
        ov = (np.minimum(z.end, s + 200) - np.maximum(z.start, s)).clip(0)
        assert ov.max() >= 100 or ov.sum() >= 100


def test_windows_train_a_model(toy):
    genome, _, peaks = toy
    acc = pd.DataFrame({"chr": ["chr1", "chr2"], "start": [9_000, 19_000], "end": [11_000, 21_000]})
    w = sfp.pp.make_training_windows(
        genome, peaks, context=200, accessibility=acc, valid_chroms=["chr2"], test_chroms=["chr3"]
    )
    sfp.models.SCFAN.setup_anndata(w, signal_key="signal")
    model = sfp.models.SCFAN(w, channels=(8, 8, 8), n_dense=8)
    assert model.input_spec["window"] == 200 and model.input_spec["track_names"] == ["accessibility"]
    model.train(max_epochs=1, batch_size=32, enable_progress_bar=False)
    ev = model.evaluate(split="test")
    assert list(ev.index) == ["A", "B"] or list(ev.index.astype(str)) == ["A", "B"]
    assert model.predict(w).shape == (w.n_obs, 2)


def test_bigwig_track_via_stub(toy, monkeypatch):
    """The bigWig branch, with a stand-in for pyBigWig (values = position / 1e5 on chr1, NaN elsewhere)."""
    import sys
    import types

    genome, _, peaks = toy

    class _BW:
        def chroms(self):
            return {"chr1": 60_000, "chr2": 40_000}

        def values(self, chrom, start, end, numpy=True):
            v = np.arange(start, end, dtype=np.float64) / 1e5
            return v if chrom == "chr1" else np.full(end - start, np.nan)

    stub = types.ModuleType("pyBigWig")
    stub.open = lambda path: _BW()
    monkeypatch.setitem(sys.modules, "pyBigWig", stub)
    w = sfp.pp.make_training_windows(genome, peaks, accessibility={"dnase": "x.bw"}, chroms=["chr1", "chr2"])
    sig = w.obsm["signal"]
    assert sig.shape == (w.n_obs, 1, 1000) and w.uns["signal_names"] == ["dnase"]
    for i, (c, s) in enumerate(w.obs[["chr", "start"]].itertuples(index=False)):
        expect = np.arange(s - 400, s + 600) / 1e5 if c == "chr1" else np.zeros(1000)
        np.testing.assert_allclose(sig[i, 0], expect, rtol=1e-6)
