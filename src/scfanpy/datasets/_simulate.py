"""Simulated scATAC-seq with a known truth: a synthetic genome with real JASPAR motifs planted in peaks.

Generative model (all draws from one seeded generator):

1. **Genome.** ``n_chromosomes`` chromosomes of i.i.d. background (GC ``gc``) hold ``n_peaks`` peaks of
   ``peak_width`` bp separated by random gaps.
2. **Motifs.** Each TF is planted in a fraction ``motif_rate`` of peaks: 1-2 sites sampled from its JASPAR
   probability matrix, random strand, at non-overlapping slots in the peak's central part.
   ``truth.motif`` (peaks x TFs) records where; chance matches in the background are *not* truth.
3. **Programs.** Each cell type has a set of active TFs (``truth.active``). ``ubiquitous`` TFs (default
   CTCF) are active everywhere; every other type gets ``n_active`` TFs, the sets all distinct.
4. **Binding.** A TF binds a peak in a cell type iff its motif is planted there **and** it is active in
   that type (``truth.bound(cell_type)``).
5. **Activity.** Each cell's activity of a TF is 0 when inactive in its type, else a log-normal draw
   around 1 (``activity_sd``): ``truth.activity`` (cells x TFs).
6. **Accessibility.** A peak's rate in a cell is ``exp(base + effect * sum_t bound * activity)``, with a
   per-peak ``base`` (a fraction ``constitutive`` of peaks is open everywhere regardless of TFs), times
   the cell's read-depth factor (log-normal, ``depth_sd``), times batch effects (a batch-specific
   shift on a random subset of peaks and a batch-wide depth factor). Counts are Poisson of that rate,
   scaled so a fraction ``target_density`` of the matrix is non-zero. Accessibility therefore
   follows binding, with noise from sampling, depth, batches and TF-independent peaks.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._utils import check_random_state, logger

DEFAULT_TFS = ("CTCF", "GATA1", "SPI1", "CEBPB", "EBF1", "RUNX1", "REST", "HNF4A")
_COMP = np.array([3, 2, 1, 0], dtype=np.int8)


@dataclass
class SimulationTruth:
    """Ground truth of :func:`simulate_scatac`.

    Attributes
    ----------
    motif
        Peaks x TFs, bool: where a TF's motif was planted.
    active
        Cell types x TFs, bool: each cell type's TF program.
    activity
        Cells x TFs, float: each cell's true TF activity (0 where the TF is inactive in its type).
    sites
        One row per planted site: ``peak``, ``tf``, ``chr``, ``start`` (0-based), ``end``, ``strand``.
    accessibility
        Cell types x peaks: mean expected accessibility rate (before depth and batch).
    params
        The arguments of the simulation.
    """

    motif: pd.DataFrame
    active: pd.DataFrame
    activity: pd.DataFrame
    sites: pd.DataFrame
    accessibility: pd.DataFrame
    params: dict = field(default_factory=dict)

    @property
    def tfs(self) -> list[str]:
        """TF names."""
        return list(self.motif.columns)

    def bound(self, cell_type: str) -> pd.DataFrame:
        """Peaks x TFs, bool: which TF binds which peak in ``cell_type`` (motif and TF active)."""
        return self.motif & self.active.loc[cell_type].to_numpy()[None, :]

    def bound_cells(self, cell_types) -> np.ndarray:
        """For each cell's type, the bound matrix stacked as ``(n_cells, n_peaks, n_tfs)``; small data only."""
        return np.stack([self.bound(ct).to_numpy() for ct in cell_types])


class SimulatedData(NamedTuple):
    """What :func:`simulate_scatac` returns: ``adata, genome, truth = sfp.datasets.simulate_scatac()``."""

    adata: AnnData
    genome: object
    truth: SimulationTruth


