"""A training-free TF-binding model: JASPAR PWM log-odds scans calibrated to a probability.

Usable on any genome for every TF in JASPAR CORE vertebrates, and the default model of
:func:`scfanpy.tl.predict_tf_binding`. It follows the model contract of the sequence models (``tf_names``,
``input_spec``, ``predict_codes``, ``predict_sequences``), so callers treat all models alike. On the CPU
the scan runs in numba, 32 matrices per SIMD vector with exact best scores (``scfanpy.models._motif_numba``);
on a GPU as a torch 1-D convolution; a numpy scan (the reference) stays available with ``backend='numpy'``. Neither numba nor
torch is imported for a small scan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .._constants import N_CODE
from .._torch import one_hot
from ..genome import encode_sequences

__all__ = ["MotifModel"]

HUMAN_BACKGROUND = (0.295, 0.205, 0.205, 0.295)
_N_SCORE = -30.0  # log-odds of an N (or a position past the window end) at a motif column
# backend='auto' scans with numpy below this many (sequence position x motif) pairs: there the numpy scan
# takes well under a second, less than importing numba and loading its compiled scan (~1-2 s) or torch
_TORCH_MIN_WORK = 20_000_000
# device None/'auto': above this many pairs (~0.5 s of the numba scan on one thread) torch is imported to
# look for a GPU, where the convolution scan is faster
_GPU_PROBE_WORK = 1_000_000_000
_BACKENDS = ("auto", "numba", "torch", "numpy")
# bound on the bytes of one convolution output (batch, 2 * motifs of a length, W), float32: on a GPU;
# on the CPU a smaller output stays in cache for the max that reads it back (measured ~20% faster)
_CONV_OUT_BYTES = {"cuda": 256 * 2**20, "cpu": 16 * 2**20}


def _one_hot_n(codes: np.ndarray, pad: int) -> np.ndarray:
    """One-hot ``(b, 5, W + pad)`` float32 of codes ``(b, W)`` with N as a fifth letter, N-padded on the right.

    Rows A, C, G, T as :func:`scfanpy._torch.one_hot`, plus a row marking N (and any code above 4), so
    that a motif column can score N apart; the ``pad`` N positions let every offset of the sequence
    start a full-length motif window.
    """
    c = np.clip(codes, 0, N_CODE)
    c = np.concatenate([c, np.full((len(c), pad), N_CODE, dtype=c.dtype)], axis=1)
    return np.concatenate([one_hot(c, np.float32), (c == N_CODE)[:, None, :].astype(np.float32)], axis=1)


def _conv_best(batch, groups: list, lmax: int, n_tfs: int):
    """Best score ``(b, n_tfs)`` of uint8 codes ``batch`` ``(b, W)`` (a tensor) over both strands.

    The sequence is N-padded by ``lmax - 1`` on the right and one-hot coded on A, C, G, T only; the
    convolution sums the log-odds of the letters, and each window's N count (from a running sum) times
    -30 is added exactly afterwards: to the last ``L - 1`` positions of every sequence (the padding),
    and to all positions only in the sequences that hold an N.
    """
    import torch
    import torch.nn.functional as F

    b, width = batch.shape
    c = F.pad(batch.long().clamp(max=N_CODE), (0, lmax - 1), value=N_CODE)  # (b, W + lmax - 1)
    letters = torch.arange(N_CODE, device=c.device)
    x = (c[:, :, None] == letters).to(torch.float32)  # (b, W + lmax - 1, 4); N -> all zeros
    cum = F.pad((c == N_CODE).to(torch.float32).cumsum(1), (1, 0))  # cum[:, p]: N count before p
    best = torch.empty((b, n_tfs), dtype=torch.float32, device=c.device)
    for idx, length, w in groups:
        # conv2d on a (b, 4, 1, W) channels-last input: 2x faster than conv1d on the CPU (oneDNN)
        xl = (
            x[:, None, : width + length - 1].permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        )
        y = F.conv2d(xl, w)[:, :, 0]  # (b, 2 n_L, W), positions outermost in memory
        pen = (cum[:, length : length + width] - cum[:, :width]) * _N_SCORE  # (b, W), exact
        s = max(width - length + 1, 0)  # windows from s on reach into the padding
        if s < width:
            y[:, :, s:] += pen[:, None, s:]
        rows = (pen[:, :s] < 0).any(1).nonzero().squeeze(1)
        if len(rows):
            y[rows, :, :s] += pen[rows, None, :s]
        top = y.amax(2)
        half = len(idx)
        best[:, idx] = torch.maximum(top[:, :half], top[:, half:])
    return best


class MotifModel:
    """JASPAR motif model: best log-odds match per sequence (both strands) -> binding probability.

    **Scan.** Each TF's position probability matrix ``P`` (JASPAR, ``L x 4``) is mixed with the
    background ``b`` (``(1 - pseudocount) * P + pseudocount * b``) and turned into a log-odds matrix
    ``S[k, a] = log(P'[k, a] / b[a])`` (natural log). A sequence of length ``W`` is scored at each of its
    ``n = W - L + 1`` offsets on both strands (the reverse strand by scanning the reverse-complement
    matrix); the sequence's score is the **maximum** over those ``N = 2 n`` offsets. The scan is a 1-D
    convolution of the one-hot sequences with the motifs of each length (torch, on the CPU's threads or a
    GPU, in float32), an N scoring -30 at any motif column; :meth:`scan_codes` documents the backends.

    **Calibration.** The exact distributions of a single offset's score under the background (``T0``)
    and under the motif itself (``T1``) are computed by dynamic programming on a score grid of step
    ``resolution`` (tail probabilities, as in motif p-value tools). For a sequence whose best score is
    ``s``,

    - without a site: ``P0(s) = P(max >= s) = 1 - (1 - T0(s))^N``;
    - with one site among the offsets: ``P1(s) = 1 - (1 - T1(s)) (1 - T0(s))^(N-1)``;

    and the returned probability is ``prior * P1 / (prior * P1 + (1 - prior) * P0)``: the posterior that
    the sequence holds a site given its best score is at least ``s``. It rises from ``prior`` (for a
    score any background sequence reaches) to 1, is monotone in ``s``, and accounts for the sequence
    length (longer sequences reach higher scores by chance). ``prior`` is the fraction of sequences
    expected to hold a site (default 0.1).

    Sequences of any length are accepted (``input_spec['window'] == 0``); signal tracks are ignored
    (``n_tracks == 0``): a sequence-only model, whose per-cell use gates it by each cell's accessibility.

    Parameters
    ----------
    tfs
        JASPAR TF names (case-insensitive, e.g. ``['GATA1', 'SPI1']``); ``None``: every TF of JASPAR CORE
        vertebrates (one matrix per name). Ignored when ``motifs`` is given.
    motifs
        ``{name: L x 4 probability matrix}`` (DataFrame with columns ``A C G T`` or array) to use instead
        of JASPAR.
    background
        Base frequencies A, C, G, T of the background (default: human genome).
    pseudocount
        Weight of the background mixed into each motif column (avoids ``log 0``).
    prior
        Prior probability that a sequence holds a site of a given TF.
    resolution
        Step of the score grid (nats) used by the calibration.
    release
        JASPAR release (pyjaspar's offline database).

    Examples
    --------
    >>> import scfanpy as sfp
    >>> m = sfp.models.MotifModel(["GATA1", "CTCF"])
    >>> p = m.predict_sequences(["ACGT" * 20 + "AGATAAGG" + "ACGT" * 20])
    >>> p.shape
    (1, 2)
    """

    name = "jaspar_motif"

    def __init__(
        self,
        tfs: Sequence[str] | None = None,
        *,
        motifs: Mapping[str, pd.DataFrame | np.ndarray] | None = None,
        background: Sequence[float] = HUMAN_BACKGROUND,
        pseudocount: float = 0.02,
        prior: float = 0.1,
        resolution: float = 0.02,
        release: str = "JASPAR2024",
    ):
        if motifs is None:
            from ..datasets import jaspar_motifs

            motifs = jaspar_motifs(None if tfs is None else list(tfs), release=release)
            self.source = f"{release} CORE vertebrates"
        else:
            self.source = "user motifs"
        if not 0 < prior < 1:
            raise ValueError(f"prior must be in (0, 1), got {prior}")
        if not 0 < pseudocount < 1:
            raise ValueError(f"pseudocount must be in (0, 1), got {pseudocount}")
        b = np.asarray(background, dtype=np.float64)
        if b.shape != (4,) or (b <= 0).any():
            raise ValueError("background must be 4 positive frequencies (A, C, G, T)")
        self.background = b / b.sum()
        self.pseudocount = float(pseudocount)
        self.prior = float(prior)
        self.resolution = float(resolution)
        self.tf_names: list[str] = list(motifs)
        self.pwms: dict[str, np.ndarray] = {}
        self.log_odds: dict[str, np.ndarray] = {}
        for name, m in motifs.items():
            p = np.asarray(m.to_numpy() if isinstance(m, pd.DataFrame) else m, dtype=np.float64)
            if p.ndim != 2 or p.shape[1] != 4:
                raise ValueError(f"motif {name!r}: expected an L x 4 matrix, got {p.shape}")
            p = p / p.sum(1, keepdims=True)
            self.pwms[name] = p
            mixed = (1 - self.pseudocount) * p + self.pseudocount * self.background
            self.log_odds[name] = np.log(mixed / self.background)
        self.lengths = np.array([len(self.log_odds[t]) for t in self.tf_names])
        self._weights = self._build_weights()
        self._grids = [self._score_tails(t) for t in self.tf_names]
        self._calib_cache: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._conv_cache: dict[str, list] = {}  # torch weights per device, built on first use
        self._numba_tables = None  # the numba scan's tables, built on first use

    # ------------------------------------------------------------------ contract
    @property
    def input_spec(self) -> dict:
        """``window`` 0 (any length), no signal tracks."""
        return {"window": 0, "n_tracks": 0, "track_names": []}

    def __repr__(self) -> str:
        return f"MotifModel({len(self.tf_names)} TFs from {self.source}, prior={self.prior})"

    # ------------------------------------------------------------------ scanning
    def _build_weights(self) -> list[tuple[np.ndarray, int, np.ndarray]]:
        """Motifs grouped by length: ``[(tf indices, Lmax of the group, (Lmax * 5, 2 * n) scoring matrix)]``.

        Forward and reverse-complement matrices side by side; N scored very low; shorter motifs padded
        with zero columns.
        """
        # the numpy reference: one group (splitting by length saves multiply-adds but not the score
        # array written per position, measured no faster); the torch scan groups by length instead
        groups = [list(range(len(self.tf_names)))]
        out = []
        for g in groups:
            lmax = int(self.lengths[g].max())
            n = len(g)
            w = np.zeros((lmax, 5, 2 * n), dtype=np.float32)
            for i, j in enumerate(g):
                s = self.log_odds[self.tf_names[j]]
                rc = s[::-1, ::-1]  # reverse positions, complement A<->T C<->G (ACGT order reversed)
                ln = len(s)
                w[:ln, :4, i] = s
                w[:ln, 4, i] = _N_SCORE
                w[:ln, :4, n + i] = rc
                w[:ln, 4, n + i] = _N_SCORE
            out.append((np.asarray(g), lmax, w.reshape(lmax * 5, 2 * n)))
        return out

    def scan_codes(
        self,
        codes: np.ndarray,
        *,
        batch_size: int = 256,
        device: str | None = None,
        backend: str = "auto",
        exact: bool = True,
        n_threads: int | None = None,
    ) -> np.ndarray:
        """Best log-odds score of each TF in each sequence, over both strands.

        Parameters
        ----------
        codes
            uint8 ``(n, W)`` (A=0 C=1 G=2 T=3 N=4; codes above 4 read as N).
        batch_size
            Upper bound on sequences per batch of the torch and numpy scans (lowered to bound memory).
        device
            ``None`` or ``'auto'``: the CPU, or the first GPU when the scan is large (over 1e9 position x
            motif pairs) and torch sees one; ``'cpu'``; ``'cuda'``, ``'cuda:1'``, ... (torch; see
            ``scfanpy._torch.resolve_device``).
        backend
            ``'numba'``: the CPU scan (``scfanpy.models._motif_numba``): the motifs packed 32 to a SIMD
            vector, every window scored in int16 (one vector add per motif column), then the windows
            whose integer score is within its rounding bound of the best scored exactly in float64; it
            compiles once per install (cached). ``'torch'``: a 1-D convolution of
            the one-hot sequences with the motifs of each length (a channels-last ``conv2d`` of height
            1), float32, on a GPU with TF32 off. ``'numpy'``: the reference scan (sliding windows times
            all motifs, one thread). ``'auto'``: numpy for a small scan (fewer than 2e7 position x motif
            pairs), else torch on a GPU (asked for, or found for a large scan with ``device=None``),
            else numba (torch, when numba cannot be imported). All give the same scores up to float32
            rounding.
        exact
            ``False``: numba returns ``-inf`` instead of a score below the **floor** of its motif
            at this width: the score under which :meth:`calibrate` gives exactly ``prior``, so the
            probabilities are unchanged. Other backends return every score.
        n_threads
            Threads of the numba scan (``None``: ``numba.get_num_threads()``, set with
            ``numba.set_num_threads`` or ``NUMBA_NUM_THREADS``).

        Returns
        -------
        scores : numpy.ndarray
            float32 ``(n, n_tfs)`` best log-odds score. Each N (and each position past the end of a
            sequence shorter than a motif) scores -30 at every motif column, so a sequence with no full
            window free of N gets a very low score; an empty width scores ``-30 * motif length``.
        """
        codes = np.asarray(codes)
        if codes.ndim != 2:
            raise ValueError(f"codes must be 2-D (n, W), got shape {codes.shape}")
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(map(repr, _BACKENDS))}, got {backend!r}")
        n, width = codes.shape
        if n == 0 or width == 0:  # nothing to scan: every window is all N
            return np.tile((_N_SCORE * self.lengths).astype(np.float32), (n, 1))
        if backend == "auto":
            backend = _pick_backend(device, n * width * len(self.tf_names))
        if backend == "numpy":
            return self._scan_numpy(codes, batch_size)
        if backend == "numba":
            return self._scan_numba(codes, exact, n_threads)
        return self._scan_torch(codes, batch_size, device)

    def _scan_numba(self, codes: np.ndarray, exact: bool, n_threads: int | None) -> np.ndarray:
        """The numba scan: exact best scores, or only those above the floors (``exact=False``)."""
        from . import _motif_numba

        if self._numba_tables is None:
            self._numba_tables = _motif_numba.build_tables([self.log_odds[t] for t in self.tf_names])
        floors = np.full(len(self.tf_names), -np.inf) if exact else self.floors(codes.shape[1])
        return _motif_numba.scan(codes, self._numba_tables, floors, n_threads)

    def floors(self, width: int) -> np.ndarray:
        """Per TF, the best score at or below which :meth:`calibrate` gives exactly ``prior`` at ``width``.

        The largest grid score whose posterior equals ``prior`` (the table is clipped at ``prior`` and
        interpolated, ``prior`` below the grid); the lowest grid score when none does (then only scores
        below it give ``prior``).
        """
        out = np.empty(len(self.tf_names))
        for j, (grid, post) in enumerate(self._calibration(int(width))):
            at_prior = np.flatnonzero(post == self.prior)
            out[j] = grid[at_prior[-1]] if len(at_prior) else np.nextafter(grid[0], -np.inf)
        return out

    def _scan_numpy(self, codes: np.ndarray, batch_size: int) -> np.ndarray:
        """The reference scan: sliding windows ``(b, W, 5 Lmax)`` times all motifs ``(5 Lmax, 2 n)``."""
        n, width = codes.shape
        out = np.empty((n, len(self.tf_names)), dtype=np.float32)
        for idx, lmax, weights in self._weights:
            n_g = len(idx)
            # bound the (batch, W, 2 n) scores and the (batch, W, Lmax * 5) windows to ~64 MB each
            per_seq = width * max(2 * n_g, lmax * 5)
            bs = int(max(1, min(batch_size, 16_000_000 // max(per_seq, 1))))
            for lo in range(0, n, bs):
                onehot = _one_hot_n(codes[lo : lo + bs], lmax - 1)  # (b, 5, W + Lmax - 1)
                win = np.lib.stride_tricks.sliding_window_view(onehot, lmax, axis=2)  # (b, 5, W, Lmax)
                win = np.ascontiguousarray(win.transpose(0, 2, 3, 1)).reshape(len(onehot), width, lmax * 5)
                best = (win @ weights).max(axis=1)  # (b, 2 n)
                out[lo : lo + bs, idx] = np.maximum(best[:, :n_g], best[:, n_g:])
        return out

    def _conv_weights(self, dev) -> list:
        """Motifs grouped by exact length, as torch tensors on ``dev`` (cached per device).

        ``[(tf indices, L, (2 n_L, 4, 1, L) channels-last weights)]``: forward matrices then reverse
        complements, rows A, C, G, T; N is handled apart (see ``_conv_best``). One convolution per
        length does no multiply-add on padding columns: 3x fewer than padding every motif to the longest
        (measured 3x faster on the CPU than one convolution, and faster than a few bins of lengths).
        """
        import torch

        key = str(dev)
        cache = self._conv_cache
        if key not in cache:
            groups = []
            for length in np.unique(self.lengths):
                idx = np.flatnonzero(self.lengths == length)
                w = np.zeros((2 * len(idx), 4, length), dtype=np.float32)
                for i, j in enumerate(idx):
                    s = self.log_odds[self.tf_names[j]]
                    w[i] = s.T
                    w[len(idx) + i] = s[::-1, ::-1].T  # reverse complement
                w4 = torch.from_numpy(w)[:, :, None].to(dev).contiguous(memory_format=torch.channels_last)
                groups.append((torch.from_numpy(idx).to(dev), int(length), w4))
            cache[key] = groups
        return cache[key]

    def _scan_torch(self, codes: np.ndarray, batch_size: int, device: str | None) -> np.ndarray:
        """The scan as 1-D convolutions (one per motif length), batched to bound memory."""
        import torch

        from .._torch import resolve_device

        dev = resolve_device(device)
        groups = self._conv_weights(dev)
        n, width = codes.shape
        lmax = int(self.lengths.max())
        widest = max(w.shape[0] for _, _, w in groups)
        cap = _CONV_OUT_BYTES["cpu" if dev.type == "cpu" else "cuda"]
        bs = int(max(1, min(batch_size, cap // (4 * widest * width))))
        out = np.empty((n, len(self.tf_names)), dtype=np.float32)
        tf32 = torch.backends.cudnn.allow_tf32
        try:
            if dev.type == "cuda":  # TF32 convolutions would round the sums to ~10 bits
                torch.backends.cudnn.allow_tf32 = False
            with torch.inference_mode():
                for lo in range(0, n, bs):
                    batch = torch.from_numpy(np.ascontiguousarray(codes[lo : lo + bs])).to(dev)
                    out[lo : lo + bs] = _conv_best(batch, groups, lmax, len(self.tf_names)).cpu().numpy()
        finally:
            torch.backends.cudnn.allow_tf32 = tf32
        return out

    # ------------------------------------------------------------------ calibration
    def _score_tails(self, tf: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score grid and tail probabilities ``P(score >= grid)`` under background and under the motif."""
        s = self.log_odds[tf]
        res = self.resolution
        q = np.round(s / res).astype(np.int64)  # (L, 4) integer scores
        lo_total = int(q.min(1).sum())
        hi_total = int(q.max(1).sum())
        size = hi_total - lo_total + 1
        motif_p = (1 - self.pseudocount) * self.pwms[tf] + self.pseudocount * self.background
        d0 = np.zeros(size)
        d1 = np.zeros(size)
        d0[0] = d1[0] = 1.0
        offset = 0  # current minimum reachable integer score
        for k in range(len(q)):
            new0 = np.zeros(size)
            new1 = np.zeros(size)
            base = offset + int(q[k].min())
            for a in range(4):
                shift = int(q[k, a] - q[k].min())
                new0[shift:] += self.background[a] * d0[: size - shift]
                new1[shift:] += motif_p[k, a] * d1[: size - shift]
            d0, d1, offset = new0, new1, base
        grid = (lo_total + np.arange(size)) * res
        tail0 = np.cumsum(d0[::-1])[::-1]
        tail1 = np.cumsum(d1[::-1])[::-1]
        return grid, np.clip(tail0, 0, 1), np.clip(tail1, 0, 1)

    def _calibration(self, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
        if width not in self._calib_cache:
            table = []
            for j, (grid, t0, t1) in enumerate(self._grids):
                if width < self.lengths[j]:  # no full window: no evidence (was NaN)
                    table.append((grid, np.full(grid.shape, self.prior)))
                    continue
                n_off = 2 * (width - int(self.lengths[j]) + 1)
                with np.errstate(divide="ignore"):
                    log_none0 = n_off * np.log1p(-np.minimum(t0, 1 - 1e-300))
                    log_none0_m1 = (n_off - 1) * np.log1p(-np.minimum(t0, 1 - 1e-300))
                p0 = -np.expm1(log_none0)
                p1 = 1 - (1 - t1) * np.exp(log_none0_m1)
                num = self.prior * p1
                post = num / np.maximum(num + (1 - self.prior) * p0, 1e-300)
                post = np.maximum.accumulate(np.clip(post, self.prior, 1.0))  # monotone in the score
                table.append((grid, post))
            self._calib_cache[width] = table
        return self._calib_cache[width]

    def calibrate(self, scores: np.ndarray, width: int) -> np.ndarray:
        """Best scores ``(n, n_tfs)`` of sequences of length ``width`` -> binding probabilities."""
        scores = np.asarray(scores, dtype=np.float64)
        out = np.empty(scores.shape, dtype=np.float32)
        for j, (grid, post) in enumerate(self._calibration(int(width))):
            out[:, j] = np.interp(scores[:, j], grid, post, left=self.prior, right=1.0)
        return out

    # ------------------------------------------------------------------ predictions
    def predict_codes(
        self,
        codes: np.ndarray,
        tracks: np.ndarray | None = None,
        *,
        batch_size: int = 256,
        device: str | None = None,
        backend: str = "auto",
        n_threads: int | None = None,
    ) -> np.ndarray:
        """Binding probability of each TF in each sequence.

        Parameters
        ----------
        codes
            uint8 ``(n, W)``.
        tracks
            Ignored (sequence-only model); accepted for the common model interface.
        batch_size
            Upper bound on sequences per batch.
        device
            Where the scan runs (see :meth:`scan_codes`): ``None``/``'auto'``, ``'cpu'``, ``'cuda'``.
        backend, n_threads
            As in :meth:`scan_codes`. The scan is asked only for the scores above the calibration's
            floors (``exact=False``): the probabilities are those of the exact scores.

        Returns
        -------
        probabilities : numpy.ndarray
            float32 ``(n, n_tfs)``, columns in the order of ``tf_names``.
        """
        codes = np.asarray(codes)
        scores = self.scan_codes(
            codes, batch_size=batch_size, device=device, backend=backend, exact=False, n_threads=n_threads
        )
        return self.calibrate(scores, codes.shape[1])

    def predict_sequences(
        self, seqs: Sequence[str] | str, *, batch_size: int = 256, device: str | None = None
    ) -> pd.DataFrame:
        """Binding probabilities for DNA strings (equal lengths are scanned together).

        An empty string, or one of N only, holds no evidence: every TF gets ``prior``.

        Returns
        -------
        probabilities : pandas.DataFrame
            Sequences x TFs.
        """
        if isinstance(seqs, str):
            seqs = [seqs]
        seqs = list(seqs)
        out = np.empty((len(seqs), len(self.tf_names)), dtype=np.float32)
        encoded = encode_sequences(seqs)  # one warning for every letter read as N
        lengths = np.array([len(c) for c in encoded])
        for w in np.unique(lengths):
            idx = np.flatnonzero(lengths == w)
            codes = np.stack([encoded[i] for i in idx]).reshape(len(idx), w)
            out[idx] = self.predict_codes(codes, batch_size=batch_size, device=device)
        return pd.DataFrame(out, columns=self.tf_names)


def _pick_backend(device, work: int) -> str:
    """``backend='auto'``: numpy when small, torch on a GPU, else numba (torch without numba)."""
    name = str(getattr(device, "type", device))  # a torch.device: its type
    if name not in ("None", "auto", "cpu"):
        return "torch"  # a GPU (or another torch device) asked for
    if work < _TORCH_MIN_WORK:
        return "numpy"
    if name != "cpu" and work >= _GPU_PROBE_WORK:
        import torch

        if torch.cuda.is_available():
            return "torch"
    try:
        import numba  # noqa: F401
    except ImportError:  # pragma: no cover - numba comes with scanpy
        return "torch"
    return "numba"
