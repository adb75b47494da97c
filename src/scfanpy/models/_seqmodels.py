"""User-facing TF-binding sequence models on scvi-tools: DANQ, FACTORNET, SCFAN.

A model (this module: ``setup_anndata``, ``train``, ``save``/``load`` of
:class:`scvi.model.base.BaseModelClass`) over an scvi-tools module
(:class:`~scfanpy.models._seqtraining.SeqModule`) around a pure torch net
(:mod:`~scfanpy.models._seqmodules`). Training runs through scvi-tools' ``DataSplitter`` (with the
region split as explicit indices), :class:`~scfanpy.models.SeqTrainingPlan` and
``TrainRunner``. The region AnnData layout is described in :mod:`~scfanpy.models._seqdata`; the
inference contract (``tf_names``, ``input_spec``, ``predict_codes``, ``predict_sequences``,
``predict``, ``evaluate``, ``history``) in :mod:`~scfanpy.models._seqinference`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import torch
from scvi.model.base import BaseModelClass

from .._utils import check_model_file, reading_model
from ._seqdata import empty_regions, label_names, make_split, obsm_array, read_signal, seq_fields
from ._seqinference import SeqInferenceMixin
from ._seqmodules import DanQModule, FactorNetModule, ScFANModule
from ._seqtraining import SeqModule, SeqTrainingMixin, torch_seed

__all__ = ["DANQ", "FACTORNET", "SCFAN", "SeqModelBase", "_make_split"]

_make_split = make_split  # the chromosome-held-out split (kept under its historical private name)

_SETUP_DEFAULTS = {
    "dna_key": "dna_code",
    "signal_key": None,
    "labels_key": "labels",
    "mask_key": "label_mask",
    "split_key": "split",
    "track_names": None,
}
# arguments scvi-tools' load passes to setup_anndata to transfer a saved registry; a region AnnData is
# always registered afresh instead (its window and TFs may differ from the training data)
_TRANSFER_KWARGS = ("source_registry", "extend_categories", "allow_missing_labels")


@contextmanager
def _quiet_scvi():
    """scvi-tools' INFO lines ("Generating sequential column names", "File ... already downloaded") off."""
    scvi_log = logging.getLogger("scvi")
    level = scvi_log.level
    scvi_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        scvi_log.setLevel(level)


def _device_args(device: str | int | torch.device) -> tuple[str, int | list[int] | str]:
    """The ``device`` of :meth:`SeqModelBase.load` ('auto', 'cpu', 'cuda:1', ...) as scvi-tools' accelerator / device."""
    if device is None or device == "auto":
        return "auto", "auto"
    from .._torch import resolve_device

    dev = resolve_device(device)
    if dev.type == "cpu":
        return "cpu", "auto"
    return "gpu", ("auto" if dev.index is None else [dev.index])