def _programs(tfs, n_types, n_active, ubiquitous, rng) -> np.ndarray:
    specific = [t for t in tfs if t not in ubiquitous]
    k = min(n_active, len(specific))
    combos = list(itertools.combinations(range(len(specific)), k))
    if len(combos) < n_types:
        raise ValueError(
            f"{n_types} cell types need distinct programs but only {len(combos)} exist with {len(specific)} TFs x {k} active"
        )
    # spread TFs over types: greedy pick of combos that use the least-used TFs
    order = rng.permutation(len(combos))
    used = np.zeros(len(specific))
    chosen = []
    for _ in range(n_types):
        best = min(
            (c for c in (combos[i] for i in order) if c not in chosen), key=lambda c: used[list(c)].sum()
        )
        chosen.append(best)
        used[list(best)] += 1
    active = np.zeros((n_types, len(tfs)), dtype=bool)
    for i, c in enumerate(chosen):
        for j in c:
            active[i, tfs.index(specific[j])] = True
        for u in ubiquitous:
            if u in tfs:
                active[i, tfs.index(u)] = True
    return active


def _sample_motif(pwm: np.ndarray, rng) -> np.ndarray:
    cum = np.cumsum(pwm, axis=1)
    u = rng.random((pwm.shape[0], 1))
    codes = (u > cum).sum(1).astype(np.int8)
    return np.minimum(codes, 3)


def _write_fasta(path: Path, chroms: dict[str, np.ndarray]) -> None:
    letters = np.frombuffer(b"ACGTN", dtype=np.uint8)
    with open(path, "w") as fh:
        for name, codes in chroms.items():
            fh.write(f">{name}\n")
            s = letters[codes].tobytes().decode()
            fh.write("\n".join(s[i : i + 60] for i in range(0, len(s), 60)))
            fh.write("\n")


