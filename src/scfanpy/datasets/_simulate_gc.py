"""The simulator's GC bias model (step 7 of the simulator's generative model).

Peaks get their own GC content; accessibility and each cell's fragment capture then depend on it.
"""

from __future__ import annotations

import numpy as np

from .._utils import check_random_state

__all__ = ["vary_peak_gc", "gc_effects", "peak_gc"]


def vary_peak_gc(
    random_state: np.random.Generator, seqs, chroms, starts, peak_width: int, gc: float, gc_sd: float
) -> None:
    """Redraw each peak's bases with its own GC content (normal around ``gc``, clipped), in place.

    Nothing is drawn when ``gc_sd`` is 0 (the default draws stay as they were).
    """
    if gc_sd <= 0:
        return
    rng = check_random_state(random_state)
    peak_gc = np.clip(rng.normal(gc, gc_sd, size=len(starts)), 0.25, 0.75)
    for c, s0, g in zip(chroms, starts, peak_gc):
        p = g / 2
        seqs[c][s0 : s0 + peak_width] = rng.choice(4, size=peak_width, p=[0.5 - p, p, p, 0.5 - p])


def gc_effects(seqs, chroms, starts, peak_width, gc_sd, gc_accessibility, gc_bias_sd):
    """``(peak_gc, gc_accessibility, gc_bias_sd)`` for ``_simulate._draw_counts``, or None when step 7 is off."""
    if gc_sd <= 0 and gc_accessibility == 0 and gc_bias_sd <= 0:
        return None
    return peak_gc(seqs, chroms, starts, peak_width), gc_accessibility, gc_bias_sd


def peak_gc(seqs, chroms, starts, peak_width: int) -> np.ndarray:
    """GC share of each peak's sequence."""
    return np.array([np.isin(seqs[c][s0 : s0 + peak_width], (1, 2)).mean() for c, s0 in zip(chroms, starts)])
