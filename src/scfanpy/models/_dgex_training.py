"""Training D-GEX through scvi-tools: data splitter, training plan and train runner.

The pieces differ from scvi-tools' defaults only where D-GEX's training needs it:

* :class:`DGEXDataSplitter` takes the training / validation cells from the model (one ``random_state``
  fixes them) and draws the order of the training cells from a numpy generator every epoch, dropping a
  final minibatch of a single cell; the validation cells go in batches of ``4 * batch_size``.
* :class:`DGEXTrainingPlan` records one row per epoch (``train_loss``, ``validation_loss``,
  ``validation_mae`` in the data's units, ``seconds``), stops early on the monitored value and keeps the
  weights of the best epoch.
* :class:`DGEXTrainRunner` stores that record as the model's ``history``.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Literal

import numpy as np
import pandas as pd
import torch
from scvi.dataloaders import DataSplitter
from scvi.train import TrainingPlan, TrainRunner
from torch.utils.data import DataLoader, Sampler

from .. import _logging as logg
from ._dgex_module import DGEXModule

__all__ = ["DGEXDataSplitter", "DGEXTrainingPlan", "DGEXTrainRunner"]

Monitor = Literal["validation_mae", "validation_loss"]


class _EpochOrderSampler(Sampler):
    """Minibatches of positions ``0..n-1``, in a new random order every epoch.

    The order is ``rng.permutation(n)``; a last minibatch of one cell is skipped (it gives a
    degenerate step) unless it is the only cell.
    """

    def __init__(self, n: int, batch_size: int, rng: np.random.Generator):
        self.n, self.batch_size, self.rng = int(n), int(batch_size), rng

    def __iter__(self):
        order = self.rng.permutation(self.n)
        for start in range(0, self.n, self.batch_size):
            idx = order[start : start + self.batch_size]
            if len(idx) < 2 and self.n > 1:
                continue
            yield idx.tolist()

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + int(rest >= 2 or (rest == 1 and self.n == 1))


class DGEXDataSplitter(DataSplitter):
    """:class:`~scvi.dataloaders.DataSplitter` over given training / validation cells.

    Parameters
    ----------
    adata_manager
        The model's :class:`~scvi.data.AnnDataManager`.
    train_idx, val_idx
        Cell indices (``val_idx`` may be empty).
    batch_size
        Training minibatch size.
    random_state
        Seed of the per-epoch order of the training cells.
    **kwargs
        Passed to :class:`~scvi.dataloaders.DataSplitter` (``pin_memory``, ...).
    """

    def __init__(
        self,
        adata_manager,
        train_idx: np.ndarray,
        val_idx: np.ndarray,
        *,
        batch_size: int,
        random_state: int,
        **kwargs,
    ):
        with warnings.catch_warnings():  # a lone last cell is skipped by the sampler instead
            warnings.filterwarnings("ignore", message="Last batch will have a small size")
            super().__init__(
                adata_manager,
                external_indexing=[
                    np.asarray(train_idx),
                    np.asarray(val_idx),
                    np.array([], dtype=np.int64),
                ],
                batch_size=int(batch_size),
                # the loaders draw their base seed from here, not from torch's global generator (which
                # drives dropout)
                generator=torch.Generator(),
                **kwargs,
            )
        self.rng = np.random.default_rng(random_state)

    def train_dataloader(self) -> DataLoader:
        """Training cells in :class:`_EpochOrderSampler` order, one call to the dataset per minibatch."""
        dataset = self.adata_manager.create_torch_dataset(
            indices=self.train_idx, load_sparse_tensor=self.load_sparse_tensor
        )
        sampler = _EpochOrderSampler(len(self.train_idx), self.data_loader_kwargs["batch_size"], self.rng)
        return DataLoader(
            dataset,
            sampler=sampler,
            batch_size=None,
            pin_memory=self.pin_memory,
            generator=self.data_loader_kwargs["generator"],
        )

    def val_dataloader(self):
        """Validation cells in order, ``4 * batch_size`` per minibatch (None without validation cells)."""
        if len(self.val_idx) == 0:
            return None
        kwargs = dict(self.data_loader_kwargs)
        kwargs["batch_size"] = 4 * kwargs["batch_size"]
        return self.data_loader_cls(
            self.adata_manager,
            indices=self.val_idx,
            shuffle=False,
            drop_last=False,
            load_sparse_tensor=self.load_sparse_tensor,
            pin_memory=self.pin_memory,
            **kwargs,
        )


class DGEXTrainingPlan(TrainingPlan):
    """scvi :class:`~scvi.train.TrainingPlan` with D-GEX's epoch record, early stopping and best epoch.

    Parameters
    ----------
    module
        A :class:`~scfanpy.models.DGEXModule`.
    monitor
        What early stopping and the kept epoch look at: ``'validation_mae'`` (mean absolute error in
        the data's units) or ``'validation_loss'`` (the training objective on the validation cells).
    early_stopping_patience
        Stop after this many epochs without a lower monitored value (``None``: never stop early).
    min_delta
        Smallest decrease that counts as an improvement.
    lr
        Adam learning rate.
    weight_decay
        Adam weight decay (L2).
    **kwargs
        Passed to :class:`~scvi.train.TrainingPlan` (``eps``, ``reduce_lr_on_plateau``, ...).

    Notes
    -----
    Whenever there are validation cells, the weights of the epoch with the lowest monitored value are
    restored when training ends.
    """

    def __init__(
        self,
        module: DGEXModule,
        *,
        monitor: Monitor = "validation_mae",
        early_stopping_patience: int | None = 10,
        min_delta: float = 1e-6,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        **kwargs,
    ):
        kwargs.setdefault("eps", 1e-8)  # torch's Adam default (scvi's is 0.01)
        super().__init__(module, lr=lr, weight_decay=weight_decay, **kwargs)
        self.monitor = monitor
        self.early_stopping_patience = early_stopping_patience
        self.min_delta = float(min_delta)
        self.records: list[dict[str, float]] = []
        self._best, self._best_state, self._wait = math.inf, None, 0
        self._sums: dict[str, float] = {}

    # ---- steps --------------------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        self._t0 = time.perf_counter()
        self._sums = {"train_loss": 0.0, "train_n": 0}

    def training_step(self, batch, batch_idx):
        """Objective on one minibatch (summed per cell into the epoch's ``train_loss``)."""
        _, _, out = self.forward(batch)
        n = out.n_obs_minibatch
        self._sums["train_loss"] += float(out.loss.detach()) * n
        self._sums["train_n"] += n
        return out.loss

    def on_validation_epoch_start(self) -> None:
        self._sums.update(validation_loss=0.0, validation_mae=0.0, validation_n=0)

    def validation_step(self, batch, batch_idx) -> None:
        """Objective and MAE (data units) on one minibatch of validation cells."""
        _, _, out = self.forward(batch)
        n = out.n_obs_minibatch
        self._sums["validation_loss"] += float(out.loss) * n
        self._sums["validation_mae"] += float(out.extra_metrics["mae"]) * n
        self._sums["validation_n"] += n

    # ---- epoch record, early stopping, best epoch ---------------------------------------------------
    def on_train_epoch_end(self) -> None:
        s = self._sums
        rec = {"epoch": self.current_epoch + 1, "train_loss": s["train_loss"] / max(s["train_n"], 1)}
        has_val = s.get("validation_n", 0) > 0
        if has_val:
            rec["validation_loss"] = s["validation_loss"] / s["validation_n"]
            rec["validation_mae"] = s["validation_mae"] / s["validation_n"]
        rec["seconds"] = time.perf_counter() - self._t0
        self.records.append(rec)
        self.log_dict({k: float(v) for k, v in rec.items() if k != "epoch"}, prog_bar=True)
        logg.debug(
            "DGEX epoch %d: %s", rec["epoch"], {k: round(v, 5) for k, v in rec.items() if k != "epoch"}
        )
        self._sums = {}
        if has_val:
            self._track_best(rec[self.monitor])

    def _track_best(self, value: float) -> None:
        if value < self._best - self.min_delta:
            self._best, self._wait = value, 0
            self._best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in self.module.state_dict().items()
            }
            return
        self._wait += 1
        if self.early_stopping_patience is not None and self._wait >= self.early_stopping_patience:
            self.trainer.should_stop = True

    def on_train_end(self) -> None:
        if self._best_state is not None:
            self.module.load_state_dict(self._best_state)


class DGEXTrainRunner(TrainRunner):
    """scvi :class:`~scvi.train.TrainRunner` that stores the plan's epoch record as ``model.history``.

    A further call of ``train`` appends its epochs (numbered on) to the record.
    """

    def _update_history(self) -> None:
        new = pd.DataFrame(self.training_plan.records)
        old = self.model.history_
        if self.model.is_trained_ and isinstance(old, pd.DataFrame) and len(old) and len(new):
            new["epoch"] += int(old["epoch"].max())
            new = pd.concat([old, new], ignore_index=True)
        self.model.history_ = new
