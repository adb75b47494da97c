"""Variant effects on TF binding: a model scores the reference and the alternative sequence of each variant.

For each variant, a window of ``window`` bp centred on it is read from the genome, the reference allele
is checked against the genome, and the alternative sequence is the same window with the allele replaced
(indels shift the flank, then both are centre-cropped to ``window``). The model scores both: the
:class:`~scfanpy.models.MotifModel` scans both strands itself; a deep model's forward and
reverse-complement predictions are averaged. With an AnnData scored by
:func:`scfanpy.tl.predict_tf_binding`, the effect is weighed per cell group by the accessibility of the
peak the variant falls in and the TF's activity there.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from .. import _logging as logg
from .._constants import N_CODE
from .._docs import doc_params
from .._utils import get_adata
from ._attribution import is_torch_model, model_log_odds, model_on

__all__ = ["variant_effects", "read_variants"]

_COLUMNS = {"chrom": ("chrom", "chr", "#chrom", "chromosome"), "pos": ("pos", "position"), "ref": ("ref",)}
_ALT = ("alt",)


def _read_vcf(path: str | os.PathLike) -> pd.DataFrame:
    """The first five columns of a VCF (plain or gzip): ``chrom, pos, id, ref, alt``."""
    opener = gzip.open if str(path).endswith((".gz", ".bgz")) else open
    rows = []
    with opener(path, "rt") as fh:
        for line in fh:
            if line.startswith("#") or not line.strip():
                continue
            f = line.rstrip("\n").split("\t")
            if len(f) < 5:
                raise ValueError(
                    f"{path}: a VCF line needs at least 5 tab-separated fields, got {line[:80]!r}"
                )
            rows.append(f[:5])
    return pd.DataFrame(rows, columns=["chrom", "pos", "id", "ref", "alt"])


def read_variants(variants: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """Variants as a table ``variant, chrom, pos, ref, alt`` (one row per alternative allele).

    ``variants`` is a DataFrame with columns ``chrom`` (or ``chr``), ``pos`` (1-based, VCF convention),
    ``ref``, ``alt`` and optionally ``id``, or the path of a VCF (plain or gzip; only its first five
    columns are read). Multi-allelic ``ALT`` (``A,T``) gives one row per allele; symbolic alleles
    (``<DEL>``, ``*``) are dropped with a warning. ``variant`` is the ID, or ``chrom:pos:ref>alt``.
    """
    df = _read_vcf(variants) if isinstance(variants, str | os.PathLike) else variants.copy()
    lower = {str(c).lower(): c for c in df.columns}
    cols = {}
    for want, names in {**_COLUMNS, "alt": _ALT}.items():
        hit = next((lower[n] for n in names if n in lower), None)
        if hit is None:
            raise KeyError(f"variants need a {want!r} column (have {list(df.columns)})")
        cols[want] = hit
    out = pd.DataFrame({k: df[v].to_numpy() for k, v in cols.items()})
    out["id"] = df[lower["id"]].astype(str).to_numpy() if "id" in lower else "."
    out["alt"] = out["alt"].astype(str).str.split(",")
    out = out.explode("alt", ignore_index=True)
    out["chrom"] = out["chrom"].astype(str)
    out["pos"] = pd.to_numeric(out["pos"]).astype(np.int64)
    out["ref"] = out["ref"].astype(str).str.upper()
    out["alt"] = out["alt"].astype(str).str.upper()
    symbolic = ~out["alt"].str.fullmatch(r"[ACGTN]+") | ~out["ref"].str.fullmatch(r"[ACGTN]+")
    if symbolic.any():
        logg.warning("dropped %d variant(s) with symbolic or non-ACGTN alleles", int(symbolic.sum()))
        out = out[~symbolic].reset_index(drop=True)
    named = out["id"].isin([".", "", "nan", "None"])
    auto = out["chrom"] + ":" + out["pos"].astype(str) + ":" + out["ref"] + ">" + out["alt"]
    out.insert(0, "variant", np.where(named, auto, out["id"]))
    return out.drop(columns="id")


def _encode(s: str) -> np.ndarray:
    from ..genome import encode_sequence

    return encode_sequence(s, warn=False)


def _windows(
    table: pd.DataFrame, genome, window: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Reference and alternative codes ``(n, window)``, whether ``ref`` matches, and the genome's allele."""
    n = len(table)
    ref_codes = np.full((n, window), N_CODE, np.uint8)
    alt_codes = np.full((n, window), N_CODE, np.uint8)
    match = np.zeros(n, bool)
    found = []
    for i, (chrom, pos, ref, alt) in enumerate(table[["chrom", "pos", "ref", "alt"]].itertuples(index=False)):
        p0 = int(pos) - 1
        big = genome.fetch_codes(chrom, p0 - window, p0 + len(ref) + window, warn=False)
        here = big[window : window + len(ref)]
        found.append("".join("ACGTN"[c] for c in here))
        match[i] = found[-1] == ref
        alt_seq = np.concatenate([big[:window], _encode(alt), big[window + len(ref) :]])
        for out, seq, allele in ((ref_codes, big, len(ref)), (alt_codes, alt_seq, len(alt))):
            s = window + allele // 2 - window // 2  # the allele's centre at the window's centre
            out[i] = seq[s : s + window]
    return ref_codes, alt_codes, match, found


