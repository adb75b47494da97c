"""D-GEX: infer target-gene expression from landmark genes, plus the paper's two baselines.

Chen, Li, Narayan, Subramanian & Xie, "Gene expression inference with deep learning",
Bioinformatics 32(12):1832-1839, 2016 (D-GEX). The LINCS L1000 idea: measure ~1,000 landmark genes and
infer the rest. The paper maps 943 landmarks to 9,520 targets on GEO microarrays with a multi-layer
perceptron (1-3 hidden layers of 3000/6000/9000 tanh units, dropout 0/10/25%), the targets split into two
halves each predicted by its own network, and compares it with linear regression and k-nearest-neighbour
regression by the mean absolute error (MAE) per gene; the best D-GEX (9000 x 3 hidden units, 25% dropout)
had a 15.33% lower MAE than linear regression on GEO.

All three regressors here share one AnnData-facing API::

    model = DGEX(n_hidden=1000, n_layers=2)  # or LinearLandmarkRegressor(), KNNLandmarkRegressor()
    model.fit(adata, landmarks=panel_genes, targets=None, layer=None)
    y = model.predict(adata_panel)  # cells x targets, in the units of the training layer
    model.save("dir")
    model = DGEX.load("dir")
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scfanpy._utils import logger

__all__ = ["DGEX", "KNNLandmarkRegressor", "LinearLandmarkRegressor"]

GeneSpec = str | Sequence[str] | np.ndarray | pd.Index | pd.Series


# ----------------------------------------------------------------------------------------------------
# AnnData helpers
# ----------------------------------------------------------------------------------------------------
def _resolve_genes(adata: ad.AnnData, spec: GeneSpec, what: str) -> list[str]:
    """Gene names from a ``var`` column name, a boolean ``var`` mask, or a list of gene names."""
    var_names = adata.var_names
    if isinstance(spec, str):
        if spec in adata.var.columns:
            mask = np.asarray(adata.var[spec])
            if mask.dtype != bool:
                raise TypeError(f"{what}: var[{spec!r}] must be boolean, got dtype {mask.dtype}")
            return list(var_names[mask])
        spec = [spec]
    arr = np.asarray(spec)
    if arr.dtype == bool:
        if arr.ndim != 1 or arr.shape[0] != adata.n_vars:
            raise ValueError(f"{what}: boolean mask has shape {arr.shape}, expected ({adata.n_vars},)")
        return list(var_names[arr])
    genes = [str(g) for g in arr.ravel()]
    if len(set(genes)) != len(genes):
        raise ValueError(f"{what}: gene list has duplicates")
    missing = [g for g in genes if g not in var_names]
    if missing:
        head = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise KeyError(f"{what}: {len(missing)} gene(s) not in adata.var_names: {head}")
    return genes


def _matrix(adata: ad.AnnData, layer: str | None):
    if layer is None:
        if adata.X is None:
            raise ValueError("adata.X is empty; pass layer=")
        return adata.X
    if layer not in adata.layers:
        raise KeyError(f"layer {layer!r} not in adata.layers (has {list(adata.layers)})")
    return adata.layers[layer]


def _columns(adata: ad.AnnData, genes: list[str], layer: str | None):
    """Cells x genes slice of X / a layer, kept sparse (CSR) when it is sparse."""
    if adata.var_names.has_duplicates:
        raise ValueError("adata.var_names has duplicates; call adata.var_names_make_unique() first")
    idx = adata.var_names.get_indexer(genes)
    if (idx < 0).any():
        missing = [g for g, i in zip(genes, idx) if i < 0]
        raise KeyError(f"{len(missing)} gene(s) not in adata.var_names: {', '.join(missing[:10])}")
    m = _matrix(adata, layer)
    if sp.issparse(m):
        return sp.csr_matrix(m[:, idx], dtype=np.float32)
    return np.asarray(m[:, idx], dtype=np.float32)


def _dense_rows(m, rows) -> np.ndarray:
    out = m[rows]
    if sp.issparse(out):
        out = out.toarray()
    return np.asarray(out, dtype=np.float32)


def _mean_std(m) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation (sparse-safe); zero-variance columns get sd 1."""
    if sp.issparse(m):
        mean = np.asarray(m.mean(axis=0), dtype=np.float64).ravel()
        sq = np.asarray(m.multiply(m).mean(axis=0), dtype=np.float64).ravel()
        var = np.maximum(sq - mean**2, 0.0)
    else:
        x = np.asarray(m, dtype=np.float64)
        mean, var = x.mean(axis=0), x.var(axis=0)
    sd = np.sqrt(var)
    sd[sd < 1e-8] = 1.0
    return mean.astype(np.float32), sd.astype(np.float32)


