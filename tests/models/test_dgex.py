from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import scfanpy as sfp
from scfanpy.models._dgex_data import split_cells
from scfanpy.models._dgex_module import DGEXModule, split_targets

torch.set_num_threads(1)

N_LM, N_TG, RANK, NOISE = 30, 120, 4, 0.1


def low_rank_adata(n_cells=800, seed=0, nonlinear=True):
    """Genes = f(rank-4 latent factors) + noise; landmarks are the first N_LM genes."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n_cells, RANK))
    w = rng.normal(size=(RANK, N_LM + N_TG)) / np.sqrt(RANK)
    signal = z @ w
    if nonlinear:  # targets depend non-linearly on the factors (a linear map of landmarks cannot fit it)
        signal[:, N_LM:] = np.tanh(1.5 * signal[:, N_LM:]) + 0.3 * signal[:, N_LM:] ** 2
    x = signal + NOISE * rng.normal(size=signal.shape)
    genes = [f"lm{i}" for i in range(N_LM)] + [f"tg{i}" for i in range(N_TG)]
    adata = ad.AnnData(x.astype(np.float32), var=pd.DataFrame(index=genes))
    adata.obs_names = [f"c{i}" for i in range(n_cells)]
    adata.var["landmark"] = [g.startswith("lm") for g in genes]
    return adata


def make(cls, adata, *, landmarks="landmark", targets=None, layer=None, train=None, **hparams):
    """``setup_anndata`` + construction + ``train`` (``train`` holds the training arguments)."""
    cls.setup_anndata(adata, landmarks=landmarks, targets=targets, layer=layer)
    model = cls(adata, **hparams)
    kw = dict(train or {})
    if cls is sfp.models.DGEX:
        kw = {"accelerator": "cpu", "enable_progress_bar": False, **kw}
    model.train(**kw)
    return model


@pytest.fixture(scope="module")
def data():
    full = low_rank_adata(1000, seed=0)
    return full[:800].copy(), full[800:].copy()


@pytest.fixture(scope="module")
def dgex(data):
    train, _ = data
    return make(
        sfp.models.DGEX,
        train,
        n_hidden=128,
        n_layers=2,
        dropout=0.0,
        train={
            "max_epochs": 80,
            "batch_size": 128,
            "early_stopping_patience": 10,
            "plan_kwargs": {"lr": 3e-3},
            "random_state": 0,
        },
    )


def _mean_mae(train, test):
    tg = train.var_names[~train.var["landmark"].to_numpy()]
    return float(np.abs(test[:, tg].X - train[:, tg].X.mean(0)).mean())


def test_dgex_recovers_low_rank_targets(data, dgex):
    train, test = data
    ev = dgex.evaluate(test)
    mae, mean_mae = ev["mae"].mean(), _mean_mae(train, test)
    # noise alone gives MAE ~ 0.08; the mean predictor ~0.55
    assert mae < 0.2
    assert mae < 0.35 * mean_mae
    assert ev["pearson"].mean() > 0.9
    # and it beats the linear baseline on non-linear targets
    lr = make(sfp.models.LinearLandmarkRegressor, train)
    assert mae < 0.8 * lr.evaluate(test)["mae"].mean()


def test_baselines_recover_linear_low_rank():
    full = low_rank_adata(1000, seed=1, nonlinear=False)
    train, test = full[:800].copy(), full[800:].copy()
    lr = make(sfp.models.LinearLandmarkRegressor, train)
    assert lr.evaluate(test)["mae"].mean() < 0.12  # linear targets: close to the noise floor
    knn = make(sfp.models.KNNLandmarkRegressor, train, n_neighbors=[5, 10, 20])
    assert knn.n_neighbors_ in (5, 10, 20)
    assert knn.evaluate(test)["mae"].mean() < 0.5 * _mean_mae(train, test)
    ridge = make(sfp.models.LinearLandmarkRegressor, train, alpha=[1e-6, 1.0, 100.0])
    assert ridge.alpha_ in (1e-6, 1.0)  # a huge penalty is never the best on clean linear data


def test_linear_matches_numpy_least_squares(data):
    train, test = data
    lm = list(train.var_names[:N_LM])
    lr = make(sfp.models.LinearLandmarkRegressor, train, landmarks=lm, targets=["tg0", "tg5"], alpha=0.0)
    design = np.c_[np.ones(train.n_obs), train[:, lm].X]
    beta = np.linalg.lstsq(design, train[:, ["tg0", "tg5"]].X, rcond=None)[0]
    ref = np.c_[np.ones(test.n_obs), test[:, lm].X] @ beta
    np.testing.assert_allclose(lr.predict(test), ref, rtol=1e-3, atol=1e-3)


def test_shapes_history_and_outputs(data, dgex):
    _, test = data
    pred = dgex.predict(test)
    assert pred.shape == (test.n_obs, N_TG) and pred.dtype == np.float32
    df = dgex.predict(test, as_dataframe=True, genes=["tg3", "tg1"])
    assert list(df.columns) == ["tg3", "tg1"] and list(df.index) == list(test.obs_names)
    np.testing.assert_allclose(df["tg1"].to_numpy(), pred[:, 1], rtol=1e-5, atol=1e-5)
    assert dgex.landmarks_ == [f"lm{i}" for i in range(N_LM)]
    assert dgex.targets_ == [f"tg{i}" for i in range(N_TG)]
    h = dgex.history
    assert {"epoch", "train_loss", "validation_loss", "validation_mae"} <= set(h.columns)
    assert 1 <= len(h) <= 80 and h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]
    # panel without targets predicts too
    panel = test[:, dgex.landmarks_].copy()
    np.testing.assert_allclose(dgex.predict(panel), pred, rtol=1e-5, atol=1e-5)
    # small batches give the same numbers
    np.testing.assert_allclose(dgex.predict(test, batch_size=7), pred, rtol=1e-4, atol=1e-5)


def test_sub_networks_split_targets():
    groups = split_targets(10, 3)
    assert [len(g) for g in groups] == [4, 3, 3]
    assert np.array_equal(np.concatenate(groups), np.arange(10))
    m = DGEXModule(5, 10, n_hidden=8, n_layers=2, dropout=0.25, n_networks=3).eval()
    x = torch.randn(4, 5)
    out = m.network(x)
    assert out.shape == (4, 10)
    torch.testing.assert_close(out[:, 4:7], m.subnets[1](x))
    with pytest.raises(ValueError, match="n_networks"):
        split_targets(3, 4)

    adata = low_rank_adata(120, seed=2)
    model = make(sfp.models.DGEX, adata, n_hidden=16, max_targets_per_network=50, train={"max_epochs": 2})
    assert model.n_networks_ == 3 and len(model.module.subnets) == 3  # ceil(120 / 50)
    assert sum(model.module.group_sizes) == N_TG


def test_early_stopping_keeps_best_epoch():
    adata = low_rank_adata(200, seed=5)
    model = make(
        sfp.models.DGEX,
        adata,
        n_hidden=64,
        dropout=0.0,
        train={
            "max_epochs": 40,
            "early_stopping_patience": 3,
            "early_stopping_monitor": "validation_loss",
            "plan_kwargs": {"lr": 1e-2},
            "random_state": 0,
        },
    )
    h = model.history
    best = int(h["validation_loss"].idxmin())
    assert len(h) <= 40 and (len(h) == 40 or len(h) - 1 - best == 3)  # stopped 3 epochs after the best
    # the kept weights are the best epoch's: re-scoring the validation cells reproduces its loss
    _, va = split_cells(adata.n_obs, 0.1, 0)
    assert np.array_equal(np.sort(model.validation_indices), va)
    sub = adata[va]
    y_mean, y_std = model.module.y_mean.numpy(), model.module.y_std.numpy()
    z = (sub[:, model.targets_].X - y_mean) / y_std
    pz = (model.predict(sub) - y_mean) / y_std
    assert np.isclose(((pz - z) ** 2).mean(), h["validation_loss"].min(), rtol=1e-3)


def test_no_validation_trains_all_epochs_and_mae_loss():
    adata = low_rank_adata(150, seed=3)
    model = make(
        sfp.models.DGEX, adata, n_hidden=16, loss="mae", train={"max_epochs": 3, "validation_size": 0.0}
    )
    assert len(model.history) == 3 and "validation_loss" not in model.history
    assert np.isfinite(model.predict(adata)).all()


def test_same_random_state_same_model_and_continued_training():
    adata = low_rank_adata(150, seed=3)
    a = make(sfp.models.DGEX, adata, n_hidden=16, train={"max_epochs": 2, "random_state": 7})
    b = make(sfp.models.DGEX, adata, n_hidden=16, train={"max_epochs": 2, "random_state": 7})
    np.testing.assert_array_equal(a.predict(adata), b.predict(adata))
    before = a.predict(adata)
    a.train(max_epochs=2, accelerator="cpu", enable_progress_bar=False, early_stopping=False)
    assert list(a.history["epoch"]) == [1, 2, 3, 4]  # continued, record appended
    assert not np.array_equal(a.predict(adata), before)


def test_sparse_input_matches_dense(data):
    train, test = data
    sparse_train = train.copy()
    sparse_train.X = sp.csr_matrix(np.where(np.abs(train.X) < 0.3, 0, train.X))
    dense_train = sparse_train.copy()
    dense_train.X = sparse_train.X.toarray()
    for cls, hp, kw in (
        (sfp.models.LinearLandmarkRegressor, {}, {}),
        (sfp.models.KNNLandmarkRegressor, {"n_neighbors": 5}, {}),
        (sfp.models.DGEX, {"n_hidden": 16}, {"max_epochs": 3, "random_state": 1}),
    ):
        a = make(cls, sparse_train, train=kw, **hp).predict(test)
        b = make(cls, dense_train, train=kw, **hp).predict(test)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.filterwarnings("ignore:Save path contains no saved anndata")
@pytest.mark.parametrize("kind", ["dgex", "linear", "knn"])
def test_save_load_roundtrip(tmp_path, data, dgex, kind):
    train, test = data
    model = {
        "dgex": dgex,
        "linear": make(sfp.models.LinearLandmarkRegressor, train),
        "knn": make(sfp.models.KNNLandmarkRegressor, train, n_neighbors=7),
    }[kind]
    model.save(tmp_path / "m")
    with pytest.raises(ValueError, match="already exists"):
        model.save(tmp_path / "m")
    loaded = type(model).load(tmp_path / "m")
    assert loaded.landmarks_ == model.landmarks_ and loaded.targets_ == model.targets_
    assert loaded.init_params_ == model.init_params_ and loaded.is_trained
    np.testing.assert_allclose(loaded.predict(test), model.predict(test), rtol=1e-5, atol=1e-5)
    if kind == "dgex":
        pd.testing.assert_frame_equal(loaded.history, model.history, check_dtype=False)
        with pytest.raises(ValueError, match="different class"):
            sfp.models.SAILER.load(tmp_path / "m")
    else:
        with pytest.raises(TypeError, match="holds a"):
            (
                sfp.models.KNNLandmarkRegressor if kind == "linear" else sfp.models.LinearLandmarkRegressor
            ).load(tmp_path / "m")


def test_dgex_save_load_through_scvi_base(tmp_path, data, dgex):
    train, test = data
    dgex.save(tmp_path / "m")
    saved = torch.load(tmp_path / "m" / "model.pt", map_location="cpu", weights_only=False)
    assert {"model_state_dict", "var_names", "attr_dict"} <= set(saved)
    assert "y_std" in saved["model_state_dict"]  # the standardisation travels with the weights
    assert list(saved["var_names"]) == list(train.var_names)
    for adata in (None, train):  # without data, or set up again on data like the training data
        loaded = sfp.models.DGEX.load(tmp_path / "m", adata=adata, accelerator="cpu")
        assert isinstance(loaded.module, DGEXModule) and loaded.n_networks_ == dgex.n_networks_
        np.testing.assert_array_equal(loaded.predict(test), dgex.predict(test))
    assert loaded.adata is train
    np.testing.assert_array_equal(loaded.predict(), dgex.predict(train))


def test_sparse_knn_save_load(tmp_path):
    adata = low_rank_adata(100, seed=4)
    adata.X = sp.csr_matrix(np.maximum(adata.X, 0))
    knn = make(sfp.models.KNNLandmarkRegressor, adata, n_neighbors=3, weights="distance")
    knn.save(tmp_path / "k")
    again = sfp.models.KNNLandmarkRegressor.load(tmp_path / "k")
    np.testing.assert_allclose(again.predict(adata), knn.predict(adata), rtol=1e-6)


@pytest.mark.parametrize("cls", ["DGEX", "LinearLandmarkRegressor", "KNNLandmarkRegressor"])
def test_bad_inputs(data, cls):
    train, test = data
    model_cls = getattr(sfp.models, cls)
    a = ad.AnnData(train.X.copy(), var=train.var.copy())  # never set up (a copy would carry scvi's uuid)
    with pytest.raises(ValueError, match="setup_anndata"):
        model_cls(a)
    model_cls.setup_anndata(a, landmarks="landmark")
    with pytest.raises(RuntimeError, match="not trained"):
        model_cls(a).predict(test)
    with pytest.raises(KeyError, match="not in adata.var_names"):
        model_cls.setup_anndata(train, landmarks=["lm0", "lm1", "NOT_A_GENE"])
    with pytest.raises(KeyError, match="targets"):
        model_cls.setup_anndata(train, landmarks=["lm0"], targets=["tg0", "ALSO_MISSING"])
    with pytest.raises(ValueError, match="overlap"):
        model_cls.setup_anndata(train, landmarks=["lm0", "lm1", "tg0"], targets=["tg0", "tg1"])
    with pytest.raises(ValueError, match="boolean mask"):
        model_cls.setup_anndata(train, landmarks=np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="no landmark"):
        model_cls.setup_anndata(train, landmarks=np.zeros(train.n_vars, dtype=bool))
    with pytest.raises(ValueError, match="duplicates"):
        model_cls.setup_anndata(train, landmarks=["lm0", "lm0"])


def test_predict_needs_all_landmarks(data, dgex):
    _, test = data
    with pytest.raises(KeyError, match="landmark genes are not in"):
        dgex.predict(test[:, 1:].copy())
    with pytest.raises(KeyError, match="not targets"):
        dgex.predict(test, genes=["lm0"])


def test_bad_hyperparameters():
    adata = low_rank_adata(50)
    sfp.models.DGEX.setup_anndata(adata, landmarks="landmark")
    with pytest.raises(ValueError, match="loss"):
        sfp.models.DGEX(adata, loss="huber")
    with pytest.raises(ValueError, match="dropout"):
        DGEXModule(3, 3, dropout=1.0)
    sfp.models.KNNLandmarkRegressor.setup_anndata(adata, landmarks="landmark")
    with pytest.raises(ValueError, match="weights"):
        sfp.models.KNNLandmarkRegressor(adata, weights="median")
    with pytest.raises(ValueError, match="monitor"):
        sfp.models.DGEX(adata).train(max_epochs=1, early_stopping_monitor="auc")
    with pytest.raises(ValueError, match="accelerator"):
        sfp.models.DGEX(adata).train(max_epochs=1, accelerator="tpu")


def test_layer_and_gene_specs(data):
    train, test = data
    a = train.copy()
    a.layers["expr"] = a.X.copy()
    a.X = np.zeros_like(a.X)
    by_layer = make(
        sfp.models.LinearLandmarkRegressor, a, landmarks=a.var["landmark"].to_numpy(), layer="expr"
    )
    by_x = make(sfp.models.LinearLandmarkRegressor, train, landmarks=list(train.var_names[:N_LM]))
    assert by_layer.layer_ == "expr" and by_layer.landmarks_ == by_x.landmarks_
    np.testing.assert_allclose(by_layer.predict(test), by_x.predict(test), rtol=1e-5, atol=1e-5)
    one = make(sfp.models.LinearLandmarkRegressor, train, landmarks="landmark", targets="tg7")
    assert one.targets_ == ["tg7"] and one.predict(test).shape == (test.n_obs, 1)
    with pytest.raises(KeyError, match="layer"):
        sfp.models.LinearLandmarkRegressor.setup_anndata(train, landmarks="landmark", layer="nope")
