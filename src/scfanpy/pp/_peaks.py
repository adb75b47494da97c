from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _logging as logg
from .._constants import CHR, END, START
from .._docs import doc_params
from .._utils import get_adata, log_added
from ._intervals import bed_frame

if TYPE_CHECKING:  # pragma: no cover
    from mudata import MuData

__all__ = ["parse_peaks"]

# chrom, separator, start, separator, end; the chromosome is matched lazily so that names with
# underscores (chrUn_gl000220_100_600) still parse. Positions may carry a sign or decimals so that we
# can say *why* they are wrong instead of failing to match.
_PEAK_RE = re.compile(r"^(?P<chr>[^\s:]+?)[:_-](?P<start>[-+]?\d+(?:\.\d*)?)[-_](?P<end>[-+]?\d+(?:\.\d*)?)$")


def _bad(kind: str, names: Sequence[str], n: int) -> str:
    shown = ", ".join(repr(x) for x in names[:5])
    return f"{n} {kind}, e.g. {shown}"


def _validate(
    chrom: pd.Series,
    start_raw: pd.Series,
    end_raw: pd.Series,
    labels: pd.Index,
    hint: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """Turn raw start/end into int64, raising one ValueError that lists every kind of problem.

    ``hint`` ends the message (where the coordinates came from and what to do).
    """
    problems = []
    s_num = pd.to_numeric(start_raw, errors="coerce")
    e_num = pd.to_numeric(end_raw, errors="coerce")
    missing = chrom.isna().to_numpy() | (chrom.astype(str).str.len() == 0).to_numpy()
    non_num = s_num.isna().to_numpy() | e_num.isna().to_numpy()
    s_val = s_num.to_numpy(dtype=float, na_value=np.nan)
    e_val = e_num.to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        non_int = ~non_num & ((np.mod(s_val, 1) != 0) | (np.mod(e_val, 1) != 0))
        neg = ~non_num & ~non_int & ((s_val < 0) | (e_val < 0))
        order = ~non_num & ~non_int & ~neg & (s_val >= e_val)
    for mask, kind in [
        (missing, "peak(s) without a chromosome"),
        (non_num, "peak(s) with non-numeric positions"),
        (non_int, "peak(s) with non-integer positions"),
        (neg, "peak(s) with negative positions"),
        (order, "peak(s) with start >= end"),
    ]:
        if mask.any():
            idx = np.flatnonzero(mask)[:5]
            shown = [
                f"{labels[i]} ({chrom.iloc[i]}, {start_raw.iloc[i]!r}, {end_raw.iloc[i]!r})"
                if str(labels[i]) != f"{chrom.iloc[i]}:{start_raw.iloc[i]}-{end_raw.iloc[i]}"
                else str(labels[i])
                for i in idx
            ]
            problems.append(_bad(kind, shown, int(mask.sum())))
    if problems:
        raise ValueError("invalid peak coordinates: " + "; ".join(problems) + ". Nothing was written." + hint)
    return s_val.astype(np.int64), e_val.astype(np.int64)


def _from_names(names: pd.Index) -> tuple[pd.Series, pd.Series, pd.Series]:
    ext = pd.Series(names, index=names).astype(str).str.extract(_PEAK_RE)
    unparsed = ext["chr"].isna().to_numpy()
    if unparsed.any():
        raise ValueError(
            "could not parse peak coordinates from var_names: "
            + _bad(
                "name(s) not like 'chr1:100-600', 'chr1-100-600' or 'chr1_100_600'",
                list(names[unparsed]),
                int(unparsed.sum()),
            )
            + ". Nothing was written. Use columns= or bed= for other layouts."
        )
    return ext["chr"], ext["start"], ext["end"]


def _from_bed(
    bed: str | os.PathLike | pd.DataFrame, names: pd.Index
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Chromosome, start and end per ``var_names`` entry from a BED file or DataFrame (not yet checked)."""
    df = bed_frame(bed)
    name_col = df.columns[3] if df.shape[1] > 3 else None
    if (
        name_col is not None
        and pd.Index(df[name_col].astype(str)).isin(names).all()
        and set(names) <= set(df[name_col].astype(str))
    ):
        df = df.set_index(df[name_col].astype(str)).loc[names]
    elif len(df) != len(names):
        raise ValueError(
            f"BED has {len(df)} rows but the data has {len(names)} peaks (and no name column matching var_names)"
        )
    return df["chr"].astype(str), df["start"], df["end"]


def _from_columns(var: pd.DataFrame, columns: tuple[str, str, str]) -> tuple[pd.Series, pd.Series, pd.Series]:
    missing = [c for c in columns if c not in var.columns]
    if missing:
        raise KeyError(f"columns {missing} not in var (has {list(var.columns)})")
    chrom, s, e = (var[c] for c in columns)
    return chrom.astype(str), s, e


@doc_params()
def parse_peaks(
    data: AnnData | MuData,
    *,
    mod: str | None = None,
    columns: tuple[str, str, str] | None = None,
    bed: str | os.PathLike | pd.DataFrame | None = None,
    one_based: bool = False,
    copy: bool = False,
) -> AnnData | MuData | None:
    """Parse peak coordinates into ``var['chr']``, ``var['start']`` (0-based) and ``var['end']``.

    Coordinates come from, in order of precedence: a BED file or DataFrame (``bed``), existing ``var``
    columns (``columns``), or ``var_names`` written as ``chr1:100-600``, ``chr1-100-600`` or
    ``chr1_100_600``. All entries are checked before anything is written; invalid names, ``start >=
    end``, negative or non-integer positions raise a :class:`ValueError` naming the first bad entries.

    Parameters
    ----------
    {data}
    {mod}
    columns
        Names of existing ``var`` columns holding chromosome, start and end.
    bed
        BED path (BED / narrowPeak, gzip ok) or DataFrame with one row per peak; a DataFrame's
        coordinates are its ``chr`` (or ``chrom``), ``start`` and ``end`` columns when it has them, else
        its first three columns. When the next column holds names matching ``var_names`` rows are aligned
        by name, otherwise by order (row counts must match).
    one_based
        Whether the starts are 1-based inclusive (e.g. UCSC browser strings); converted to 0-based.
    {copy}

    Returns
    -------
    None or AnnData or MuData
        A copy of ``data`` when ``copy=True``; otherwise ``data`` is changed in place. These fields are
        written (in the modality ``mod`` of a MuData):
    adata.var['chr'] : str
        Chromosome name.
    adata.var['start'] : int64
        0-based start.
    adata.var['end'] : int64
        End, exclusive.

    Examples
    --------
    >>> import anndata as ad, numpy as np, pandas as pd, scfanpy as sfp
    >>> a = ad.AnnData(np.zeros((2, 2)), var=pd.DataFrame(index=["chr1:100-600", "chr2_5_50"]))
    >>> sfp.pp.parse_peaks(a)
    >>> a.var[["chr", "start", "end"]].values.tolist()
    [['chr1', 100, 600], ['chr2', 5, 50]]
    """
    if copy:
        data = data.copy()
    adata = get_adata(data, mod)
    names = adata.var_names
    if bed is not None:
        chrom, s, e = _from_bed(bed, names)
        source = "BED"
    elif columns is not None:
        chrom, s, e = _from_columns(adata.var, columns)
        source = f"var{list(columns)}"
    else:
        chrom, s, e = _from_names(names)
        source = "var_names"
    chrom = pd.Series(np.asarray(chrom, dtype=object), index=names)
    start, end = _validate(
        chrom, pd.Series(np.asarray(s), index=names), pd.Series(np.asarray(e), index=names), names
    )
    if one_based:
        start = start - 1
        if (start < 0).any():
            raise ValueError("one_based=True but some starts are 0; nothing was written.")
    adata.var[CHR] = chrom.astype(str).to_numpy()
    adata.var[START] = start
    adata.var[END] = end
    logg.info("parsed %d peak coordinates from %s", adata.n_vars, source)
    for k in (CHR, START, END):
        log_added("var", k)
    return data if copy else None


def get_peak_coords(adata: AnnData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(chr, start, end)`` arrays from ``var``, parsing ``var_names`` on a copy when absent.

    Existing ``var['chr', 'start', 'end']`` columns are checked as :func:`parse_peaks` checks what it
    parses (a chromosome, integer positions, none negative, ``start < end``); a :class:`ValueError`
    names the first bad peaks.
    """
    if not all(k in adata.var.columns for k in (CHR, START, END)):
        tmp = AnnData(var=pd.DataFrame(index=adata.var_names))
        parse_peaks(tmp)
        v = tmp.var
        return v[CHR].astype(str).to_numpy(), v[START].to_numpy(np.int64), v[END].to_numpy(np.int64)
    v = adata.var
    names = adata.var_names
    chrom = pd.Series(np.asarray(v[CHR], dtype=object), index=names)
    start, end = _validate(
        chrom,
        pd.Series(np.asarray(v[START], dtype=object), index=names),
        pd.Series(np.asarray(v[END], dtype=object), index=names),
        names,
        hint=f" (in var[{CHR!r}], var[{START!r}], var[{END!r}]: correct them, or drop these columns and run "
        "sfp.pp.parse_peaks to parse var_names again)",
    )
    return chrom.astype(str).to_numpy(), start, end
