"""Pure torch modules for TF-binding sequence models: DanQ, FactorNet and the scFAN CNN.

All modules take one float tensor ``x`` of shape ``(batch, 4 + n_tracks, window)``: rows 0-3 are the
one-hot DNA (A, C, G, T; N is all zeros), the following rows the per-base signal tracks. They return
**logits** of shape ``(batch, n_outputs)``; :func:`masked_bce_with_logits` is the training loss, which
ignores missing labels (NaN), so data sets where every example is labelled for one TF only still train a
single multi-task model. Build ``x`` from uint8 codes with :func:`encode_batch` (one-hot made per batch,
never stored); :func:`observed_labels` turns raw labels (NaN or -1 = missing, optional mask) into the
NaN-for-missing form the loss and the metrics read.

No AnnData and no scvi-tools here: the scvi-tools module that wraps these nets is
:class:`scfanpy.models._seqtraining.SeqModule`; the user-facing classes live in
:mod:`scfanpy.models._seqmodels`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._torch import one_hot_torch

__all__ = [
    "DanQModule",
    "FactorNetModule",
    "ScFANModule",
    "masked_bce_with_logits",
    "observed_labels",
    "encode_batch",
    "reverse_complement_input",
    "motif_to_filter",
]

_COMPLEMENT = torch.tensor([3, 2, 1, 0])  # A<->T, C<->G in the one-hot row order A C G T


def encode_batch(codes: torch.Tensor, tracks: torch.Tensor | None = None, n_tracks: int = 0) -> torch.Tensor:
    """Codes ``(n, L)`` (A=0 C=1 G=2 T=3 N=4, any int dtype) + tracks -> float input ``(n, 4 + T, L)``.

    ``tracks`` may be ``(n, T, L)`` or ``(n, T)`` (constant over positions). Missing tracks for a model
    with ``n_tracks > 0`` are zeros.
    """
    n, length = codes.shape
    x = one_hot_torch(codes)
    if n_tracks == 0:
        return x
    if tracks is None:
        tr = x.new_zeros((n, n_tracks, length))
    else:
        tr = tracks.float()
        if tr.dim() == 2:
            tr = tr[:, :, None].expand(n, tr.shape[1], length)
        if tr.shape[1] != n_tracks:
            raise ValueError(f"expected {n_tracks} tracks, got {tr.shape[1]}")
    return torch.cat([x, tr.to(x.dtype)], dim=1)


def reverse_complement_input(x: torch.Tensor, track_rc_order: Sequence[int] | None = None) -> torch.Tensor:
    """Reverse complement of an input ``(n, 4 + T, L)``: DNA rows complemented, everything reversed.

    Signal tracks are reversed along positions; ``track_rc_order`` optionally permutes them (strand-
    specific tracks, e.g. ``_fwd``/``_rev`` pairs, swap on the reverse strand).
    """
    dna = x[:, :4].flip(-1)[:, _COMPLEMENT.to(x.device)]
    if x.shape[1] == 4:
        return dna
    tr = x[:, 4:].flip(-1)
    if track_rc_order is not None:
        tr = tr[:, list(track_rc_order)]
    return torch.cat([dna, tr], dim=1)


def masked_bce_with_logits(
    logits: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean binary cross-entropy over the observed labels only.

    Parameters
    ----------
    logits, labels
        ``(n, n_outputs)``. Labels are 0/1; NaN or negative values are missing.
    mask
        Optional boolean ``(n, n_outputs)``, True where a label is observed (combined with the NaN rule).
    pos_weight
        Optional ``(n_outputs,)`` weight of positive examples (class imbalance).
    """
    observed = torch.isfinite(labels) & (labels >= 0)
    if mask is not None:
        observed = observed & mask.bool()
    y = torch.where(observed, labels, torch.zeros_like(labels))
    loss = F.binary_cross_entropy_with_logits(
        logits.float(), y.float(), reduction="none", pos_weight=pos_weight
    )
    n_obs = observed.sum()
    if n_obs == 0:
        return (logits * 0.0).sum()
    return (loss * observed).sum() / n_obs