def _reverse_complement(codes: np.ndarray) -> np.ndarray:
    rc = codes[:, ::-1]
    return np.where(rc < N_CODE, 3 - np.minimum(rc, 3), rc).astype(np.uint8)


def _score(model: Any, codes: np.ndarray, batch_size: int, device: Any) -> tuple[np.ndarray, np.ndarray]:
    """Binding probability and log-odds ``(n, n_tfs)``: both strands (a deep model's two are averaged)."""
    if hasattr(model, "scan_codes") and hasattr(model, "calibrate"):
        score = model_log_odds(model, codes, None, batch_size=batch_size, device=device)
        return model.calibrate(score, codes.shape[1]), score
    if is_torch_model(model):
        with model_on(model, device):
            fwd = model_log_odds(model, codes, None, batch_size=batch_size)
            rev = model_log_odds(model, _reverse_complement(codes), None, batch_size=batch_size)
        prob = 0.5 * (1 / (1 + np.exp(-fwd.astype(np.float64))) + 1 / (1 + np.exp(-rev.astype(np.float64))))
        return prob.astype(np.float32), (0.5 * (fwd + rev)).astype(np.float32)
    fwd = np.asarray(model.predict_codes(codes, batch_size=batch_size), np.float64)
    rev = np.asarray(model.predict_codes(_reverse_complement(codes), batch_size=batch_size), np.float64)
    prob = np.clip(0.5 * (fwd + rev), 1e-7, 1 - 1e-7)
    return prob.astype(np.float32), np.log(prob / (1 - prob)).astype(np.float32)


def _check_ref(table: pd.DataFrame, match: np.ndarray, found: list[str], on_mismatch: str) -> None:
    if match.all() or on_mismatch == "flag":
        return
    bad = np.flatnonzero(~match)
    eg = "; ".join(
        f"{table['variant'].iloc[i]}: ref {table['ref'].iloc[i]!r}, genome {found[i]!r}" for i in bad[:5]
    )
    raise ValueError(
        f"{len(bad)} of {len(table)} variant(s) have a ref allele that differs from the genome (pos is "
        f"1-based, VCF convention; check the genome build): {eg}. Pass on_mismatch='flag' to score them anyway"
    )


def _peak_of(adata, table: pd.DataFrame) -> np.ndarray:
    """Index of the peak (``var['chr', 'start', 'end']``, 0-based half-open) holding each variant; -1: none.

    Of several overlapping peaks, the one starting last before the variant.
    """
    for c in ("chr", "start", "end"):
        if c not in adata.var:
            raise KeyError(f"var[{c!r}] not found: the peaks' coordinates are needed (sfp.pp.parse_peaks)")
    chrom = adata.var["chr"].astype(str).to_numpy()
    start = adata.var["start"].to_numpy(np.int64)
    end = adata.var["end"].to_numpy(np.int64)
    out = np.full(len(table), -1, np.int64)
    pos0 = table["pos"].to_numpy(np.int64) - 1
    vchrom = table["chrom"].astype(str).to_numpy()
    for c in np.unique(vchrom):
        peaks = np.flatnonzero(chrom == c)
        if not len(peaks):
            continue
        order = peaks[np.argsort(start[peaks], kind="stable")]
        rows = np.flatnonzero(vchrom == c)
        k = np.searchsorted(start[order], pos0[rows], side="right") - 1
        ok = k >= 0
        hit = np.where(ok, order[np.maximum(k, 0)], -1)
        ok &= end[np.maximum(hit, 0)] > pos0[rows]
        out[rows] = np.where(ok, hit, -1)
    return out


