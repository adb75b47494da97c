"""Region AnnData for the sequence models: what :meth:`SeqModelBase.setup_anndata` registers.

Layout (regions as observations): ``obsm['dna_code']`` uint8 ``(n, L)`` (A=0 C=1 G=2 T=3 N=4); optional
``obsm[signal_key]`` float ``(n, n_tracks, L)`` or ``(n, n_tracks)`` (constant over the window);
``obsm['labels']`` ``(n, n_tfs)`` DataFrame or array, NaN or -1 = missing (optional
``obsm['label_mask']``, True = observed); TF names from the DataFrame columns or ``uns['tf_names']``;
``obs['split']`` in {'train', 'valid', 'test'}.

Each of these is one scvi-tools :class:`~scvi.data.fields.ObsmField` (:func:`seq_fields`); the 3-D
per-base tracks fit an obsm field as they are (scvi-tools slices the first axis only), so no custom data
module is needed. The readers below serve prediction and evaluation on any region AnnData (registered or
not) and the chromosome-held-out split.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

__all__ = ["SEQ_KEYS", "seq_fields", "make_split"]


class SEQ_KEYS:
    """Registry keys of the sequence-model fields (names inside the scvi-tools registry)."""

    DNA = "dna_code"
    SIGNAL = "signal"
    LABELS = "labels"
    MASK = "label_mask"


def obsm_array(adata: ad.AnnData, key: str) -> np.ndarray:
    """``adata.obsm[key]`` as an array (a DataFrame's values)."""
    v = adata.obsm[key]
    return v.to_numpy() if isinstance(v, pd.DataFrame) else np.asarray(v)


def label_names(adata: ad.AnnData, labels_key: str) -> list[str]:
    """TF names of ``obsm[labels_key]``: the DataFrame columns, else ``uns['tf_names']``, else ``tf0..``."""
    raw = adata.obsm[labels_key]
    if isinstance(raw, pd.DataFrame):
        return [str(c) for c in raw.columns]
    n = 1 if np.ndim(raw) == 1 else np.shape(raw)[1]
    return [str(t) for t in adata.uns.get("tf_names", [f"tf{i}" for i in range(n)])]


def read_labels(adata: ad.AnnData, labels_key: str, mask_key: str | None) -> tuple[np.ndarray, list[str]]:
    """Labels ``(n, n_tfs)`` float32 with NaN = missing, and TF names."""
    raw = adata.obsm[labels_key]
    if isinstance(raw, pd.DataFrame):
        y = raw.to_numpy(dtype=np.float32, na_value=np.nan)
    else:
        y = np.asarray(raw, dtype=np.float32)
        if y.ndim == 1:
            y = y[:, None]
    y = y.copy()
    y[y < 0] = np.nan
    if mask_key is not None and mask_key in adata.obsm:
        m = obsm_array(adata, mask_key).astype(bool).reshape(y.shape)
        y[~m] = np.nan
    return y, label_names(adata, labels_key)


def read_signal(adata: ad.AnnData, signal_key: str | None) -> np.ndarray | None:
    """Signal tracks ``(n, n_tracks)`` or ``(n, n_tracks, L)``; None without ``signal_key``."""
    if signal_key is None:
        return None
    s = obsm_array(adata, signal_key)
    if s.ndim == 1:
        s = s[:, None]
    return s


def seq_fields(
    adata: ad.AnnData,
    dna_key: str,
    signal_key: str | None,
    labels_key: str,
    mask_key: str | None,
) -> list:
    """The scvi-tools fields of a region AnnData: codes, and tracks / labels / mask when present."""
    from scvi.data.fields import ObsmField

    fields = [ObsmField(SEQ_KEYS.DNA, dna_key)]
    if signal_key is not None:
        fields.append(ObsmField(SEQ_KEYS.SIGNAL, signal_key))
    if labels_key in adata.obsm:
        as_array = not isinstance(adata.obsm[labels_key], pd.DataFrame)
        names_key = "tf_names" if as_array and "tf_names" in adata.uns else None
        fields.append(ObsmField(SEQ_KEYS.LABELS, labels_key, colnames_uns_key=names_key))
        if mask_key is not None and mask_key in adata.obsm:
            fields.append(ObsmField(SEQ_KEYS.MASK, mask_key))
    return fields


def empty_regions(window: int) -> ad.AnnData:
    """A region AnnData with no regions and ``window``-bp codes: what a model without data registers."""
    a = ad.AnnData(np.zeros((0, 0), dtype=np.float32))
    a.obsm["dna_code"] = np.zeros((0, int(window)), dtype=np.uint8)
    return a


def make_split(
    adata: ad.AnnData,
    random_state: int | np.random.Generator | None = 0,
    frac_valid: float = 0.1,
    frac_test: float = 0.1,
) -> np.ndarray:
    """Chromosome-held-out split from ``obs['chr']`` (or ``'chrom'``) when there are >= 3, else random.

    Returns
    -------
    split : numpy.ndarray
        ``(n_regions,)`` strings 'train', 'valid' or 'test'. Whole chromosomes (in a random order) fill
        about ``frac_test`` and ``frac_valid`` of the regions; without chromosomes, each region is
        assigned at random.
    """
    n = adata.n_obs
    rng = np.random.default_rng(random_state)
    col = next((c for c in ("chr", "chrom", "chromosome") if c in adata.obs), None)
    split = np.full(n, "train", dtype=object)
    if col is not None and adata.obs[col].nunique() >= 3:
        chroms = adata.obs[col].astype(str).to_numpy()
        counts = pd.Series(chroms).value_counts()
        order = list(rng.permutation(counts.index.to_numpy()))
        filled = {"test": 0, "valid": 0}
        for c in order:
            for part, frac in (("test", frac_test), ("valid", frac_valid)):
                if filled[part] < frac * n and filled[part] + counts[c] <= 2 * frac * n + 1:
                    split[chroms == c] = part
                    filled[part] += counts[c]
                    break
            if all(filled[p] >= f * n for p, f in (("test", frac_test), ("valid", frac_valid))):
                break
        if filled["valid"] > 0 and filled["test"] > 0:
            return split.astype(str)
    u = rng.random(n)
    split = np.where(u < frac_test, "test", np.where(u < frac_test + frac_valid, "valid", "train"))
    return split.astype(str)
