"""The two baselines of the D-GEX paper: linear regression (LINCS L1000) and k-nearest-neighbour regression.

Closed-form numpy/scikit-learn models, used exactly like :class:`~scfanpy.models.DGEX`::

    LinearLandmarkRegressor.setup_anndata(adata, landmarks=panel_genes)
    model = LinearLandmarkRegressor(adata, alpha=1e-6)
    model.train()
    y = model.predict(adata_panel)
    model.save("dir")
    model = LinearLandmarkRegressor.load("dir")

Landmarks (inputs) and targets (outputs) are standardised per gene with the training cells' mean and
standard deviation, as the paper normalised each gene; predictions are returned in the original units.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .. import _logging as logg
from ._dgex_data import (
    GeneSpec,
    LandmarkRegressorMixin,
    columns,
    dense_rows,
    mean_std,
    resolve_setup,
    split_cells,
)

__all__ = ["KNNLandmarkRegressor", "LinearLandmarkRegressor"]


class _LandmarkBaseline(LandmarkRegressorMixin):
    """Common base: ``setup_anndata``, construction, ``predict``/``evaluate``, ``save``/``load``, ``history``.

    Subclasses implement ``train``, ``_predict_std`` (standardised landmarks -> standardised targets)
    and ``_save_state`` / ``_load_state`` / ``_extra_meta``.
    """

    _setups: ClassVar[dict[int, tuple[weakref.ref, dict[str, Any]]]]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._setups = {}  # id(adata) -> (weak reference to it, its setup); one store per class, as in scvi

    @classmethod
    def setup_anndata(
        cls,
        adata: ad.AnnData,
        *,
        landmarks: GeneSpec,
        targets: GeneSpec | None = None,
        layer: str | None = None,
    ) -> None:
        """Register an AnnData: which genes are inputs (``landmarks``) and outputs (``targets``).

        Same arguments as :meth:`scfanpy.models.DGEX.setup_anndata`. Nothing is written into ``adata``.
        """
        lm, tg = resolve_setup(adata, landmarks, targets, layer)
        key, store = id(adata), cls._setups
        ref = weakref.ref(adata, lambda _r: store.pop(key, None))
        store[key] = (ref, {"landmarks": lm, "targets": tg, "layer": layer})

    def __init__(self, adata: ad.AnnData | None = None, registry: dict[str, Any] | None = None):
        if adata is not None:
            entry = self._setups.get(id(adata))
            if entry is None or entry[0]() is not adata:
                raise ValueError(f"Please set up your AnnData with {type(self).__name__}.setup_anndata first")
            registry = entry[1]
        elif registry is None:
            raise ValueError("adata or registry must be provided.")
        self.adata = adata
        self.landmarks_: list[str] = list(registry["landmarks"])
        self.targets_: list[str] = list(registry["targets"])
        self.layer_: str | None = registry["layer"]
        self.is_trained_ = False
        self.x_mean_ = self.x_std_ = self.y_mean_ = self.y_std_ = None
        self.history_: pd.DataFrame = pd.DataFrame()
        self.init_params_: dict[str, dict[str, Any]] = {"kwargs": {}, "non_kwargs": {}}

    # ---- state -------------------------------------------------------------------------------------
    @property
    def is_trained(self) -> bool:
        """Whether the model has been trained."""
        return self.is_trained_

    @property
    def history(self) -> pd.DataFrame:
        """Per-epoch training record, empty for the baselines (fit in closed form)."""
        return self.history_

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in self.init_params_["non_kwargs"].items())
        state = "trained" if self.is_trained else "untrained"
        return f"{type(self).__name__}({hp}) [{len(self.landmarks_)} landmarks -> {len(self.targets_)} targets, {state}]"

    def _training_matrices(self):
        if self.adata is None:
            raise ValueError(
                f"this {type(self).__name__} was loaded without data; load it with adata= to train"
            )
        return columns(self.adata, self.landmarks_, self.layer_), columns(
            self.adata, self.targets_, self.layer_
        )

    def _set_stats(self, X, Y) -> None:
        self.x_mean_, self.x_std_ = mean_std(X)
        self.y_mean_, self.y_std_ = mean_std(Y)

    def _std_x(self, x: np.ndarray) -> np.ndarray:
        return (x - self.x_mean_) / self.x_std_

    def _std_y(self, y: np.ndarray) -> np.ndarray:
        return (y - self.y_mean_) / self.y_std_

    def _predict_landmarks(self, X, cols: np.ndarray, batch_size: int) -> np.ndarray:
        out = np.empty((X.shape[0], len(cols)), dtype=np.float32)
        for start in range(0, X.shape[0], batch_size):
            rows = slice(start, min(start + batch_size, X.shape[0]))
            z = self._predict_std(self._std_x(dense_rows(X, rows)))
            out[rows] = (z * self.y_std_ + self.y_mean_)[:, cols]
        return out

    # ---- persistence -------------------------------------------------------------------------------
    def save(self, dir_path: str | Path, *, overwrite: bool = False) -> None:
        """Save gene lists, hyperparameters, normalisation statistics and fitted parameters to a folder.

        Files: ``params.json`` (class, hyperparameters, landmarks, targets, layer), ``stats.npz``
        (per-gene means / standard deviations), ``history.csv`` and the model's own state file.
        ``overwrite=False`` refuses an existing folder, as scvi-tools' ``save`` does.
        """
        self._check_trained()
        d = Path(dir_path)
        if d.exists() and not overwrite:
            raise ValueError(f"{d} already exists. Please provide another directory for saving.")
        d.mkdir(parents=True, exist_ok=True)
        meta = {
            "class": type(self).__name__,
            "hparams": self.init_params_["non_kwargs"],
            "landmarks": self.landmarks_,
            "targets": self.targets_,
            "layer": self.layer_,
            "extra": self._extra_meta(),
        }
        (d / "params.json").write_text(json.dumps(meta, indent=1))
        np.savez(
            d / "stats.npz", x_mean=self.x_mean_, x_std=self.x_std_, y_mean=self.y_mean_, y_std=self.y_std_
        )
        self.history_.to_csv(d / "history.csv", index=False)
        self._save_state(d)

    @classmethod
    def load(cls, dir_path: str | Path, adata: ad.AnnData | None = None):
        """Load a model saved by :meth:`~scvi.model.base.BaseModelClass.save`.

        ``adata`` (optional): data holding the model's landmarks and targets, kept as the model's data.
        """
        d = Path(dir_path)
        meta = json.loads((d / "params.json").read_text())
        if meta["class"] != cls.__name__:
            raise TypeError(f"{d} holds a {meta['class']}, not a {cls.__name__}")
        registry = {k: meta[k] for k in ("landmarks", "targets", "layer")}
        if adata is not None:
            resolve_setup(adata, registry["landmarks"], registry["targets"], registry["layer"])
        model = cls(None, registry=registry, **meta["hparams"])
        model.adata = adata
        with np.load(d / "stats.npz") as st:
            model.x_mean_, model.x_std_ = st["x_mean"], st["x_std"]
            model.y_mean_, model.y_std_ = st["y_mean"], st["y_std"]
        hist = d / "history.csv"
        if hist.exists() and hist.stat().st_size > 1:
            model.history_ = pd.read_csv(hist)
        model._load_state(d, meta.get("extra", {}))
        model.is_trained_ = True
        return model

    # ---- subclass hooks ------------------------------------------------------------------------------
    def _predict_std(self, z: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _extra_meta(self) -> dict[str, Any]:
        return {}

    def _save_state(self, d: Path) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _load_state(self, d: Path, extra: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def _iter_std_batches(model: _LandmarkBaseline, X, Y, rows: np.ndarray, batch_size: int):
    for start in range(0, len(rows), batch_size):
        r = rows[start : start + batch_size]
        yield model._std_x(dense_rows(X, r)), model._std_y(dense_rows(Y, r))


def _mae_orig(model: _LandmarkBaseline, pred_std: np.ndarray, y_std: np.ndarray) -> float:
    return float((np.abs(pred_std - y_std) * model.y_std_).mean())


# ----------------------------------------------------------------------------------------------------
# Baseline 1: linear regression (LINCS' own method)
# ----------------------------------------------------------------------------------------------------
class LinearLandmarkRegressor(_LandmarkBaseline):
    """Linear regression of each target gene on all landmarks (the LINCS L1000 inference method).

    The baseline D-GEX was compared with. Fit in closed form on per-gene standardised data, accumulating
    ``Z'Z`` and ``Z'Y`` over cell batches (sparse input is never densified whole), minimising
    ``mean((Y - Z W)^2) + alpha * |W|^2`` per target. The default ``alpha`` is a tiny ridge that only
    keeps the solve stable, i.e. ordinary least squares as in the paper.

    Parameters
    ----------
    adata
        AnnData registered with ``setup_anndata``.
    registry
        Used by ``load`` to rebuild a model without data.
    alpha
        Ridge penalty (in standardised units), or a sequence of candidates: then the one with the lowest
        MAE on a random ``validation_size`` share of the training cells is chosen and the model is refit
        on all cells (``alpha_`` holds the choice).

    Examples
    --------
    >>> sfp.models.LinearLandmarkRegressor.setup_anndata(adata, landmarks="highly_variable")
    >>> lr = sfp.models.LinearLandmarkRegressor(adata)
    >>> lr.train()
    >>> pred = lr.predict(adata_panel)
    """

    def __init__(
        self,
        adata: ad.AnnData | None = None,
        registry: dict[str, Any] | None = None,
        alpha: float | Sequence[float] = 1e-6,
    ):
        super().__init__(adata, registry)
        self.alpha = list(alpha) if isinstance(alpha, (list, tuple, np.ndarray)) else float(alpha)
        self.init_params_["non_kwargs"] = {"alpha": self.alpha}
        self.alpha_: float | None = None
        self.coef_: np.ndarray | None = None

    @staticmethod
    def _gram(model, X, Y, rows, batch_size):
        p, q = X.shape[1], Y.shape[1]
        zz, zy = np.zeros((p, p)), np.zeros((p, q))
        for z, y in _iter_std_batches(model, X, Y, rows, batch_size):
            z64 = z.astype(np.float64)
            zz += z64.T @ z64
            zy += z64.T @ y
        return zz / len(rows), zy / len(rows)

    @staticmethod
    def _solve(zz, zy, alpha):
        a = zz + alpha * np.eye(zz.shape[0])
        try:
            return np.linalg.solve(a, zy).astype(np.float32)
        except np.linalg.LinAlgError:
            return np.linalg.lstsq(a, zy, rcond=None)[0].astype(np.float32)

    def train(
        self,
        *,
        validation_size: float = 0.1,
        batch_size: int = 4096,
        random_state: int | np.random.Generator | None = 0,
    ) -> None:
        """Fit in closed form on the registered data.

        Parameters
        ----------
        validation_size
            Share of cells held out to choose ``alpha``; used only when ``alpha`` is a sequence.
        batch_size
            Cells per batch when accumulating ``Z'Z`` and ``Z'Y``.
        random_state
            Seed (or :class:`numpy.random.Generator`) of the validation split.
        """
        X, Y = self._training_matrices()
        alphas = self.alpha if isinstance(self.alpha, list) else [self.alpha]
        if len(alphas) > 1:
            self.alpha_ = self._choose_alpha(X, Y, alphas, validation_size, batch_size, random_state)
        else:
            self.alpha_ = float(alphas[0])
        self._set_stats(X, Y)
        zz, zy = self._gram(self, X, Y, np.arange(X.shape[0]), batch_size)
        self.coef_ = self._solve(zz, zy, self.alpha_)
        self.is_trained_ = True

    def _choose_alpha(self, X, Y, alphas, validation_size, batch_size, random_state) -> float:
        tr, va = split_cells(X.shape[0], validation_size, random_state)
        self._set_stats(X[tr], Y[tr])
        zz, zy = self._gram(self, X, Y, tr, batch_size)
        errs = []
        for a in alphas:
            w = self._solve(zz, zy, a)
            err = [
                (_mae_orig(self, z @ w, y), len(z)) for z, y in _iter_std_batches(self, X, Y, va, batch_size)
            ]
            errs.append(sum(e * k for e, k in err) / len(va))
        best = float(alphas[int(np.argmin(errs))])
        logg.info("LinearLandmarkRegressor: validation MAE %s -> alpha=%g", np.round(errs, 4), best)
        return best

    def _predict_std(self, z):
        return z @ self.coef_

    def _extra_meta(self):
        return {"alpha_": self.alpha_}

    def _save_state(self, d):
        np.save(d / "coef.npy", self.coef_)

    def _load_state(self, d, extra):
        self.alpha_ = extra.get("alpha_")
        self.coef_ = np.load(d / "coef.npy")


# ----------------------------------------------------------------------------------------------------
# Baseline 2: k-nearest-neighbour regression
# ----------------------------------------------------------------------------------------------------
class KNNLandmarkRegressor(_LandmarkBaseline):
    """k-nearest-neighbour regression: average the targets of the ``k`` training cells closest in landmarks.

    The paper's second baseline (KNN-GE). Distances are Euclidean on per-gene standardised landmarks.
    The training cells' targets are kept (sparse when the input is sparse) and averaged with a sparse
    ``cells x train`` weight matrix, so no dense training matrix is built.

    Parameters
    ----------
    adata
        AnnData registered with ``setup_anndata``.
    registry
        Used by ``load`` to rebuild a model without data.
    n_neighbors
        ``k``, or a sequence of candidates chosen by MAE on a random ``validation_size`` share of the
        training cells (``n_neighbors_`` holds the choice).
    weights
        ``'uniform'`` (plain mean, as in the paper) or ``'distance'`` (inverse-distance weighted).

    Examples
    --------
    >>> sfp.models.KNNLandmarkRegressor.setup_anndata(adata, landmarks=panel)
    >>> knn = sfp.models.KNNLandmarkRegressor(adata, n_neighbors=[5, 10, 20])
    >>> knn.train()
    >>> pred = knn.predict(adata_panel)
    """

    def __init__(
        self,
        adata: ad.AnnData | None = None,
        registry: dict[str, Any] | None = None,
        n_neighbors: int | Sequence[int] = 10,
        weights: Literal["uniform", "distance"] = "uniform",
    ):
        if weights not in ("uniform", "distance"):
            raise ValueError(f"weights must be 'uniform' or 'distance', got {weights!r}")
        super().__init__(adata, registry)
        self.n_neighbors = (
            [int(k) for k in n_neighbors]
            if isinstance(n_neighbors, (list, tuple, np.ndarray))
            else int(n_neighbors)
        )
        self.weights = weights
        self.init_params_["non_kwargs"] = {"n_neighbors": self.n_neighbors, "weights": weights}
        self.n_neighbors_: int | None = None
        self._nn = None
        self._z_train: np.ndarray | None = None
        self._y_train = None

    @staticmethod
    def _index(z_train):
        from sklearn.neighbors import NearestNeighbors

        return NearestNeighbors().fit(z_train)

    def _average(self, nn, y_train, z, k):
        k = min(k, nn.n_samples_fit_)
        dist, ind = nn.kneighbors(z, n_neighbors=k)
        if self.weights == "distance":
            w = 1.0 / np.maximum(dist, 1e-12)
            w /= w.sum(axis=1, keepdims=True)
        else:
            w = np.full(ind.shape, 1.0 / k)
        W = sp.csr_matrix(
            (w.ravel(), ind.ravel(), np.arange(0, ind.size + 1, k)), shape=(len(z), y_train.shape[0])
        )
        out = W @ y_train
        return np.asarray(out.toarray() if sp.issparse(out) else out, dtype=np.float32)

    def train(
        self,
        *,
        validation_size: float = 0.1,
        batch_size: int = 4096,
        random_state: int | np.random.Generator | None = 0,
    ) -> None:
        """Index the training cells (standardised landmarks) and keep their targets.

        Parameters
        ----------
        validation_size
            Share of cells held out to choose ``k``; used only when ``n_neighbors`` is a sequence.
        batch_size
            Validation cells per batch while choosing ``k``.
        random_state
            Seed (or :class:`numpy.random.Generator`) of the validation split.
        """
        X, Y = self._training_matrices()
        ks = self.n_neighbors if isinstance(self.n_neighbors, list) else [self.n_neighbors]
        if len(ks) > 1:
            self.n_neighbors_ = self._choose_k(X, Y, ks, validation_size, batch_size, random_state)
        else:
            self.n_neighbors_ = int(ks[0])
        self._set_stats(X, Y)
        self._z_train = self._std_x(dense_rows(X, slice(None)))
        self._y_train = Y
        self._nn = self._index(self._z_train)
        self.is_trained_ = True

    def _choose_k(self, X, Y, ks, validation_size, batch_size, random_state) -> int:
        tr, va = split_cells(X.shape[0], validation_size, random_state)
        self._set_stats(X[tr], Y[tr])
        nn = self._index(self._std_x(dense_rows(X, tr)))
        ytr = Y[tr]
        errs = []
        for k in ks:
            tot = 0.0
            for start in range(0, len(va), batch_size):
                r = va[start : start + batch_size]
                pred = self._average(nn, ytr, self._std_x(dense_rows(X, r)), k)
                tot += float(np.abs(pred - dense_rows(Y, r)).sum())
            errs.append(tot / (len(va) * Y.shape[1]))
        best = int(ks[int(np.argmin(errs))])
        logg.info("KNNLandmarkRegressor: validation MAE %s -> k=%d", np.round(errs, 4), best)
        return best

    def _predict_std(self, z):
        return self._std_y(self._average(self._nn, self._y_train, z, self.n_neighbors_))

    def _extra_meta(self):
        return {"n_neighbors_": self.n_neighbors_}

    def _save_state(self, d):
        np.save(d / "z_train.npy", self._z_train)
        if sp.issparse(self._y_train):
            sp.save_npz(d / "y_train.npz", sp.csr_matrix(self._y_train))
        else:
            np.save(d / "y_train.npy", self._y_train)

    def _load_state(self, d, extra):
        self.n_neighbors_ = extra.get("n_neighbors_")
        self._z_train = np.load(d / "z_train.npy")
        self._y_train = (
            sp.load_npz(d / "y_train.npz") if (d / "y_train.npz").exists() else np.load(d / "y_train.npy")
        )
        self._nn = self._index(self._z_train)
