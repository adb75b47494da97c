"""AnnData helpers shared by D-GEX and its baselines: gene selection, matrices, statistics, splits, scores."""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

GeneSpec = str | Sequence[str] | np.ndarray | pd.Index | pd.Series


def resolve_genes(adata: ad.AnnData, spec: GeneSpec, what: str) -> list[str]:
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


def resolve_setup(
    adata: ad.AnnData, landmarks: GeneSpec, targets: GeneSpec | None, layer: str | None
) -> tuple[list[str], list[str]]:
    """Validate a ``setup_anndata`` call; returns the landmark and target gene lists."""
    if adata.var_names.has_duplicates:
        raise ValueError("adata.var_names has duplicates; call adata.var_names_make_unique() first")
    matrix(adata, layer)  # the layer exists
    lm = resolve_genes(adata, landmarks, "landmarks")
    if targets is None:
        lm_set = set(lm)
        tg = [g for g in adata.var_names if g not in lm_set]
    else:
        tg = resolve_genes(adata, targets, "targets")
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
        raise ValueError(f"need at least 2 cells to train, got {adata.n_obs}")
    return lm, tg


def matrix(adata: ad.AnnData, layer: str | None):
    """``X`` or ``layers[layer]``."""
    if layer is None:
        if adata.X is None:
            raise ValueError("adata.X is empty; pass layer=")
        return adata.X
    if layer not in adata.layers:
        raise KeyError(f"layer {layer!r} not in adata.layers (has {list(adata.layers)})")
    return adata.layers[layer]


def columns(adata: ad.AnnData, genes: list[str], layer: str | None):
    """Cells x genes slice of X / a layer, kept sparse (CSR) when it is sparse."""
    if adata.var_names.has_duplicates:
        raise ValueError("adata.var_names has duplicates; call adata.var_names_make_unique() first")
    idx = adata.var_names.get_indexer(genes)
    if (idx < 0).any():
        missing = [g for g, i in zip(genes, idx) if i < 0]
        raise KeyError(f"{len(missing)} gene(s) not in adata.var_names: {', '.join(missing[:10])}")
    m = matrix(adata, layer)
    if sp.issparse(m):
        return sp.csr_matrix(m[:, idx], dtype=np.float32)
    return np.asarray(m[:, idx], dtype=np.float32)


def landmark_matrix(adata: ad.AnnData, landmarks: list[str], layer: str | None):
    """The model's landmark columns of ``adata`` (error naming the missing landmarks)."""
    missing = [g for g in landmarks if g not in adata.var_names]
    if missing:
        raise KeyError(
            f"{len(missing)} of the model's {len(landmarks)} landmark genes are not in "
            f"adata.var_names: {', '.join(missing[:10])}"
        )
    return columns(adata, landmarks, layer)


def dense_rows(m, rows) -> np.ndarray:
    """Rows of a dense or sparse matrix as a dense float32 array."""
    out = m[rows]
    if sp.issparse(out):
        out = out.toarray()
    return np.asarray(out, dtype=np.float32)


def mean_std(m) -> tuple[np.ndarray, np.ndarray]:
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


def column_median(
    m,
    rows: np.ndarray,
    *,
    max_rows: int = 20000,
    chunk: int = 2048,
    random_state: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """Per-column median over (a random subset of at most ``max_rows`` of) ``rows``."""
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(random_state).choice(rows, max_rows, replace=False))
    sub = m[rows]
    out = np.empty(m.shape[1], dtype=np.float32)
    for start in range(0, m.shape[1], chunk):
        block = sub[:, start : start + chunk]
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        out[start : start + chunk] = np.median(block, axis=0)
    return out