def simulate_scatac(
    n_cells: int = 1000,
    n_peaks: int = 2000,
    *,
    n_cell_types: int = 4,
    tfs: list[str] | tuple[str, ...] = DEFAULT_TFS,
    n_active: int = 2,
    ubiquitous: tuple[str, ...] = ("CTCF",),
    motif_rate: float = 0.15,
    peak_width: int = 500,
    n_chromosomes: int = 2,
    gc: float = 0.42,
    effect: float = 2.5,
    activity_sd: float = 0.3,
    constitutive: float = 0.1,
    target_density: float = 0.05,
    depth_sd: float = 0.6,
    n_batches: int = 1,
    batch_effect: float = 1.0,
    batch_peak_fraction: float = 0.2,
    out_dir: str | os.PathLike | None = None,
    random_state: int | np.random.Generator | None = 0,
) -> SimulatedData:
    """Simulate scATAC-seq counts over a synthetic genome with real JASPAR motifs planted in the peaks.

    See the module docstring for the generative model. Deterministic given ``random_state``.

    Parameters
    ----------
    n_cells, n_peaks
        Matrix size.
    n_cell_types
        Number of cell types (equal sizes, shuffled).
    tfs
        JASPAR TF names to plant (CORE vertebrates).
    n_active
        TFs active per cell type besides the ``ubiquitous`` ones.
    ubiquitous
        TFs active in every cell type.
    motif_rate
        Fraction of peaks carrying each TF's motif.
    peak_width
        Peak length in bp.
    n_chromosomes
        Chromosomes of the synthetic genome (``chr1`` ...).
    gc
        Background GC content.
    effect
        Log-rate increase per bound active TF (times the cell's activity).
    activity_sd
        Log-normal spread of a cell's activity around its type's program.
    constitutive
        Fraction of peaks open in every cell whatever the TFs.
    target_density
        Fraction of non-zero entries to aim for (2-10% is typical of scATAC).
    depth_sd
        Log-normal spread of per-cell read depth.
    n_batches, batch_effect, batch_peak_fraction
        Batches (cells assigned at random), the size of batch-specific log-rate shifts and on how many
        peaks they fall; each batch also gets its own depth factor.
    out_dir
        Where to write the genome FASTA; default a folder in the data cache named by the parameters.
    random_state
        Seed (or numpy Generator) of every draw.

    Returns
    -------
    :class:`SimulatedData` ``(adata, genome, truth)``: ``adata`` cells x peaks (sparse int counts) with
    ``obs['cell_type']``, ``obs['batch']``, ``obs['depth_factor']``, ``obs['n_fragments']`` and
    ``var['chr', 'start', 'end']``; ``genome`` a :class:`~scfanpy.Genome`; ``truth`` a
    :class:`SimulationTruth`.

    Examples
    --------
    >>> import scfanpy as sfp
    >>> adata, genome, truth = sfp.datasets.simulate_scatac(n_cells=200, n_peaks=300, random_state=1)
    >>> adata.shape, truth.motif.shape
    ((200, 300), (300, 8))
    """
    from ..genome import Genome
    from ._jaspar import jaspar_motifs

    params = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in locals().items()
        if k not in {"Genome", "jaspar_motifs", "out_dir"}
    }
    if n_cells < n_cell_types:
        raise ValueError(f"n_cells ({n_cells}) must be at least n_cell_types ({n_cell_types})")
    if n_peaks < 10:
        raise ValueError("n_peaks must be at least 10")
    if not 0 < target_density < 1:
        raise ValueError("target_density must be in (0, 1)")
    tfs = list(tfs)
    rng = check_random_state(random_state)
    pwms = {k: v.to_numpy() for k, v in jaspar_motifs(tfs).items()}
    max_len = max(len(p) for p in pwms.values())
    if peak_width < 4 * (max_len + 2):
        raise ValueError(f"peak_width {peak_width} too small for motifs up to {max_len} bp")

    # ---- genome layout
    gaps = rng.integers(300, 3000, size=n_peaks)
    chrom_of = np.sort(rng.integers(0, n_chromosomes, size=n_peaks))
    chroms, starts = [], []
    seqs: dict[str, np.ndarray] = {}
    for c in range(n_chromosomes):
        idx = np.flatnonzero(chrom_of == c)
        pos = np.cumsum(gaps[idx] + peak_width) - peak_width
        length = int(pos[-1] + peak_width + 1000) if len(idx) else 10_000
        p_gc = gc / 2
        seqs[f"chr{c + 1}"] = rng.choice(4, size=length, p=[0.5 - p_gc, p_gc, p_gc, 0.5 - p_gc]).astype(
            np.int8
        )
        chroms += [f"chr{c + 1}"] * len(idx)
        starts += list(pos)
    chroms = np.array(chroms, dtype=object)
    starts = np.array(starts, dtype=np.int64)
    ends = starts + peak_width

    # ---- plant motifs
    motif = rng.random((n_peaks, len(tfs))) < motif_rate
    slot = max_len + 2
    core_lo = peak_width // 2 - int(0.4 * peak_width)
    n_slots = int(0.8 * peak_width) // slot
    site_rows = []
    for p in range(n_peaks):
        present = np.flatnonzero(motif[p])
        if not len(present):
            continue
        n_sites = rng.integers(1, 3, size=len(present))
        total = int(n_sites.sum())
        if total > n_slots:
            n_sites = np.ones_like(n_sites)
            total = len(present)
        slots = rng.choice(n_slots, size=min(total, n_slots), replace=False)
        k = 0
        for t, ns in zip(present, n_sites):
            for _ in range(ns):
                if k >= len(slots):
                    break
                pwm = pwms[tfs[t]]
                site = _sample_motif(pwm, rng)
                strand = "+"
                if rng.random() < 0.5:
                    site = _COMP[site[::-1]]
                    strand = "-"
                off = core_lo + slots[k] * slot + int(rng.integers(0, slot - len(site) + 1))
                gpos = starts[p] + off
                seqs[chroms[p]][gpos : gpos + len(site)] = site
                site_rows.append((p, tfs[t], chroms[p], gpos, gpos + len(site), strand))
                k += 1

    # ---- programs, cells, activity
    types = [f"type{i}" for i in range(n_cell_types)]
    active = _programs(tfs, n_cell_types, n_active, tuple(ubiquitous), rng)
    cell_type = rng.permutation(np.arange(n_cells) % n_cell_types)
    strength = np.exp(rng.normal(0, activity_sd, size=(n_cells, len(tfs))) - activity_sd**2 / 2)
    activity = strength * active[cell_type]
    batch = rng.integers(0, n_batches, size=n_cells) if n_batches > 1 else np.zeros(n_cells, dtype=int)
    depth = np.exp(rng.normal(0, depth_sd, size=n_cells))
    batch_depth = np.exp(rng.normal(0, 0.3, size=n_batches)) if n_batches > 1 else np.ones(1)
    depth = depth * batch_depth[batch]
    batch_shift = np.zeros((n_batches, n_peaks))
    if n_batches > 1:
        for b in range(n_batches):
            hit = rng.random(n_peaks) < batch_peak_fraction
            batch_shift[b, hit] = rng.normal(0, batch_effect, size=hit.sum())

    base = rng.normal(0, 0.5, size=n_peaks)
    const = rng.random(n_peaks) < constitutive
    base[const] += effect
    motif_f = motif.astype(np.float64)

    def log_rate(rows: np.ndarray) -> np.ndarray:
        return base[None, :] + effect * (activity[rows] @ motif_f.T) + batch_shift[batch[rows]]

    # scale so the expected density is target_density (bisection on a sample of cells)
    sample = rng.choice(n_cells, size=min(n_cells, 500), replace=False)
    lr = log_rate(sample)
    lo, hi = -20.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        dens = np.mean(1 - np.exp(-np.exp(lr + mid) * depth[sample, None]))
        lo, hi = (mid, hi) if dens < target_density else (lo, mid)
    scale = (lo + hi) / 2

    blocks = []
    for c0 in range(0, n_cells, 2000):
        rows = np.arange(c0, min(n_cells, c0 + 2000))
        lam = np.exp(log_rate(rows) + scale) * depth[rows, None]
        blocks.append(sp.csr_matrix(rng.poisson(lam).astype(np.float32)))
    X = sp.vstack(blocks).tocsr()

    mean_type = np.stack(
        [np.exp(base + effect * (active[k].astype(float) @ motif_f.T) + scale) for k in range(n_cell_types)]
    )

    # ---- genome file
    key = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]
    if out_dir is None:
        from ._registry import cache_dir

        out_dir = cache_dir() / "simulated" / key
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fa = out_dir / "genome.fa"
    tmp = out_dir / f"genome.{os.getpid()}.tmp"
    _write_fasta(tmp, {k: v.astype(np.uint8) for k, v in seqs.items()})
    for stale in (fa, Path(str(fa) + ".fai")):
        if stale.exists():
            stale.unlink()
    tmp.replace(fa)
    genome = Genome(fa, name=f"simulated_{key}")

    # ---- assemble
    peak_names = [f"{c}:{s}-{e}" for c, s, e in zip(chroms, starts, ends)]
    cell_names = [f"cell{i}" for i in range(n_cells)]
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(np.array(types)[cell_type], categories=types),
            "batch": pd.Categorical([f"batch{b}" for b in batch]),
            "depth_factor": depth,
            "n_fragments": np.asarray(X.sum(1)).ravel(),
        },
        index=pd.Index(cell_names),
    )
    var = pd.DataFrame(
        {"chr": chroms.astype(str), "start": starts, "end": ends, "constitutive": const},
        index=pd.Index(peak_names),
    )
    adata = AnnData(X=X, obs=obs, var=var)
    adata.uns["simulation"] = {
        "random_state": random_state if isinstance(random_state, int) else str(random_state),
        "tfs": tfs,
        "genome": str(fa),
    }
    truth = SimulationTruth(
        motif=pd.DataFrame(motif, index=adata.var_names, columns=tfs),
        active=pd.DataFrame(active, index=types, columns=tfs),
        activity=pd.DataFrame(activity, index=adata.obs_names, columns=tfs),
        sites=pd.DataFrame(site_rows, columns=["peak", "tf", "chr", "start", "end", "strand"]),
        accessibility=pd.DataFrame(mean_type, index=types, columns=adata.var_names),
        params=params,
    )
    logger.info(
        "simulated %d cells x %d peaks (%.1f%% non-zero), %d cell types, %d TFs, %d batch(es)",
        n_cells,
        n_peaks,
        100 * X.nnz / max(1, n_cells * n_peaks),
        n_cell_types,
        len(tfs),
        n_batches,
    )
    return SimulatedData(adata, genome, truth)
