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
    params = a.uns["X_sailer"]["params"]
    assert params["batch_key"] == "batch" and params["max_epochs"] == 3 and params["n_latent"] == 6
    assert np.isfinite(params["final_train_loss"])
    assert "sailer_depth" in a.obs
    sc.pp.neighbors(a, use_rep="X_sailer")
    sc.tl.leiden(a, flavor="igraph", n_iterations=2)
    assert a.obs["leiden"].nunique() >= 1


def test_sailer_copy_key_added_and_mudata(small):
    md = pytest.importorskip("mudata")
    a = small.copy()
    out = sfp.tl.sailer(a, max_epochs=1, key_added="X_s2", copy=True, model_kwargs={"n_hidden": (32, 8)})
    assert "X_s2" in out.obsm and "X_s2" not in a.obsm
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
