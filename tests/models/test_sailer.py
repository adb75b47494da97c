"""SAILER model: numeric cores against references, training on the simulator, I/O and bad inputs."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")
scvi = pytest.importorskip("scvi")

from scfanpy.models._sailer import SAILER, cyclical_beta  # noqa: E402
from scfanpy.models._sailer_module import SAILERModule, pairwise_gaussian_kl  # noqa: E402

torch.set_num_threads(1)


def _train(adata, *, epochs, lam=1.0, seed=0, batch_key="batch", batch_size=400, **kw):
    scvi.settings.seed = seed
    SAILER.setup_anndata(adata, batch_key=batch_key)
    model = SAILER(adata, invariance_weight=lam, **kw)
    model.train(
        max_epochs=epochs,
        batch_size=batch_size,
        n_epochs_warmup=min(10, epochs // 5),
        enable_progress_bar=False,
    )
    return model


def _depth_probe_r2(model, log_depth, n_samples=3, seed=0):
    """Depth information in z ~ q(z|x): 5-fold CV R^2 of a 15-NN regression of log depth on posterior samples.

    The penalty bounds the information the *stochastic* code z keeps about the confounders, so the
    probe reads samples of z (mean R^2 over ``n_samples`` draws), not only the posterior means.
    """
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neighbors import KNeighborsRegressor

    mu, var = model.get_latent_representation(return_dist=True)
    rng = np.random.default_rng(seed)
    cv = KFold(5, shuffle=True, random_state=seed)
    r2 = []
    for _ in range(n_samples):
        z = mu + np.sqrt(var) * rng.standard_normal(mu.shape)
        r2.append(cross_val_score(KNeighborsRegressor(15), z, log_depth, cv=cv, scoring="r2").mean())
    return float(np.mean(r2))


def _leiden_ari(z, labels, n_clusters):
    import anndata as ad
    import scanpy as sc
    from sklearn.metrics import adjusted_rand_score

    a = ad.AnnData(np.zeros((len(z), 1), dtype=np.float32))
    a.obsm["z"] = z
    sc.pp.neighbors(a, use_rep="z", random_state=0)
    best = -1.0
    for res in (0.1, 0.2, 0.3, 0.5, 0.8):
        sc.tl.leiden(a, resolution=res, flavor="igraph", n_iterations=2, random_state=0)
        if a.obs["leiden"].nunique() >= n_clusters - 1:
            best = max(best, adjusted_rand_score(labels, a.obs["leiden"]))
    return best


# ---------------------------------------------------------------- numeric cores
def test_pairwise_kl_matches_torch_reference():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(7, 4, generator=g, dtype=torch.float64)
    var = torch.rand(7, 4, generator=g, dtype=torch.float64) + 0.1
    got = pairwise_gaussian_kl(mu, var)
    from torch.distributions import Normal, kl_divergence

    ref = torch.empty(7, 7, dtype=torch.float64)
    for i in range(7):
        for j in range(7):
            ref[i, j] = kl_divergence(Normal(mu[i], var[i].sqrt()), Normal(mu[j], var[j].sqrt())).sum()
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-10, atol=1e-10)
    assert np.allclose(np.diag(got.numpy()), 0)


def test_cyclical_beta_schedule():
    b = [cyclical_beta(e, n_epochs_warmup=2, cycle_epochs=4, ratio=0.5) for e in range(10)]
    assert b == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0]


def test_default_epochs_scale_rule():
    from scfanpy.models._sailer_training import default_epochs

    # small sets overfit: fewer epochs below 2,400 cells (at least 100)
    assert default_epochs(50) == 100 and default_epochs(600) == 100 and default_epochs(1200) == 200
    # the paper's 400 in the middle, then about 8 M cell-passes, at least 20
    assert default_epochs(2400) == 400 and default_epochs(20_000) == 400
    assert default_epochs(100_000) == 80 and default_epochs(10**6) == 20


def test_module_loss_terms_and_confounders_only_in_decoder():
    m = SAILERModule(n_input=30, n_batch=3, n_hidden=(16, 8), n_latent=4)
    # encoder input width = peaks only; decoder input = latent + depth + batch one-hot
    assert m.encoder[0].in_features == 30
    assert m.decoder[0].in_features == 4 + 1 + 3
    x = (torch.rand(12, 30) < 0.3).float() * 3  # counts: binarised inside
    tensors = {
        "X": x,
        "batch": torch.randint(0, 3, (12, 1)),
        "sailer_depth": (x > 0).sum(1, keepdim=True).float().clamp_min(1),
    }
    _, _, out = m(tensors, loss_kwargs={"kl_weight": 0.0})
    rec = torch.nn.functional.binary_cross_entropy_with_logits(
        m.generative(**m._get_generative_input(tensors, m.inference(x)))["px"].logits,
        (x > 0).float(),
        reduction="none",
    )
    assert out.reconstruction_loss["reconstruction_loss"].shape == (12,)
    assert rec.shape == (12, 30)
    # with beta = 0 only reconstruction counts: (1 + lambda) * w * sum BCE (w = 1)
    np.testing.assert_allclose(
        float(out.loss.detach()),
        float(2 * out.reconstruction_loss["reconstruction_loss"].detach().sum()),
        rtol=1e-5,
    )


# ---------------------------------------------------------------- training on the simulator
@pytest.mark.slow
def test_latent_separates_types_and_drops_depth_information(sim_batches):
    """Penalty on vs off (lambda = 1 vs 0), all else equal: types separate, less depth in z."""
    adata0 = sim_batches.adata
    labels = adata0.obs["cell_type"].to_numpy()
    res = {}
    for lam in (0.0, 1.0):
        a = adata0.copy()
        model = _train(a, epochs=40, lam=lam, batch_size=128)
        res[lam] = {
            "ari": _leiden_ari(model.get_latent_representation(), labels, adata0.obs["cell_type"].nunique()),
            "depth_r2": _depth_probe_r2(model, np.log(a.obs["sailer_depth"].to_numpy())),
            "pairwise_kl": model.get_invariance_penalty(),
        }
        if lam == 1.0:  # decoder learnt that deeper cells open more peaks
            shallow = model.get_normalized_accessibility(indices=[0], depth=20.0, return_numpy=True)
            deep = model.get_normalized_accessibility(indices=[0], depth=200.0, return_numpy=True)
            assert deep.mean() > shallow.mean()
    on, off = res[1.0], res[0.0]
    assert on["ari"] > 0.8, res
    assert on["pairwise_kl"] < 0.5 * off["pairwise_kl"], res
    assert on["depth_r2"] < off["depth_r2"] - 0.03, res


# ---------------------------------------------------------------- I/O and queries
@pytest.fixture(scope="module")
def small(sim_batches):
    a = sim_batches.adata[:300, :200].copy()
    a = a[np.asarray((a.X > 0).sum(1)).ravel() > 0].copy()
    return a


@pytest.fixture(scope="module")
def trained_small(small):
    a = small.copy()
    return a, _train(a, epochs=3, n_hidden=(128, 32))


def test_sparse_input_queries_and_history(trained_small):
    a, model = trained_small
    assert sp.issparse(a.X)
    z = model.get_latent_representation()
    assert z.shape == (a.n_obs, 10) and np.isfinite(z).all()
    hist = model.history
    assert len(hist["train_loss"]) == 3
    assert "invariance_train" in hist and "beta_train" in hist
    p = model.get_normalized_accessibility(indices=np.arange(20))
    assert p.shape == (20, a.n_vars) and list(p.columns) == list(a.var_names)
    assert ((p.to_numpy() > 0) & (p.to_numpy() < 1)).all()
    # reference batch / depth: a cell decoded at the reference does not depend on its own batch label
    b1 = model.get_normalized_accessibility(
        indices=[0], transform_batch="batch0", depth=50.0, return_numpy=True
    )
    b2 = model.get_normalized_accessibility(
        indices=[0], transform_batch="batch1", depth=50.0, return_numpy=True
    )
    assert not np.allclose(b1, b2)
    thr = model.get_normalized_accessibility(threshold=0.5, return_numpy=True)
    assert sp.issparse(thr) and thr.shape == a.shape
    with pytest.raises(KeyError, match="transform_batch"):
        model.get_normalized_accessibility(transform_batch="nope")


def test_save_load_round_trip(trained_small, tmp_path):
    a, model = trained_small
    z = model.get_latent_representation()
    p = model.get_normalized_accessibility(indices=np.arange(5), return_numpy=True)
    model.save(tmp_path / "m", overwrite=True, save_anndata=False)
    loaded = SAILER.load(tmp_path / "m", adata=a)
    np.testing.assert_allclose(loaded.get_latent_representation(), z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        loaded.get_normalized_accessibility(indices=np.arange(5), return_numpy=True), p, rtol=1e-5, atol=1e-6
    )
    assert float(loaded.module.depth_mean) == pytest.approx(float(model.module.depth_mean))


def test_mudata_path(small):
    md = pytest.importorskip("mudata")
    a = small.copy()
    mdata = md.MuData({"atac": a})
    scvi.settings.seed = 0
    SAILER.setup_mudata(mdata, batch_key="batch")
    assert "sailer_depth" in mdata.mod["atac"].obs
    model = SAILER(mdata, n_hidden=(64, 16))
    model.train(max_epochs=2, n_epochs_warmup=0, enable_progress_bar=False)
    z = model.get_latent_representation()
    assert z.shape == (a.n_obs, 10) and np.isfinite(z).all()
    p = model.get_normalized_accessibility(indices=[0, 1])
    assert p.shape == (2, a.n_vars)
    with pytest.raises(ValueError, match="unknown modalities"):
        SAILER.setup_mudata(mdata, modalities={"layer": "atac", "foo": "atac"})
    with pytest.raises(KeyError, match="not in obs"):
        SAILER.setup_mudata(mdata, batch_key="no_such_column")


def test_mudata_without_atac_needs_the_modality_named(small):
    """As ``get_adata``: no modality but 'atac' is guessed, not even a MuData's only one."""
    md = pytest.importorskip("mudata")
    a = small.copy()
    a.var_names = [f"peak{i}" for i in range(a.n_vars)]
    mdata = md.MuData({"peaks": a})
    with pytest.raises(
        ValueError, match=r"no 'atac' modality \(it has 'peaks' \(\d+ x \d+\)\).*'layer': 'peaks'"
    ):
        SAILER.setup_mudata(mdata, batch_key="batch")
    with pytest.raises(KeyError, match=r"modality 'rna' not in MuData \(it has 'peaks'"):
        SAILER.setup_mudata(mdata, modalities={"layer": "rna"})
    scvi.settings.seed = 0
    SAILER.setup_mudata(mdata, batch_key="batch", modalities={"layer": "peaks"})
    model = SAILER(mdata, n_hidden=(32, 8), n_latent=4)
    model.train(max_epochs=1, n_epochs_warmup=0, enable_progress_bar=False)
    p = model.get_normalized_accessibility(indices=[0, 1])
    assert list(p.columns) == list(a.var_names)  # the registered modality's peaks
    rna = a[:, :3].copy()
    rna.var_names = ["g1", "g2", "g3"]
    mdata.mod["rna"] = rna  # a second modality does not change which one is read
    mdata.update()
    assert list(model._peak_names(mdata)) == list(a.var_names)


