"""scvi-tools side of the sequence models: the module around a pure torch net, and the training plan.

- :class:`SeqModule` (:class:`scvi.module.base.BaseModuleClass`) wraps one of the pure networks
  (:class:`~scfanpy.models.DanQModule`, :class:`~scfanpy.models.FactorNetModule`,
  :class:`~scfanpy.models.ScFANModule`): ``inference`` one-hot encodes the uint8 codes on their device and runs the net (logits), ``generative`` gives the probabilities, ``loss``
  is the masked binary cross-entropy over the observed labels.
- :class:`SeqTrainingPlan` (:class:`scvi.train.TrainingPlan`): Adam (``lr``, ``weight_decay``),
  optional :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` on the validation AUPRC, validation
  AUROC/AUPRC (mean over TFs) each epoch, the weights of the best-AUPRC epoch kept for restoring, and
  one history row per epoch.

The models (:mod:`~scfanpy.models._seqmodels`) train these through scvi-tools' ``DataSplitter`` and
``TrainRunner``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Self

import anndata as ad
import numpy as np
import pandas as pd
import torch
from scvi.dataloaders import DataSplitter
from scvi.module.base import BaseModuleClass, LossOutput
from scvi.train import TrainingPlan

from .. import _logging as logg
from .._docs import doc_params
from ._seqdata import SEQ_KEYS, label_names
from ._seqmodules import encode_batch, masked_bce_with_logits, observed_labels

__all__ = ["SeqModule", "SeqTrainingPlan", "SeqDataSplitter", "SeqTrainingMixin", "auc_table", "torch_seed"]


def torch_seed(random_state: int | np.random.Generator | None) -> int | None:
    """An int seed for torch from ``random_state`` (a Generator draws one); None stays None."""
    if random_state is None:
        return None
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    return int(random_state)


def auc_table(y: np.ndarray, p: np.ndarray, tf_names: Sequence[str]) -> pd.DataFrame:
    """AUROC / AUPRC per TF over the observed (finite) labels.

    Returns
    -------
    table : pandas.DataFrame
        Indexed by TF: ``auroc``, ``auprc`` (NaN when a TF has one class only), ``n_pos`` and ``n``.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    rows = []
    for j, _tf in enumerate(tf_names):
        obs = np.isfinite(y[:, j])
        yj, pj = y[obs, j], p[obs, j]
        n_pos = int((yj > 0.5).sum())
        ok = 0 < n_pos < len(yj)
        rows.append(
            {
                "auroc": roc_auc_score(yj > 0.5, pj) if ok else np.nan,
                "auprc": average_precision_score(yj > 0.5, pj) if ok else np.nan,
                "n_pos": n_pos,
                "n": int(obs.sum()),
            }
        )
    return pd.DataFrame(rows, index=pd.Index(list(tf_names), name="tf"))


class _SortedChunkPermutation(torch.utils.data.Sampler):
    """Positions ``0..n-1`` in a new random order each epoch, each run of ``chunk`` positions sorted.

    Grouped by a :class:`~torch.utils.data.BatchSampler` of the same size, this gives shuffled batches
    whose rows are in data order (contiguous reads; the batch order of scfanpy's first trainer, kept so
    that training results stay reproducible across versions). Draws from its own numpy generator, not
    from torch's.
    """

    def __init__(self, n: int, chunk: int, random_state: int | np.random.Generator | None):
        self.n, self.chunk = int(n), int(chunk)
        self.rng = np.random.default_rng(random_state)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        order = self.rng.permutation(self.n)
        for s in range(0, self.n, self.chunk):
            yield from np.sort(order[s : s + self.chunk]).tolist()


class SeqDataSplitter(DataSplitter):
    """scvi-tools' :class:`~scvi.dataloaders.DataSplitter` with a seeded batch order for training.

    Identical to its parent (``external_indexing`` = the region split, ``AnnDataLoader`` batches of the
    registered fields) except that the training batches follow :class:`_SortedChunkPermutation` drawn
    from ``random_state``.
    """

    def __init__(self, adata_manager, *, random_state: int | np.random.Generator | None = None, **kwargs):
        super().__init__(adata_manager, **kwargs)
        self.random_state = random_state

    def train_dataloader(self):
        """The parent's shuffled training loader, its random sampler replaced by the seeded one."""
        loader = super().train_dataloader()
        batches = loader.sampler  # a BatchSampler over a RandomSampler (scvi's AnnDataLoader)
        batches.sampler = _SortedChunkPermutation(len(self.train_idx), batches.batch_size, self.random_state)
        return loader


