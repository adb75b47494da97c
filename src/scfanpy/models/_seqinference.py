"""Inference contract shared by every sequence model (used by :func:`scfanpy.tl.predict_tf_binding`).

``tf_names``, ``input_spec``, ``history``, ``predict_codes``, ``predict_sequences``, ``predict`` and
``evaluate``: a mixin of :class:`~scfanpy.models.SeqModelBase` (scvi-tools style, like its
``RNASeqMixin``). Inputs stay compact on the CPU (uint8 codes); each batch is cropped or padded to the
window, moved to the model's device and one-hot encoded there (:func:`scfanpy._torch.predict_batched`).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import anndata as ad
import numpy as np
import pandas as pd

from .._constants import N_CODE
from .._docs import doc_params
from .._torch import fit_window, predict_batched, tile_starts
from ._seqdata import make_split, obsm_array, read_labels, read_signal
from ._seqtraining import auc_table

__all__ = ["SeqInferenceMixin"]


_PATH_HINTS = (".fa", ".fasta", ".fna", ".gz", ".fa.gz")
_PRECISIONS = ("32", "bf16")
_PRECISION_DOC = """\
precision
    ``'32'``: float32 throughout (default). ``'bf16'``: the net's forward pass under
    :class:`torch.autocast` to bfloat16 on the model's device type (CUDA or CPU): convolutions, matrix
    products and recurrent layers in bfloat16 (8 significant bits, 2-3 decimal digits), the sigmoid of
    the logits in float32. Faster on GPUs with bfloat16 tensor cores (and CPUs with bfloat16
    instructions); the probabilities agree with float32 to about 1e-2 (``tests/models/test_bf16.py``)."""


def _forward_context(device, precision: str):
    """``torch.autocast`` to bfloat16 on ``device``'s type for ``'bf16'``; nothing for ``'32'``."""
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    if precision == "32":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def _named_sequences(seqs) -> tuple[list[str], list[str]]:
    """``(names, sequences)`` of what :meth:`SeqInferenceMixin.predict_sequences` accepts."""
    from ..genome import read_fasta

    if isinstance(seqs, os.PathLike) or (isinstance(seqs, str) and os.path.isfile(seqs)):
        seqs = read_fasta(seqs)
    elif isinstance(seqs, str):
        if "/" in seqs or seqs.lower().endswith(_PATH_HINTS):
            raise FileNotFoundError(
                f"seqs={seqs[:60]!r} looks like a path but no such file exists; pass the path of an existing "
                "FASTA file, or a list of sequences"
            )
        seqs = [seqs]  # one sequence
    if isinstance(seqs, dict):
        names, seqs = [str(k) for k in seqs], list(seqs.values())
    else:
        seqs = list(seqs)
        names = [f"seq{i}" for i in range(len(seqs))]
    bad = [(n, type(s).__name__) for n, s in zip(names, seqs) if not isinstance(s, str)]
    if bad:
        raise TypeError(
            f"seqs: {len(bad)} entr(ies) are not strings, e.g. {bad[:3]} (name, type); pass sequences as "
            "str (a missing sequence is '' or all N, which gives NaN)"
        )
    return names, seqs


def _unknown_rows(codes: np.ndarray) -> np.ndarray:
    """Rows of ``codes`` with no known base (all N, or width 0)."""
    known = np.zeros(codes.shape[0], dtype=bool)
    for lo in range(0, codes.shape[0], 65_536):  # bounded temporary
        known[lo : lo + 65_536] = (np.asarray(codes[lo : lo + 65_536]) < N_CODE).any(1)
    return ~known


def _warn_no_sequence(n_bad: int, n: int, what: str) -> None:
    warnings.warn(
        f"{n_bad} of {n} {what}: no sequence evidence, their probabilities are NaN. Drop them, or read "
        "their sequence again (genome build, coordinates)",
        UserWarning,
        stacklevel=3,
    )