def observed_labels(
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    label_index: torch.Tensor | None = None,
) -> torch.Tensor:
    """Float labels ``(n, n_outputs)`` with NaN wherever a label is missing.

    Parameters
    ----------
    labels
        ``(n, n_columns)``; NaN or negative values are missing.
    mask
        Optional boolean ``(n, n_columns)``, True where a label is observed.
    label_index
        Optional ``(n_outputs,)`` long tensor: for each output, its column in ``labels`` (-1: no column,
        all missing). None: the columns are the outputs.
    """
    y = labels.float()
    observed = torch.isfinite(y) & (y >= 0)
    if mask is not None:
        observed = observed & mask.reshape(y.shape).bool()
    y = torch.where(observed, y, torch.full_like(y, float("nan")))
    if label_index is not None:
        idx = label_index.to(y.device)
        picked = y[:, idx.clamp(min=0)]
        y = torch.where(idx >= 0, picked, torch.full_like(picked, float("nan")))
    return y


def _average_probability_logit(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Logit of ``(sigmoid(a) + sigmoid(b)) / 2``, computed stably in log space (float32)."""
    a, b = a.float(), b.float()
    log_p = torch.logaddexp(F.logsigmoid(a), F.logsigmoid(b))
    log_q = torch.logaddexp(F.logsigmoid(-a), F.logsigmoid(-b))
    return log_p - log_q


def _hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Keras 1 ``hard_sigmoid``: ``clip(0.2 x + 0.5, 0, 1)``."""
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


class _BiLSTM(nn.Module):
    """Bidirectional one-layer LSTM on ``(n, T, F)``, concatenated outputs ``(n, T, 2H)``.

    With ``recurrent_activation='sigmoid'`` this is :class:`torch.nn.LSTM` (cuDNN on GPU). With
    ``'hard_sigmoid'`` (Keras 1 default, used for imported FactorNet weights) the same parameters run
    through an explicit time loop with the piecewise-linear gate activation.
    """

    def __init__(self, n_input: int, n_hidden: int, recurrent_activation: str = "sigmoid"):
        super().__init__()
        if recurrent_activation not in ("sigmoid", "hard_sigmoid"):
            raise ValueError("recurrent_activation must be 'sigmoid' or 'hard_sigmoid'")
        self.lstm = nn.LSTM(n_input, n_hidden, batch_first=True, bidirectional=True)
        self.recurrent_activation = recurrent_activation

    def _run(self, x: torch.Tensor, suffix: str) -> torch.Tensor:
        w_ih = getattr(self.lstm, f"weight_ih_l0{suffix}")
        w_hh = getattr(self.lstm, f"weight_hh_l0{suffix}")
        bias = getattr(self.lstm, f"bias_ih_l0{suffix}") + getattr(self.lstm, f"bias_hh_l0{suffix}")
        n, t_len, _ = x.shape
        hidden = w_hh.shape[1]
        xw = x @ w_ih.T + bias  # (n, T, 4H), gate order i f g o
        h = x.new_zeros((n, hidden))
        c = x.new_zeros((n, hidden))
        out = []
        for t in range(t_len):
            z = xw[:, t] + h @ w_hh.T
            i, f, g, o = z.chunk(4, dim=1)
            i, f, o = _hard_sigmoid(i), _hard_sigmoid(f), _hard_sigmoid(o)
            c = f * c + i * torch.tanh(g)
            h = o * torch.tanh(c)
            out.append(h)
        return torch.stack(out, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.recurrent_activation == "sigmoid":
            return self.lstm(x)[0]
        fwd = self._run(x, "")
        bwd = self._run(x.flip(1), "_reverse").flip(1)
        return torch.cat([fwd, bwd], dim=-1)


def motif_to_filter(pwm: np.ndarray, width: int) -> np.ndarray:
    """A probability matrix ``(L, 4)`` as a conv filter ``(4, width)``: ``p - 0.25``, centred, cropped."""
    pwm = np.asarray(pwm, dtype=np.float32)
    w = pwm.T - 0.25
    out = np.zeros((4, width), dtype=np.float32)
    if w.shape[1] > width:
        s = (w.shape[1] - width) // 2
        w = w[:, s : s + width]
    s = (width - w.shape[1]) // 2
    out[:, s : s + w.shape[1]] = w
    return out


class DanQModule(nn.Module):
    """DanQ (Quang & Xie, Nucleic Acids Res 2016): CNN + BiLSTM on one-hot DNA.

    Published architecture (1,000 bp input, 919 DeepSEA targets): conv 320 filters x 26 (ReLU, valid)
    -> max-pool 13 (stride 13) -> dropout 0.2 -> BiLSTM 320 per direction (sequences returned)
    -> dropout 0.5 -> flatten -> dense 925 (ReLU) -> 919 sigmoid outputs.
    DanQ-JASPAR (same paper) initialises part of the first-layer filters with JASPAR motifs and their
    reverse complements; :meth:`init_filters_from_motifs` does that here.

    Deviations: window, number of signal tracks, outputs and all widths are parameters (defaults are
    the paper's); extra signal tracks (``n_tracks``) enter as additional input channels of the first
    convolution (the paper used DNA only); the module returns logits (sigmoid applied by the caller);
    default PyTorch initialisation instead of Keras glorot-uniform; the paper's DanQ-JASPAR model was
    also larger (more and wider filters, wider BiLSTM) -- here the sizes stay as configured and the
    first ``2 x len(motifs)`` filters are overwritten (motif, reverse complement), weights ``p - 0.25``
    and bias minus half the best-match score (our choice).
    """

    def __init__(
        self,
        n_outputs: int,
        *,
        window: int = 1000,
        n_tracks: int = 0,
        n_filters: int = 320,
        filter_width: int = 26,
        pool: int = 13,
        lstm_hidden: int = 320,
        n_dense: int = 925,
        dropout_conv: float = 0.2,
        dropout_lstm: float = 0.5,
    ):
        super().__init__()
        self.n_tracks = n_tracks
        self.window = window
        self.conv = nn.Conv1d(4 + n_tracks, n_filters, filter_width)
        self.pool = nn.MaxPool1d(pool, pool)
        self.drop1 = nn.Dropout(dropout_conv)
        self.bilstm = _BiLSTM(n_filters, lstm_hidden)
        self.drop2 = nn.Dropout(dropout_lstm)
        n_steps = (window - filter_width + 1) // pool
        if n_steps < 1:
            raise ValueError(f"window {window} too short for filter {filter_width} and pool {pool}")
        self.dense = nn.Linear(n_steps * 2 * lstm_hidden, n_dense)
        self.out = nn.Linear(n_dense, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop1(self.pool(F.relu(self.conv(x))))
        h = self.drop2(self.bilstm(h.transpose(1, 2)))
        return self.out(F.relu(self.dense(h.flatten(1))))

    @torch.no_grad()
    def init_filters_from_motifs(
        self, motifs: dict[str, np.ndarray] | Sequence[np.ndarray], *, scale: float = 1.0
    ) -> None:
        """DanQ-JASPAR: overwrite the first filters with motifs (``p - 0.25``) and their reverse complements.

        ``motifs``: probability matrices ``(L, 4)`` in A C G T order (e.g. :func:`scfanpy.datasets.jaspar_motifs`).
        Each motif fills two filters (forward, reverse complement); biases of those filters are set to
        minus half their best-match score so that only good matches pass the ReLU.
        """
        mats = list(motifs.values()) if isinstance(motifs, dict) else list(motifs)
        w = self.conv.weight
        width = w.shape[2]
        k = 0
        for pwm in mats:
            pwm = np.asarray(pwm, dtype=np.float32)
            for m in (pwm, pwm[::-1, ::-1]):
                if k >= w.shape[0]:
                    return
                filt = torch.as_tensor(motif_to_filter(m, width) * scale, dtype=w.dtype)
                w[k].zero_()
                w[k, :4] = filt
                self.conv.bias[k] = -0.5 * float(filt.clamp(min=0).max(0).values.sum())
                k += 1


class FactorNetModule(nn.Module):
    """FactorNet (Quang & Xie, Methods 2019): reverse-complement twin CNN + BiLSTM with signal tracks.

    Published architecture (ENCODE-DREAM; window 1,002 bp; inputs one-hot DNA + per-base tracks such as
    DNase "DGF" and Unique35 mappability): the forward input and its reverse complement go through the
    same layers -- conv (``n_filters`` x 34, ReLU, valid) -> dropout 0.1 -> per-position dense
    (``n_filters``, ReLU) -> max-pool 17 (stride 17) -> BiLSTM (32 per direction, sequences returned)
    -> dropout -> flatten -> dense 64 (ReLU) -> [meta features concatenated -> dropout 0.1 -> dense 64
    (ReLU) -> dropout] -> sigmoid outputs; the two strands' sigmoid outputs are averaged.

    Output: the logit of the averaged probability (exactly the published merge, see
    ``rc_merge='probability'``); ``rc_merge='logit'`` averages logits instead.

    Deviations: widths, window and tracks are parameters; Keras 1's LSTM input/recurrent dropout
    (``dropout_W``/``dropout_U`` 0.1) is replaced by plain dropout 0.1 on the LSTM input; newly built
    models use the standard sigmoid LSTM gates (``recurrent_activation='hard_sigmoid'`` reproduces Keras 1
    and is set by :meth:`scfanpy.models.FACTORNET.from_keras`); default PyTorch initialisation;
    the published multi-task variant has a dropout between the two dense layers, here always present.
    """

    def __init__(
        self,
        n_outputs: int,
        *,
        window: int = 1002,
        n_tracks: int = 2,
        n_filters: int = 32,
        filter_width: int = 34,
        pool: int = 17,
        lstm_hidden: int = 32,
        n_dense: int = 64,
        n_meta: int = 0,
        dropout_conv: float = 0.1,
        dropout: float = 0.5,
        recurrent_activation: str = "sigmoid",
        rc_merge: str = "probability",
        track_rc_order: Sequence[int] | None = None,
    ):
        super().__init__()
        if rc_merge not in ("probability", "logit"):
            raise ValueError("rc_merge must be 'probability' or 'logit'")
        self.n_tracks = n_tracks
        self.window = window
        self.n_meta = n_meta
        self.rc_merge = rc_merge
        self.track_rc_order = list(track_rc_order) if track_rc_order is not None else None
        self.conv = nn.Conv1d(4 + n_tracks, n_filters, filter_width)
        self.drop_conv = nn.Dropout(dropout_conv)
        self.pos_dense = nn.Conv1d(n_filters, n_filters, 1)  # TimeDistributed(Dense)
        self.pool = nn.MaxPool1d(pool, pool)
        self.drop_lstm_in = nn.Dropout(0.1)
        self.bilstm = _BiLSTM(n_filters, lstm_hidden, recurrent_activation)
        self.drop_lstm = nn.Dropout(dropout)
        n_steps = (window - filter_width + 1) // pool
        if n_steps < 1:
            raise ValueError(f"window {window} too short for filter {filter_width} and pool {pool}")
        self.dense = nn.Linear(n_steps * 2 * lstm_hidden, n_dense)
        if n_meta:
            self.drop_meta = nn.Dropout(0.1)
            self.dense_meta = nn.Linear(n_dense + n_meta, n_dense)
        self.drop_dense = nn.Dropout(dropout)
        self.out = nn.Linear(n_dense, n_outputs)
        self.register_buffer("meta_default", torch.zeros(n_meta))

    def _strand(self, x: torch.Tensor, meta: torch.Tensor | None) -> torch.Tensor:
        h = self.drop_conv(F.relu(self.conv(x)))
        h = self.pool(F.relu(self.pos_dense(h)))
        h = self.drop_lstm(self.bilstm(self.drop_lstm_in(h.transpose(1, 2))))
        h = F.relu(self.dense(h.flatten(1)))
        if self.n_meta:
            h = torch.cat([h, meta.to(h.dtype)], dim=1)
            h = F.relu(self.dense_meta(self.drop_meta(h)))
        return self.out(self.drop_dense(h))

    def forward(self, x: torch.Tensor, meta: torch.Tensor | None = None) -> torch.Tensor:
        if self.n_meta and meta is None:
            meta = self.meta_default[None].expand(x.shape[0], -1)
        a = self._strand(x, meta)
        b = self._strand(reverse_complement_input(x, self.track_rc_order), meta)
        if self.rc_merge == "logit":
            return 0.5 * (a + b)
        return _average_probability_logit(a, b)


class _Conv1dPad(nn.Conv1d):
    """Conv1d with Keras/TF 'same' zero padding (for even kernels the extra column goes right)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, same: bool):
        super().__init__(c_in, c_out, kernel)
        self.pad = ((kernel - 1) // 2, kernel // 2) if same else (0, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad != (0, 0):
            x = F.pad(x, self.pad)
        return super().forward(x)


class ScFANModule(nn.Module):
    """The scFAN CNN (Fu et al., Science Advances 2020): three conv blocks with batch norm, then dense.

    Published architecture (paper and the released Keras 2.0.2 ``model.json`` of the GM12878 / K562 /
    H1-ESC models): input 1,000 bp x (4 DNA + signal tracks; the released models use DNase "DGF" and
    Unique35 mappability) -> conv 160 x 8 ('same') -> BN -> ReLU -> max-pool 4 -> dropout 0.2 -> conv
    240 x 8 -> BN -> ReLU -> max-pool 4 -> dropout 0.2 -> conv 240 x 8 -> BN -> ReLU -> dropout 0.5 ->
    flatten -> dense 919 (ReLU) -> one sigmoid output per TF (33 for GM12878).

    Deviations: window, tracks and widths are parameters (defaults are the paper's); batch norm uses
    Keras's settings by default (``bn_momentum=0.01`` = Keras 0.99, ``bn_eps=1e-3``); the module returns
    logits; default PyTorch initialisation; ``padding='valid'`` is offered as an option.
    """

    def __init__(
        self,
        n_outputs: int,
        *,
        window: int = 1000,
        n_tracks: int = 1,
        channels: Sequence[int] = (160, 240, 240),
        kernel: int = 8,
        pool: int = 4,
        dropout: Sequence[float] = (0.2, 0.2, 0.5),
        n_dense: int = 919,
        padding: str = "same",
        bn_eps: float = 1e-3,
        bn_momentum: float = 0.01,
    ):
        super().__init__()
        if padding not in ("same", "valid"):
            raise ValueError("padding must be 'same' or 'valid'")
        self.n_tracks = n_tracks
        self.window = window
        layers: list[nn.Module] = []
        c_in = 4 + n_tracks
        length = window
        for i, (c_out, p) in enumerate(zip(channels, dropout, strict=True)):
            if padding == "valid":
                length = length - kernel + 1
            layers += [
                _Conv1dPad(c_in, c_out, kernel, same=padding == "same"),
                nn.BatchNorm1d(c_out, eps=bn_eps, momentum=bn_momentum),
                nn.ReLU(),
            ]
            if i < len(channels) - 1:
                layers.append(nn.MaxPool1d(pool, pool))
                length //= pool
            layers.append(nn.Dropout(p))
            c_in = c_out
        if length < 1:
            raise ValueError(f"window {window} too short for {len(channels)} conv blocks")
        self.features = nn.Sequential(*layers)
        self.dense = nn.Linear(length * c_in, n_dense)
        self.out = nn.Linear(n_dense, n_outputs)

    @property
    def conv(self) -> nn.Conv1d:
        """The first convolution (motif detectors)."""
        return next(m for m in self.features if isinstance(m, nn.Conv1d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or torch.is_grad_enabled():
            h = self.features(
                x
            )  # module by module: training, and hooks of gradient attribution see every layer
        else:
            h = self._inference_features(x)
        return self.out(F.relu(self.dense(h.flatten(1))))

    def _inference_features(self, x: torch.Tensor) -> torch.Tensor:
        """The conv blocks in evaluation mode with fewer passes over the activations (same function).

        Each batch norm is folded into its convolution (running statistics), and the max-pool runs
        before the ReLU (they commute: ReLU is monotone), so the full-length activation is written once
        instead of four times. Inference on a GPU is bound by that memory traffic, not by the FLOPs.
        Dropout is the identity here.
        """
        mods = list(self.features)
        i = 0
        while i < len(mods):
            conv = mods[i]
            if not isinstance(conv, _Conv1dPad):
                x = conv(x)  # dropout: identity in evaluation mode
                i += 1
                continue
            bn = mods[i + 1]
            scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
            weight = conv.weight * scale[:, None, None]
            bias = (conv.bias - bn.running_mean) * scale + bn.bias
            x = F.conv1d(F.pad(x, conv.pad) if conv.pad != (0, 0) else x, weight, bias)
            i += 3  # conv, batch norm, ReLU
            if i < len(mods) and isinstance(mods[i], nn.MaxPool1d):
                x = mods[i](x)
                i += 1
            x = F.relu(x)
        return x


def _n_params(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))
