from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import scfanpy as sfp

torch.set_num_threads(1)


def low_rank_adata(n_cells=300, n_lm=20, n_tg=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_cells, 3)) @ rng.normal(size=(3, n_lm + n_tg)) + 0.1 * rng.normal(
        size=(n_cells, n_lm + n_tg)
    )
    genes = [f"lm{i}" for i in range(n_lm)] + [f"tg{i}" for i in range(n_tg)]
    adata = ad.AnnData(x.astype(np.float32), var=pd.DataFrame(index=genes))
    adata.obs_names = [f"c{i}" for i in range(n_cells)]
    adata.obs["group"] = pd.Categorical(rng.integers(0, 3, n_cells).astype(str))
    adata.obsm["X_umap"] = rng.normal(size=(n_cells, 2))
    adata.uns["note"] = {"a": 1}
    return adata, genes[:n_lm], genes[n_lm:]


@pytest.fixture(scope="module")
def fitted():
    adata, lm, tg = low_rank_adata()
    sfp.models.DGEX.setup_anndata(adata, landmarks=lm)
    model = sfp.models.DGEX(adata, n_hidden=32)
    model.train(max_epochs=20, random_state=0, accelerator="cpu", enable_progress_bar=False)
    return adata, model


def test_inplace_layer_when_targets_present(fitted):
    adata, model = fitted
    a = adata.copy()
    out = sfp.tl.impute_from_landmarks(a, model, key_added="dgex")
    assert out is None
    layer = a.layers["dgex"]
    assert layer.shape == a.shape and layer.dtype == np.float32
    tg_idx = a.var_names.get_indexer(model.targets_)
    lm_idx = a.var_names.get_indexer(model.landmarks_)
    np.testing.assert_allclose(layer[:, tg_idx], model.predict(a), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer[:, lm_idx], a.X[:, lm_idx])  # measured values kept
    assert a.var["dgex"].sum() == len(model.targets_) and not a.var["dgex"].iloc[lm_idx].any()
    assert a.uns["dgex"]["params"]["model"] == "DGEX"
    assert a.uns["dgex"]["params"]["mode"] == "layer"
    np.testing.assert_array_equal(a.X, adata.X)  # X untouched


def test_copy_and_sparse_layer(fitted):
    adata, model = fitted
    a = adata.copy()
    a.layers["counts"] = sp.csr_matrix(a.X)
    b = sfp.tl.impute_from_landmarks(a, model, layer="counts", copy=True)
    assert "imputed" not in a.layers and "imputed" in b.layers
    np.testing.assert_allclose(
        b.layers["imputed"],
        sfp.tl.impute_from_landmarks(a.copy(), model, copy=True).layers["imputed"],
        atol=1e-5,
    )


def test_new_anndata_for_a_panel(fitted):
    adata, model = fitted
    panel = adata[:, model.landmarks_].copy()
    new = sfp.tl.impute_from_landmarks(panel, model, genes=["tg3", "tg0"])
    assert isinstance(new, ad.AnnData) and new.n_obs == panel.n_obs
    assert list(new.var_names) == model.landmarks_ + ["tg3", "tg0"]
    assert new.var["imputed"].sum() == 2 and new.var["landmark"].sum() == len(model.landmarks_)
    np.testing.assert_array_equal(new[:, model.landmarks_].X, panel.X)
    np.testing.assert_allclose(
        new[:, ["tg3", "tg0"]].X, model.predict(panel, genes=["tg3", "tg0"]), atol=1e-6
    )
    np.testing.assert_array_equal(new.obsm["X_umap"], panel.obsm["X_umap"])
    assert new.uns["note"] == {"a": 1} and new.uns["imputed"]["params"]["mode"] == "new_anndata"
    assert list(new.obs["group"]) == list(panel.obs["group"])
    assert "imputed" not in panel.layers  # the panel is left alone


def test_modes_and_errors(fitted):
    adata, model = fitted
    panel = adata[:, model.landmarks_]  # a view: the landmarks only -> a new AnnData of all targets
    new = sfp.tl.impute_from_landmarks(panel, model, copy=True)
    assert new.n_vars == len(model.landmarks_) + len(model.targets_)
    assert not any(k.startswith("_scvi") for k in new.uns)  # scvi's registration stays with adata
    np.testing.assert_allclose(new[:, model.targets_].X, model.predict(adata), atol=1e-6)
    with pytest.raises(KeyError, match="landmark genes are not in"):
        sfp.tl.impute_from_landmarks(adata[:, 2:].copy(), model)
    with pytest.raises(KeyError, match="layer"):
        sfp.tl.impute_from_landmarks(adata, model, layer="nope")
    untrained = adata.copy()
    sfp.models.LinearLandmarkRegressor.setup_anndata(untrained, landmarks=model.landmarks_)
    with pytest.raises(ValueError, match="not trained"):
        sfp.tl.impute_from_landmarks(untrained, sfp.models.LinearLandmarkRegressor(untrained))
    assert "imputed" not in untrained.layers  # nothing written before validation


def test_mudata_and_baseline_model(fitted):
    import mudata as md

    adata, _ = fitted
    a = adata.copy()
    sfp.models.LinearLandmarkRegressor.setup_anndata(a, landmarks=[f"lm{i}" for i in range(20)])
    lr = sfp.models.LinearLandmarkRegressor(a)
    lr.train()
    mdata = md.MuData({"rna": adata.copy()})
    out = sfp.tl.impute_from_landmarks(mdata, lr, mod="rna", key_added="lin", copy=True)
    assert isinstance(out, md.MuData) and "lin" in out["rna"].layers and "lin" not in mdata["rna"].layers
    assert sfp.tl.impute_from_landmarks(mdata, lr, mod="rna", key_added="lin") is None
    assert "lin" in mdata["rna"].layers
    assert mdata["rna"].uns["lin"]["params"]["model"] == "LinearLandmarkRegressor"
    np.testing.assert_array_equal(mdata["rna"].layers["lin"], out["rna"].layers["lin"])
