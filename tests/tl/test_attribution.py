"""tl.attribution (ISM and gradient methods) and tl.model_motifs on the simulator's planted sites."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

TFS3 = ["GATA1", "CTCF", "SPI1"]


def _single_site_peaks(adata, genome, truth, tfs, per_tf):
    """Codes of peaks holding exactly one planted site of a TF: ``(codes (n, W), [(tf, start, end)])``."""
    var, sites = adata.var, truth.sites
    codes, where = [], []
    for tf in tfs:
        s = sites[sites.tf == tf]
        n_per_peak = s.groupby("peak").size()
        for p in n_per_peak.index[n_per_peak == 1][:per_tf]:
            r = s[s.peak == p].iloc[0]
            st = int(var["start"].iloc[p])
            codes.append(genome.fetch_codes(var["chr"].iloc[p], st, int(var["end"].iloc[p])))
            where.append((tf, int(r.start) - st, int(r.end) - st))
    return np.stack(codes), where


def _site_aurocs(values: np.ndarray, tfs: list[str], where) -> np.ndarray:
    """Per-sequence AUROC of ``values (n, n_tfs, W)`` at the planted site's positions vs the others."""
    out = []
    for i, (tf, s, e) in enumerate(where):
        y = np.zeros(values.shape[2], bool)
        y[s:e] = True
        out.append(roc_auc_score(y, values[i, tfs.index(tf)]))
    return np.asarray(out)


def test_ism_of_the_motif_model_peaks_at_planted_sites(sim_small):
    """ISM of the JASPAR motif model on 24 simulated peaks (500 bp) with one planted site of the TF.

    The motif model keeps the best match of a sequence; a planted site sampled weak from its PWM can lose
    to a chance match elsewhere in 500 bp, and then (rightly) gets no attribution. Measured: mean
    per-sequence AUROC of ``importance`` at the site's positions 0.89 over all 24; 0.97 over the 19
    whose planted site is the model's best match (``|scores|``: 0.97); there the reference bases of the
    site add to the log-odds.
    """
    import scfanpy as sfp

    adata, genome, truth = sim_small
    codes, where = _single_site_peaks(adata, genome, truth, TFS3, 8)
    model = sfp.models.MotifModel(TFS3)
    res = sfp.tl.attribution(model, codes, method="ism")
    assert isinstance(res, sfp.tl._attribution.Attribution)
    assert res.values.shape == (len(codes), 3, codes.shape[1], 4) and res.tfs == TFS3
    np.testing.assert_allclose(res.values.sum(-1), 0, atol=1e-4)  # centred over the bases
    auc = _site_aurocs(res.importance, res.tfs, where)
    best = np.array(
        [
            model.scan_codes(codes[i : i + 1, s:e])[0, j] >= model.scan_codes(codes[i : i + 1])[0, j] - 1e-4
            for i, (tf, s, e) in enumerate(where)
            for j in [TFS3.index(tf)]
        ]
    )
    auc_abs = _site_aurocs(np.abs(res.scores), res.tfs, where)
    assert auc.mean() >= 0.85 and best.sum() >= 15, auc
    assert auc[best].mean() >= 0.95 and auc_abs[best].mean() >= 0.95, auc
    inside = [res.scores[i, res.tfs.index(tf), s:e].sum() for i, (tf, s, e) in enumerate(where)]
    inside = np.asarray(inside)[best]
    assert (inside >= 0).all() and (inside > 0).mean() > 0.9  # 0: a tie with an equal match elsewhere

    # ISM is exactly the change of the log-odds (the best PWM score for the motif model)
    c = codes[:1].copy()
    mut = c.copy()
    s = where[0][1]
    mut[0, s] = (mut[0, s] + 1) % 4
    d = model.scan_codes(mut) - model.scan_codes(c)
    v = res.values[0, :, s]
    np.testing.assert_allclose(v[:, mut[0, s]] - v[:, c[0, s]], d[0], atol=1e-4)