class SeqModelBase(SeqInferenceMixin, SeqTrainingMixin, BaseModelClass):
    """Shared AnnData plumbing, training and inference for the TF-binding sequence models.

    Subclasses set ``_module_cls`` and ``_module_defaults``. Construct either from a set-up AnnData
    (window, tracks and TFs read from it) or, without data, from ``tf_names``, ``window`` and
    ``n_tracks`` (pretrained or imported weights; the model then carries the scvi-tools registry of an
    empty region AnnData).

    Parameters
    ----------
    adata
        Region AnnData registered with ``setup_anndata``; None for a model without data.
    registry
        scvi-tools registry (used by ``load``; leave None).
    tf_names
        Output names (default: the label columns / ``uns['tf_names']``).
    window
        Input length in bp (default: the width of ``obsm[dna_key]``).
    n_tracks
        Number of signal tracks (with data: from ``obsm[signal_key]``).
    track_names
        Names of the signal tracks (default: from ``setup_anndata``, else ``track0..``).
    random_state
        Seed of the initial weights (the global torch RNG is left untouched); None: not seeded.
    **module_kwargs
        Architecture parameters of the torch net (see the net's docstring).
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
        random_state: int | np.random.Generator | None = 0,
        **module_kwargs: Any,
    ):
        if adata is None and registry is None:
            registry = self._empty_registry(window or self._default_window)
        super().__init__(adata, registry=registry)
        self._setup = {**_SETUP_DEFAULTS, **self.registry_.get("setup_args", {})}
        track_default = None
        if adata is not None:
            window, n_tracks, track_default, tf_names, track_names = self._from_data(
                adata, window, tf_names, track_names
            )
        if tf_names is None:
            raise ValueError("tf_names needed (labels in the AnnData, or tf_names=...)")
        tf_names = self.tf_names_ = [str(t) for t in tf_names]
        window = self.window_ = int(window or self._default_window)
        n_tracks = self.n_tracks_ = int(
            n_tracks if n_tracks is not None else self._module_defaults.get("n_tracks", 0)
        )
        track_names = self.track_names_ = (
            [str(t) for t in track_names]
            if track_names is not None
            else [f"track{i}" for i in range(n_tracks)]
        )
        if len(track_names) != n_tracks:
            raise ValueError(f"{len(track_names)} track names for {n_tracks} tracks")
        self.track_default_ = None if track_default is None else [float(v) for v in track_default]
        kw = {**self._module_defaults, **module_kwargs, "window": window, "n_tracks": n_tracks}
        self.module_kwargs_ = kw
        with torch.random.fork_rng(devices=[]):
            seed = torch_seed(random_state)
            if seed is not None:
                torch.manual_seed(seed)  # reproducible initial weights, global RNG untouched
            self.module = SeqModule(self._module_cls(len(tf_names), **kw), n_tracks)
        self._train_split: np.ndarray | None = None
        self._model_summary_string = (
            f"{type(self).__name__}: {len(tf_names)} TFs, window {window}, tracks {track_names}"
        )
        # resolved inputs: load() rebuilds the model from these alone, with or without data
        self.init_params_ = self._get_init_params(locals())

    def _from_data(self, adata: ad.AnnData, window, tf_names, track_names) -> tuple:
        """Window, tracks (number, mean values), TF names and track names read from a region AnnData."""
        setup = self._setup
        window = obsm_array(adata, setup["dna_key"]).shape[1] if window is None else window
        sig = read_signal(adata, setup["signal_key"])
        n_tracks = 0 if sig is None else sig.shape[1]
        track_default = None
        if sig is not None:
            track_default = sig.mean(axis=tuple(i for i in range(sig.ndim) if i != 1)).astype(np.float32)
        if tf_names is None and setup["labels_key"] in adata.obsm:
            tf_names = label_names(adata, setup["labels_key"])
        if track_names is None:
            track_names = setup.get("track_names")
        return window, n_tracks, track_default, tf_names, track_names

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
            Regions x anything (``X`` is not read and may be absent or an empty ``(n, 0)`` matrix).
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
        **kwargs
            Passed to :meth:`scvi.data.AnnDataManager.register_fields`. A saved registry passed by
            ``load`` (``source_registry``) is not transferred: the data is registered afresh.

        Examples
        --------
        >>> sfp.models.SCFAN.setup_anndata(regions, signal_key="signal")
        >>> model = sfp.models.SCFAN(regions)
        """
        # capture the arguments only (before any other local exists), as scvi-tools models do
        setup_method_args = cls._get_setup_method_args(**locals())
        from scvi.data import AnnDataManager

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
        setup_method_args["setup_args"]["track_names"] = track_names
        for k in _TRANSFER_KWARGS:
            kwargs.pop(k, None)
        fields = seq_fields(adata, dna_key, signal_key, labels_key, mask_key)
        manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        with _quiet_scvi():
            manager.register_fields(adata, **kwargs)
        cls.register_manager(manager)

    @classmethod
    def _empty_registry(cls, window: int) -> dict:
        """The scvi-tools registry of an empty region AnnData (no regions, ``window``-bp codes).

        The registry of a model without data (pretrained or imported weights): made by the same
        ``setup_anndata``, so that it carries the set-up arguments and fields a saved model needs.
        """
        empty = empty_regions(window)
        cls.setup_anndata(empty)
        manager = cls._get_most_recent_anndata_manager(empty, required=True)
        cls._setup_adata_manager_store.pop(manager.adata_uuid, None)  # nothing keeps the empty AnnData
        return manager.registry

    def get_var_names(self, legacy_mudata_format: bool = False) -> np.ndarray | dict:
        """Variable names of the attached data; none for a model without data (``X`` is never read)."""
        if self.adata is not None:
            return super().get_var_names(legacy_mudata_format=legacy_mudata_format)
        return np.array([], dtype=object)

    # -- load -----------------------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        dir_path: str | os.PathLike,
        adata: ad.AnnData | None | bool = None,
        *,
        device: str | int | torch.device = "auto",
        prefix: str | None = None,
        backup_url: str | None = None,
    ) -> SeqModelBase:
        """Load a model saved with :meth:`~scvi.model.base.BaseModelClass.save` (scvi-tools' :meth:`~scvi.model.base.BaseModelClass.load`).

        Parameters
        ----------
        dir_path
            Folder written by :meth:`~scvi.model.base.BaseModelClass.save`.
        adata
            Region AnnData to attach (registered with the saved set-up keys). None: the saved
            ``adata.h5ad`` when there is one, else no data; False: no data.
        device
            ``'auto'`` (GPU when present), ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ...
        prefix
            Prefix of the saved file names.
        backup_url
            URL to fetch ``model.pt`` from when it is not in ``dir_path``.

        Returns
        -------
        model : SeqModelBase
            The model in eval mode; ``SeqModelBase.load`` returns the saved class (DANQ, FACTORNET or
            SCFAN).

        Raises
        ------
        FileNotFoundError
            ``dir_path`` is not a folder holding ``model.pt``.
        OSError
            ``model.pt`` is empty, truncated or corrupted (the message names it and says it is damaged).
        """
        path = check_model_file(dir_path, prefix, backup_url=backup_url)
        if path.exists():
            with _quiet_scvi(), reading_model(path):
                saved = BaseModelClass.load_registry(str(dir_path), prefix)["model_name"]
        else:  # fetched from backup_url by scvi-tools below
            saved = cls.__name__
        classes = {c.__name__: c for c in SeqModelBase.__subclasses__()}
        if cls is SeqModelBase:
            if saved not in classes:
                raise ValueError(f"saved model is a {saved}, not a sequence model")
            cls = classes[saved]
        elif saved != cls.__name__:
            raise ValueError(f"saved model is a {saved}, not a {cls.__name__}")
        if adata is None and not (Path(dir_path) / f"{prefix or ''}adata.h5ad").exists():
            adata = False
        accelerator, dev = _device_args(device)
        with _quiet_scvi(), reading_model(path):
            return BaseModelClass.load.__func__(
                cls,
                str(dir_path),
                adata,
                accelerator=accelerator,
                device=dev,
                prefix=prefix,
                backup_url=backup_url,
            )