def _group_means(adata, groupby: str, peak: np.ndarray, tfs: list[str], layer, activity_key):
    """``(groups, accessibility (groups, n_variants), activity (groups, n_tfs))``."""
    import scipy.sparse as sp

    if groupby not in adata.obs:
        raise KeyError(f"obs[{groupby!r}] not found")
    if activity_key not in adata.obsm:
        raise KeyError(f"obsm[{activity_key!r}] not found: run sfp.tl.predict_tf_binding first")
    groups = adata.obs[groupby].astype("category")
    cats = list(groups.cat.categories)
    codes = groups.cat.codes.to_numpy()
    member = sp.csr_matrix(
        (np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(len(cats), len(codes))
    )
    member = sp.diags(1 / np.maximum(np.asarray(member.sum(1)).ravel(), 1)) @ member
    X = adata.X if layer is None else adata.layers[layer]
    hit = np.unique(peak[peak >= 0])
    means = member @ X[:, hit].astype(np.float64)
    means = means.toarray() if sp.issparse(means) else np.asarray(means)
    acc = np.zeros((len(cats), len(peak)))
    acc[:, peak >= 0] = means[:, np.searchsorted(hit, peak[peak >= 0])]
    act_df = adata.obsm[activity_key]
    act_df = act_df if isinstance(act_df, pd.DataFrame) else pd.DataFrame(act_df, index=adata.obs_names)
    upper = {str(c).upper(): c for c in act_df.columns}
    act = np.full((len(cats), len(tfs)), np.nan)
    for j, tf in enumerate(tfs):
        if tf.upper() in upper:
            vals = np.nan_to_num(act_df[upper[tf.upper()]].to_numpy(np.float64))
            act[:, j] = member @ vals
    return cats, acc, act


def _per_group(res: pd.DataFrame, table, adata, groupby, tfs, layer, activity_key) -> pd.DataFrame:
    peak = _peak_of(adata, table)
    cats, acc, act = _group_means(adata, groupby, peak, tfs, layer, activity_key)
    vi = res["_row"].to_numpy()
    ti = res["tf"].map({t: j for j, t in enumerate(tfs)}).to_numpy()
    parts = []
    for g, name in enumerate(cats):
        part = res.assign(
            group=name,
            peak=np.where(peak[vi] >= 0, adata.var_names.to_numpy()[np.maximum(peak[vi], 0)], None),
            accessibility=acc[g, vi],
            activity=act[g, ti],
        )
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["weighted_effect"] = out["delta_prob"] * out["accessibility"] * np.maximum(out["activity"], 0)
    out["group"] = pd.Categorical(out["group"], categories=cats)
    return out


@doc_params()
def variant_effects(
    variants: pd.DataFrame | str | os.PathLike,
    model: Any,
    genome: Any,
    *,
    tfs: str | Sequence[str] | None = None,
    window: int | None = None,
    adata: Any = None,
    groupby: str | None = None,
    layer: str | None = None,
    activity_key: str = "tf_activity",
    on_mismatch: Literal["raise", "flag"] = "raise",
    batch_size: int = 256,
    device: Any = None,
    mod: str | None = None,
) -> pd.DataFrame:
    """Change in each TF's binding between the reference and alternative allele of each variant.

    Parameters
    ----------
    variants
        A DataFrame with ``chrom``, ``pos`` (**1-based**, the VCF convention), ``ref``, ``alt`` (and
        optionally ``id``), or the path of a VCF (plain or gzip; its first five columns). Indels are
        accepted (the window is re-centred on the allele); multi-allelic rows are split.
    model
        A model of :mod:`scfanpy.models` (its signal tracks, if any, take their training mean).
    genome
        The genome (path or :class:`scfanpy.Genome`) the positions refer to.
    tfs
        TFs to report (default: all of the model's).
    window
        Sequence length around each variant. Default: the model's window (deep models); for the motif
        model ``2 L - 1`` with ``L`` its longest motif, i.e. exactly the motif placements that touch the
        variant (wider windows let chance matches elsewhere mask the effect of the max scan).
    adata
        Cells x peaks (MuData: see ``mod``) with ``var['chr', 'start', 'end']`` and
        ``obsm[activity_key]`` (after :func:`scfanpy.tl.predict_tf_binding`); needs ``groupby``.
    groupby
        ``obs`` column of the cell groups to weigh the effect in.
    layer
        Counts to average for the accessibility (default ``X``).
    activity_key
        ``obsm`` key of the per-cell TF activity.
    on_mismatch
        ``'raise'``: a ``ref`` that differs from the genome raises, listing the first ones; ``'flag'``:
        they are scored (reference sequence from the genome, ``alt`` substituted) and marked in
        ``ref_matches``.
    {batch_size}
    device
        Where the model runs (None: where it is).
    {mod}

    Returns
    -------
    effects : pandas.DataFrame
        One row per (variant, TF), long format, sorted by ``|delta_logodds|`` (largest first): ``variant``,
        ``chrom``, ``pos``, ``ref``, ``alt``, ``tf``, ``prob_ref``, ``prob_alt``, ``delta_prob``
        (alt minus ref), ``logodds_ref``, ``logodds_alt``, ``delta_logodds`` (the network's logit; for the
        motif model its best PWM log-odds score, in nats) and ``ref_matches``. With ``adata`` and
        ``groupby``, one row per (variant, TF, group) with, in addition, ``group``, ``peak`` (the peak
        holding the variant, None if none), ``accessibility`` (mean count of that peak in the group; 0
        without a peak), ``activity`` (mean TF activity in the group) and ``weighted_effect`` =
        ``delta_prob * accessibility * max(activity, 0)``: negative where the variant weakens binding
        of a TF active in that group at an accessible peak.

    Examples
    --------
    >>> df = sfp.tl.variant_effects(
    ...     "variants.vcf", sfp.models.MotifModel(["GATA1"]), "hg38.fa"
    ... )  # doctest: +SKIP
    >>> sfp.pl.variant_effects(df)  # doctest: +SKIP
    """
    from ..genome import as_genome
    from ._attribution import _tf_columns

    if on_mismatch not in ("raise", "flag"):
        raise ValueError(f"on_mismatch must be 'raise' or 'flag', got {on_mismatch!r}")
    if (adata is None) != (groupby is None):
        raise ValueError("adata= and groupby= go together (per-group weights need both)")
    cols, names = _tf_columns(model, tfs)
    table = read_variants(variants)
    if window is None:
        window = int(model.input_spec.get("window", 0) or 0)
        if not window:
            window = 2 * int(max(getattr(model, "lengths", [50]))) - 1
    g = as_genome(genome)
    start = logg.info("scoring %d variant(s) x %d TF(s) in %d bp windows", len(table), len(cols), window)
    ref_codes, alt_codes, match, found = _windows(table, g, int(window))
    _check_ref(table, match, found, on_mismatch)
    p_ref, l_ref = _score(model, ref_codes, batch_size, device)
    p_alt, l_alt = _score(model, alt_codes, batch_size, device)
    n, k = len(table), len(cols)
    res = table.loc[np.repeat(np.arange(n), k)].reset_index(drop=True)
    res["tf"] = np.tile(names, n)
    for col, arr in (
        ("prob_ref", p_ref),
        ("prob_alt", p_alt),
        ("logodds_ref", l_ref),
        ("logodds_alt", l_alt),
    ):
        res[col] = arr[:, cols].ravel().astype(np.float64)
    res["delta_prob"] = res["prob_alt"] - res["prob_ref"]
    res["delta_logodds"] = res["logodds_alt"] - res["logodds_ref"]
    res["ref_matches"] = np.repeat(match, k)
    res["_row"] = np.repeat(np.arange(n), k)
    if adata is not None:
        res = _per_group(res, table, get_adata(adata, mod), groupby, names, layer, activity_key)
    order = np.argsort(-res["delta_logodds"].abs().to_numpy(), kind="stable")
    logg.info("    finished", time=start)
    return res.iloc[order].drop(columns="_row").reset_index(drop=True)