def test_attribution_inputs(sim_small, tmp_path):
    import anndata as ad

    import scfanpy as sfp

    adata, genome, truth = sim_small
    model = sfp.models.MotifModel(["GATA1"])
    seq = "ACGT" * 10 + "AGATAAGG" + "ACGT" * 10
    res = sfp.tl.attribution(model, [seq, seq[:40]])
    assert res.codes.shape == (2, 88) and res.names == ["seq0", "seq1"]
    assert (res.codes[1, :24] == 4).all() and (res.values[1, :, :24] == 0).all()  # N-padded, centred

    # a genome region (1-based, inclusive) and the same codes
    chrom, st = adata.var["chr"].iloc[0], int(adata.var["start"].iloc[0])
    reg = sfp.tl.attribution(model, genome=genome, region=f"{chrom}:{st + 1}-{st + 60}")
    np.testing.assert_array_equal(reg.codes[0], genome.fetch_codes(chrom, st, st + 60))
    assert reg.names == [f"{chrom}:{st + 1}-{st + 60}"]

    # an AnnData: uns[key_added] with the peaks' names
    a = ad.AnnData(np.zeros((2, 5), np.float32))
    a.var_names = [f"p{i}" for i in range(5)]
    a.varm["dna_code"] = np.random.default_rng(0).integers(0, 4, (5, 30)).astype(np.uint8)
    assert sfp.tl.attribution(model, a, peaks=["p1", "p3"], key_added="att") is None
    back = sfp.tl._attribution.Attribution.from_dict(a.uns["att"])
    assert back.names == ["p1", "p3"] and back.values.shape == (2, 1, 30, 4)
    a2 = sfp.tl.attribution(model, a, peaks=np.arange(5) < 2, copy=True)
    assert "attribution" in a2.uns and "attribution" not in a.uns

    with pytest.raises(ValueError, match="method"):
        sfp.tl.attribution(model, [seq], method="saliency")
    with pytest.raises(TypeError, match="torch sequence model"):
        sfp.tl.attribution(model, [seq], method="integrated_gradients")
    with pytest.raises(KeyError, match="not in the model"):
        sfp.tl.attribution(model, [seq], tfs=["SPI1"])
    with pytest.raises(ValueError, match="region"):
        sfp.tl.attribution(model, genome=genome, region="chr1-100")
    with pytest.raises(KeyError, match="add_sequences"):
        sfp.tl.attribution(model, ad.AnnData(np.zeros((2, 3), np.float32)))


@pytest.fixture(scope="module")
def tiny_scfan():
    """An untrained SCFAN (window 60, one signal track) for the contract of the gradient methods."""
    pytest.importorskip("torch")
    import torch

    import scfanpy as sfp

    torch.manual_seed(0)
    return sfp.models.SCFAN(tf_names=["A", "B"], window=60, n_tracks=1, channels=(8, 8, 8), pool=2, n_dense=8)


@pytest.mark.parametrize("method", ["ism", "integrated_gradients", "deeplift_shap"])
def test_torch_model_methods_contract(tiny_scfan, method):
    pytest.importorskip("captum")
    import scfanpy as sfp

    codes = np.random.default_rng(1).integers(0, 4, (3, 70)).astype(np.uint8)
    codes[2, 20:25] = 4
    res = sfp.tl.attribution(tiny_scfan, codes, method=method, tfs="B", n_shuffles=3, n_steps=8, device="cpu")
    assert res.values.shape == (3, 1, 60, 4) and res.tfs == ["B"]  # centre-cropped to the window
    np.testing.assert_array_equal(res.codes, codes[:, 5:65])
    np.testing.assert_allclose(res.values.sum(-1), 0, atol=1e-5)
    assert (res.values[2, :, 15:20] == 0).all() and np.abs(res.values).sum() > 0
    assert res.method == method and res.scores.shape == (3, 1, 60)


def test_ism_of_a_torch_model_matches_its_logits(tiny_scfan):
    import scfanpy as sfp
    from scfanpy.tl._attribution import model_log_odds

    codes = np.random.default_rng(2).integers(0, 4, (1, 60)).astype(np.uint8)
    res = sfp.tl.attribution(tiny_scfan, codes)
    mut = codes.copy()
    mut[0, 30] = (mut[0, 30] + 2) % 4
    lo = model_log_odds(tiny_scfan, np.r_[codes, mut], None, batch_size=8)
    v = res.values[0, :, 30]
    np.testing.assert_allclose(v[:, mut[0, 30]] - v[:, codes[0, 30]], lo[1] - lo[0], atol=1e-4)
    p = tiny_scfan.predict_codes(codes, np.zeros((1, 1), np.float32))  # the default: zeros (untrained)
    np.testing.assert_allclose(1 / (1 + np.exp(-lo[0])), p[0], rtol=1e-4)


def _site_windows(genome, truth, width, rng):
    """``width``-bp windows around each planted site (random offset) plus as many random genome windows,
    reverse complements added; labels: which TFs have a whole planted site inside."""
    sites, sizes = truth.sites, genome.chrom_sizes
    starts = [r.start - rng.integers(5, width - (r.end - r.start) - 5) for r in sites.itertuples()]
    chroms = list(sites["chr"])
    for _ in range(len(sites)):
        c = rng.choice(list(sizes))
        chroms.append(c)
        starts.append(rng.integers(0, sizes[c] - width))
    starts, chroms = np.asarray(starts), np.asarray(chroms)
    codes = np.stack([genome.fetch_codes(c, s, s + width) for c, s in zip(chroms, starts)])
    y = np.zeros((len(codes), len(truth.tfs)), np.float32)
    for j, tf in enumerate(truth.tfs):
        st = sites[sites.tf == tf]
        for c in np.unique(chroms):
            m, ss = chroms == c, st[st.chr == c]
            inside = (ss.start.to_numpy()[None] >= starts[m, None]) & (
                ss.end.to_numpy()[None] <= starts[m, None] + width
            )
            y[m, j] = inside.any(1)
    return codes, y, starts, chroms