class SeqInferenceMixin:
    """Prediction and evaluation of a sequence model (needs ``module``, ``tf_names_``, ``window_``, ...)."""

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

    def _check_tracks(self, tracks: np.ndarray | None, n: int) -> np.ndarray | None:
        if self.n_tracks_ and tracks is None:
            tracks = self._default_tracks(n)
        if tracks is None:
            return None
        tracks = np.asarray(tracks)
        if not self.n_tracks_:
            raise ValueError(f"{type(self).__name__} was built without signal tracks")
        if tracks.shape[0] != n or tracks.shape[1] != self.n_tracks_ or tracks.ndim not in (2, 3):
            raise ValueError(f"tracks must be (n, {self.n_tracks_}) or (n, {self.n_tracks_}, L)")
        return tracks

    @doc_params(precision=_PRECISION_DOC)
    def predict_codes(
        self,
        codes: np.ndarray,
        tracks: np.ndarray | None = None,
        *,
        batch_size: int = 256,
        meta: np.ndarray | None = None,
        precision: Literal["32", "bf16"] = "32",
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
        {batch_size}
        meta
            FactorNet meta features ``(n_meta,)`` or ``(n, n_meta)`` (meta models only).
        {precision}

        Returns
        -------
        probabilities : numpy.ndarray
            float32 ``(n, n_tfs)``, columns in ``tf_names`` order. A row whose sequence is entirely N
            (no base known, e.g. an assembly gap, or a width of 0) is NaN: the sequence gives no evidence
            either way, even where the signal tracks would move the output; one :class:`UserWarning`
            gives their number.

        Examples
        --------
        >>> p = model.predict_codes(adata.varm["dna_code"], np.ones((adata.n_vars, 1), np.float32))
        >>> p16 = model.predict_codes(adata.varm["dna_code"], precision="bf16")  # on a GPU
        """
        autocast = _forward_context(self.module.device, precision)
        codes = np.asarray(codes)
        if codes.ndim != 2:
            raise ValueError(f"codes must be (n, L) uint8 codes, got shape {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer):
            raise TypeError(f"codes must be integer codes A=0 C=1 G=2 T=3 N=4, got dtype {codes.dtype}")
        n = codes.shape[0]
        no_seq = _unknown_rows(codes)
        if no_seq.any():
            _warn_no_sequence(int(no_seq.sum()), n, "sequence(s) entirely N")
        tracks = self._check_tracks(tracks, n)
        if meta is not None:
            meta = np.broadcast_to(np.asarray(meta, np.float32), (n, np.shape(meta)[-1]))
        w = self.window_

        def prepare(lo: int, hi: int) -> list[np.ndarray | None]:
            # crop / pad and upcast one batch at a time: the inputs are never copied whole
            c = fit_window(np.asarray(codes[lo:hi], dtype=np.uint8), w)
            t = None if tracks is None else np.asarray(tracks[lo:hi], dtype=np.float32)
            if t is not None and t.ndim == 3:
                t = fit_window(t, w)
            return [c, t, None if meta is None else np.array(meta[lo:hi])]

        module = self.module

        def forward(c, t, m):
            with autocast:  # the net in bfloat16 for 'bf16'; the sigmoid of float32 logits
                logits = module.inference(c, t, m)["logits"]
            return module.generative(logits.float())["probs"]

        was_training = module.training
        module.eval()
        try:
            p = predict_batched(
                forward,
                [codes, tracks, meta],
                batch_size=batch_size,
                device=module.device,
                prepare=prepare,
            )
        finally:
            module.train(was_training)
        p[no_seq] = np.nan
        return p

    @doc_params(precision=_PRECISION_DOC)
    def predict_sequences(
        self,
        seqs: Sequence[str] | str | os.PathLike,
        *,
        batch_size: int = 256,
        stride: int | None = None,
        precision: Literal["32", "bf16"] = "32",
    ) -> pd.DataFrame:
        """Score plain DNA sequences: DataFrame sequences x TFs of binding probabilities.

        Parameters
        ----------
        seqs
            One sequence (a string of bases), a list of strings (any length), a dict
            ``{{name: sequence}}``, or the path of a FASTA file (a :class:`~pathlib.Path`, or a string
            naming an existing file). A string is a sequence unless it names an existing file; a string
            that looks like a path (a ``/``, or ``.fa``/``.fasta``/``.gz`` at its end) but names no file
            raises :class:`FileNotFoundError`. Letters other than ACGTN (IUPAC codes, digits) are read as
            N, with one warning giving their number. Sequences shorter than the window are padded with N
            (centred); longer ones are scanned in windows (``stride``, default half a window, plus one
            window flush with the end) and the maximum probability per TF is kept. Signal tracks, if the
            model has any, take their default.
        {batch_size}
        stride
            Step between the windows of a long sequence (default half a window).
        {precision}

        Returns
        -------
        probabilities : pandas.DataFrame
            Sequences (FASTA / dict names, else ``seq0..``) x TFs, float32. An empty sequence, or one
            that is entirely N, gives no evidence: its row is NaN (one warning gives their number).

        Examples
        --------
        >>> model.predict_sequences(["ACGT" * 50, "GGGCGG" * 40])
        """
        from ..genome import encode_sequences

        names, seqs = _named_sequences(seqs)
        w = self.window_
        windows, owner = [], []
        empty = np.zeros(len(seqs), dtype=bool)
        for i, codes in enumerate(encode_sequences(seqs)):
            if not (codes < N_CODE).any():
                empty[i] = True  # no base known: no evidence, NaN below
                continue
            if len(codes) <= w:
                windows.append(fit_window(codes[None], w)[0])
                owner.append(i)
                continue
            for st in tile_starts(len(codes), w, stride):
                windows.append(codes[st : st + w])
                owner.append(i)
        if empty.any():
            _warn_no_sequence(int(empty.sum()), len(seqs), "sequence(s) empty or entirely N")
        res = pd.DataFrame(np.nan, index=range(len(seqs)), columns=self.tf_names_, dtype=np.float32)
        if windows:
            prob = self.predict_codes(
                np.stack(windows).astype(np.uint8), batch_size=batch_size, precision=precision
            )
            best = pd.DataFrame(prob, columns=self.tf_names_).groupby(np.asarray(owner)).max()
            res.loc[best.index] = best.to_numpy()
        res.index = pd.Index(names, name="sequence")
        return res.astype(np.float32)

    def _arrays(self, adata: ad.AnnData, need_labels: bool = False):
        """Codes, tracks and labels (in ``tf_names`` order, NaN = missing) of any region AnnData."""
        s = self._setup
        codes = obsm_array(adata, s["dna_key"])
        tracks = read_signal(adata, s["signal_key"])
        labels = None
        if s["labels_key"] in adata.obsm:
            labels, names = read_labels(adata, s["labels_key"], s["mask_key"])
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
        return make_split(adata)

    def _split_indices(self, adata: ad.AnnData, split: str | None) -> np.ndarray:
        """Positions of the regions in ``split`` (all when None); the model's own split for its own data."""
        if split is None:
            return np.arange(adata.n_obs)
        own = adata is self.adata and getattr(self, "_train_split", None) is not None
        idx = np.flatnonzero(np.asarray(self._train_split if own else self._split(adata)) == split)
        if len(idx) == 0:
            raise ValueError(f"no regions in split {split!r}")
        return idx

    @doc_params(precision=_PRECISION_DOC)
    def predict(
        self,
        adata: ad.AnnData | None = None,
        *,
        batch_size: int = 256,
        indices: Sequence[int] | None = None,
        precision: Literal["32", "bf16"] = "32",
    ) -> pd.DataFrame:
        """Binding probabilities for the regions of a region AnnData.

        Parameters
        ----------
        adata
            Regions as observations with the keys given to ``setup_anndata`` (default: the model's data).
        {batch_size}
        indices
            Only these regions (positions).
        {precision}

        Returns
        -------
        probabilities : pandas.DataFrame
            Regions x TFs (float32), indexed by ``obs_names``.
        """
        adata = self.adata if adata is None else adata
        if adata is None:
            raise ValueError("no AnnData: pass adata=")
        codes, tracks, _ = self._arrays(adata)
        if indices is None:
            p = self.predict_codes(codes, tracks, batch_size=batch_size, precision=precision)
            return pd.DataFrame(p, index=adata.obs_names, columns=self.tf_names_)
        idx = np.asarray(indices)
        tr = None if tracks is None else tracks[idx]
        p = self.predict_codes(codes[idx], tr, batch_size=batch_size, precision=precision)
        return pd.DataFrame(p, index=adata.obs_names[idx], columns=self.tf_names_)

    @doc_params(precision=_PRECISION_DOC)
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
        {batch_size}

        Returns
        -------
        metrics : pandas.DataFrame
            Indexed by TF: ``auroc``, ``auprc`` (NaN when a TF has one class only), ``n_pos`` and ``n``
            (observed labels). Regions whose sequence is entirely N are left out (see
            :meth:`predict_codes`).
        """
        adata = self.adata if adata is None else adata
        if adata is None:
            raise ValueError("no AnnData: pass adata=")
        codes, tracks, labels = self._arrays(adata, need_labels=True)
        idx = self._split_indices(adata, split)
        p = self.predict_codes(codes[idx], None if tracks is None else tracks[idx], batch_size=batch_size)
        y = labels[idx]
        no_seq = np.isnan(p).any(1)
        if no_seq.any():  # regions without sequence (all N) are left out of the metrics
            y = y.astype(np.float32, copy=True)
            y[no_seq] = np.nan
            p = np.where(no_seq[:, None], 0.0, p).astype(np.float32)
        return auc_table(y, p, self.tf_names_)