def split_cells(
    n: int, validation_size: float, random_state: int | np.random.Generator | None
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted training and validation cell indices (a random ``validation_size`` share held out)."""
    if not 0.0 <= validation_size < 1.0:
        raise ValueError(f"validation_size must be in [0, 1), got {validation_size}")
    perm = np.random.default_rng(random_state).permutation(n)
    n_val = int(round(n * validation_size))
    if validation_size > 0 and n_val == 0 and n > 1:
        n_val = 1
    if n - n_val < 1:
        raise ValueError(f"too few cells ({n}) for validation_size={validation_size}")
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def seed_int(random_state: int | np.random.Generator | None) -> int:
    """An integer seed: ``random_state`` itself, or one drawn from it (a Generator) or from entropy (None)."""
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    return int(np.random.default_rng(random_state).integers(2**31 - 1))


def target_positions(targets: list[str], genes: GeneSpec | None) -> np.ndarray:
    """Positions of ``genes`` among the model's ``targets`` (all when None)."""
    if genes is None:
        return np.arange(len(targets))
    genes = [genes] if isinstance(genes, str) else [str(g) for g in genes]
    pos = pd.Index(targets).get_indexer(genes)
    if (pos < 0).any():
        bad = [g for g, p in zip(genes, pos) if p < 0]
        raise KeyError(f"{len(bad)} gene(s) are not targets of this model: {', '.join(bad[:10])}")
    return pos


def prediction_output(
    pred: np.ndarray, adata: ad.AnnData, targets: list[str], cols: np.ndarray, as_dataframe: bool
) -> np.ndarray | pd.DataFrame:
    """``pred`` as it is, or as a DataFrame (index ``obs_names``, columns the predicted genes)."""
    if not as_dataframe:
        return pred
    return pd.DataFrame(pred, index=adata.obs_names.copy(), columns=[targets[i] for i in cols])


def score_predictions(pred: np.ndarray, truth, targets: list[str]) -> pd.DataFrame:
    """Mean absolute error and Pearson correlation per target gene (NaN for constant genes)."""
    truth = truth.toarray() if sp.issparse(truth) else truth
    mae = np.abs(pred - truth).mean(axis=0)
    pc, tc = pred - pred.mean(0), truth - truth.mean(0)
    denom = np.sqrt((pc**2).sum(0) * (tc**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denom > 0, (pc * tc).sum(0) / denom, np.nan)
    return pd.DataFrame({"mae": mae, "pearson": r}, index=pd.Index(targets, name="gene"))


class LandmarkRegressorMixin:
    """``predict`` and ``evaluate`` shared by D-GEX and its baselines.

    A subclass has ``landmarks_``, ``targets_``, ``adata``, ``is_trained`` and implements
    ``_predict_landmarks(X, cols, batch_size)``: landmarks (cells x landmarks, dense or CSR, data units)
    to the target columns ``cols`` (dense float32, data units).
    """

    landmarks_: list[str]
    targets_: list[str]

    def _check_trained(self) -> None:
        if not self.is_trained:
            raise RuntimeError(f"{type(self).__name__} is not trained; call train() first")

    def _data(self, adata: ad.AnnData | None) -> ad.AnnData:
        if adata is not None:
            return adata
        if self.adata is None:
            raise ValueError(f"this {type(self).__name__} holds no data (loaded without it); pass adata")
        return self.adata

    def _predict_landmarks(self, X, cols: np.ndarray, batch_size: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def predict(
        self,
        adata: ad.AnnData | None = None,
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
            Cells to predict (None: the training data); must contain every landmark gene in
            ``var_names`` (targets need not be present: that is the point). ``X`` or ``layer`` must be in
            the units the model was trained on.
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
        prediction : :class:`numpy.ndarray` or :class:`pandas.DataFrame`
            Dense ``float32`` cells x targets (in ``targets_`` order, or ``genes`` order).
        """
        self._check_trained()
        adata = self._data(adata)
        X = landmark_matrix(adata, self.landmarks_, layer)
        cols = target_positions(self.targets_, genes)
        pred = self._predict_landmarks(X, cols, int(batch_size))
        return prediction_output(pred, adata, self.targets_, cols, as_dataframe)

    def evaluate(
        self, adata: ad.AnnData | None = None, *, layer: str | None = None, batch_size: int = 4096
    ) -> pd.DataFrame:
        """Mean absolute error (the paper's metric) and Pearson correlation per target gene.

        ``adata`` (None: the training data) must contain the landmarks and the targets (measured), in
        ``X`` or ``layer``.

        Returns
        -------
        scores : :class:`pandas.DataFrame`
            Indexed by target gene, columns ``mae`` and ``pearson`` (NaN for constant genes).
        """
        adata = self._data(adata)
        pred = self.predict(adata, layer=layer, batch_size=batch_size)
        return score_predictions(pred, columns(adata, self.targets_, layer), self.targets_)
