"""Genomic intervals: the one BED reader of :mod:`scfanpy.pp` and merged per-chromosome coverage.

:func:`read_bed` reads a BED-like file (BED, narrowPeak, gzip ok) and :func:`bed_frame` takes a path or a
DataFrame; both name the first three columns ``chr``, ``start``, ``end``. :func:`read_intervals` adds the
checks that coordinates are integers with ``end >= start``. :class:`Cover` answers "how many bp of
``[a, b)`` do these intervals cover" for many ``[a, b)`` at once.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__: list[str] = []  # private helpers, not part of sfp.pp

_COORDS = ["chr", "start", "end"]


def canon_chrom(chrom: str) -> str:
    """Chromosome name without a ``chr`` prefix (for matching UCSC and Ensembl spellings)."""
    chrom = str(chrom)
    return chrom[3:] if chrom.startswith("chr") else chrom


def read_bed(path: str | os.PathLike, what: str = "BED", *, coords_only: bool = False) -> pd.DataFrame:
    """A BED-like file as a DataFrame ``chr, start, end, col3, ...`` (values as read, not checked).

    Tab-separated, no header; ``#`` comments and ``track`` / ``browser`` lines are skipped; gzip and
    other compressions are inferred from the name. With ``coords_only`` only the first three columns are
    read, so rows may have different numbers of fields.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what}: file not found: {path}")
    kw = {"usecols": [0, 1, 2]} if coords_only else {}
    df = pd.read_csv(path, sep="\t", header=None, comment="#", dtype={0: str}, compression="infer", **kw)
    if df.shape[1] < 3:
        raise ValueError(
            f"{path}: a BED file needs at least 3 columns (chrom, start, end), found {df.shape[1]}"
        )
    df = df[~df[0].astype(str).str.startswith(("track", "browser"))]
    df.columns = _COORDS + [f"col{i}" for i in range(3, df.shape[1])]
    return df.reset_index(drop=True)


def bed_frame(
    obj: pd.DataFrame | str | os.PathLike, what: str = "BED", *, coords_only: bool = False
) -> pd.DataFrame:
    """Intervals from a BED path or a DataFrame, with ``chr, start, end`` first (values not checked).

    A DataFrame with columns ``chr`` (or ``chrom``), ``start`` and ``end`` is used by name, any other
    DataFrame by position (its first three columns). The remaining columns follow in their order, unless
    ``coords_only``. The input is never modified.
    """
    if isinstance(obj, (str, os.PathLike)):
        return read_bed(obj, what, coords_only=coords_only)
    if not isinstance(obj, pd.DataFrame):
        raise TypeError(f"{what}: expected a DataFrame or a BED/narrowPeak path, got {type(obj).__name__}")
    cols = list(obj.columns)
    named = next(
        (names for names in (_COORDS, ["chrom", "start", "end"]) if set(names) <= set(cols)),
        None,
    )
    if named is None:
        df = obj.copy()
        df.columns = _COORDS + cols[3:]
        rest = cols[3:]
    else:
        rest = [c for c in cols if c not in named]
        df = obj[named + rest].copy()
        df.columns = _COORDS + rest
    return df[_COORDS] if coords_only else df


def read_intervals(obj: pd.DataFrame | str | os.PathLike, what: str) -> pd.DataFrame:
    """``chr`` (str), ``start``, ``end`` (int64, 0-based half-open) from a BED path or DataFrame.

    Raises when a position is not an integer or an interval has ``end < start``.
    """
    df = bed_frame(obj, what, coords_only=True)
    df["chr"] = df["chr"].astype(str)
    df["start"] = df["start"].astype(np.int64)
    df["end"] = df["end"].astype(np.int64)
    if (df["end"] < df["start"]).any():
        raise ValueError(f"{what}: {(df['end'] < df['start']).sum()} interval(s) with end < start")
    return df


class Cover:
    """Merged intervals of one chromosome; ``overlap(a, b)`` = bp of ``[a, b)`` they cover (vectorised)."""

    def __init__(self, starts: np.ndarray, ends: np.ndarray):
        if len(starts):
            o = np.argsort(starts, kind="stable")
            s, e = starts[o], ends[o]
            run_end = np.maximum.accumulate(e)
            new = np.ones(len(s), dtype=bool)
            new[1:] = s[1:] > run_end[:-1]
            grp = np.cumsum(new) - 1
            self.s = s[new]
            self.e = np.zeros(len(self.s), dtype=np.int64)
            np.maximum.at(self.e, grp, e)
        else:
            self.s = np.zeros(0, dtype=np.int64)
            self.e = np.zeros(0, dtype=np.int64)
        self.len = self.e - self.s
        self.before = np.concatenate([[0], np.cumsum(self.len)])  # covered bp before interval i

    def _cum(self, x: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.s, x, side="right") - 1
        ok = i >= 0
        out = np.zeros(x.shape, dtype=np.int64)
        ii = i[ok]
        out[ok] = self.before[ii] + np.minimum(x[ok] - self.s[ii], self.len[ii])
        return out

    def overlap(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Covered bp of each ``[a[i], b[i])``."""
        if len(self.s) == 0:
            return np.zeros(np.shape(a), dtype=np.int64)
        return self._cum(np.asarray(b, dtype=np.int64)) - self._cum(np.asarray(a, dtype=np.int64))

    def base_mask(self, lo: int, hi: int) -> np.ndarray:
        """Boolean per-base coverage of ``[lo, hi)``."""
        m = np.zeros(hi - lo, dtype=bool)
        i0 = np.searchsorted(self.e, lo, side="right")
        i1 = np.searchsorted(self.s, hi, side="left")
        for s, e in zip(self.s[i0:i1], self.e[i0:i1], strict=True):
            m[max(s, lo) - lo : min(e, hi) - lo] = True
        return m


def covers_by_chrom(df: pd.DataFrame) -> dict[str, Cover]:
    """``{canonical chromosome: Cover}`` of a ``chr, start, end`` DataFrame."""
    return {
        c: Cover(g["start"].to_numpy(np.int64), g["end"].to_numpy(np.int64))
        for c, g in df.groupby(df["chr"].map(canon_chrom), sort=False)
    }