# ----------------------------------------------------------------------------------------------------
# the three architectures
# ----------------------------------------------------------------------------------------------------
class DANQ(SeqModelBase):
    """DanQ (Quang & Xie 2016): CNN + BiLSTM TF-binding model on DNA (+ optional signal tracks).

    The architecture and its deviations from the paper are documented in
    :class:`~scfanpy.models.DanQModule` (defaults: 320 filters x 26, pool 13, BiLSTM 320,
    dense 925). ``jaspar_init=True`` (or a dict of motifs) gives the DanQ-JASPAR variant: first-layer
    filters initialised from JASPAR motifs and their reverse complements.

    Parameters
    ----------
    adata, registry, tf_names, window, n_tracks, track_names, random_state
        See :class:`~scfanpy.models.SeqModelBase` (``adata``: registered with ``setup_anndata``).
    jaspar_init
        False, True (JASPAR motifs of the TFs in ``tf_names`` found in JASPAR, else the CORE
        vertebrate set), or a dict ``{name: (L, 4) probabilities}``.
    **module_kwargs
        Architecture parameters of :class:`~scfanpy.models.DanQModule`.

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
        tf_names: Sequence[str] | None = None,
        window: int | None = None,
        n_tracks: int | None = None,
        track_names: Sequence[str] | None = None,
        random_state: int | np.random.Generator | None = 0,
        jaspar_init: bool | dict = False,
        **module_kwargs: Any,
    ):
        # the base class records the resolved inputs without jaspar_init: a loaded model takes its
        # filters from the saved weights
        super().__init__(
            adata,
            registry,
            tf_names=tf_names,
            window=window,
            n_tracks=n_tracks,
            track_names=track_names,
            random_state=random_state,
            **module_kwargs,
        )
        if jaspar_init is not False and jaspar_init is not None:
            net = self.module.net
            motifs = (
                jaspar_init
                if isinstance(jaspar_init, dict)
                else _jaspar_for(self.tf_names_, net.conv.weight.shape[0] // 2)
            )
            net.init_filters_from_motifs({k: np.asarray(v) for k, v in motifs.items()})
            self.jaspar_motifs_ = list(motifs)


class FACTORNET(SeqModelBase):
    """FactorNet (Quang & Xie 2019): reverse-complement twin CNN + BiLSTM with per-base signal tracks.

    Architecture and deviations: :class:`~scfanpy.models.FactorNetModule` (defaults of the
    published ENCODE-DREAM models: window 1,002, 32 filters x 34, pool 17, BiLSTM 32, dense 64; tracks
    typically DNase and Unique35 mappability). :meth:`from_keras` imports the published Keras 1.1 models.

    Parameters
    ----------
    adata, registry, tf_names, window, n_tracks, track_names, random_state
        See :class:`~scfanpy.models.SeqModelBase`.
    **module_kwargs
        :class:`~scfanpy.models.FactorNetModule` settings: ``n_filters``, ``filter_width``,
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
        ``predict_codes(..., meta=...)`` (default zeros, or set ``model.module.net.meta_default``).

        Returns
        -------
        model : FACTORNET
            A trained model without data, in eval mode (save and load it like any other).
        """
        from ._keras import read_factornet_keras

        spec = read_factornet_keras(path, weights=weights)
        model = cls(
            tf_names=spec["tf_names"],
            window=spec["window"],
            n_tracks=spec["n_tracks"],
            track_names=spec["track_names"],
            **spec["module_kwargs"],
        )
        model.module.net.load_state_dict(spec["state_dict"])
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

    Architecture and deviations: :class:`~scfanpy.models.ScFANModule` (defaults: window
    1,000; conv 160/240/240 x 8 with BN + ReLU, pool 4, dropout 0.2/0.2/0.5, dense 919).

    Parameters
    ----------
    adata, registry, tf_names, window, n_tracks, track_names, random_state
        See :class:`~scfanpy.models.SeqModelBase`.
    **module_kwargs
        :class:`~scfanpy.models.ScFANModule` settings: ``channels``, ``kernel``, ``pool``,
        ``dropout``, ``n_dense``, ``padding``, ``bn_eps``, ``bn_momentum``.

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
