"""Attribution of a model's TF-binding log-odds to each base: in-silico mutagenesis and gradient methods.

Every method returns **hypothetical contributions** ``values[i, t, p, b]`` (sequence ``i``, TF ``t``,
position ``p``, base ``b`` in A C G T order), centred over the four bases at each position, so that the
reference base's entry is that position's contribution (:attr:`Attribution.scores`):

- ``'ism'`` (any model): ``values[.., p, b] = f(x with b at p) - mean over the 4 bases``, where ``f`` is
  the model's log-odds (below). At the reference base this is ``3/4 (f(ref) - mean over the 3 alts)``:
  positive where the reference base helps binding. All ``3 W`` single mutants of a sequence are
  predicted in one batch (through the model's own prediction code).
- ``'integrated_gradients'`` (torch models): captum's IntegratedGradients of the logit without the
  ``(input - baseline)`` factor, i.e. the gradient averaged along the path from the baseline, centred
  over the four bases (the correction of gradients off the one-hot simplex, Majdandzic et al. 2023).
- ``'deeplift_shap'`` (torch models): captum's DeepLift multipliers averaged over ``n_shuffles``
  dinucleotide shuffles of each sequence as references (DeepLIFT-SHAP), centred the same way.

The log-odds ``f``: the network's logit (one per TF) for the sequence models; for the
:class:`~scfanpy.models.MotifModel` the best PWM log-odds score over both strands (nats), the quantity
its probability is a monotone calibration of (the probability itself saturates at 1 on strong sites,
where a mutation would then show no effect); for any other model ``logit(predict_codes)``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from anndata import AnnData

from .. import _logging as logg
from .._constants import N_CODE
from .._docs import doc_params
from .._utils import check_random_state, get_adata, is_mudata, log_added

__all__ = ["Attribution", "attribution"]

_METHODS = ("ism", "integrated_gradients", "deeplift_shap")
_INTERPRET_HINT = "pip install scfanpy[interpret]"


@dataclass
class Attribution:
    """Per-base attributions of a model's TF-binding log-odds (what :func:`scfanpy.tl.attribution` returns).

    Attributes
    ----------
    values
        float32 ``(n, n_tfs, W, 4)``: hypothetical contributions of each base (A C G T) at each position,
        centred over the four bases (module docstring); 0 at N.
    codes
        uint8 ``(n, W)``: the reference sequences (A=0 C=1 G=2 T=3 N=4) as the model saw them.
    tfs
        TF names (the second axis of ``values``).
    names
        A name per sequence (peak names, regions, or ``seq0``...).
    method
        ``'ism'``, ``'integrated_gradients'`` or ``'deeplift_shap'``.
    params
        The other arguments of the call (model, baseline, ...).
    """

    values: np.ndarray
    codes: np.ndarray
    tfs: list[str]
    names: list[str]
    method: str
    params: dict = field(default_factory=dict)

    @property
    def scores(self) -> np.ndarray:
        """float32 ``(n, n_tfs, W)``: the contribution of each reference base (0 at N)."""
        c = np.minimum(self.codes, 3).astype(np.intp)
        s = np.take_along_axis(self.values, c[:, None, :, None], axis=3)[..., 0]
        return np.where((self.codes < N_CODE)[:, None, :], s, 0).astype(np.float32)

    @property
    def importance(self) -> np.ndarray:
        """float32 ``(n, n_tfs, W)``: how much each position matters, ``sum |values|`` over the 4 bases.

        The sensitivity of the log-odds to the base at that position whichever base is there (for ISM,
        the mean absolute change of the log-odds from the four-base mean); 0 at N.
        """
        return np.abs(self.values).sum(-1)

    @property
    def contributions(self) -> np.ndarray:
        """float32 ``(n, n_tfs, W, 4)``: ``values`` at the reference base, 0 elsewhere (for logos)."""
        onehot = np.eye(5, dtype=np.float32)[self.codes][..., :4]  # N -> all zero
        return self.values * onehot[:, None]

    def tf_index(self, tf: str | int) -> int:
        """Position of ``tf`` (a name, case-insensitive, or an index) in :attr:`tfs`."""
        if isinstance(tf, int | np.integer):
            return int(tf)
        upper = [t.upper() for t in self.tfs]
        if str(tf).upper() not in upper:
            raise KeyError(f"TF {tf!r} not in this attribution (has {self.tfs[:10]})")
        return upper.index(str(tf).upper())

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict of arrays and lists (what is written to ``adata.uns``)."""
        return {
            "values": self.values,
            "codes": self.codes,
            "tfs": np.asarray(self.tfs, dtype=object),
            "names": np.asarray(self.names, dtype=object),
            "method": self.method,
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Attribution:
        """Rebuild from :meth:`to_dict` (e.g. ``Attribution.from_dict(adata.uns['attribution'])``)."""
        return cls(
            values=np.asarray(d["values"]),
            codes=np.asarray(d["codes"]),
            tfs=[str(t) for t in d["tfs"]],
            names=[str(n) for n in d["names"]],
            method=str(d["method"]),
            params=dict(d.get("params", {})),
        )


# ---------------------------------------------------------------------------------------------------
# the model's log-odds (shared with tl.variant_effects)
# ---------------------------------------------------------------------------------------------------
def is_torch_model(model: Any) -> bool:
    """A sequence model of :mod:`scfanpy.models` (a torch network under ``model.module``)."""
    module = getattr(model, "module", None)
    return module is not None and hasattr(module, "inference") and hasattr(module, "net")


@contextmanager
def model_on(model: Any, device: Any):
    """Move a torch model's module to ``device`` (None: leave it) and back afterwards; eval mode inside."""
    if not is_torch_model(model):
        yield
        return
    from .._torch import resolve_device

    module = model.module
    before, was_training = module.device, module.training
    if device is not None:
        module.to(resolve_device(device))
    module.eval()
    try:
        yield
    finally:
        module.to(before)
        module.train(was_training)


def model_log_odds(
    model: Any, codes: np.ndarray, tracks: np.ndarray | None, *, batch_size: int, device: Any = None
) -> np.ndarray:
    """float32 ``(n, n_tfs)`` log-odds of ``codes`` (module docstring: what "log-odds" is per model)."""
    if hasattr(model, "scan_codes"):  # the motif model: its best PWM log-odds score
        return model.scan_codes(codes, batch_size=batch_size, device=device)
    if not is_torch_model(model):
        p = np.asarray(model.predict_codes(codes, tracks, batch_size=batch_size), dtype=np.float64)
        p = np.clip(p, 1e-7, 1 - 1e-7)
        return np.log(p / (1 - p)).astype(np.float32)
    from .._torch import fit_window, predict_batched

    module = model.module
    window = model.input_spec["window"]
    tracks = model._check_tracks(tracks, len(codes))

    def prepare(lo: int, hi: int) -> list[np.ndarray | None]:
        c = fit_window(np.asarray(codes[lo:hi], dtype=np.uint8), window)
        t = None if tracks is None else np.array(tracks[lo:hi], dtype=np.float32)  # a writable copy
        return [c, fit_window(t, window) if t is not None and t.ndim == 3 else t]

    with model_on(model, device):
        return predict_batched(
            lambda c, t: module.inference(c, t)["logits"],
            [codes, tracks],
            batch_size=batch_size,
            device=module.device,
            prepare=prepare,
        )


# ---------------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------------
_REGION = re.compile(r"^\s*([^:\s]+):([\d,_]+)-([\d,_]+)\s*$")


def parse_region(region: str) -> tuple[str, int, int]:
    """``'chr1:1,001-1,500'`` (1-based, inclusive, as samtools) -> ``('chr1', 1000, 1500)`` (0-based, half-open)."""
    m = _REGION.match(region)
    if m is None:
        raise ValueError(f"region {region!r} is not 'chrom:start-end' (1-based, inclusive)")
    start, end = (int(re.sub(r"[,_]", "", g)) for g in m.groups()[1:])
    if start < 1 or end < start:
        raise ValueError(f"region {region!r}: need 1 <= start <= end")
    return m.group(1), start - 1, end


def _stack(codes: list[np.ndarray]) -> np.ndarray:
    """Equal-width stack of code arrays: shorter ones padded with N, centred (``fit_window``)."""
    from .._torch import fit_window

    width = max((len(c) for c in codes), default=0)
    return np.stack([fit_window(np.asarray(c, np.uint8)[None], width)[0] for c in codes])


def _peak_rows(adata: AnnData, peaks: Any) -> np.ndarray:
    if peaks is None:
        return np.arange(adata.n_vars)
    p = np.asarray(peaks)
    if p.dtype == bool:
        if p.shape != (adata.n_vars,):
            raise ValueError(f"peaks: a boolean mask needs {adata.n_vars} entries, got {p.shape}")
        return np.flatnonzero(p)
    if np.issubdtype(p.dtype, np.integer):
        return p.ravel()
    idx = adata.var_names.get_indexer(p.ravel().astype(str))
    if (idx < 0).any():
        raise KeyError(f"peaks not in var_names: {list(p.ravel()[idx < 0][:5])}")
    return idx


def read_inputs(
    data: Any, *, genome: Any, region: Any, peaks: Any, mod: str | None, dna_key: str
) -> tuple[np.ndarray, list[str], AnnData | None]:
    """``(codes (n, W), names, adata or None)`` of what :func:`attribution` accepts as ``data``."""
    from ..genome import as_genome, encode_sequences

    if data is None:
        if genome is None or region is None:
            raise ValueError("pass data= (sequences, codes or an AnnData), or genome= with region=")
        regions = [region] if isinstance(region, str) else list(region)
        g = as_genome(genome)
        codes = [g.fetch_codes(*parse_region(r)) for r in regions]
        return _stack(codes), [str(r) for r in regions], None
    if isinstance(data, AnnData) or is_mudata(data):
        adata = get_adata(data, mod)
        if dna_key not in adata.varm:
            raise KeyError(f"varm[{dna_key!r}] not found: run sfp.pp.add_sequences first")
        rows = _peak_rows(adata, peaks)
        codes = np.asarray(adata.varm[dna_key])[rows].astype(np.uint8)
        return codes, list(adata.var_names[rows].astype(str)), adata
    if isinstance(data, str):
        data = [data]
    if isinstance(data, np.ndarray) and np.issubdtype(data.dtype, np.integer):
        codes = data[None] if data.ndim == 1 else data
        if codes.ndim != 2:
            raise ValueError(f"codes must be (n, W), got shape {data.shape}")
        return codes.astype(np.uint8), [f"seq{i}" for i in range(len(codes))], None
    seqs = list(data)
    if not all(isinstance(s, str) for s in seqs):
        raise TypeError("data: expected DNA strings, uint8 codes (n, W), or an AnnData")
    return _stack(encode_sequences(seqs)), [f"seq{i}" for i in range(len(seqs))], None


# ---------------------------------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------------------------------
def _centre(h: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Centre ``(n, T, W, 4)`` over the bases and zero the N positions."""
    h = h - h.mean(-1, keepdims=True)
    return np.where((codes < N_CODE)[:, None, :, None], h, 0).astype(np.float32)


def _ism(model, codes, tracks, cols, batch_size, device) -> np.ndarray:
    """In-silico mutagenesis: ``(n, len(cols), W, 4)`` log-odds of every single mutant (not centred)."""
    n, width = codes.shape
    pos = np.arange(width)
    out = np.zeros((n, len(cols), width, 4), np.float32)
    for i in range(n):
        ref = codes[i]
        alts = (np.minimum(ref, 3)[None, :] + np.arange(1, 4)[:, None]) % 4  # (3, W)
        muts = np.repeat(ref[None], 3 * width + 1, axis=0)
        for k in range(3):
            muts[1 + k * width + pos, pos] = alts[k]
        t = (
            None
            if tracks is None
            else np.repeat(np.asarray(tracks[i : i + 1], np.float32), len(muts), axis=0)
        )
        f = model_log_odds(model, muts, t, batch_size=batch_size, device=device)[:, cols]  # (3W+1, T)
        known = ref < N_CODE
        out[i][:, pos[known], np.minimum(ref, 3)[known]] = f[0][:, None]
        for k in range(3):
            out[i][:, pos[known], alts[k][known]] = f[1 + k * width : 1 + (k + 1) * width][known].T
    return out


def _gradients(model, codes, tracks, cols, method, baseline, n_shuffles, n_steps, batch_size, device, rng):
    """Integrated gradients / DeepLIFT-SHAP multipliers ``(n, len(cols), W, 4)`` (not centred)."""
    try:
        from captum.attr import DeepLift, IntegratedGradients
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"method={method!r} needs captum: {_INTERPRET_HINT}") from e
    import torch

    from ..models._seqmodules import encode_batch
    from ..pp import dinucleotide_shuffle

    net = model.module.net
    n_tracks = model.input_spec["n_tracks"]
    tracks = model._check_tracks(tracks, len(codes))
    wrapped = _tracked_net(net)
    out = np.zeros((len(codes), len(cols), codes.shape[1], 4), np.float32)
    step = max(1, batch_size // (n_shuffles if method == "deeplift_shap" else max(1, n_steps // 4)))
    with model_on(model, device):
        dev = model.module.device
        for lo in range(0, len(codes), step):
            c = codes[lo : lo + step]
            t = None if tracks is None else np.asarray(tracks[lo : lo + step], np.float32)
            x = encode_batch(
                torch.tensor(c, device=dev), None if t is None else torch.tensor(t, device=dev), n_tracks
            )
            dna, tr = x[:, :4].contiguous(), x[:, 4:].contiguous()
            if method == "deeplift_shap":
                refs = np.concatenate([dinucleotide_shuffle(c, random_state=rng) for _ in range(n_shuffles)])
                base = encode_batch(torch.from_numpy(refs).to(dev))
                dna, tr = dna.repeat(n_shuffles, 1, 1), tr.repeat(n_shuffles, 1, 1)
                explainer, kw = DeepLift(wrapped, multiply_by_inputs=False), {}
            else:
                base = _ig_baseline(dna, c, baseline, rng, dev)
                explainer = IntegratedGradients(wrapped, multiply_by_inputs=False)
                kw = {"n_steps": n_steps, "internal_batch_size": batch_size}
            for j, col in enumerate(cols):
                with warnings.catch_warnings():  # captum's notes on hooks and on inputs' requires_grad
                    warnings.filterwarnings(
                        "ignore", message=r"(?s).*(hooks|require gradients)", category=UserWarning
                    )
                    g = explainer.attribute(
                        dna, baselines=base, target=int(col), additional_forward_args=(tr,), **kw
                    )
                g = g.detach().float().cpu().numpy().reshape(-1, len(c), 4, c.shape[1]).mean(0)
                out[lo : lo + len(c), j] = g.transpose(0, 2, 1)
    return out


def _ig_baseline(dna, codes, baseline, rng, dev):
    import torch

    from ..models._seqmodules import encode_batch
    from ..pp import dinucleotide_shuffle

    if baseline == "zeros":
        return torch.zeros_like(dna)
    if baseline == "uniform":
        return torch.full_like(dna, 0.25)
    return encode_batch(torch.from_numpy(dinucleotide_shuffle(codes, random_state=rng)).to(dev))


def _tracked_net(net):
    """``net`` wrapped so that the DNA rows are its only attributed input (tracks passed alongside)."""
    import torch

    class TrackedNet(torch.nn.Module):
        """The network with the DNA rows as its only attributed input (tracks passed alongside)."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, dna, tracks):
            return self.net(torch.cat([dna, tracks.to(dna.dtype)], dim=1))

    return TrackedNet(net)


def _check_args(model, method, baseline, n_shuffles, n_steps) -> None:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if method != "ism" and not is_torch_model(model):
        raise TypeError(
            f"method={method!r} needs a torch sequence model (DANQ, FACTORNET, SCFAN); use method='ism' "
            f"for {type(model).__name__}"
        )
    if baseline not in ("zeros", "uniform", "shuffle"):
        raise ValueError(f"baseline must be 'zeros', 'uniform' or 'shuffle', got {baseline!r}")
    if n_shuffles < 1 or n_steps < 2:
        raise ValueError("n_shuffles must be >= 1 and n_steps >= 2")


def _tf_columns(model, tfs) -> tuple[list[int], list[str]]:
    names = list(model.tf_names)
    if tfs is None:
        return list(range(len(names))), names
    tfs = [tfs] if isinstance(tfs, str) else list(tfs)
    upper = [t.upper() for t in names]
    missing = [t for t in tfs if str(t).upper() not in upper]
    if missing:
        raise KeyError(f"TFs not in the model: {missing[:10]} (model has {names[:10]}...)")
    cols = [upper.index(str(t).upper()) for t in tfs]
    return cols, [names[c] for c in cols]


@doc_params()
def attribution(
    model: Any,
    data: Any = None,
    *,
    tfs: str | Sequence[str] | None = None,
    method: Literal["ism", "integrated_gradients", "deeplift_shap"] = "ism",
    genome: Any = None,
    region: str | Sequence[str] | None = None,
    peaks: Any = None,
    tracks: np.ndarray | None = None,
    baseline: Literal["zeros", "uniform", "shuffle"] = "uniform",
    n_shuffles: int = 10,
    n_steps: int = 50,
    batch_size: int = 256,
    device: Any = None,
    dna_key: str = "dna_code",
    mod: str | None = None,
    key_added: str = "attribution",
    random_state: int | np.random.Generator | None = 0,
    copy: bool = False,
) -> Attribution | AnnData | None:
    """Which bases of a sequence make a model predict TF binding: per-base attributions of its log-odds.

    ``'ism'`` works for every model of :mod:`scfanpy.models`; the gradient methods need a torch model
    (DANQ, FACTORNET, SCFAN) and captum (``pip install scfanpy[interpret]``). The conventions (centred
    hypothetical contributions; what the log-odds is per model) are in :class:`Attribution` and the
    module docstring: in short, ``Attribution.scores`` is positive where the reference base raises the
    TF's log-odds.

    Parameters
    ----------
    model
        A model of :mod:`scfanpy.models` (or any object with ``tf_names`` and ``predict_codes``).
    data
        DNA strings, uint8 codes ``(n, W)``, or an AnnData (MuData: see ``mod``) with
        ``varm[dna_key]`` (its peaks, or those in ``peaks``). None: the genome ``region``. Sequences of
        different lengths are padded with N (centred); a deep model's input is centre-cropped or
        N-padded to its window (``Attribution.codes`` holds what it saw).
    tfs
        TFs to attribute (default: all of the model's).
    method
        ``'ism'``, ``'integrated_gradients'`` or ``'deeplift_shap'`` (module docstring).
    genome
        Genome (path or :class:`scfanpy.Genome`) of ``region``.
    region
        ``'chr:start-end'`` (1-based, inclusive, as samtools) or a list of them, read from ``genome``.
    peaks
        Subset of an AnnData's peaks: names, integer positions or a boolean mask.
    tracks
        Signal tracks for a model that takes them (``(n, n_tracks)`` or ``(n, n_tracks, W)``); default
        each track's training mean.
    baseline
        Integrated gradients' baseline: ``'uniform'`` (0.25 per base), ``'zeros'`` (the all-N input) or
        ``'shuffle'`` (a dinucleotide shuffle of each sequence).
    n_shuffles
        References per sequence for ``'deeplift_shap'``.
    n_steps
        Integration steps of ``'integrated_gradients'``.
    {batch_size}
    device
        Where the model runs (``'cpu'``, ``'cuda'``, ...); None: where it is (the motif model: a GPU when
        present for large scans). A torch model is moved back afterwards.
    dna_key
        ``varm`` key of the peaks' codes.
    {mod}
    key_added
        ``uns`` key written when ``data`` is an AnnData.
    {random_state}
    {copy}

    Returns
    -------
    attribution : Attribution
        When ``data`` is not an AnnData: ``values`` ``(n, n_tfs, W, 4)``, ``codes``, ``tfs``, ``names``,
        ``method``, ``params``; ``.scores`` ``(n, n_tfs, W)``.
    uns[key_added] : dict
        When ``data`` is an AnnData: :meth:`Attribution.to_dict` (``values``, ``codes``, ``tfs``,
        ``names`` = the peaks, ``method``, ``params``); read it back with ``Attribution.from_dict``.
        Returns None, or the changed copy with ``copy=True``.

    Examples
    --------
    >>> m = sfp.models.MotifModel(["GATA1"])
    >>> res = sfp.tl.attribution(m, ["ACGT" * 10 + "AGATAAGG" + "ACGT" * 10])
    >>> res.scores.shape
    (1, 1, 88)
    """
    _check_args(model, method, baseline, n_shuffles, n_steps)
    cols, names = _tf_columns(model, tfs)
    if copy and (data is None or not (isinstance(data, AnnData) or is_mudata(data))):
        raise ValueError("copy=True needs an AnnData (or MuData) as data")
    codes, seq_names, adata = read_inputs(
        data, genome=genome, region=region, peaks=peaks, mod=mod, dna_key=dna_key
    )
    window = int(model.input_spec.get("window", 0) or 0)
    if window:
        from .._torch import fit_window

        codes = fit_window(codes, window)
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    rng = check_random_state(random_state)
    start = logg.info("attributing %d TF(s) on %d sequence(s) of %d bp (%s)", len(cols), *codes.shape, method)
    if method == "ism":
        raw = _ism(model, codes, tracks, cols, batch_size, device)
    else:
        raw = _gradients(
            model, codes, tracks, cols, method, baseline, n_shuffles, n_steps, batch_size, device, rng
        )
    params = {
        "model": type(model).__name__,
        "baseline": baseline if method == "integrated_gradients" else None,
    }
    if method == "deeplift_shap":
        params["n_shuffles"] = n_shuffles
    if method == "integrated_gradients":
        params["n_steps"] = n_steps
    params = {k: v for k, v in params.items() if v is not None}
    res = Attribution(_centre(raw, codes), codes, names, seq_names, method, params)
    logg.info("    finished", time=start)
    if adata is None:
        return res
    if copy:
        data = data.copy()
        adata = get_adata(data, mod)
    adata.uns[key_added] = res.to_dict()
    log_added("uns", key_added, "attributions")
    return data if copy else None