class SeqModule(BaseModuleClass):
    """scvi-tools module around a pure torch TF-binding net.

    Parameters
    ----------
    net
        A pure network (e.g. :class:`~scfanpy.models.DanQModule`): input ``(n, 4 + n_tracks, window)``, output logits
        ``(n, n_tfs)``.
    n_tracks
        Number of signal tracks the net reads after the 4 DNA rows.
    """

    def __init__(self, net: torch.nn.Module, n_tracks: int = 0):
        super().__init__()
        self.net = net
        self.n_tracks = int(n_tracks)

    @property
    def conv(self) -> torch.nn.Conv1d:
        """The net's first convolution (its filters are the motif detectors)."""
        return self.net.conv

    def _get_inference_input(self, tensors: dict[str, torch.Tensor], **kwargs: Any) -> dict[str, Any]:
        return {"codes": tensors[SEQ_KEYS.DNA], "tracks": tensors.get(SEQ_KEYS.SIGNAL)}

    def inference(
        self, codes: torch.Tensor, tracks: torch.Tensor | None = None, meta: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Codes ``(n, L)`` (+ tracks ``(n, T)`` / ``(n, T, L)``, FactorNet meta) -> ``{'logits': (n, n_tfs)}``.

        The one-hot input is built here, on the codes' device.
        """
        x = encode_batch(codes, tracks, self.n_tracks)
        return {"logits": self.net(x) if meta is None else self.net(x, meta=meta)}

    def _get_generative_input(
        self, tensors: dict[str, torch.Tensor], inference_outputs: dict[str, torch.Tensor], **kwargs: Any
    ) -> dict[str, torch.Tensor]:
        return {"logits": inference_outputs["logits"]}

    def generative(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """Binding probabilities ``{'probs': sigmoid(logits)}``."""
        return {"probs": torch.sigmoid(logits.float())}

    def loss(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict[str, torch.Tensor],
        generative_outputs: dict[str, torch.Tensor],
        pos_weight: torch.Tensor | None = None,
        label_index: torch.Tensor | None = None,
    ) -> LossOutput:
        """Mean binary cross-entropy over the observed labels (``masked_bce_with_logits``)."""
        y = observed_labels(tensors[SEQ_KEYS.LABELS], tensors.get(SEQ_KEYS.MASK), label_index)
        pw = None if pos_weight is None else pos_weight.to(y.device)
        loss = masked_bce_with_logits(inference_outputs["logits"], y, pos_weight=pw)
        return LossOutput(loss=loss, n_obs_minibatch=y.shape[0])

    def sample(self, *args: Any, **kwargs: Any) -> None:
        """Not available: a discriminative model has nothing to sample."""
        raise NotImplementedError("sequence models are discriminative: nothing to sample")


class SeqTrainingPlan(TrainingPlan):
    """Training plan of the sequence models: masked BCE, Adam, validation AUROC/AUPRC, best epoch kept.

    Parameters
    ----------
    module
        A :class:`SeqModule`.
    lr, weight_decay
        Adam settings (PyTorch's default ``eps``).
    pos_weight
        Weight of positive labels in the loss (scalar or one per TF).
    reduce_lr_on_plateau, lr_factor, lr_patience
        Multiply the learning rate by ``lr_factor`` when the validation AUPRC has not improved for more
        than ``lr_patience`` epochs (:class:`~torch.optim.lr_scheduler.ReduceLROnPlateau`, mode 'max').
    label_index
        For each model output, its column in the registered labels (-1: none); None when they match.

    Attributes
    ----------
    rows
        One dict per epoch: epoch, train_loss, valid_loss, valid_auroc, valid_auprc, lr.
    best_state, best_epoch
        The module's state dict at the epoch of the best validation AUPRC, and that epoch.
    """

    def __init__(
        self,
        module: SeqModule,
        *,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        pos_weight: Sequence[float] | float | None = None,
        reduce_lr_on_plateau: bool = False,
        lr_factor: float = 0.1,
        lr_patience: int = 0,
        label_index: Sequence[int] | None = None,
    ):
        loss_kwargs: dict[str, torch.Tensor] = {}
        if pos_weight is not None:
            loss_kwargs["pos_weight"] = torch.as_tensor(np.asarray(pos_weight, dtype=np.float32))
        if label_index is not None:
            loss_kwargs["label_index"] = torch.as_tensor(np.asarray(label_index, dtype=np.int64))
        super().__init__(
            module,
            lr=lr,
            weight_decay=weight_decay,
            reduce_lr_on_plateau=reduce_lr_on_plateau,
            lr_factor=lr_factor,
            lr_patience=lr_patience,
            lr_scheduler_metric="valid_auprc",
            **loss_kwargs,
        )
        self.rows: list[dict[str, float]] = []
        self._val: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._train_loss: list[torch.Tensor] = []
        self.best_score = -np.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_epoch = -1

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Masked BCE of one batch; the epoch's mean goes into the history."""
        _, _, out = self.forward(batch, loss_kwargs=self.loss_kwargs)
        self._train_loss.append(out.loss.detach())
        self.log(
            "train_loss",
            out.loss,
            prog_bar=True,
            on_step=False,
            on_epoch=True,
            batch_size=out.n_obs_minibatch,
        )
        return out.loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Collect the batch's logits and observed labels (metrics are computed over the whole epoch)."""
        logits = self.module.inference(**self.module._get_inference_input(batch))["logits"]
        y = observed_labels(
            batch[SEQ_KEYS.LABELS], batch.get(SEQ_KEYS.MASK), self.loss_kwargs.get("label_index")
        )
        self._val.append((logits.detach().float().cpu(), y.detach().cpu()))

    def _mean_train_loss(self) -> float:
        if not self._train_loss:
            return np.nan
        out = float(torch.stack(self._train_loss).double().mean())
        self._train_loss = []
        return out

    def on_validation_epoch_end(self) -> None:
        """Validation loss, AUROC and AUPRC (mean over TFs); keep the weights when the AUPRC is the best."""
        if self.trainer.sanity_checking or not self._val:
            self._val = []
            return
        logits = torch.cat([v[0] for v in self._val])
        y = torch.cat([v[1] for v in self._val])
        self._val = []
        vloss = float(masked_bce_with_logits(logits, y))
        tab = auc_table(y.numpy(), torch.sigmoid(logits).numpy(), [str(i) for i in range(y.shape[1])])
        auprc = float(np.nanmean(tab["auprc"])) if tab["auprc"].notna().any() else 0.0
        auroc = float(np.nanmean(tab["auroc"])) if tab["auroc"].notna().any() else 0.5
        self.log("valid_auprc", auprc, prog_bar=True)
        self.log("valid_auroc", auroc, prog_bar=True)
        self.log("valid_loss", vloss)
        self.rows.append(
            {
                "epoch": int(self.current_epoch),
                "train_loss": self._mean_train_loss(),
                "valid_loss": vloss,
                "valid_auroc": auroc,
                "valid_auprc": auprc,
                "lr": float(self.trainer.optimizers[0].param_groups[0]["lr"]),
            }
        )
        if auprc > self.best_score:
            self.best_score = auprc
            self.best_epoch = int(self.current_epoch)
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.module.state_dict().items()}

    def on_train_epoch_end(self) -> None:
        """Without validation regions, the history holds the training loss only."""
        if not self.trainer.val_dataloaders and self._train_loss:
            self.rows.append({"epoch": int(self.current_epoch), "train_loss": self._mean_train_loss()})

    def configure_optimizers(self) -> Any:
        """Adam; with ``reduce_lr_on_plateau``, ReduceLROnPlateau on the validation AUPRC (mode 'max')."""
        opt = torch.optim.Adam(self.module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if not self.reduce_lr_on_plateau:
            return opt
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max", factor=self.lr_factor, patience=self.lr_patience
        )
        return {
            "optimizer": opt,
            "lr_scheduler": {"scheduler": sched, "monitor": "valid_auprc", "interval": "epoch"},
        }

    def history(self) -> pd.DataFrame:
        """The epoch rows as a DataFrame indexed by epoch."""
        hist = pd.DataFrame(self.rows)
        return hist.set_index("epoch") if len(hist) else hist


class SeqTrainingMixin:
    """``train`` of the sequence models (scvi-tools style, like its ``UnsupervisedTrainingMixin``).

    Needs ``module`` (a :class:`SeqModule`), ``adata_manager``, ``tf_names_`` and ``_setup`` (the
    set-up keys) of :class:`~scfanpy.models.SeqModelBase`.
    """

    def _label_index(self, adata: ad.AnnData) -> list[int] | None:
        """Column of each output in the registered labels (-1: none); None when they match."""
        names = label_names(adata, self._setup["labels_key"])
        if names == self.tf_names_:
            return None
        return [names.index(t) if t in names else -1 for t in self.tf_names_]

    def _data_splitter(
        self,
        split: np.ndarray,
        batch_size: int,
        random_state: int | np.random.Generator | None,
        datasplitter_kwargs: dict | None,
    ) -> SeqDataSplitter:
        """scvi-tools' DataSplitter with the region split as explicit indices; codes stay uint8."""
        registered = self.adata_manager.data_registry
        dtypes = {SEQ_KEYS.DNA: np.uint8, SEQ_KEYS.LABELS: np.float32}
        if SEQ_KEYS.SIGNAL in registered:
            dtypes[SEQ_KEYS.SIGNAL] = np.float32
        if SEQ_KEYS.MASK in registered:
            dtypes[SEQ_KEYS.MASK] = np.bool_
        train, valid = np.flatnonzero(split == "train"), np.flatnonzero(split == "valid")
        rest = np.flatnonzero((split != "train") & (split != "valid"))  # 'test' and anything else
        return SeqDataSplitter(
            self.adata_manager,
            external_indexing=[train, valid, rest],
            random_state=random_state,
            batch_size=batch_size,
            data_and_attributes=dtypes,
            **(datasplitter_kwargs or {}),
        )

    @staticmethod
    def _trainer_kwargs(
        trainer_kwargs: dict,
        accelerator: str,
        validate: bool,
        early_stopping: bool,
        patience: int,
        monitor: str,
    ) -> dict:
        """scvi-tools Trainer settings: validation each epoch, early stopping, mixed precision on GPU.

        Without validation regions, scvi-tools' default (no validation loop) is kept.
        """
        kw = dict(trainer_kwargs)
        if "precision" not in kw or kw["precision"] is None:
            cuda = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
            kw["precision"] = (
                ("bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed") if cuda else "32-true"
            )
        if validate:
            kw.setdefault("check_val_every_n_epoch", 1)
        kw.setdefault("log_every_n_steps", 1)  # metrics are per epoch; no "fewer batches than" warning
        kw.setdefault("early_stopping", early_stopping)
        kw.setdefault("early_stopping_monitor", monitor)
        kw.setdefault("early_stopping_mode", "min" if monitor.endswith("loss") else "max")
        kw.setdefault("early_stopping_patience", patience)
        for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
            logging.getLogger(name).setLevel(logging.WARNING)
        return kw

    @doc_params()
    def train(
        self,
        max_epochs: int = 20,
        *,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        batch_size: int = 128,
        early_stopping: bool = True,
        early_stopping_patience: int = 3,
        early_stopping_monitor: str = "valid_auprc",
        plan_kwargs: dict[str, Any] | None = None,
        datasplitter_kwargs: dict[str, Any] | None = None,
        random_state: int | np.random.Generator | None = 0,
        **trainer_kwargs: Any,
    ) -> Self:
        """Train with scvi-tools: masked BCE, Adam, early stopping on the mean validation AUPRC.

        Regions with ``split == 'train'`` are fitted, ``'valid'`` drives early stopping and the kept
        (best-AUPRC) weights (scvi-tools' ``DataSplitter`` with these indices,
        :class:`~scfanpy.models.SeqTrainingPlan`, ``TrainRunner``). Runs on the GPU with
        mixed precision (bf16 where supported) when one is present.

        Parameters
        ----------
        max_epochs
            Maximum number of passes over the training regions.
        {accelerator}
        {devices}
        batch_size
            Regions per step.
        early_stopping
            Stop when ``early_stopping_monitor`` has not improved for ``early_stopping_patience`` epochs
            (needs validation regions).
        early_stopping_patience
            Epochs without improvement before stopping.
        early_stopping_monitor
            ``'valid_auprc'``, ``'valid_auroc'`` or ``'valid_loss'``.
        plan_kwargs
            :class:`~scfanpy.models.SeqTrainingPlan` settings: ``lr`` (1e-3),
            ``weight_decay`` (0), ``pos_weight`` (weight of positive labels, scalar or one per TF),
            ``reduce_lr_on_plateau`` (False), ``lr_factor`` (0.1), ``lr_patience`` (0): multiply the
            learning rate by ``lr_factor`` when the validation AUPRC has not improved for more than
            ``lr_patience`` epochs (needs validation regions; keep ``lr_patience`` below
            ``early_stopping_patience``). The rate of each epoch is in :attr:`history` (``lr``).
        datasplitter_kwargs
            Passed to :class:`scvi.dataloaders.DataSplitter` (e.g. ``pin_memory``, ``num_workers``).
        {random_state}
        **trainer_kwargs
            Passed to :class:`scvi.train.Trainer` (e.g. ``enable_progress_bar``, ``limit_train_batches``,
            ``max_time``, ``precision``: default ``'bf16-mixed'`` / ``'16-mixed'`` on GPU, ``'32-true'``
            on CPU).

        Returns
        -------
        model : SeqModelBase
            The model itself, trained in place (weights of the best epoch); curves in :attr:`history`,
            the regions used in ``train_indices``, ``validation_indices`` and ``test_indices``.
        """
        from scvi.train import TrainRunner

        adata = self.adata
        if adata is None:
            raise ValueError("train needs a model built on a set-up AnnData")
        if SEQ_KEYS.LABELS not in self.adata_manager.data_registry:
            raise KeyError(f"obsm[{self._setup['labels_key']!r}] not found")
        split = self._split(adata)
        n_valid = int((split == "valid").sum())
        if not (split == "train").any():
            raise ValueError("no training regions (split == 'train')")
        plan_kwargs = dict(plan_kwargs or {})
        if plan_kwargs.get("reduce_lr_on_plateau") and not n_valid:
            raise ValueError("reduce_lr_on_plateau needs validation regions (split == 'valid')")
        seed = torch_seed(random_state)
        if seed is not None:
            torch.manual_seed(seed)  # dropout
        splitter = self._data_splitter(split, batch_size, seed, datasplitter_kwargs)
        plan = SeqTrainingPlan(self.module, label_index=self._label_index(adata), **plan_kwargs)
        kw = self._trainer_kwargs(
            trainer_kwargs,
            accelerator,
            n_valid > 0,
            early_stopping and n_valid > 0,
            early_stopping_patience,
            early_stopping_monitor,
        )
        self.history_ = {}  # the runner merges its logger's history into a dict; ours is set below
        TrainRunner(
            self,
            training_plan=plan,
            data_splitter=splitter,
            max_epochs=max_epochs,
            accelerator=accelerator,
            devices=devices,
            **kw,
        )()
        self._finish_training(plan, split)
        return self

    def _finish_training(self, plan: SeqTrainingPlan, split: np.ndarray) -> None:
        """Restore the best epoch's weights, keep the history and the split, log the outcome."""
        device = self.module.device
        if plan.best_state is not None:
            self.module.load_state_dict(plan.best_state)
        self.module.to(device)
        self.module.eval()
        self.history_ = plan.history()
        self.best_epoch_ = plan.best_epoch
        self._train_split = split
        self.test_indices_ = np.flatnonzero(split == "test")
        hist = self.history_
        if len(hist) and "valid_auprc" in hist and plan.best_epoch >= 0:
            logg.info(
                "%s: %d epoch(s); kept the weights of epoch %d (valid AUROC %.3f, AUPRC %.3f)",
                type(self).__name__,
                len(hist),
                plan.best_epoch + 1,
                hist["valid_auroc"].iloc[plan.best_epoch],
                hist["valid_auprc"].iloc[plan.best_epoch],
            )
