"""D-GEX: infer target-gene expression from landmark genes, on the scvi-tools model base.

Chen, Li, Narayan, Subramanian & Xie, "Gene expression inference with deep learning",
Bioinformatics 32(12):1832-1839, 2016 (D-GEX). The LINCS L1000 idea: measure ~1,000 landmark genes and
infer the rest. The paper maps 943 landmarks to 9,520 targets on GEO microarrays with a multi-layer
perceptron (1-3 hidden layers of 3000/6000/9000 tanh units, dropout 0/10/25%), the targets split into two
halves each predicted by its own network, and compares it with linear regression and k-nearest-neighbour
regression by the mean absolute error (MAE) per gene; the best D-GEX (9000 x 3 hidden units, 25% dropout)
had a 15.33% lower MAE than linear regression on GEO.

D-GEX and the two baselines (:mod:`scfanpy.models._dgex_baselines`) are used the same way::

    DGEX.setup_anndata(adata, landmarks=panel_genes, targets=None, layer=None)
    model = DGEX(adata, n_hidden=1000, n_layers=2)  # or LinearLandmarkRegressor, KNNLandmarkRegressor
    model.train()
    y = model.predict(adata_panel)  # cells x targets, in the units of the training layer
    model.save("dir")
    model = DGEX.load("dir")
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import torch
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager, fields
from scvi.model.base import BaseModelClass

from .._docs import doc_params
from .._torch import predict_batched, resolve_device
from .._utils import check_model_file, reading_model
from ._dgex_data import (
    GeneSpec,
    LandmarkRegressorMixin,
    column_median,
    columns,
    dense_rows,
    mean_std,
    resolve_setup,
    seed_int,
    split_cells,
)
from ._dgex_module import DGEXModule
from ._dgex_training import DGEXDataSplitter, DGEXTrainingPlan, DGEXTrainRunner, Monitor

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["DGEX", "DGEXTrainingPlan"]

_ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")


class DGEX(LandmarkRegressorMixin, BaseModelClass):
    """D-GEX: a multi-layer perceptron from landmark genes to target genes (Chen et al. 2016).

    Architecture (:class:`~scfanpy.models.DGEXModule`): landmarks and targets standardised per
    gene with the training cells' mean and standard deviation (as the paper normalised each gene);
    ``n_layers`` hidden layers of ``n_hidden`` tanh units, each followed by dropout; a linear output
    layer; predictions are returned in the data's units. When there are more than
    ``max_targets_per_network`` targets (or ``n_networks`` is given), the targets are split into
    near-equal disjoint groups, each predicted by its own sub-network reading all landmarks - the paper's
    D-GEX-10%/25% models split 9,520 targets into two halves this way.

    Paper versus defaults. The paper (943 landmarks, 9,520 targets, ~88k training profiles) tried
    3000/6000/9000 hidden units, 1-3 layers and 0/10/25% dropout; its best was 9000 x 3 with 25% dropout.
    Single-cell panels have fewer genes and noisier cells, so the defaults are smaller: 1000 units x
    2 layers, 25% dropout, at most 5000 targets per sub-network. Deviations, stated: training uses Adam
    (the authors' code: SGD with momentum 0.5, learning rate 3e-4 decayed when the training MAE rose,
    batches of 200) with an optional ``loss='mae'`` (the paper fit squared error, the default here);
    training stops early once the validation MAE has not improved for ``early_stopping_patience``
    epochs and keeps the epoch of lowest validation MAE (the paper kept that epoch too); on GPU, the
    network runs in bfloat16 autocast (mixed precision). As in the authors' code, dropout acts on the
    hidden layers' outputs (not on the landmarks), hidden weights start Glorot-uniform and the read-out
    near zero.

    Training goes through scvi-tools (:class:`~scfanpy.models.DGEXTrainingPlan`): a
    :class:`~scvi.dataloaders.DataSplitter` over the training / validation cells drawn from
    ``random_state``, a :class:`~scvi.train.TrainingPlan` subclass that records each epoch, stops early and
    restores the best epoch, and a :class:`~scvi.train.TrainRunner`; ``save`` / ``load`` are the base
    class's.

    Parameters
    ----------
    adata
        AnnData registered with ``setup_anndata``.
    registry
        Used by ``load`` to rebuild a model without data.
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

    Attributes
    ----------
    landmarks_, targets_
        Gene lists, in the order of the network's inputs and outputs.
    layer_
        Layer the model was trained on (None: ``X``).
    n_networks_
        Number of sub-networks.
    history
        DataFrame per epoch: ``epoch``, ``train_loss``, ``validation_loss``, ``validation_mae`` (in the
        data's units), ``seconds``.
    module
        The :class:`~scfanpy.models.DGEXModule`.

    Examples
    --------
    >>> import numpy as np, scanpy as sc, scfanpy as sfp
    >>> adata = sc.datasets.pbmc68k_reduced().raw.to_adata()  # log-normalised
    >>> lm = adata.var_names[np.argsort(-adata.X.toarray().var(0))[:190]]
    >>> sfp.models.DGEX.setup_anndata(adata, landmarks=lm)
    >>> model = sfp.models.DGEX(adata, n_hidden=500)
    >>> model.train(max_epochs=100)
    >>> panel = adata[:, lm].copy()  # a panel with only the landmarks
    >>> imputed = sfp.tl.impute_from_landmarks(panel, model)
    """

    _module_cls = DGEXModule
    _training_plan_cls = DGEXTrainingPlan
    _data_splitter_cls = DGEXDataSplitter
    _train_runner_cls = DGEXTrainRunner

    def __init__(
        self,
        adata: AnnData | None = None,
        registry: dict | None = None,
        n_hidden: int = 1000,
        n_layers: int = 2,
        dropout: float = 0.25,
        n_networks: int | None = None,
        max_targets_per_network: int = 5000,
        loss: Literal["mse", "mae"] = "mse",
    ):
        if loss not in ("mse", "mae"):
            raise ValueError(f"loss must be 'mse' or 'mae', got {loss!r}")
        if n_hidden < 1:
            raise ValueError(f"n_hidden must be >= 1, got {n_hidden}")
        if max_targets_per_network < 1:
            raise ValueError("max_targets_per_network must be >= 1")
        super().__init__(adata, registry)
        setup = self.registry_["setup_args"]
        self.landmarks_ = list(setup["landmarks"])
        self.targets_ = list(setup["targets"])
        self.layer_ = setup["layer"]
        n_out = len(self.targets_)
        nets = n_networks if n_networks is not None else math.ceil(n_out / max_targets_per_network)
        self.n_networks_ = min(max(int(nets), 1), n_out)
        var_names = pd.Index(self.get_var_names())
        self.module = self._module_cls(
            len(self.landmarks_),
            n_out,
            n_hidden=int(n_hidden),
            n_layers=int(n_layers),
            dropout=float(dropout),
            n_networks=self.n_networks_,
            loss=loss,
            landmark_index=var_names.get_indexer(self.landmarks_),
            target_index=var_names.get_indexer(self.targets_),
        )
        self.history_ = pd.DataFrame()
        self._model_summary_string = (
            f"DGEX model: {len(self.landmarks_)} landmarks -> {n_out} targets, n_hidden={n_hidden}, "
            f"n_layers={n_layers}, dropout={dropout}, n_networks={self.n_networks_}, loss={loss!r}"
        )
        self.init_params_ = self._get_init_params(locals())

    # ------------------------------------------------------------------ setup
    @classmethod
    def setup_anndata(
        cls,
        adata: AnnData,
        *,
        landmarks: GeneSpec,
        targets: GeneSpec | None = None,
        layer: str | None = None,
        **kwargs,
    ) -> None:
        """Register an AnnData (cells x genes) with D-GEX: which genes are inputs, which outputs.

        Parameters
        ----------
        adata
            Training cells x genes, expression in ``X`` or ``layer`` (dense or sparse; e.g.
            log-normalised).
        landmarks
            Input genes: a boolean ``var`` column name (e.g. ``'highly_variable'``), a boolean mask over
            ``var_names``, or a list of gene names.
        targets
            Output genes, same forms; ``None`` = every gene that is not a landmark. Must not overlap the
            landmarks.
        layer
            Layer to read; ``None`` uses ``X``.
        **kwargs
            Passed to :meth:`scvi.data.AnnDataManager.register_fields`.
        """
        landmarks, targets = resolve_setup(adata, landmarks, targets, layer)
        setup_method_args = cls._get_setup_method_args(**locals())
        anndata_fields = [fields.LayerField(REGISTRY_KEYS.X_KEY, layer, is_count_data=False)]
        adata_manager = AnnDataManager(fields=anndata_fields, setup_method_args=setup_method_args)
        adata_manager.register_fields(adata, **kwargs)
        cls.register_manager(adata_manager)

    # ------------------------------------------------------------------ training
    @doc_params()
    def train(
        self,
        max_epochs: int = 200,
        *,
        batch_size: int = 256,
        validation_size: float = 0.1,
        early_stopping: bool = True,
        early_stopping_patience: int = 10,
        early_stopping_monitor: Monitor = "validation_mae",
        accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto",
        devices: int | list[int] | str = 1,
        random_state: int | np.random.Generator | None = 0,
        datasplitter_kwargs: dict | None = None,
        plan_kwargs: dict | None = None,
        **trainer_kwargs,
    ) -> None:
        """Train with Adam; stop early and keep the best epoch on a random share of validation cells.

        A model that has not been trained yet is initialised from ``random_state`` here (weights, and the
        per-gene standardisation from its training cells), so one seed fixes the weights, the
        validation cells, the minibatch order and dropout. Training a trained model again continues
        from its weights and appends to :attr:`history`.

        Parameters
        ----------
        max_epochs
            Maximum passes over the training cells.
        batch_size
            Cells per gradient step.
        validation_size
            Share of cells held out for early stopping and the choice of the kept epoch (``0`` trains
            ``max_epochs`` without validation).
        early_stopping
            Stop after ``early_stopping_patience`` epochs without improvement. With validation cells the
            weights of the best epoch are restored either way.
        early_stopping_patience
            Epochs without a lower monitored value before stopping.
        early_stopping_monitor
            What early stopping and the kept epoch look at: ``'validation_mae'`` (mean absolute error in
            the data's units, what the paper's code selected on) or ``'validation_loss'`` (the training
            objective on the validation cells).
        {accelerator}
        devices
            Devices to train on; one device (the minibatch order and the kept epoch are not
            distributed).
        {random_state}
        datasplitter_kwargs
            Passed to scvi's :class:`~scvi.dataloaders.DataSplitter` subclass (e.g. ``pin_memory``).
        plan_kwargs
            Passed to :class:`~scfanpy.models.DGEXTrainingPlan`: Adam's ``lr`` (default
            ``1e-3``) and ``weight_decay`` (L2, default ``0``), ``min_delta``, ...
        **trainer_kwargs
            Passed to :class:`~scvi.train.Trainer` (e.g. ``enable_progress_bar=False``).
        """
        _check_train_args(max_epochs, early_stopping_monitor, accelerator)
        if self.adata is None:
            raise ValueError("this DGEX was loaded without data; load it with adata= to train it")
        seed = seed_int(random_state)
        train_idx, val_idx = split_cells(self.adata.n_obs, validation_size, seed)
        torch.manual_seed(seed)
        if not self.is_trained_:
            self._initialize(train_idx, seed)
        self.module.train()
        splitter = self._data_splitter_cls(
            self.adata_manager,
            train_idx,
            val_idx,
            batch_size=batch_size,
            random_state=seed,
            **(datasplitter_kwargs or {}),
        )
        plan = self._training_plan_cls(
            self.module,
            monitor=early_stopping_monitor,
            early_stopping_patience=early_stopping_patience if early_stopping else None,
            **(plan_kwargs or {}),
        )
        trainer_kwargs.setdefault("check_val_every_n_epoch", 1 if len(val_idx) else None)
        runner = self._train_runner_cls(
            self,
            training_plan=plan,
            data_splitter=splitter,
            max_epochs=max_epochs,
            accelerator=accelerator,
            devices=devices,
            **trainer_kwargs,
        )
        runner()

    def _initialize(self, train_idx: np.ndarray, random_state: int) -> None:
        """Fresh weights, standardisation from the training cells, and (L1 loss) read-out at the median."""
        X = columns(self.adata, self.landmarks_, self.layer_)
        Y = columns(self.adata, self.targets_, self.layer_)
        x_mean, x_std = mean_std(X[train_idx])
        y_mean, y_std = mean_std(Y[train_idx])
        self.module.reset_parameters()
        self.module.set_standardization(x_mean, x_std, y_mean, y_std)
        if self.module.objective == "mae":
            # the L1 optimum of a constant predictor: each target's median
            self.module.set_output_bias(
                (column_median(Y, train_idx, random_state=random_state) - y_mean) / y_std
            )

    # ------------------------------------------------------------------ queries
    def _predict_landmarks(self, X, cols: np.ndarray, batch_size: int) -> np.ndarray:
        if X.shape[0] == 0:
            return np.empty((0, len(cols)), dtype=np.float32)
        self.module.eval()
        keep = torch.as_tensor(cols, dtype=torch.long, device=self.device)
        return predict_batched(
            lambda x: self.module.predict_targets(x)[:, keep],
            [np.arange(X.shape[0])],  # row numbers: only their count is used, rows come from prepare
            batch_size=batch_size,
            device=self.device,
            prepare=lambda lo, hi: [dense_rows(X, slice(lo, hi))],
        )

    @classmethod
    def load(cls, dir_path: str, adata: AnnData | None = None, **kwargs) -> DGEX:
        """Load a model saved with :meth:`~scvi.model.base.BaseModelClass.save` (scvi-tools' format).

        Parameters
        ----------
        dir_path
            Folder written by :meth:`~scvi.model.base.BaseModelClass.save`.
        adata
            Data set up like the training data, to train further or predict without ``adata=``; ``None``
            loads the model alone (enough for :meth:`predict` on any data holding the landmarks).
        **kwargs
            Passed to :meth:`scvi.model.base.BaseModelClass.load` (``accelerator``, ``device``, ...).

        Returns
        -------
        model : DGEX
            The loaded model.

        Raises
        ------
        FileNotFoundError
            ``dir_path`` is not a folder holding ``model.pt``.
        OSError
            ``model.pt`` is empty, truncated or corrupted (the message names it and says it is damaged).
        """
        path = check_model_file(dir_path, kwargs.get("prefix"), backup_url=kwargs.get("backup_url"))
        with warnings.catch_warnings(), reading_model(path):
            warnings.filterwarnings("ignore", message="Save path contains no saved anndata")
            return super().load(dir_path, adata=adata, **kwargs)


def _check_train_args(max_epochs: int, monitor: str, accelerator: str) -> None:
    if max_epochs < 1:
        raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
    if monitor not in ("validation_mae", "validation_loss"):
        raise ValueError(f"monitor must be 'validation_mae' or 'validation_loss', got {monitor!r}")
    if accelerator not in _ACCELERATORS:
        raise ValueError(f"accelerator must be one of {_ACCELERATORS}, got {accelerator!r}")
    resolve_device(None if accelerator == "auto" else accelerator)  # a GPU asked for must exist