# ---------------------------------------------------------------- bad inputs
def test_non_binary_is_binarised_with_a_note(small, caplog):
    """The note goes through scanpy's logging: shown at ``sc.settings.verbosity = 'info'``."""
    import scanpy as sc

    a = small.copy()
    a.X = a.X * 3
    root, verbosity = sc.settings._root_logger, sc.settings.verbosity
    sc.settings.verbosity = "info"
    root.addHandler(caplog.handler)
    try:
        SAILER.setup_anndata(a, batch_key="batch")
    finally:
        root.removeHandler(caplog.handler)
        sc.settings.verbosity = verbosity
    assert any(r.levelno == logging.INFO and "binarises" in r.getMessage() for r in caplog.records)
    # binarised inside the module: counts and their binary version give the same latent
    scvi.settings.seed = 0
    m = SAILER(a, n_hidden=(64, 16))
    b = small.copy()
    b.X = (b.X > 0).astype(np.float32)
    SAILER.setup_anndata(b, batch_key="batch")
    m.is_trained_ = True  # untrained weights suffice to compare the two inputs
    za = m.get_latent_representation(a)
    zb = m.get_latent_representation(b)
    np.testing.assert_allclose(za, zb, rtol=1e-5, atol=1e-6)


def test_bad_inputs(small):
    a = small.copy()
    with pytest.raises(KeyError, match="batch_key 'nope'"):
        SAILER.setup_anndata(a, batch_key="nope")
    e = small.copy()
    X = e.X.tolil()
    X[3, :] = 0
    e.X = X.tocsr()
    with pytest.raises(ValueError, match="1 cells have no accessible peak"):
        SAILER.setup_anndata(e)
    n = small.copy()
    n.X = n.X.copy()
    n.X.data[0] = -1
    with pytest.raises(ValueError, match="negative"):
        SAILER.setup_anndata(n)
    d = small.copy()
    d.obs["dd"] = 0.0
    with pytest.raises(ValueError, match="positive"):
        SAILER.setup_anndata(d, depth_key="dd")
    with pytest.raises(KeyError, match="continuous covariate"):
        SAILER.setup_anndata(small.copy(), continuous_covariate_keys=["nope"])
    with pytest.raises(ValueError, match="invariance_weight"):
        SAILERModule(10, invariance_weight=-1)


def test_dense_input_and_continuous_covariates(small):
    a = small.copy()
    a.X = a.X.toarray()
    a.obs["cov"] = np.linspace(0, 1, a.n_obs)
    scvi.settings.seed = 0
    SAILER.setup_anndata(a, continuous_covariate_keys=["cov"])
    m = SAILER(a, n_hidden=(32, 16), n_latent=4)
    assert m.module.decoder[0].in_features == 4 + 1 + 1  # no batch given: depth + covariate
    m.train(max_epochs=2, n_epochs_warmup=1, enable_progress_bar=False)
    assert m.get_latent_representation().shape == (a.n_obs, 4)