def _column_median(m, rows: np.ndarray, *, max_rows: int = 20000, chunk: int = 2048, seed: int = 0):
    """Per-column median over (a random subset of at most ``max_rows`` of) ``rows``."""
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
    sub = m[rows]
    out = np.empty(m.shape[1], dtype=np.float32)
    for start in range(0, m.shape[1], chunk):
        block = sub[:, start : start + chunk]
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        out[start : start + chunk] = np.median(block, axis=0)
    return out


def _split_cells(n: int, validation_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 <= validation_size < 1.0:
        raise ValueError(f"validation_size must be in [0, 1), got {validation_size}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * validation_size))
    if validation_size > 0 and n_val == 0 and n > 1:
        n_val = 1
    if n - n_val < 1:
        raise ValueError(f"too few cells ({n}) for validation_size={validation_size}")
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


# ----------------------------------------------------------------------------------------------------
# Shared base
# ----------------------------------------------------------------------------------------------------
class _LandmarkRegressor:
    """Landmark -> target regression on AnnData; subclasses implement ``_fit_std`` / ``_predict_std``.

    Landmarks (inputs) and targets (outputs) are standardised per gene with the training cells' mean and
    standard deviation, as the paper normalised each gene; predictions are returned in the original units.
    """

    _kind: ClassVar[str] = "base"
    _hparam_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.landmarks_: list[str] | None = None
        self.targets_: list[str] | None = None
        self.layer_: str | None = None
        self.x_mean_ = self.x_std_ = self.y_mean_ = self.y_std_ = None
        self.history_: pd.DataFrame = pd.DataFrame()

    # ---- public API ----------------------------------------------------------------------------------
    @property
    def is_trained(self) -> bool:
        return self.landmarks_ is not None

    @property
    def history(self) -> pd.DataFrame:
        """Per-epoch training record (empty for the closed-form baselines)."""
        return self.history_

    @property
    def hparams(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._hparam_names}

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in self.hparams.items())
        state = (
            f"{len(self.landmarks_)} landmarks -> {len(self.targets_)} targets"
            if self.is_trained
            else "untrained"
        )
        return f"{type(self).__name__}({hp}) [{state}]"

    def _prepare(self, adata, landmarks, targets, layer):
        lm = _resolve_genes(adata, landmarks, "landmarks")
        if targets is None:
            lm_set = set(lm)
            tg = [g for g in adata.var_names if g not in lm_set]
        else:
            tg = _resolve_genes(adata, targets, "targets")
        if not lm:
            raise ValueError("no landmark genes selected")
        if not tg:
            raise ValueError("no target genes selected")
        overlap = sorted(set(lm) & set(tg))
        if overlap:
            raise ValueError(
                f"landmark and target sets overlap in {len(overlap)} gene(s): {', '.join(overlap[:10])}"
            )
        if adata.n_obs < 2:
            raise ValueError(f"need at least 2 cells to fit, got {adata.n_obs}")
        X = _columns(adata, lm, layer)
        Y = _columns(adata, tg, layer)
        self.landmarks_, self.targets_, self.layer_ = lm, tg, layer
        return X, Y

    def _set_stats(self, X, Y) -> None:
        self.x_mean_, self.x_std_ = _mean_std(X)
        self.y_mean_, self.y_std_ = _mean_std(Y)

    def _std_x(self, x: np.ndarray) -> np.ndarray:
        return (x - self.x_mean_) / self.x_std_

    def _std_y(self, y: np.ndarray) -> np.ndarray:
        return (y - self.y_mean_) / self.y_std_

    def _check_trained(self) -> None:
        if not self.is_trained:
            raise RuntimeError(f"{type(self).__name__} is not trained; call fit() first")

    def _landmark_matrix(self, adata: ad.AnnData, layer: str | None):
        self._check_trained()
        missing = [g for g in self.landmarks_ if g not in adata.var_names]
        if missing:
            raise KeyError(
                f"{len(missing)} of the model's {len(self.landmarks_)} landmark genes are not in "
                f"adata.var_names: {', '.join(missing[:10])}"
            )
        return _columns(adata, self.landmarks_, layer)

    def _target_index(self, genes: GeneSpec | None) -> np.ndarray:
        if genes is None:
            return np.arange(len(self.targets_))
        genes = [genes] if isinstance(genes, str) else [str(g) for g in genes]
        pos = pd.Index(self.targets_).get_indexer(genes)
        if (pos < 0).any():
            bad = [g for g, p in zip(genes, pos) if p < 0]
            raise KeyError(f"{len(bad)} gene(s) are not targets of this model: {', '.join(bad[:10])}")
        return pos

    def predict(
        self,
        adata: ad.AnnData,
        *,
        layer: str | None = None,
        genes: GeneSpec | None = None,
        batch_size: int = 4096,
        as_dataframe: bool = False,
    ) -> np.ndarray | pd.DataFrame:
        """Predict target-gene expression from the landmarks in ``adata``.

        Parameters
        ----------
        adata
            Cells to predict; must contain every landmark gene in ``var_names`` (targets need not be
            present: that is the point). ``X`` or ``layer`` must be in the units the model was fit on.
        layer
            Layer holding the landmark expression; ``None`` uses ``X``.
        genes
            Subset of the model's targets to return (all are computed; only these are kept, so the
            dense output stays small for large panels).
        batch_size
            Cells per batch; inputs are densified one batch at a time.
        as_dataframe
            Return a :class:`~pandas.DataFrame` (index ``obs_names``, columns genes).

        Returns
        -------
        Dense ``float32`` array cells x targets (in ``targets_`` order, or ``genes`` order), or a DataFrame.
        """
        X = self._landmark_matrix(adata, layer)
        cols = self._target_index(genes)
        out = np.empty((X.shape[0], len(cols)), dtype=np.float32)
        for start in range(0, X.shape[0], batch_size):
            rows = slice(start, min(start + batch_size, X.shape[0]))
            z = self._predict_std(self._std_x(_dense_rows(X, rows)))
            out[rows] = (z * self.y_std_ + self.y_mean_)[:, cols]
        if as_dataframe:
            names = [self.targets_[i] for i in cols]
            return pd.DataFrame(out, index=adata.obs_names.copy(), columns=names)
        return out

    def evaluate(
        self, adata: ad.AnnData, *, layer: str | None = None, batch_size: int = 4096
    ) -> pd.DataFrame:
        """Mean absolute error (the paper's metric) and Pearson correlation per target gene.

        ``adata`` must contain the landmarks and the targets (measured), in ``X`` or ``layer``.

        Returns
        -------
        DataFrame indexed by target gene with columns ``mae`` and ``pearson`` (NaN for constant genes).
        """
        pred = self.predict(adata, layer=layer, batch_size=batch_size)
        truth = _columns(adata, self.targets_, layer)
        truth = truth.toarray() if sp.issparse(truth) else truth
        mae = np.abs(pred - truth).mean(axis=0)
        pc, tc = pred - pred.mean(0), truth - truth.mean(0)
        denom = np.sqrt((pc**2).sum(0) * (tc**2).sum(0))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(denom > 0, (pc * tc).sum(0) / denom, np.nan)
        return pd.DataFrame({"mae": mae, "pearson": r}, index=pd.Index(self.targets_, name="gene"))

    # ---- persistence ---------------------------------------------------------------------------------
    def save(self, dir_path: str | Path, *, overwrite: bool = False) -> None:
        """Save gene lists, hyperparameters, normalisation statistics and fitted parameters to a folder.

        Files: ``params.json`` (class, hyperparameters, landmarks, targets, layer), ``stats.npz``
        (per-gene means / standard deviations), ``history.csv`` and the model's own state file.
        """
        self._check_trained()
        d = Path(dir_path)
        if d.exists() and any(d.iterdir()) and not overwrite:
            raise FileExistsError(f"{d} exists and is not empty; pass overwrite=True")
        d.mkdir(parents=True, exist_ok=True)
        meta = {
            "class": type(self).__name__,
            "kind": self._kind,
            "hparams": self.hparams,
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
    def load(cls, dir_path: str | Path, **kwargs):
        """Load a model saved by :meth:`save` (``kwargs`` go to the model, e.g. ``accelerator='cpu'``)."""
        d = Path(dir_path)
        meta = json.loads((d / "params.json").read_text())
        if meta["class"] != cls.__name__:
            raise TypeError(f"{d} holds a {meta['class']}, not a {cls.__name__}")
        model = cls(**meta["hparams"])
        model.landmarks_, model.targets_, model.layer_ = meta["landmarks"], meta["targets"], meta["layer"]
        with np.load(d / "stats.npz") as st:
            model.x_mean_, model.x_std_ = st["x_mean"], st["x_std"]
            model.y_mean_, model.y_std_ = st["y_mean"], st["y_std"]
        hist = d / "history.csv"
        if hist.exists() and hist.stat().st_size > 1:
            model.history_ = pd.read_csv(hist)
        model._load_state(d, meta.get("extra", {}), **kwargs)
        return model

    # ---- subclass hooks --------------------------------------------------------------------------------
    def _predict_std(self, z: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _extra_meta(self) -> dict[str, Any]:
        return {}

    def _save_state(self, d: Path) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _load_state(self, d: Path, extra: dict[str, Any], **kwargs) -> None:  # pragma: no cover
        raise NotImplementedError


def _iter_std_batches(model: _LandmarkRegressor, X, Y, rows: np.ndarray, batch_size: int):
    for start in range(0, len(rows), batch_size):
        r = rows[start : start + batch_size]
        yield model._std_x(_dense_rows(X, r)), model._std_y(_dense_rows(Y, r))


def _mae_orig(model: _LandmarkRegressor, pred_std: np.ndarray, y_std: np.ndarray) -> float:
    return float((np.abs(pred_std - y_std) * model.y_std_).mean())


# ----------------------------------------------------------------------------------------------------
# Baseline 1: linear regression (LINCS' own method)
# ----------------------------------------------------------------------------------------------------
class LinearLandmarkRegressor(_LandmarkRegressor):
    """Linear regression of each target gene on all landmarks (the LINCS L1000 inference method).

    The baseline D-GEX was compared with. Fit in closed form on per-gene standardised data, accumulating
    ``Z'Z`` and ``Z'Y`` over cell batches (sparse input is never densified whole), minimising
    ``mean((Y - Z W)^2) + alpha * |W|^2`` per target. The default ``alpha`` is a tiny ridge that only
    keeps the solve stable, i.e. ordinary least squares as in the paper.

    Parameters
    ----------
    alpha
        Ridge penalty (in standardised units), or a sequence of candidates: then the one with the lowest
        MAE on a random ``validation_size`` share of the training cells is chosen and the model is refit
        on all cells (``alpha_`` holds the choice).

    Examples
    --------
    >>> lr = sfp.models.LinearLandmarkRegressor().fit(adata, landmarks="highly_variable")
    >>> pred = lr.predict(adata_panel)
    """

    _kind = "linear"
    _hparam_names = ("alpha",)

    def __init__(self, alpha: float | Sequence[float] = 1e-6):
        super().__init__()
        self.alpha = list(alpha) if isinstance(alpha, (list, tuple, np.ndarray)) else float(alpha)
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

    def fit(
        self,
        adata: ad.AnnData,
        *,
        landmarks: GeneSpec,
        targets: GeneSpec | None = None,
        layer: str | None = None,
        validation_size: float = 0.1,
        seed: int = 0,
        batch_size: int = 4096,
    ) -> LinearLandmarkRegressor:
        """Fit on ``adata`` (see :meth:`DGEX.fit` for ``landmarks`` / ``targets`` / ``layer``).

        ``validation_size`` is used only when ``alpha`` is a sequence of candidates.
        """
        X, Y = self._prepare(adata, landmarks, targets, layer)
        n = X.shape[0]
        alphas = self.alpha if isinstance(self.alpha, list) else [self.alpha]
        if len(alphas) > 1:
            tr, va = _split_cells(n, validation_size, seed)
            self._set_stats(X[tr], Y[tr])
            zz, zy = self._gram(self, X, Y, tr, batch_size)
            errs = []
            for a in alphas:
                w = self._solve(zz, zy, a)
                err = [
                    (_mae_orig(self, z @ w, y), len(z))
                    for z, y in _iter_std_batches(self, X, Y, va, batch_size)
                ]
                errs.append(sum(e * k for e, k in err) / len(va))
            self.alpha_ = float(alphas[int(np.argmin(errs))])
            logger.info(
                "LinearLandmarkRegressor: validation MAE %s -> alpha=%g", np.round(errs, 4), self.alpha_
            )
        else:
            self.alpha_ = float(alphas[0])
        self._set_stats(X, Y)
        zz, zy = self._gram(self, X, Y, np.arange(n), batch_size)
        self.coef_ = self._solve(zz, zy, self.alpha_)
        return self

    train = fit

    def _predict_std(self, z):
        return z @ self.coef_

    def _extra_meta(self):
        return {"alpha_": self.alpha_}

    def _save_state(self, d):
        np.save(d / "coef.npy", self.coef_)

    def _load_state(self, d, extra, **kwargs):
        self.alpha_ = extra.get("alpha_")
        self.coef_ = np.load(d / "coef.npy")


# ----------------------------------------------------------------------------------------------------
# Baseline 2: k-nearest-neighbour regression
# ----------------------------------------------------------------------------------------------------
class KNNLandmarkRegressor(_LandmarkRegressor):
    """k-nearest-neighbour regression: average the targets of the ``k`` training cells closest in landmarks.

    The paper's second baseline (KNN-GE). Distances are Euclidean on per-gene standardised landmarks.
    The training cells' targets are kept (sparse when the input is sparse) and averaged with a sparse
    ``cells x train`` weight matrix, so no dense training matrix is built.

    Parameters
    ----------
    n_neighbors
        ``k``, or a sequence of candidates chosen by MAE on a random ``validation_size`` share of the
        training cells (``n_neighbors_`` holds the choice).
    weights
        ``'uniform'`` (plain mean, as in the paper) or ``'distance'`` (inverse-distance weighted).

    Examples
    --------
    >>> knn = sfp.models.KNNLandmarkRegressor(n_neighbors=[5, 10, 20]).fit(adata, landmarks=panel)
    >>> pred = knn.predict(adata_panel)
    """

    _kind = "knn"
    _hparam_names = ("n_neighbors", "weights")

    def __init__(self, n_neighbors: int | Sequence[int] = 10, weights: str = "uniform"):
        super().__init__()
        if weights not in ("uniform", "distance"):
            raise ValueError(f"weights must be 'uniform' or 'distance', got {weights!r}")
        self.n_neighbors = (
            [int(k) for k in n_neighbors]
            if isinstance(n_neighbors, (list, tuple, np.ndarray))
            else int(n_neighbors)
        )
        self.weights = weights
        self.n_neighbors_: int | None = None
        self._nn = None
        self._z_train: np.ndarray | None = None
        self._y_train = None

    def _index(self, z_train):
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

    def fit(
        self,
        adata: ad.AnnData,
        *,
        landmarks: GeneSpec,
        targets: GeneSpec | None = None,
        layer: str | None = None,
        validation_size: float = 0.1,
        seed: int = 0,
        batch_size: int = 4096,
    ) -> KNNLandmarkRegressor:
        """Fit on ``adata`` (see :meth:`DGEX.fit` for ``landmarks`` / ``targets`` / ``layer``).

        ``validation_size`` is used only when ``n_neighbors`` is a sequence of candidates.
        """
        X, Y = self._prepare(adata, landmarks, targets, layer)
        n = X.shape[0]
        ks = self.n_neighbors if isinstance(self.n_neighbors, list) else [self.n_neighbors]
        if len(ks) > 1:
            tr, va = _split_cells(n, validation_size, seed)
            self._set_stats(X[tr], Y[tr])
            nn = self._index(self._std_x(_dense_rows(X, tr)))
            ytr = Y[tr]
            errs = []
            for k in ks:
                tot = 0.0
                for start in range(0, len(va), batch_size):
                    r = va[start : start + batch_size]
                    pred = self._average(nn, ytr, self._std_x(_dense_rows(X, r)), k)
                    tot += float(np.abs(pred - _dense_rows(Y, r)).sum())
                errs.append(tot / (len(va) * Y.shape[1]))
            self.n_neighbors_ = int(ks[int(np.argmin(errs))])
            logger.info(
                "KNNLandmarkRegressor: validation MAE %s -> k=%d", np.round(errs, 4), self.n_neighbors_
            )
        else:
            self.n_neighbors_ = int(ks[0])
        self._set_stats(X, Y)
        self._z_train = self._std_x(_dense_rows(X, slice(None)))
        self._y_train = Y
        self._nn = self._index(self._z_train)
        return self

    train = fit

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

    def _load_state(self, d, extra, **kwargs):
        self.n_neighbors_ = extra.get("n_neighbors_")
        self._z_train = np.load(d / "z_train.npy")
        self._y_train = (
            sp.load_npz(d / "y_train.npz") if (d / "y_train.npz").exists() else np.load(d / "y_train.npy")
        )
        self._nn = self._index(self._z_train)


# ----------------------------------------------------------------------------------------------------
# D-GEX
# ----------------------------------------------------------------------------------------------------
def _device(accelerator: str):
    import torch

    acc = accelerator.lower()
    if acc == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if acc in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("accelerator='gpu' requested but CUDA is not available")
        return torch.device("cuda")
    if acc == "cpu":
        return torch.device("cpu")
    raise ValueError(f"accelerator must be 'auto', 'cpu' or 'gpu', got {accelerator!r}")


class DGEX(_LandmarkRegressor):
    """D-GEX: a multi-layer perceptron from landmark genes to target genes (Chen et al. 2016).

    Architecture (:class:`~scfanpy.models._dgex_module.DGEXModule`): landmarks and targets standardised per
    gene; ``n_layers`` hidden layers of ``n_hidden`` tanh units, each followed by dropout; a linear output
    layer. When there are more than ``max_targets_per_network`` targets (or ``n_networks`` is given), the
    targets are split into near-equal disjoint groups, each predicted by its own sub-network reading all
    landmarks - the paper's D-GEX-10%/25% models split 9,520 targets into two halves this way.

    Paper versus defaults. The paper (943 landmarks, 9,520 targets, ~88k training profiles) tried
    3000/6000/9000 hidden units, 1-3 layers and 0/10/25% dropout; its best was 9000 x 3 with 25% dropout.
    Single-cell panels have fewer genes and noisier cells, so the defaults are smaller: 1000 units x
    2 layers, 25% dropout, at most 5000 targets per sub-network. Deviations, stated: training uses Adam
    (the authors' code: SGD with momentum 0.5, learning rate 3e-4 decayed when the training MAE rose,
    batches of 200) with an optional ``loss='mae'`` (the paper fit squared error, the default here);
    training stops early once the validation MAE has not improved for ``early_stopping_patience``
    epochs and keeps the epoch of lowest validation MAE (the paper kept that epoch too); on GPU, training
    runs in bfloat16 autocast (mixed precision). As in the authors' code, dropout acts on the hidden
    layers' outputs (not on the landmarks), hidden weights start Glorot-uniform and the read-out near zero.

    Parameters
    ----------
    n_hidden
        Units per hidden layer.
    n_layers
        Hidden layers per sub-network (``0`` gives a linear model trained by SGD).
    dropout
        Dropout rate after each hidden layer.
    n_networks
        Number of sub-networks; ``None`` uses ``ceil(n_targets / max_targets_per_network)``.
    max_targets_per_network
        Targets per sub-network when ``n_networks`` is ``None``.
    loss
        ``'mse'`` (squared error on standardised targets, the paper's objective) or ``'mae'``.
    lr
        Adam learning rate.
    weight_decay
        Adam weight decay (L2).
    seed
        Seed of the weight initialisation, the validation split and the batch order.
    accelerator
        ``'auto'`` (CUDA when available, else CPU), ``'gpu'`` or ``'cpu'``; not saved with the model
        (:meth:`load` takes its own ``accelerator=``).

    Attributes
    ----------
    landmarks_, targets_
        Gene lists, in the order of the network's inputs and outputs.
    history
        DataFrame per epoch: ``epoch``, ``train_loss``, ``validation_loss``, ``validation_mae`` (in the
        data's units), ``seconds``.
    module
        The trained :class:`torch.nn.Module`.

    Examples
    --------
    >>> import numpy as np, scanpy as sc, scfanpy as sfp
    >>> adata = sc.datasets.pbmc68k_reduced().raw.to_adata()  # log-normalised
    >>> lm = adata.var_names[np.argsort(-adata.X.toarray().var(0))[:190]]
    >>> model = sfp.models.DGEX(n_hidden=500).fit(adata, landmarks=lm, max_epochs=100)
    >>> panel = adata[:, lm].copy()  # a panel with only the landmarks
    >>> imputed = sfp.tl.impute_from_landmarks(panel, model)
    """

    _kind = "dgex"
    _hparam_names = (
        "n_hidden",
        "n_layers",
        "dropout",
        "n_networks",
        "max_targets_per_network",
        "loss",
        "lr",
        "weight_decay",
        "seed",
    )

    def __init__(
        self,
        n_hidden: int = 1000,
        n_layers: int = 2,
        dropout: float = 0.25,
        n_networks: int | None = None,
        max_targets_per_network: int = 5000,
        loss: str = "mse",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        seed: int = 0,
        accelerator: str = "auto",
    ):
        super().__init__()
        if loss not in ("mse", "mae"):
            raise ValueError(f"loss must be 'mse' or 'mae', got {loss!r}")
        if n_hidden < 1:
            raise ValueError(f"n_hidden must be >= 1, got {n_hidden}")
        if max_targets_per_network < 1:
            raise ValueError("max_targets_per_network must be >= 1")
        self.n_hidden, self.n_layers, self.dropout = int(n_hidden), int(n_layers), float(dropout)
        self.n_networks = None if n_networks is None else int(n_networks)
        self.max_targets_per_network = int(max_targets_per_network)
        self.loss, self.lr, self.weight_decay, self.seed = loss, float(lr), float(weight_decay), int(seed)
        self.accelerator = accelerator
        self.module = None
        self.n_networks_: int | None = None

    def _build(self, n_networks: int | None = None) -> None:
        from scfanpy.models._dgex_module import DGEXModule

        n_out = len(self.targets_)
        if n_networks is None:
            n_networks = self.n_networks
        if n_networks is None:
            n_networks = max(1, math.ceil(n_out / self.max_targets_per_network))
        self.n_networks_ = min(int(n_networks), n_out)
        self.module = DGEXModule(
            len(self.landmarks_),
            n_out,
            n_hidden=self.n_hidden,
            n_layers=self.n_layers,
            dropout=self.dropout,
            n_networks=self.n_networks_,
        )

    def fit(
        self,
        adata: ad.AnnData,
        *,
        landmarks: GeneSpec,
        targets: GeneSpec | None = None,
        layer: str | None = None,
        max_epochs: int = 200,
        batch_size: int = 256,
        validation_size: float = 0.1,
        early_stopping_patience: int | None = 10,
        monitor: str = "validation_mae",
        accelerator: str | None = None,
        verbose: bool = False,
    ) -> DGEX:
        """Train on ``adata``.

        Parameters
        ----------
        adata
            Training cells x genes, expression in ``X`` or ``layer`` (dense or sparse; e.g. log-normalised).
        landmarks
            Input genes: a boolean ``var`` column name (e.g. ``'highly_variable'``), a boolean mask over
            ``var_names``, or a list of gene names.
        targets
            Output genes, same forms; ``None`` = every gene that is not a landmark. Must not overlap the
            landmarks.
        layer
            Layer to read; ``None`` uses ``X``.
        max_epochs
            Maximum passes over the training cells.
        batch_size
            Cells per gradient step.
        validation_size
            Share of cells held out for early stopping (``0`` trains ``max_epochs`` without validation).
        early_stopping_patience
            Stop after this many epochs without a lower validation loss (``None`` disables); the weights of
            the best epoch are restored.
        monitor
            What early stopping and the choice of the kept epoch look at: ``'validation_mae'`` (mean
            absolute error in the data's units, what the paper's code selected on) or
            ``'validation_loss'`` (the training objective on the validation cells).
        accelerator
            ``'auto'`` (CUDA when available), ``'gpu'`` or ``'cpu'``; ``None`` keeps the constructor's.
        verbose
            Log one line per epoch.

        Returns
        -------
        ``self``, trained; :attr:`history` holds the per-epoch record.
        """
        import torch

        if monitor not in ("validation_mae", "validation_loss"):
            raise ValueError(f"monitor must be 'validation_mae' or 'validation_loss', got {monitor!r}")
        X, Y = self._prepare(adata, landmarks, targets, layer)
        dev = _device(accelerator or self.accelerator)
        tr, va = _split_cells(X.shape[0], validation_size, self.seed)
        self._set_stats(X[tr], Y[tr])
        torch.manual_seed(self.seed)
        self._build()
        if self.loss == "mae":
            # start the read-out at each target's median (the L1 optimum of a constant predictor)
            self.module.set_output_bias(self._std_y(_column_median(Y, tr, seed=self.seed)))
        self.module.to(dev)
        opt = torch.optim.Adam(self.module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        lossf = torch.nn.functional.mse_loss if self.loss == "mse" else torch.nn.functional.l1_loss
        amp = dev.type == "cuda"
        y_sd = torch.as_tensor(self.y_std_, device=dev)

        data = _TensorSource(self, X, Y, dev)
        rng = np.random.default_rng(self.seed)
        best, best_state, wait, rows = math.inf, None, 0, []
        for epoch in range(1, max_epochs + 1):
            t0 = time.perf_counter()
            self.module.train()
            order = tr[rng.permutation(len(tr))]
            tot, cnt = 0.0, 0
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                if len(idx) < 2 and len(order) > 1:
                    continue  # a lone cell gives a degenerate step
                xb, yb = data.get(idx)
                with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
                    pred = self.module(xb)
                loss = lossf(pred.float(), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tot += float(loss.detach()) * len(idx)
                cnt += len(idx)
            rec = {"epoch": epoch, "train_loss": tot / max(cnt, 1)}
            if len(va):
                vloss, vmae = self._validate(data, va, lossf, y_sd, amp, dev, batch_size=4 * batch_size)
                rec.update(validation_loss=vloss, validation_mae=vmae)
            rec["seconds"] = time.perf_counter() - t0
            rows.append(rec)
            if verbose:
                logger.info(
                    "DGEX epoch %d: %s", epoch, {k: round(v, 5) for k, v in rec.items() if k != "epoch"}
                )
            if len(va):
                if rec[monitor] < best - 1e-6:
                    best, wait = rec[monitor], 0
                    best_state = {
                        k: v.detach().to("cpu", copy=True) for k, v in self.module.state_dict().items()
                    }
                else:
                    wait += 1
                    if early_stopping_patience is not None and wait >= early_stopping_patience:
                        break
        if best_state is not None:
            self.module.load_state_dict(best_state)
        self.module.eval()
        self.history_ = pd.DataFrame(rows)
        self._device = dev
        return self

    train = fit

    def _validate(self, data, va, lossf, y_sd, amp, dev, batch_size):
        import torch

        self.module.eval()
        tl, tm = 0.0, 0.0
        with torch.no_grad():
            for start in range(0, len(va), batch_size):
                idx = va[start : start + batch_size]
                xb, yb = data.get(idx)
                with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
                    pred = self.module(xb)
                pred = pred.float()
                tl += float(lossf(pred, yb)) * len(idx)
                tm += float(((pred - yb).abs() * y_sd).mean()) * len(idx)
        return tl / len(va), tm / len(va)

    def _predict_std(self, z):
        import torch

        dev = getattr(self, "_device", None) or _device(self.accelerator)
        self.module.to(dev).eval()
        with torch.no_grad():
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                out = self.module(torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)).to(dev))
        return out.float().cpu().numpy()

    def _extra_meta(self):
        return {"n_networks_": self.n_networks_}

    def _save_state(self, d):
        import torch

        torch.save({k: v.detach().cpu() for k, v in self.module.state_dict().items()}, d / "model.pt")

    def _load_state(self, d, extra, accelerator: str | None = None, **kwargs):
        import torch

        if accelerator is not None:
            self.accelerator = accelerator
        self._build(extra.get("n_networks_"))
        state = torch.load(d / "model.pt", map_location="cpu", weights_only=True)
        self.module.load_state_dict(state)
        self._device = _device(self.accelerator)
        self.module.to(self._device).eval()


class _TensorSource:
    """Standardised training batches on the device.

    Dense data small enough (< 1 GiB) is moved to the device once; otherwise (sparse or large) rows are
    densified per batch on the CPU and copied over.
    """

    def __init__(self, model: _LandmarkRegressor, X, Y, dev):
        import torch

        self.model, self.dev = model, dev
        nbytes = 4 * X.shape[0] * (X.shape[1] + Y.shape[1])
        self.resident = nbytes < 2**30
        if self.resident:
            self.x = torch.from_numpy(model._std_x(_dense_rows(X, slice(None)))).to(dev)
            self.y = torch.from_numpy(model._std_y(_dense_rows(Y, slice(None)))).to(dev)
        else:
            self.X, self.Y = X, Y

    def get(self, idx: np.ndarray):
        import torch

        if self.resident:
            t = torch.from_numpy(idx).to(self.dev)
            return self.x[t], self.y[t]
        x = torch.from_numpy(self.model._std_x(_dense_rows(self.X, idx)))
        y = torch.from_numpy(self.model._std_y(_dense_rows(self.Y, idx)))
        return x.to(self.dev, non_blocking=True), y.to(self.dev, non_blocking=True)
