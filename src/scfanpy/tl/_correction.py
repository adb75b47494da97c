"""The bias correction and the motif archetypes of :func:`scfanpy.tl.predict_tf_binding`.

Glue between the AnnData inputs and the pure cores of :mod:`._deviations` and :mod:`._archetypes`:
per-peak covariates (GC content and N fraction of the sequence, mean accessibility), background peaks,
deviations and z-scores, and motif archetypes. Nothing here writes into AnnData (``_predict`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import _scoring as sc
from ._archetypes import motif_archetypes
from ._deviations import (
    BackgroundModel,
    ExpectedBackground,
    background_model,
    background_peaks,
    peak_composition,
)
from ._representation import most_variable_members

__all__ = [
    "Background",
    "Correction",
    "peak_weights",
    "prepare",
    "correction",
    "archetypes_for",
    "archetype_activity",
]

#: peaks with more N than this (share of the window) carry no sequence evidence: weight 0
MAX_N_FRACTION = 0.5


@dataclass
class Background:
    """Pass (b): the per-peak inputs of the deviations, from the sequences, the binding and column sums."""

    weights: np.ndarray  # float64 (peaks, TFs)
    peaks: np.ndarray  # int64 (peaks, n_background); (peaks, 0) with background='expected'
    peak_share: np.ndarray  # float64 (peaks,): e[p], the peak's share of all counts
    gc: np.ndarray  # float64 (peaks,)
    n_fraction: np.ndarray  # float64 (peaks,)
    usable: np.ndarray  # bool (peaks,)
    expected: ExpectedBackground | None = None  # background='expected': the exact moments
    model: BackgroundModel | None = None  # the stand-in distribution (both modes)


@dataclass
class Correction:
    """Bias-corrected activity and what it was computed from."""

    deviation: np.ndarray | None  # float32 (cells, TFs): d - mean_b d_b (None: not kept)
    z: np.ndarray  # float32 (cells, TFs)
    background: np.ndarray  # int32 (peaks, n_background)
    gc: np.ndarray  # float32 (peaks,)
    n_fraction: np.ndarray  # float32 (peaks,)
    usable: np.ndarray  # bool (peaks,)


def peak_weights(binding: np.ndarray, usable: np.ndarray, *, method: str = "probability") -> np.ndarray:
    """float64 (peaks, TFs) weights of the deviations from the binding (peaks x TFs), see :func:`prepare`.

    ``'probability'``: ``max(2 P - 1, 0)``; ``'scfan'``: the top-2 votes of each peak; 0 where not ``usable``.
    """
    w = np.clip(2.0 * binding - 1.0, 0.0, 1.0) if method == "probability" else sc.top2_indicator(binding)
    return np.where(np.asarray(usable)[:, None], w, 0.0).astype(np.float64)


def prepare(
    codes: np.ndarray,
    binding: np.ndarray,
    col_sums: np.ndarray,
    n_cells: int,
    *,
    method: str,
    n_background: int,
    random_state,
    background: str = "sampled",
) -> Background:
    """Weights and GC- and accessibility-matched background peaks of each peak (pass (b)).

    ``binding`` (peaks x TFs) gives the weights: ``method='probability'``: the evidence above even odds,
    ``max(2 P - 1, 0)`` (a peak counts once it is more likely bound than not, fully at ``P = 1``; the many
    chance partial matches at ``P`` 0.1-0.5 would otherwise outweigh the sites), ``'scfan'``: the top-2
    votes of each peak. Peaks with more than :data:`MAX_N_FRACTION` N get weight 0 and serve as no
    peak's background (their GC content is not measured). ``col_sums`` are the column sums of the raw
    counts over the ``n_cells`` cells (chromVAR's statistic is per cell: pooling neighbours first mixes
    cells whose neighbours were found on a technically biased embedding); their means are the
    accessibility covariate. ``background='expected'``: no draws; the deviations take the exact mean and
    variance over the stand-in distribution (:class:`._deviations.ExpectedBackground`).
    """
    gc, nf = peak_composition(codes)
    usable = nf <= MAX_N_FRACTION
    w = peak_weights(binding, usable, method=method)
    col = np.asarray(col_sums, dtype=np.float64)
    mean_access = col / max(n_cells, 1)
    pool = usable if usable.sum() >= 2 else None
    cov = np.c_[gc, np.log1p(mean_access)]
    share = col / max(col.sum(), 1e-300)
    model = background_model(cov, pool=pool)
    if background == "expected":
        expected = ExpectedBackground(w, model, share)
        return Background(w, np.zeros((len(w), 0), np.int64), share, gc, nf, usable, expected, model)
    bg = background_peaks(cov, n_background=n_background, random_state=random_state, model=model)
    return Background(w, bg, share, gc, nf, usable, model=model)


def correction(b: Background, deviation: np.ndarray | None, z: np.ndarray) -> Correction:
    """The :class:`Correction` of the deviations and z-scores formed with ``b`` (pass (c))."""
    return Correction(
        deviation,
        z,
        b.peaks.astype(np.int32),
        b.gc.astype(np.float32),
        b.n_fraction.astype(np.float32),
        b.usable,
    )


def archetypes_for(model, tf_names: list[str], *, threshold: float = 0.7) -> pd.Series:
    """Archetype of each TF.

    From the model's motifs (``model.pwms``), else from JASPAR motifs of the same name; TFs without a
    motif are their own archetype.
    """
    pwms = getattr(model, "pwms", None)
    motifs: dict[str, np.ndarray] = {}
    if pwms:
        motifs = {t: np.asarray(pwms[t]) for t in tf_names if t in pwms}
    else:
        from ..datasets import jaspar_motifs

        allm = {k.upper(): v for k, v in jaspar_motifs().items()}
        motifs = {t: np.asarray(allm[t.upper()]) for t in tf_names if t.upper() in allm}
    out = pd.Series({t: t for t in tf_names}, name="archetype", dtype=object)
    if len(motifs) >= 2:
        out.update(motif_archetypes(motifs, threshold=threshold))
    return out


def archetype_activity(activity: np.ndarray, archetype: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """Activity of each archetype: that of its most variable member (cells x archetypes; NaN read as 0).

    An archetype groups motifs that are near copies of each other, but its members need not respond alike:
    of the 12 POU motifs of one archetype on the GC-bias simulator only POU5F1's sites were planted, and
    the members' mean put the archetype third in its cell type where POU5F1 alone is first. The member
    whose activity varies most across cells stands for the archetype (chromVAR ranks motifs by this
    variability, Schep et al. 2017); it keeps the units of the activity (a z-score for the default). Key
    cell-type TFs per archetype on the development data: members' mean 4/6 on the simulator, the most
    variable member 6/6; GM12878/H1 2/2 for both; dinucleotide-shuffled genome 0/2
    (``benchmarks/bench_tf_activity_real.py``).

    Returns
    -------
    activity : pandas.DataFrame
        Cells x archetypes, columns named by archetype.
    representative : pandas.Series
        The member TF standing for each archetype (index: archetype).
    """
    a = np.nan_to_num(np.asarray(activity, dtype=np.float64))
    rep = most_variable_members(a, archetype.to_numpy())
    cols = pd.Index(archetype.to_numpy()[rep], name="archetype")
    return (
        pd.DataFrame(a[:, rep], columns=cols),
        pd.Series(np.asarray(archetype.index)[rep], index=cols, name="representative"),
    )
