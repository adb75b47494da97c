"""User-facing TF-binding sequence models on the scvi-tools model base: DANQ, FACTORNET, SCFAN.

Data layout (regions as observations): ``obsm['dna_code']`` uint8 ``(n, L)`` (A=0 C=1 G=2 T=3 N=4);
optional ``obsm[signal_key]`` float ``(n, n_tracks, L)`` or ``(n, n_tracks)`` (constant over the window);
``obsm['labels']`` ``(n, n_tfs)`` DataFrame or array, NaN or -1 = missing (optional
``obsm['label_mask']``, True = observed); TF names from the DataFrame columns or ``uns['tf_names']``;
``obs['split']`` in {'train', 'valid', 'test'}.

Inference contract shared by every sequence model (used by :func:`scfanpy.tl.predict_tf_binding`):
``tf_names``, ``input_spec``, ``predict_codes``, ``predict_sequences``, ``predict``, ``evaluate``,
``history``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import torch
from scvi.model.base import BaseModelClass

from ._seqmodules import DanQModule, FactorNetModule, ScFANModule, encode_batch, masked_bce_with_logits

__all__ = ["DANQ", "FACTORNET", "SCFAN", "SeqModelBase"]

logger = logging.getLogger("scfanpy")

_MODEL_FILE = "model.pt"
_SETUP_DEFAULTS = {
    "dna_key": "dna_code",
    "signal_key": None,
    "labels_key": "labels",
    "mask_key": "label_mask",
    "split_key": "split",
    "track_names": None,
}


# ----------------------------------------------------------------------------------------------------
# reading the region AnnData
# ----------------------------------------------------------------------------------------------------
def _obsm_array(adata: ad.AnnData, key: str) -> np.ndarray:
    v = adata.obsm[key]
    return v.to_numpy() if isinstance(v, pd.DataFrame) else np.asarray(v)


def _read_labels(adata: ad.AnnData, labels_key: str, mask_key: str | None) -> tuple[np.ndarray, list[str]]:
    """Labels ``(n, n_tfs)`` float32 with NaN = missing, and TF names."""
    raw = adata.obsm[labels_key]
    if isinstance(raw, pd.DataFrame):
        names = [str(c) for c in raw.columns]
        y = raw.to_numpy(dtype=np.float32, na_value=np.nan)
    else:
        y = np.asarray(raw, dtype=np.float32)
        if y.ndim == 1:
            y = y[:, None]
        names = [str(t) for t in adata.uns.get("tf_names", [f"tf{i}" for i in range(y.shape[1])])]
    y = y.copy()
    y[y < 0] = np.nan
    if mask_key is not None and mask_key in adata.obsm:
        m = _obsm_array(adata, mask_key).astype(bool).reshape(y.shape)
        y[~m] = np.nan
    return y, names


def _read_signal(adata: ad.AnnData, signal_key: str | None) -> np.ndarray | None:
    if signal_key is None:
        return None
    s = _obsm_array(adata, signal_key)
    if s.ndim == 1:
        s = s[:, None]
    return s


def _make_split(
    adata: ad.AnnData, seed: int = 0, frac_valid: float = 0.1, frac_test: float = 0.1
) -> np.ndarray:
    """Chromosome-held-out split from ``obs['chr']`` (or ``'chrom'``) when there are >= 3, else random."""
    n = adata.n_obs
    rng = np.random.default_rng(seed)
    col = next((c for c in ("chr", "chrom", "chromosome") if c in adata.obs), None)
    split = np.full(n, "train", dtype=object)
    if col is not None and adata.obs[col].nunique() >= 3:
        chroms = adata.obs[col].astype(str).to_numpy()
        counts = pd.Series(chroms).value_counts()
        order = list(rng.permutation(counts.index.to_numpy()))
        filled = {"test": 0, "valid": 0}
        for c in order:
            for part, frac in (("test", frac_test), ("valid", frac_valid)):
                if filled[part] < frac * n and filled[part] + counts[c] <= 2 * frac * n + 1:
                    split[chroms == c] = part
                    filled[part] += counts[c]
                    break
            if all(filled[p] >= f * n for p, f in (("test", frac_test), ("valid", frac_valid))):
                break
        if filled["valid"] > 0 and filled["test"] > 0:
            return split.astype(str)
    u = rng.random(n)
    split = np.where(u < frac_test, "test", np.where(u < frac_test + frac_valid, "valid", "train"))
    return split.astype(str)


def _fit_codes(codes: np.ndarray, window: int) -> np.ndarray:
    """Centre-crop or N-pad ``(n, L)`` codes to ``(n, window)``."""
    n, length = codes.shape
    if length == window:
        return codes
    if length > window:
        s = (length - window) // 2
        return codes[:, s : s + window]
    out = np.full((n, window), 4, dtype=np.uint8)
    s = (window - length) // 2
    out[:, s : s + length] = codes
    return out


def _fit_tracks(tracks: np.ndarray | None, window: int) -> np.ndarray | None:
    if tracks is None or tracks.ndim == 2:
        return tracks
    n, t, length = tracks.shape
    if length == window:
        return tracks
    if length > window:
        s = (length - window) // 2
        return tracks[:, :, s : s + window]
    out = np.zeros((n, t, window), dtype=tracks.dtype)
    s = (window - length) // 2
    out[:, :, s : s + length] = tracks
    return out


def _auc_table(y: np.ndarray, p: np.ndarray, tf_names: Sequence[str]) -> pd.DataFrame:
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


def _pick_device(device: str | torch.device | None = None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# ----------------------------------------------------------------------------------------------------
# torch data + Lightning plan
# ----------------------------------------------------------------------------------------------------
class _RegionBatches(torch.utils.data.Dataset):
    """Batches of regions by index arrays: codes stay uint8 on CPU, one-hot is built on the device."""

    def __init__(
        self,
        codes: np.ndarray,
        tracks: np.ndarray | None,
        labels: np.ndarray | None,
        idx: np.ndarray,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
    ):
        self.codes, self.tracks, self.labels = codes, tracks, labels
        self.idx = np.asarray(idx)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        self._order = self.idx

    def __len__(self) -> int:
        return int(np.ceil(len(self.idx) / self.batch_size))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if i == 0 and self.shuffle:
            self._order = self.rng.permutation(self.idx)
        b = np.sort(self._order[i * self.batch_size : (i + 1) * self.batch_size])
        out = {"codes": torch.from_numpy(np.ascontiguousarray(self.codes[b]))}
        if self.tracks is not None:
            out["tracks"] = torch.from_numpy(np.ascontiguousarray(self.tracks[b], dtype=np.float32))
        if self.labels is not None:
            out["labels"] = torch.from_numpy(np.ascontiguousarray(self.labels[b]))
        return out


def _make_plan(
    module: torch.nn.Module,
    n_tracks: int,
    lr: float,
    weight_decay: float,
    pos_weight: torch.Tensor | None,
    lr_plateau: tuple[float, int] | None = None,
):
    import lightning.pytorch as pl

    class _SeqTrainingPlan(pl.LightningModule):
        """Masked-BCE training; validation AUROC/AUPRC (mean over TFs) each epoch; keeps the best weights."""

        def __init__(self):
            super().__init__()
            self.module = module
            self.rows: list[dict[str, float]] = []
            self._val: list[tuple[torch.Tensor, torch.Tensor]] = []
            self._train_loss: list[float] = []
            self.best_score = -np.inf
            self.best_state: dict[str, torch.Tensor] | None = None
            self.best_epoch = -1

        def _logits(self, batch):
            x = encode_batch(batch["codes"], batch.get("tracks"), n_tracks)
            return self.module(x)

        def training_step(self, batch, batch_idx):
            pw = pos_weight.to(self.device) if pos_weight is not None else None
            loss = masked_bce_with_logits(self._logits(batch), batch["labels"], pos_weight=pw)
            self._train_loss.append(float(loss.detach()))
            self.log(
                "train_loss",
                loss,
                prog_bar=True,
                on_step=False,
                on_epoch=True,
                batch_size=len(batch["codes"]),
            )
            return loss

        def validation_step(self, batch, batch_idx):
            logits = self._logits(batch).float()
            self._val.append((logits.detach().cpu(), batch["labels"].detach().cpu()))

        def on_validation_epoch_end(self):
            if self.trainer.sanity_checking or not self._val:
                self._val = []
                return
            logits = torch.cat([v[0] for v in self._val])
            y = torch.cat([v[1] for v in self._val])
            self._val = []
            vloss = float(masked_bce_with_logits(logits, y))
            tab = _auc_table(y.numpy(), torch.sigmoid(logits).numpy(), [str(i) for i in range(y.shape[1])])
            auprc = float(np.nanmean(tab["auprc"])) if tab["auprc"].notna().any() else 0.0
            auroc = float(np.nanmean(tab["auroc"])) if tab["auroc"].notna().any() else 0.5
            self.log("valid_auprc", auprc, prog_bar=True)
            self.log("valid_auroc", auroc, prog_bar=True)
            self.log("valid_loss", vloss)
            self.rows.append(
                {
                    "epoch": int(self.current_epoch),
                    "train_loss": float(np.mean(self._train_loss)) if self._train_loss else np.nan,
                    "valid_loss": vloss,
                    "valid_auroc": auroc,
                    "valid_auprc": auprc,
                    "lr": float(self.trainer.optimizers[0].param_groups[0]["lr"]),
                }
            )
            self._train_loss = []
            if auprc > self.best_score:
                self.best_score = auprc
                self.best_epoch = int(self.current_epoch)
                self.best_state = {k: v.detach().cpu().clone() for k, v in self.module.state_dict().items()}

        def on_train_epoch_end(self):
            if not self.trainer.val_dataloaders and self._train_loss:
                self.rows.append(
                    {"epoch": int(self.current_epoch), "train_loss": float(np.mean(self._train_loss))}
                )
                self._train_loss = []

        def configure_optimizers(self):
            opt = torch.optim.Adam(self.module.parameters(), lr=lr, weight_decay=weight_decay)
            if lr_plateau is None:
                return opt
            factor, lr_patience = lr_plateau
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode="max", factor=factor, patience=lr_patience
            )
            return {
                "optimizer": opt,
                "lr_scheduler": {"scheduler": sched, "monitor": "valid_auprc", "interval": "epoch"},
            }

    return _SeqTrainingPlan()


# ----------------------------------------------------------------------------------------------------
# model base
# ----------------------------------------------------------------------------------------------------
def _bare_registry(cls_name: str, setup_args: dict | None = None) -> dict:
    import scvi

    return {
        "scvi_version": scvi.__version__,
        "model_name": cls_name,
        "setup_method_name": "setup_anndata",
        "setup_args": dict(setup_args or {}),
        "field_registries": {},
    }


class SeqModelBase(BaseModelClass):
    """Shared AnnData plumbing, training and inference for the TF-binding sequence models.

    Subclasses set ``_module_cls`` and ``_module_defaults``. Construct either from a set-up AnnData
    (window, tracks and TFs read from it) or, without data, from ``tf_names``, ``window`` and
    ``n_tracks`` (pretrained weights).

    Parameters
    ----------
    adata
        Region AnnData registered with :meth:`setup_anndata`; None for a model without data.
    registry
        scvi-tools registry (used by :meth:`load`; leave None).
    tf_names
        Output names (default: the label columns / ``uns['tf_names']``).
    window
        Input length in bp (default: the width of ``obsm[dna_key]``).
    n_tracks, track_names
        Signal tracks (default: from ``obsm[signal_key]`` and ``uns[signal_key + '_names']``).
    seed
        Seed of the initial weights (the global torch RNG is left untouched); None: not seeded.
    **module_kwargs
        Architecture parameters of the torch module (see the module's docstring).
    """

    _module_cls: type[torch.nn.Module] = DanQModule
    _module_defaults: dict[str, Any] = {}
    _default_window: int = 1000

    def __init__(
        self,
        adata: ad.AnnData | None = None,
        registry: dict | None = None,
        *,
        tf_names: Sequence[str] | None = None,
        window: int | None = None,
        n_tracks: int | None = None,
        track_names: Sequence[str] | None = None,
        seed: int | None = 0,
        **module_kwargs: Any,
    ):
        if adata is None and registry is None:
            registry = _bare_registry(type(self).__name__)
        super().__init__(adata, registry=registry)
        setup = {**_SETUP_DEFAULTS, **self.registry.get("setup_args", {})}
        self._setup = setup
        track_default = None
        if adata is not None:
            codes = _obsm_array(adata, setup["dna_key"])
            window = codes.shape[1] if window is None else window
            sig = _read_signal(adata, setup["signal_key"])
            n_tracks = 0 if sig is None else sig.shape[1]
            if sig is not None:
                track_default = sig.mean(axis=tuple(i for i in range(sig.ndim) if i != 1)).astype(np.float32)
            if setup["labels_key"] in adata.obsm:
                _, names = _read_labels(adata, setup["labels_key"], setup["mask_key"])
                tf_names = names if tf_names is None else tf_names
            if track_names is None:
                track_names = setup.get("track_names")
        if tf_names is None:
            raise ValueError("tf_names needed (labels in the AnnData, or tf_names=...)")
        self.tf_names_ = [str(t) for t in tf_names]
        self.window_ = int(window or self._default_window)
        self.n_tracks_ = int(n_tracks if n_tracks is not None else self._module_defaults.get("n_tracks", 0))
        self.track_names_ = (
            [str(t) for t in track_names]
            if track_names is not None
            else [f"track{i}" for i in range(self.n_tracks_)]
        )
        if len(self.track_names_) != self.n_tracks_:
            raise ValueError(f"{len(self.track_names_)} track names for {self.n_tracks_} tracks")
        self.track_default_ = None if track_default is None else [float(v) for v in track_default]
        kw = {**self._module_defaults, **module_kwargs}
        kw.update(window=self.window_, n_tracks=self.n_tracks_)
        self.module_kwargs_ = kw
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)  # reproducible initial weights, global RNG untouched
            self.module = self._module_cls(len(self.tf_names_), **kw)
        self.init_params_ = {
            "kwargs": {"module_kwargs": dict(module_kwargs)},
            "non_kwargs": {"tf_names": self.tf_names_, "window": self.window_, "n_tracks": self.n_tracks_},
        }
        self.history_ = None
        self._model_summary_string = f"{type(self).__name__}: {len(self.tf_names_)} TFs, window {self.window_}, tracks {self.track_names_}"

    def __repr__(self) -> str:
        return self._model_summary_string + (" (trained)" if self.is_trained_ else "")

    # -- setup ----------------------------------------------------------------------------------------
    @classmethod
    def setup_anndata(
        cls,
        adata: ad.AnnData,
        *,
        dna_key: str = "dna_code",
        signal_key: str | None = None,
        labels_key: str = "labels",
        mask_key: str | None = "label_mask",
        split_key: str = "split",
        track_names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Register a region AnnData (regions as observations) for training or prediction.

        Parameters
        ----------
        adata
            Regions x anything (``X`` may be an empty ``(n, 0)`` matrix).
        dna_key
            ``obsm`` key of the uint8 codes ``(n, L)`` (A=0 C=1 G=2 T=3 N=4).
        signal_key
            ``obsm`` key of the signal tracks ``(n, n_tracks, L)`` or ``(n, n_tracks)``; None: DNA only.
        labels_key
            ``obsm`` key of the labels ``(n, n_tfs)`` (DataFrame or array; NaN or -1 = missing).
        mask_key
            Optional ``obsm`` key of a boolean observed-label mask.
        split_key
            ``obs`` column with 'train'/'valid'/'test'; when missing, a chromosome-held-out (or random)
            split is made at training time.
        track_names
            Names of the signal tracks (default ``uns[signal_key + '_names']`` or ``track0..``).

        Examples
        --------
        >>> sfp.models.SCFAN.setup_anndata(regions, signal_key="signal")
        >>> model = sfp.models.SCFAN(regions)
        """
        # capture the arguments only (before any other local exists), as scvi-tools models do
        setup_method_args = cls._get_setup_method_args(**locals())
        from scvi.data import AnnDataManager
        from scvi.data.fields import ObsmField

        if dna_key not in adata.obsm:
            raise KeyError(f"obsm[{dna_key!r}] not found: make it with sfp.pp.make_training_windows")
        codes = adata.obsm[dna_key]
        if np.asarray(codes).dtype != np.uint8 or np.asarray(codes).ndim != 2:
            raise ValueError(f"obsm[{dna_key!r}] must be uint8 (n, L) codes")
        if signal_key is not None:
            if signal_key not in adata.obsm:
                raise KeyError(f"obsm[{signal_key!r}] not found")
            if track_names is None:
                track_names = adata.uns.get(f"{signal_key}_names")
            if track_names is not None:
                track_names = [str(t) for t in track_names]
        setup_method_args.setdefault("setup_args", {})["track_names"] = track_names
        fields = [ObsmField("dna_code", dna_key)]
        manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        scvi_log = logging.getLogger("scvi")
        level = scvi_log.level
        scvi_log.setLevel(logging.WARNING)  # silence "Generating sequential column names"
        try:
            manager.register_fields(adata, **kwargs)
        finally:
            scvi_log.setLevel(level)
        cls.register_manager(manager)

    # -- contract -------------------------------------------------------------------------------------
    @property
    def tf_names(self) -> list[str]:
        """Output names (one per TF)."""
        return list(self.tf_names_)

    @property
    def input_spec(self) -> dict[str, Any]:
        """``dict(window, n_tracks, track_names)``: what :meth:`predict_codes` expects."""
        return {"window": self.window_, "n_tracks": self.n_tracks_, "track_names": list(self.track_names_)}

    @property
    def history(self) -> pd.DataFrame | None:
        """Training curves, one row per epoch.

        Columns: train_loss, valid_loss, valid_auroc, valid_auprc and lr (the epoch's learning rate).
        """
        return self.history_

    def _default_tracks(self, n: int) -> np.ndarray | None:
        if self.n_tracks_ == 0:
            return None
        d = (
            np.zeros(self.n_tracks_, np.float32)
            if self.track_default_ is None
            else np.asarray(self.track_default_, np.float32)
        )
        return np.broadcast_to(d, (n, self.n_tracks_))

    def predict_codes(
        self,
        codes: np.ndarray,
        tracks: np.ndarray | None = None,
        *,
        batch_size: int = 256,
        meta: np.ndarray | None = None,
    ) -> np.ndarray:
        """Binding probabilities for DNA codes (+ signal tracks).

        Parameters
        ----------
        codes
            uint8 ``(n, L)``, A=0 C=1 G=2 T=3 N=4. ``L`` other than ``input_spec['window']`` is
            centre-cropped or padded with N (centred).
        tracks
            ``(n, n_tracks)`` (constant over the window) or ``(n, n_tracks, L)`` float, in the order of
            ``input_spec['track_names']``. None: each track's training mean (zeros for imported or
            untrained models).
        batch_size
            Regions per forward pass. Inputs stay on the CPU; each batch is cropped, moved to the model's
            device and one-hot encoded there, under :func:`torch.no_grad`.
        meta
            FactorNet meta features ``(n_meta,)`` or ``(n, n_meta)`` (meta models only).

        Returns
        -------
        float32 ``(n, n_tfs)`` probabilities, columns in ``tf_names`` order.

        Examples
        --------
        >>> p = model.predict_codes(adata.varm["dna_code"], np.ones((adata.n_vars, 1), np.float32))
        """
        codes = np.asarray(codes)
        if codes.ndim != 2:
            raise ValueError("codes must be (n, L)")
        n = codes.shape[0]
        if self.n_tracks_ and tracks is None:
            tracks = self._default_tracks(n)
        if tracks is not None:
            tracks = np.asarray(tracks)
            if not self.n_tracks_:
                raise ValueError(f"{type(self).__name__} was built without signal tracks")
            if tracks.shape[0] != n or tracks.shape[1] != self.n_tracks_ or tracks.ndim not in (2, 3):
                raise ValueError(f"tracks must be (n, {self.n_tracks_}) or (n, {self.n_tracks_}, L)")
        if meta is not None:
            meta = np.broadcast_to(np.asarray(meta, np.float32), (n, np.shape(meta)[-1]))
        module = self.module
        device = next(module.parameters()).device
        was_training = module.training
        module.eval()
        out = np.empty((n, len(self.tf_names_)), dtype=np.float32)
        kw = {}
        try:
            with torch.no_grad():
                for s in range(0, n, batch_size):
                    # crop / pad and upcast one batch at a time: the inputs are never copied whole
                    cb = _fit_codes(np.asarray(codes[s : s + batch_size], dtype=np.uint8), self.window_)
                    c = torch.from_numpy(np.ascontiguousarray(cb)).to(device)
                    t = None
                    if tracks is not None:
                        tb = _fit_tracks(
                            np.asarray(tracks[s : s + batch_size], dtype=np.float32), self.window_
                        )
                        t = torch.from_numpy(np.ascontiguousarray(tb)).to(device)
                    if meta is not None:
                        kw = {"meta": torch.from_numpy(np.array(meta[s : s + batch_size])).to(device)}
                    x = encode_batch(c, t, self.n_tracks_)
                    out[s : s + batch_size] = torch.sigmoid(module(x, **kw).float()).cpu().numpy()
        finally:
            module.train(was_training)
        return out

    def predict_sequences(
        self, seqs: Sequence[str] | str | os.PathLike, *, batch_size: int = 256, stride: int | None = None
    ) -> pd.DataFrame:
        """Score plain DNA sequences: DataFrame sequences x TFs of binding probabilities.

        Parameters
        ----------
        seqs
            A list of strings (any length), a dict ``{name: sequence}``, or the path of a FASTA file.
            Sequences shorter than the window are padded with N (centred); longer ones are scanned in
            windows (``stride``, default half a window, plus one window flush with the end) and the
            maximum probability per TF is kept. Signal tracks, if the model has any, take their default.
        batch_size
            Windows per forward pass.

        Examples
        --------
        >>> model.predict_sequences(["ACGT" * 50, "GGGCGG" * 40])
        """
        from ..genome import encode_sequence

        if isinstance(seqs, (str, os.PathLike)) and not (
            isinstance(seqs, str) and set(seqs.upper()) <= set("ACGTN")
        ):
            from ..datasets import read_fasta

            seqs = read_fasta(seqs)
        if isinstance(seqs, dict):
            names, seqs = list(seqs.keys()), list(seqs.values())
        else:
            seqs = [seqs] if isinstance(seqs, str) else list(seqs)
            names = [f"seq{i}" for i in range(len(seqs))]
        w = self.window_
        stride = stride or max(1, w // 2)
        windows, owner = [], []
        for i, s in enumerate(seqs):
            codes = encode_sequence(str(s))
            if len(codes) <= w:
                windows.append(_fit_codes(codes[None], w)[0])
                owner.append(i)
                continue
            starts = list(range(0, len(codes) - w + 1, stride))
            if starts[-1] != len(codes) - w:
                starts.append(len(codes) - w)
            for st in starts:
                windows.append(codes[st : st + w])
                owner.append(i)
        if not windows:
            return pd.DataFrame(columns=self.tf_names_, dtype=np.float32)
        prob = self.predict_codes(np.stack(windows).astype(np.uint8), batch_size=batch_size)
        res = pd.DataFrame(prob, columns=self.tf_names_).groupby(np.asarray(owner)).max()
        res.index = pd.Index([names[i] for i in res.index], name="sequence")
        return res.astype(np.float32)

    def _arrays(self, adata: ad.AnnData, need_labels: bool = False):
        s = self._setup
        codes = _obsm_array(adata, s["dna_key"])
        tracks = _read_signal(adata, s["signal_key"])
        labels = None
        if s["labels_key"] in adata.obsm:
            labels, names = _read_labels(adata, s["labels_key"], s["mask_key"])
            if names != self.tf_names_:
                order = [names.index(t) if t in names else -1 for t in self.tf_names_]
                labels = np.stack(
                    [labels[:, j] if j >= 0 else np.full(len(labels), np.nan, np.float32) for j in order], 1
                )
        elif need_labels:
            raise KeyError(f"obsm[{s['labels_key']!r}] not found")
        return codes, tracks, labels

    def _split(self, adata: ad.AnnData) -> np.ndarray:
        key = self._setup["split_key"]
        if key in adata.obs:
            return adata.obs[key].astype(str).to_numpy()
        return _make_split(adata)

    def _split_indices(self, adata: ad.AnnData, split: str | None) -> np.ndarray:
        """Positions of the regions in ``split`` (all when None); the model's own split for its own data."""
        if split is None:
            return np.arange(adata.n_obs)
        own = adata is self.adata and getattr(self, "split_", None) is not None
        idx = np.flatnonzero(np.asarray(self.split_ if own else self._split(adata)) == split)
        if len(idx) == 0:
            raise ValueError(f"no regions in split {split!r}")
        return idx

    def predict(
        self, adata: ad.AnnData | None = None, *, batch_size: int = 256, indices: Sequence[int] | None = None
    ) -> pd.DataFrame:
        """Binding probabilities for the regions of a region AnnData.

        Parameters
        ----------
        adata
            Regions as observations with the keys given to :meth:`setup_anndata` (default: the model's
            data).
        batch_size
            Regions per forward pass (see :meth:`predict_codes`).
        indices
            Only these regions (positions).

        Returns
        -------
        DataFrame regions x TFs of probabilities (float32), indexed by ``obs_names``.
        """
        adata = self.adata if adata is None else adata
        if adata is None:
            raise ValueError("no AnnData: pass adata=")
        codes, tracks, _ = self._arrays(adata)
        if indices is None:
            p = self.predict_codes(codes, tracks, batch_size=batch_size)
            return pd.DataFrame(p, index=adata.obs_names, columns=self.tf_names_)
        idx = np.asarray(indices)
        p = self.predict_codes(codes[idx], None if tracks is None else tracks[idx], batch_size=batch_size)
        return pd.DataFrame(p, index=adata.obs_names[idx], columns=self.tf_names_)

    def evaluate(
        self, adata: ad.AnnData | None = None, split: str | None = "test", *, batch_size: int = 256
    ) -> pd.DataFrame:
        """AUROC and AUPRC per TF on one split, over the observed labels only.

        Parameters
        ----------
        adata
            Region AnnData with labels (default: the model's data, with the split used in training).
        split
            Value of the split column (``obs[split_key]``) to evaluate; None: all regions.
        batch_size
            Regions per forward pass.

        Returns
        -------
        DataFrame indexed by TF with ``auroc``, ``auprc`` (NaN when a TF has one class only),
        ``n_pos`` and ``n`` (observed labels).
        """
        adata = self.adata if adata is None else adata
        if adata is None:
            raise ValueError("no AnnData: pass adata=")
        codes, tracks, labels = self._arrays(adata, need_labels=True)
        idx = self._split_indices(adata, split)
        p = self.predict_codes(codes[idx], None if tracks is None else tracks[idx], batch_size=batch_size)
        return _auc_table(labels[idx], p, self.tf_names_)

    # -- training -------------------------------------------------------------------------------------
    def train(
        self,
        max_epochs: int = 20,
        *,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        early_stopping: bool = True,
        patience: int = 3,
        reduce_lr_on_plateau: bool = False,
        lr_factor: float = 0.1,
        lr_patience: int = 0,
        pos_weight: Sequence[float] | float | None = None,
        accelerator: str = "auto",
        devices: int | str = 1,
        precision: str | int | None = None,
        enable_progress_bar: bool = True,
        max_train_batches: int | float | None = None,
        seed: int | None = 0,
        **trainer_kwargs: Any,
    ) -> SeqModelBase:
        """Train with Lightning: masked BCE, Adam, early stopping on mean validation AUPRC.

        Regions with ``split == 'train'`` are fitted, ``'valid'`` drives early stopping and the kept
        (best-AUPRC) weights. Runs on the GPU with mixed precision (bf16 where supported) when one is
        present.

        Parameters
        ----------
        max_epochs
            Maximum number of passes over the training regions.
        batch_size
            Regions per step.
        lr, weight_decay
            Adam settings.
        early_stopping, patience
            Stop when the validation AUPRC has not improved for ``patience`` epochs.
        reduce_lr_on_plateau, lr_factor, lr_patience
            Multiply the learning rate by ``lr_factor`` when the validation AUPRC has not improved for
            more than ``lr_patience`` epochs (:class:`torch.optim.lr_scheduler.ReduceLROnPlateau`; needs
            validation regions). Keep ``lr_patience < patience`` so that the lower rate gets epochs
            before early stopping ends the run. The rate of each epoch is in :attr:`history` (``lr``).
        pos_weight
            Weight of positive labels in the loss (scalar or one per TF).
        accelerator, devices, precision
            Passed to :class:`lightning.pytorch.Trainer`; ``precision=None`` picks ``'bf16-mixed'``
            / ``'16-mixed'`` on GPU and ``'32-true'`` on CPU.
        max_train_batches
            Limit the batches per epoch (``limit_train_batches``).
        seed
            Seeds torch and the batch order.

        Returns
        -------
        The model (trained in place); curves in :attr:`history`.
        """
        import lightning.pytorch as pl
        from lightning.pytorch.callbacks import EarlyStopping

        adata = self.adata
        if adata is None:
            raise ValueError("train needs a model built on a set-up AnnData")
        codes, tracks, labels = self._arrays(adata, need_labels=True)
        split = self._split(adata)
        self.split_ = split
        tr = np.flatnonzero(split == "train")
        va = np.flatnonzero(split == "valid")
        if len(tr) == 0:
            raise ValueError("no training regions (split == 'train')")
        if seed is not None:
            torch.manual_seed(seed)
        pw = None
        if pos_weight is not None:
            pw = torch.as_tensor(
                np.broadcast_to(np.asarray(pos_weight, np.float32), (len(self.tf_names_),)).copy()
            )
        cuda = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
        if precision is None:
            precision = (
                ("bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed") if cuda else "32-true"
            )
        train_ds = _RegionBatches(codes, tracks, labels, tr, batch_size, True, seed or 0)
        loader_kw = {"batch_size": None, "shuffle": False, "num_workers": 0}
        train_dl = torch.utils.data.DataLoader(train_ds, **loader_kw)
        val_dl = None
        if len(va):
            val_dl = torch.utils.data.DataLoader(
                _RegionBatches(codes, tracks, labels, va, max(batch_size, 256), False), **loader_kw
            )
        if reduce_lr_on_plateau and val_dl is None:
            raise ValueError("reduce_lr_on_plateau needs validation regions (split == 'valid')")
        plateau = (float(lr_factor), int(lr_patience)) if reduce_lr_on_plateau else None
        plan = _make_plan(self.module, self.n_tracks_, lr, weight_decay, pw, plateau)
        callbacks = []
        if early_stopping and val_dl is not None:
            callbacks.append(EarlyStopping(monitor="valid_auprc", mode="max", patience=patience))
        kw = {
            "max_epochs": max_epochs,
            "accelerator": "gpu" if cuda else ("cpu" if accelerator == "auto" else accelerator),
            "devices": devices if cuda else 1,
            "precision": precision,
            "callbacks": callbacks,
            "enable_checkpointing": False,
            "logger": False,
            "enable_progress_bar": enable_progress_bar,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
        }
        if max_train_batches is not None:
            kw["limit_train_batches"] = max_train_batches
        kw.update(trainer_kwargs)
        for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
            logging.getLogger(name).setLevel(logging.WARNING)
        trainer = pl.Trainer(**kw)
        trainer.fit(plan, train_dataloaders=train_dl, val_dataloaders=val_dl)
        if plan.best_state is not None:
            self.module.load_state_dict(plan.best_state)
        self.module.eval()
        self.module.to(_pick_device("cuda" if cuda else "cpu"))
        hist = pd.DataFrame(plan.rows)
        if len(hist):
            hist = hist.set_index("epoch")
        self.history_ = hist
        self.best_epoch_ = plan.best_epoch
        self.is_trained_ = True
        self.train_indices_, self.validation_indices_ = tr, va
        self.test_indices_ = np.flatnonzero(split == "test")
        if len(hist) and "valid_auprc" in hist:
            logger.info(
                "%s: %d epoch(s); kept the weights of epoch %d (valid AUROC %.3f, AUPRC %.3f)",
                type(self).__name__,
                len(hist),
                plan.best_epoch + 1,
                hist["valid_auroc"].iloc[plan.best_epoch] if plan.best_epoch >= 0 else np.nan,
                hist["valid_auprc"].iloc[plan.best_epoch] if plan.best_epoch >= 0 else np.nan,
            )
        return self

    # -- save / load ----------------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {
            "class": type(self).__name__,
            "tf_names": self.tf_names_,
            "window": self.window_,
            "n_tracks": self.n_tracks_,
            "track_names": self.track_names_,
            "track_default": self.track_default_,
            "module_kwargs": {
                k: v for k, v in self.module_kwargs_.items() if k not in ("window", "n_tracks")
            },
            "setup_args": dict(self._setup.items()),
            "is_trained": bool(self.is_trained_),
            "meta_names": getattr(self, "meta_names_", None),
            "jaspar_motifs": getattr(self, "jaspar_motifs_", None),
            "best_epoch": getattr(self, "best_epoch_", None),
        }

    def save(
        self,
        dir_path: str | os.PathLike,
        *,
        overwrite: bool = False,
        save_anndata: bool = False,
        **anndata_write_kwargs: Any,
    ) -> None:
        """Save the model to ``dir_path/model.pt``.

        The file carries the weights, the TF names, the input spec (window, tracks), the architecture
        settings, the set-up keys and the training history; ``save_anndata`` also writes
        ``adata.h5ad``.
        """
        dir_path = Path(dir_path)
        if dir_path.exists() and not overwrite and any(dir_path.iterdir()):
            raise ValueError(f"{dir_path} exists and is not empty; pass overwrite=True")
        dir_path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
        hist = None if self.history_ is None else self.history_.reset_index().to_dict(orient="list")
        torch.save({"state_dict": state, "config": self._config(), "history": hist}, dir_path / _MODEL_FILE)
        if save_anndata and self.adata is not None:
            self.adata.write_h5ad(dir_path / "adata.h5ad", **anndata_write_kwargs)

    @classmethod
    def load(
        cls,
        dir_path: str | os.PathLike,
        adata: ad.AnnData | None | bool = None,
        *,
        device: str = "auto",
    ):
        """Load a model saved with :meth:`save`.

        Parameters
        ----------
        dir_path
            Folder written by :meth:`save`.
        adata
            Region AnnData to attach (set up with the saved keys). None: the saved ``adata.h5ad`` when
            there is one; False: no data.
        device
            ``'auto'`` (GPU when present), ``'cpu'``, ``'cuda:0'``, ...

        Returns
        -------
        The model in eval mode. ``SeqModelBase.load`` returns the saved class.
        """
        dir_path = Path(dir_path)
        blob = torch.load(dir_path / _MODEL_FILE, map_location="cpu", weights_only=False)
        cfg = blob["config"]
        if cfg["class"] != cls.__name__ and cls is not SeqModelBase:
            raise ValueError(f"saved model is a {cfg['class']}, not a {cls.__name__}")
        klass = (
            {c.__name__: c for c in (DANQ, FACTORNET, SCFAN)}.get(cfg["class"], cls)
            if cls is SeqModelBase
            else cls
        )
        if adata is None and (dir_path / "adata.h5ad").exists():
            adata = ad.read_h5ad(dir_path / "adata.h5ad")
        if adata is False:
            adata = None
        setup = {k: v for k, v in cfg.get("setup_args", {}).items() if k in _SETUP_DEFAULTS}
        if cfg["class"] == "SCFAN" and "padding" not in cfg["module_kwargs"]:
            # saved before 'same' padding and Keras batch-norm settings became the defaults
            cfg["module_kwargs"].update(padding="valid", bn_eps=1e-5, bn_momentum=0.1)
        common = {
            "tf_names": cfg["tf_names"],
            "window": cfg["window"],
            "n_tracks": cfg["n_tracks"],
            "track_names": cfg["track_names"],
        }
        if adata is not None:
            klass.setup_anndata(adata, **dict(setup.items()))
            model = klass(
                adata, **{k: v for k, v in common.items() if k != "n_tracks"}, **cfg["module_kwargs"]
            )
        else:
            model = klass(registry=_bare_registry(klass.__name__, setup), **common, **cfg["module_kwargs"])
        model.module.load_state_dict(blob["state_dict"])
        model.track_default_ = cfg.get("track_default")
        for attr in ("meta_names", "jaspar_motifs", "best_epoch"):
            if cfg.get(attr) is not None:
                setattr(model, f"{attr}_", cfg[attr])
        model.is_trained_ = cfg.get("is_trained", True)
        if blob.get("history") is not None:
            h = pd.DataFrame(blob["history"])
            model.history_ = h.set_index("epoch") if "epoch" in h else h
        model.module.to(_pick_device(device))
        model.module.eval()
        return model


# ----------------------------------------------------------------------------------------------------
# the three architectures
# ----------------------------------------------------------------------------------------------------
class DANQ(SeqModelBase):
    """DanQ (Quang & Xie 2016): CNN + BiLSTM TF-binding model on DNA (+ optional signal tracks).

    The architecture and its deviations from the paper are documented in
    :class:`~scfanpy.models._seqmodules.DanQModule` (defaults: 320 filters x 26, pool 13, BiLSTM 320,
    dense 925). ``jaspar_init=True`` (or a dict of motifs) gives the DanQ-JASPAR variant: first-layer
    filters initialised from JASPAR motifs and their reverse complements.

    Parameters
    ----------
    adata, tf_names, window, n_tracks, track_names, seed
        See :class:`SeqModelBase` (``adata``: registered with :meth:`setup_anndata`).
    jaspar_init
        False, True (JASPAR motifs of the TFs in ``tf_names`` found in JASPAR, else the CORE
        vertebrate set), or a dict ``{name: (L, 4) probabilities}``.
    **module_kwargs
        Architecture parameters of :class:`~scfanpy.models._seqmodules.DanQModule`.

    Examples
    --------
    >>> sfp.models.DANQ.setup_anndata(regions)
    >>> model = sfp.models.DANQ(regions, jaspar_init=True)
    >>> model.train(max_epochs=10)
    >>> model.evaluate()
    """

    _module_cls = DanQModule
    _module_defaults = {"n_tracks": 0}

    def __init__(
        self,
        adata: ad.AnnData | None = None,
        registry: dict | None = None,
        *,
        jaspar_init: bool | dict = False,
        **kwargs: Any,
    ):
        super().__init__(adata, registry, **kwargs)
        if jaspar_init is not False and jaspar_init is not None:
            motifs = (
                jaspar_init
                if isinstance(jaspar_init, dict)
                else _jaspar_for(self.tf_names_, self.module.conv.weight.shape[0] // 2)
            )
            self.module.init_filters_from_motifs({k: np.asarray(v) for k, v in motifs.items()})
            self.jaspar_motifs_ = list(motifs)


class FACTORNET(SeqModelBase):
    """FactorNet (Quang & Xie 2019): reverse-complement twin CNN + BiLSTM with per-base signal tracks.

    Architecture and deviations: :class:`~scfanpy.models._seqmodules.FactorNetModule` (defaults of the
    published ENCODE-DREAM models: window 1,002, 32 filters x 34, pool 17, BiLSTM 32, dense 64; tracks
    typically DNase and Unique35 mappability). :meth:`from_keras` imports the published Keras 1.1 models.

    Parameters
    ----------
    adata, tf_names, window, n_tracks, track_names, seed
        See :class:`SeqModelBase`.
    **module_kwargs
        :class:`~scfanpy.models._seqmodules.FactorNetModule` settings: ``n_filters``, ``filter_width``,
        ``pool``, ``lstm_hidden``, ``n_dense``, ``n_meta``, ``dropout_conv``, ``dropout``,
        ``recurrent_activation``, ``rc_merge``, ``track_rc_order``.

    Examples
    --------
    >>> sfp.models.FACTORNET.setup_anndata(regions, signal_key="signal")
    >>> model = sfp.models.FACTORNET(regions)
    >>> model.train()
    >>> max_model = sfp.models.FACTORNET.from_keras(sfp.datasets.factornet_weights("MAX"))
    """

    _module_cls = FactorNetModule
    _module_defaults = {"n_tracks": 0}
    _default_window = 1002

    @classmethod
    def from_keras(cls, path: str | os.PathLike | dict, *, weights: str = "best_model.hdf5") -> FACTORNET:
        """Import a published FactorNet Keras 1.1 model (directory or ``factornet_weights`` dict).

        The directory holds ``model.json``, ``best_model.hdf5``, ``chip.txt`` (TF names) and
        ``bigwig.txt`` (track names in input order; the published models use ``['Unique35', 'DGF']``:
        Unique35 mappability in [0, 1] and the DNase "DGF" signal). Without tracks, predictions use
        mappability 1 and signal 0. Meta-feature models (e.g. GABPA) take the meta vector via
        ``predict_codes(..., meta=...)`` (default zeros, or set ``model.module.meta_default``).
        """
        from ._keras import read_factornet_keras

        spec = read_factornet_keras(path, weights=weights)
        model = cls(
            registry=_bare_registry(cls.__name__),
            tf_names=spec["tf_names"],
            window=spec["window"],
            n_tracks=spec["n_tracks"],
            track_names=spec["track_names"],
            **spec["module_kwargs"],
        )
        model.module.load_state_dict(spec["state_dict"])
        model.module.eval()
        model.is_trained_ = True
        model.meta_names_ = spec.get("meta_names")
        # default tracks when none are given: uniquely mappable (1), no accessibility signal (0)
        model.track_default_ = [
            1.0 if ("unique" in t.lower() or "map" in t.lower()) else 0.0 for t in model.track_names_
        ]
        return model


class SCFAN(SeqModelBase):
    """The scFAN sequence model (Fu et al. 2020): 3 conv blocks with batch norm + dense, DNA + signal.

    Architecture and deviations: :class:`~scfanpy.models._seqmodules.ScFANModule` (defaults: window
    1,000; conv 160/240/240 x 8 with BN + ReLU, pool 4, dropout 0.2/0.2/0.5, dense 919).

    Parameters
    ----------
    adata, tf_names, window, n_tracks, track_names, seed
        See :class:`SeqModelBase`.
    **module_kwargs
        :class:`~scfanpy.models._seqmodules.ScFANModule` settings: ``channels``, ``kernel``, ``pool``,
        ``dropout``, ``n_dense``, ``padding``.

    Examples
    --------
    >>> sfp.models.SCFAN.setup_anndata(regions, signal_key="signal")
    >>> model = sfp.models.SCFAN(regions)
    >>> model.train(max_epochs=10)
    >>> model.predict_sequences(["ACGT" * 250])
    """

    _module_cls = ScFANModule
    _module_defaults = {"n_tracks": 0, "padding": "same", "bn_eps": 1e-3, "bn_momentum": 0.01}


def _jaspar_for(tf_names: Sequence[str], n_max: int) -> dict[str, np.ndarray]:
    """JASPAR probability matrices for the model's TFs when available, topped up with the CORE set."""
    from ..datasets import jaspar_motifs

    allm = jaspar_motifs()
    upper = {k.upper(): k for k in allm}
    chosen = [upper[t.upper()] for t in tf_names if t.upper() in upper]
    for k in allm:
        if len(chosen) >= n_max:
            break
        if k not in chosen:
            chosen.append(k)
    return {k: np.asarray(allm[k], dtype=np.float32) for k in chosen[:n_max]}
