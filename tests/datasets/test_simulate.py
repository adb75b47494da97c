from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.stats import spearmanr

import scfanpy as sfp


def test_shapes_and_density(sim_small):
    adata, genome, truth = sim_small
    assert adata.shape == (600, 800)
    assert sp.issparse(adata.X)
    density = adata.X.nnz / np.prod(adata.shape)
    assert 0.02 <= density <= 0.10
    assert truth.motif.shape == (800, 8) and truth.activity.shape == (600, 8)
    assert set(adata.obs["cell_type"]) == set(truth.active.index)
    assert list(adata.var.columns[:3]) == ["chr", "start", "end"]


def test_programs_are_distinct_and_ubiquitous(sim_small):
    _, _, truth = sim_small
    rows = {tuple(r) for r in truth.active.to_numpy()}
    assert len(rows) == len(truth.active)
    assert truth.active["CTCF"].all()
    assert (truth.active.sum(1) == 3).all()


def test_deterministic(data_cache):
    a = sfp.datasets.simulate_scatac(n_cells=50, n_peaks=60, random_state=3)
    b = sfp.datasets.simulate_scatac(n_cells=50, n_peaks=60, random_state=3)
    c = sfp.datasets.simulate_scatac(n_cells=50, n_peaks=60, random_state=4)
    assert (a.adata.X != b.adata.X).nnz == 0
    pd.testing.assert_frame_equal(a.truth.motif, b.truth.motif)
    assert (a.adata.X != c.adata.X).nnz > 0


def test_genome_is_a_fasta_path(data_cache, tmp_path):
    """datasets does not import genome: the simulator returns its genome's FASTA path, opened by sfp.Genome."""
    from pathlib import Path

    sim = sfp.datasets.simulate_scatac(n_cells=40, n_peaks=30, random_state=5, out_dir=tmp_path / "g")
    assert isinstance(sim.genome, Path) and sim.genome == tmp_path / "g" / "genome.fa"
    assert sim.adata.uns["simulation"]["genome"] == str(sim.genome)
    g = sfp.Genome(sim.genome)
    site = sim.truth.sites.iloc[0]
    assert g.fetch_codes(site["chr"], site["start"], site["end"]).max() < 4
    assert set(g.chrom_sizes) == set(sim.adata.var["chr"])


def test_genome_carries_planted_motifs(sim_small):
    """Planted sites are real JASPAR instances: their PWM log-odds beat random background positions."""
    _, genome, truth = sim_small
    pwms = sfp.datasets.jaspar_motifs(truth.tfs)
    rng = np.random.default_rng(0)
    comp = np.array([3, 2, 1, 0])
    for tf in ["GATA1", "CTCF"]:
        pwm = np.log(pwms[tf].to_numpy() + 1e-3) - np.log(0.25)
        sites = truth.sites[truth.sites["tf"] == tf].head(50)
        scores, bg = [], []
        for _, s in sites.iterrows():
            codes = genome.fetch_codes(s["chr"], s["start"], s["end"])
            if s["strand"] == "-":
                codes = comp[codes[::-1]]
            scores.append(pwm[np.arange(len(codes)), codes].sum())
            off = int(rng.integers(0, genome.size(s["chr"]) - len(codes)))
            r = genome.fetch_codes(s["chr"], off, off + len(codes))
            bg.append(pwm[np.arange(len(r)), r].sum())
        assert np.median(scores) > np.median(bg) + 5


def test_truth_consistent_with_counts(sim_small):
    """Accessibility follows binding: bound peaks are more open in their type; activity tracks counts."""
    adata, _, truth = sim_small
    X = adata.X.tocsr()
    binar = (X > 0).astype(np.float64)
    for ct in truth.active.index:
        cells = np.flatnonzero(adata.obs["cell_type"] == ct)
        frac = np.asarray(binar[cells].mean(0)).ravel()
        bound_any = truth.bound(ct).any(axis=1).to_numpy() & ~adata.var["constitutive"].to_numpy()
        unbound = ~truth.motif.any(axis=1).to_numpy() & ~adata.var["constitutive"].to_numpy()
        assert frac[bound_any].mean() > 3 * frac[unbound].mean()
        rho = spearmanr(frac, truth.accessibility.loc[ct].to_numpy()).statistic
        assert rho > 0.6
    # a cell's true activity of a TF correlates with the reads it has in that TF's motif peaks (depth-normalised)
    depth = np.asarray(X.sum(1)).ravel()
    tf = "GATA1"
    in_motif = np.asarray(X[:, truth.motif[tf].to_numpy()].sum(1)).ravel() / depth
    assert spearmanr(in_motif, truth.activity[tf]).statistic > 0.5


def test_batches_and_depth(sim_batches):
    adata, _, _ = sim_batches
    assert set(adata.obs["batch"]) == {"batch0", "batch1"}
    depth = adata.obs["n_fragments"].to_numpy()
    assert depth.max() / np.median(depth) > 3
    # totals also depend on the cell type's program, so depth explains most but not all of them
    assert spearmanr(depth, adata.obs["depth_factor"]).statistic > 0.6


def test_bad_args(data_cache):
    with pytest.raises(ValueError, match="distinct programs"):
        sfp.datasets.simulate_scatac(n_cells=100, n_peaks=50, n_cell_types=30, tfs=["CTCF", "GATA1", "SPI1"])
    with pytest.raises(ValueError, match="n_cells"):
        sfp.datasets.simulate_scatac(n_cells=2, n_peaks=50, n_cell_types=4)
    with pytest.raises(KeyError):
        sfp.datasets.simulate_scatac(n_cells=20, n_peaks=50, tfs=["CTCF", "NOT_A_TF"])


def test_h5ad_roundtrip(sim_small, tmp_path):
    adata = sim_small.adata
    p = tmp_path / "sim.h5ad"
    adata.write_h5ad(p)
    import anndata as ad

    b = ad.read_h5ad(p)
    assert (b.X != adata.X).nnz == 0
    assert b.obs["cell_type"].tolist() == adata.obs["cell_type"].tolist()


def test_max_count_caps_the_tail_and_keeps_the_pattern(data_cache):
    """Without a cap the GC-bias model's Poisson draws are heavy-tailed; max_count=2 keeps the same
    non-zero entries (same draws) with at most 2 per entry, as in real cells."""
    kw = {"n_cells": 200, "n_peaks": 400, "gc_sd": 0.08, "gc_accessibility": 0.5, "gc_bias_sd": 1.0}
    free = sfp.datasets.simulate_scatac(random_state=0, **kw).adata.X
    capped = sfp.datasets.simulate_scatac(max_count=2, random_state=0, **kw).adata.X
    assert free.data.max() > 50  # the tail the cap is for
    assert capped.data.max() == 2 and capped.data.min() >= 1
    np.testing.assert_array_equal(capped.indices, free.indices)
    np.testing.assert_array_equal(capped.indptr, free.indptr)
    np.testing.assert_array_equal(capped.data, np.minimum(free.data, 2))
    with pytest.raises(ValueError, match="max_count"):
        sfp.datasets.simulate_scatac(n_cells=20, n_peaks=50, max_count=0)