@pytest.mark.slow
def test_trained_cnn_attribution_peaks_at_planted_sites(tmp_path):
    """A small SCFAN trained 6 epochs (~80 s on one CPU thread) on 100-bp windows around the planted
    GATA1 / CTCF / SPI1 sites of the simulator (and as many random windows; valid AUROC 0.94); then
    attribution on 21 windows holding one site; asserted: mean per-sequence AUROC of ``importance`` at
    the site >= 0.9 for each method. Measured in development (same recipe, 20 windows): DeepLIFT-SHAP
    0.96, integrated gradients (uniform baseline) 0.95 on ``importance``; ISM 0.95 on ``|scores|``.
    About 6 minutes on 2 shared cores.
    """
    pytest.importorskip("captum")
    import anndata as ad
    import torch

    import scfanpy as sfp

    torch.set_num_threads(1)
    sim = sfp.datasets.simulate_scatac(
        n_cells=20,
        n_peaks=2000,
        tfs=TFS3,
        n_cell_types=2,
        n_active=1,
        motif_rate=0.5,
        out_dir=tmp_path / "sim",
        random_state=0,
    )
    genome, truth = sfp.Genome(sim.genome), sim.truth
    rng = np.random.default_rng(0)
    codes, y, starts, chroms = _site_windows(genome, truth, 100, rng)
    rc = np.where(codes[:, ::-1] == 4, 4, 3 - codes[:, ::-1]).astype(np.uint8)
    a = ad.AnnData(np.zeros((2 * len(codes), 0), np.float32))
    a.obsm["dna_code"] = np.concatenate([codes, rc])
    a.obsm["labels"] = pd.DataFrame(np.concatenate([y, y]), columns=truth.tfs, index=a.obs_names)
    a.obs["split"] = np.where(rng.random(a.n_obs) < 0.9, "train", "valid")
    sfp.models.SCFAN.setup_anndata(a)
    model = sfp.models.SCFAN(a, channels=(64, 32, 32), n_dense=32, kernel=12, dropout=(0.1, 0.1, 0.2))
    model.train(max_epochs=6, batch_size=128, plan_kwargs={"lr": 3e-3}, enable_progress_bar=False)
    assert model.history["valid_auroc"].iloc[-1] > 0.9

    sel, where = [], []
    for j, tf in enumerate(truth.tfs):
        n_tf = 0
        for i in np.flatnonzero((y[:, j] == 1) & (y.sum(1) == 1)):
            st = truth.sites[(truth.sites.tf == tf) & (truth.sites.chr == chroms[i])]
            st = st[(st.start >= starts[i]) & (st.end <= starts[i] + 100)]
            if len(st) == 1 and n_tf < 7:
                sel.append(i)
                where.append((tf, int(st.start.iloc[0] - starts[i]), int(st.end.iloc[0] - starts[i])))
                n_tf += 1
    for method in ("ism", "deeplift_shap", "integrated_gradients"):
        res = sfp.tl.attribution(model, codes[sel], method=method)
        auc = _site_aurocs(res.importance, res.tfs, where)
        assert auc.mean() >= 0.9, (method, auc)


@pytest.mark.slow
def test_model_motifs_recover_planted_motifs(tmp_path):
    """modisco on the motif model's ISM over 400 simulated peaks (200 bp) with planted GATA1 / CTCF /
    SPI1 sites: one positive pattern per TF (~200 seqlets each) whose best TOMTOM match in JASPAR is the
    planted TF's motif (GATA1 q 5e-7, CTCF 8e-14, Spi1 2e-10). 5-7 minutes on 2 shared cores (numba
    compiles modisco's kernels on a first run)."""
    pytest.importorskip("modiscolite")
    pytest.importorskip("memelite")
    import scfanpy as sfp

    adata, genome, truth = sfp.datasets.simulate_scatac(
        n_cells=50,
        n_peaks=1500,
        tfs=TFS3,
        n_cell_types=2,
        n_active=1,
        motif_rate=0.3,
        out_dir=tmp_path / "sim",
        random_state=0,
    )
    sfp.pp.add_sequences(adata, genome=genome, width=200)
    peaks = np.flatnonzero(truth.motif.any(axis=1).to_numpy())[:400]
    sfp.tl.attribution(sfp.models.MotifModel(TFS3), adata, peaks=peaks)
    tab = sfp.tl.model_motifs(adata, n_leiden_runs=10)
    assert {"tf", "pattern", "n_seqlets", "match", "p_value", "q_value"} <= set(tab.columns)
    best = tab[tab["pattern"].str.startswith("pos")].sort_values("n_seqlets").groupby("tf").tail(1)
    assert len(best) == 3
    for r in best.itertuples():
        assert r.match.upper() == r.tf and r.q_value < 1e-3 and r.n_seqlets >= 100, tab
