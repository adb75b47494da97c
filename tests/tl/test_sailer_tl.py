"""sfp.tl.sailer: one call trains SAILER and writes obsm['X_sailer'] for the scanpy chain."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("scvi")

import scfanpy as sfp


@pytest.fixture(scope="module")
def small(sim_batches):
    a = sim_batches.adata[:240, :200].copy()
    return a[np.asarray((a.X > 0).sum(1)).ravel() > 0].copy()


def test_sailer_writes_latent_and_params_then_scanpy_clusters(small):
    import scanpy as sc
    import torch

    torch.set_num_threads(1)
    a = small.copy()
    model = sfp.tl.sailer(
        a, batch_key="batch", n_latent=6, max_epochs=3, model_kwargs={"n_hidden": (64, 16)}, return_model=True
    )
    assert isinstance(model, sfp.models.SAILER)
    z = a.obsm["X_sailer"]
    assert z.shape == (a.n_obs, 6) and z.dtype == np.float32 and np.isfinite(z).all()
    np.testing.assert_allclose(z, model.get_latent_representation(), rtol=1e-5, atol=1e-6)
    # scanpy's convention (obsm['X_pca'] + uns['pca']): the params live under the key without 'X_'
    assert "X_sailer" not in a.uns
    params = a.uns["sailer"]["params"]
    assert params["batch_key"] == "batch" and params["max_epochs"] == 3 and params["n_latent"] == 6
    assert np.isfinite(params["final_train_loss"])
    assert "sailer_depth" in a.obs
    # the written latent keeps the simulated cell types, row for row (4 balanced types: chance 0.25).
    # Measured at this size (240 cells x 200 peaks, 3 epochs) over random_state 0-3: 15-NN accuracy
    # 0.46-0.55, Leiden ARI 0.05-0.13; shuffled rows give about 0.25 and 0.
    from sklearn.metrics import adjusted_rand_score
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    types = a.obs["cell_type"].to_numpy()
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    assert cross_val_score(KNeighborsClassifier(15), z, types, cv=cv).mean() > 0.4
    sc.pp.neighbors(a, use_rep="X_sailer")
    sc.tl.leiden(a, flavor="igraph", n_iterations=2)
    assert adjusted_rand_score(types, a.obs["leiden"]) > 0.03


def test_sailer_copy_key_added_and_mudata(small):
    md = pytest.importorskip("mudata")
    a = small.copy()
    out = sfp.tl.sailer(a, max_epochs=1, key_added="X_s2", copy=True, model_kwargs={"n_hidden": (32, 8)})
    assert "X_s2" in out.obsm and "X_s2" not in a.obsm
    assert "s2" in out.uns and "s2" not in a.uns and "sailer_depth" not in a.obs
    mdata = md.MuData({"atac": small.copy()})
    res = sfp.tl.sailer(mdata, batch_key="batch", max_epochs=1, model_kwargs={"n_hidden": (32, 8)})
    assert res is None
    assert mdata.mod["atac"].obsm["X_sailer"].shape == (small.n_obs, 10)
    assert mdata.obsm["X_sailer"].shape == (small.n_obs, 10)


def test_sailer_errors(small):
    with pytest.raises(KeyError, match="batch_key"):
        sfp.tl.sailer(small.copy(), batch_key="missing", max_epochs=1)
    with pytest.raises(ValueError, match="n_latent"):
        sfp.tl.sailer(small.copy(), n_latent=0, max_epochs=1)
    with pytest.raises(TypeError, match="mod="):
        sfp.tl.sailer(small.copy(), mod="atac", max_epochs=1)
    # inputs are checked before anything is written
    a = small.copy()
    with pytest.raises(ValueError, match="max_epochs"):
        sfp.tl.sailer(a, max_epochs=0)
    assert "sailer_depth" not in a.obs and "sailer" not in a.uns
