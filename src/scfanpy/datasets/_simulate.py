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
7. **GC bias** (off by default; what real scATAC has and a motif score confuses with TF activity).
   ``gc_sd`` gives each peak its own background GC content (normal around ``gc``, clipped to
   [0.25, 0.75]), drawn before the motifs are planted. With ``g[p]`` a peak's GC share (planted sites
   included) in units of 0.1 around the mean, the log-rate gains ``gc_accessibility * g[p]`` (GC-rich
   peaks, like promoters, are open more on average) and ``b[c] * g[p]`` with a per-cell capture bias
   ``b[c] ~ N(0, gc_bias_sd)`` (cells differ in how well they capture GC-rich fragments, as after
   Tn5 and PCR). ``truth.params['gc_bias']`` holds ``b``.

Each step is one private helper below, in the order of the draws; the genome is written as a FASTA
file whose path is returned (this package does not import :mod:`scfanpy.genome`).
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

from .. import _logging as logg
from .._docs import doc_params
from .._registry import cache_dir
from .._utils import check_random_state
from ._jaspar import jaspar_motifs
from ._simulate_gc import gc_effects as _gc_effects
from ._simulate_gc import vary_peak_gc as _vary_peak_gc

__all__ = ["DEFAULT_TFS", "SimulatedData", "SimulationTruth", "simulate_scatac"]

DEFAULT_TFS = ("CTCF", "GATA1", "SPI1", "CEBPB", "EBF1", "RUNX1", "REST", "HNF4A")
_COMP = np.array([3, 2, 1, 0], dtype=np.int8)
_SITE_COLUMNS = ["peak", "tf", "chr", "start", "end", "strand"]


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
    """What :func:`simulate_scatac` returns: ``adata, genome, truth = sfp.datasets.simulate_scatac()``.

    ``genome`` is the path of the synthetic genome's FASTA: pass it wherever a genome is taken, or open
    it with ``sfp.Genome(genome)``.
    """

    adata: AnnData
    genome: Path
    truth: SimulationTruth


def _programs(tfs, n_types, n_active, ubiquitous, random_state) -> np.ndarray:
    rng = check_random_state(random_state)
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


def _sample_motif(pwm: np.ndarray, random_state) -> np.ndarray:
    rng = check_random_state(random_state)
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


# ---------------------------------------------------------------------------------------- 1. genome
def _layout_genome(
    random_state: np.random.Generator, n_peaks: int, n_chromosomes: int, peak_width: int, gc: float
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Background chromosomes and peak positions.

    Returns ``(seqs, chroms, starts)``: ``{name: int8 codes}`` per chromosome, and each peak's
    chromosome and 0-based start (peaks in genome order).
    """
    rng = check_random_state(random_state)
    gaps = rng.integers(300, 3000, size=n_peaks)
    chrom_of = np.sort(rng.integers(0, n_chromosomes, size=n_peaks))
    chroms, starts = [], []
    seqs: dict[str, np.ndarray] = {}
    p_gc = gc / 2
    for c in range(n_chromosomes):
        idx = np.flatnonzero(chrom_of == c)
        pos = np.cumsum(gaps[idx] + peak_width) - peak_width
        length = int(pos[-1] + peak_width + 1000) if len(idx) else 10_000
        seqs[f"chr{c + 1}"] = rng.choice(4, size=length, p=[0.5 - p_gc, p_gc, p_gc, 0.5 - p_gc]).astype(
            np.int8
        )
        chroms += [f"chr{c + 1}"] * len(idx)
        starts += list(pos)
    return seqs, np.array(chroms, dtype=object), np.array(starts, dtype=np.int64)


# ---------------------------------------------------------------------------------------- 2. motifs
def _draw_site(random_state: np.random.Generator, pwm: np.ndarray) -> tuple[np.ndarray, str]:
    """One motif instance sampled from ``pwm`` on a random strand: ``(codes, strand)``."""
    rng = check_random_state(random_state)
    site = _sample_motif(pwm, rng)
    if rng.random() < 0.5:
        return _COMP[site[::-1]], "-"
    return site, "+"


def _plant_motifs(
    random_state: np.random.Generator,
    seqs: dict[str, np.ndarray],
    chroms: np.ndarray,
    starts: np.ndarray,
    tfs: list[str],
    pwms: dict[str, np.ndarray],
    motif_rate: float,
    peak_width: int,
) -> tuple[np.ndarray, list[tuple]]:
    """Plant each TF's motif in a fraction ``motif_rate`` of peaks, writing into ``seqs`` in place.

    Each (peak, TF) pair drawn gets 1-2 sites at non-overlapping slots of the peak's central 80%.
    Returns the peaks x TFs bool matrix and one row per planted site (:data:`_SITE_COLUMNS`).
    """
    rng = check_random_state(random_state)
    n_peaks = len(starts)
    motif = rng.random((n_peaks, len(tfs))) < motif_rate
    slot = max(len(p) for p in pwms.values()) + 2
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
                site, strand = _draw_site(rng, pwms[tfs[t]])
                off = core_lo + slots[k] * slot + int(rng.integers(0, slot - len(site) + 1))
                gpos = starts[p] + off
                seqs[chroms[p]][gpos : gpos + len(site)] = site
                site_rows.append((p, tfs[t], chroms[p], gpos, gpos + len(site), strand))
                k += 1
    return motif, site_rows


# ---------------------------------------------------------------------------------------- 3-5. cells
class _Cells(NamedTuple):
    """Per-cell draws: programs, types, activities, batches and depth."""

    active: np.ndarray  # (n_types, n_tfs) bool
    cell_type: np.ndarray  # (n_cells,) type index
    activity: np.ndarray  # (n_cells, n_tfs)
    batch: np.ndarray  # (n_cells,) batch index
    depth: np.ndarray  # (n_cells,) read-depth factor, batch factor included
    batch_shift: np.ndarray  # (n_batches, n_peaks) log-rate shifts


def _draw_cells(
    random_state: np.random.Generator,
    tfs: list[str],
    n_cells: int,
    n_peaks: int,
    *,
    n_cell_types: int,
    n_active: int,
    ubiquitous: tuple[str, ...],
    activity_sd: float,
    depth_sd: float,
    n_batches: int,
    batch_effect: float,
    batch_peak_fraction: float,
) -> _Cells:
    """Cell-type programs, each cell's type and TF activity, batch, depth and batch shifts."""
    rng = check_random_state(random_state)
    active = _programs(tfs, n_cell_types, n_active, ubiquitous, rng)
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
    return _Cells(active, cell_type, activity, batch, depth, batch_shift)


# ---------------------------------------------------------------------------------------- 6. counts
def _density_offset(log_rate: np.ndarray, depth: np.ndarray, target_density: float) -> float:
    """Log-rate offset at which the expected fraction of non-zero counts is ``target_density`` (bisection)."""
    lo, hi = -20.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        dens = np.mean(1 - np.exp(-np.exp(log_rate + mid) * depth[:, None]))
        lo, hi = (mid, hi) if dens < target_density else (lo, mid)
    return (lo + hi) / 2


def _draw_counts(
    random_state: np.random.Generator,
    cells: _Cells,
    motif: np.ndarray,
    effect: float,
    constitutive: float,
    target_density: float,
    gc_effects: tuple[np.ndarray, float, float] | None = None,
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """Poisson counts of the accessibility model.

    ``gc_effects``: ``(peak_gc, gc_accessibility, gc_bias_sd)`` for step 7 of the model (None: off).
    Returns ``(X, const, mean_type, gc_bias)``: cells x peaks counts (CSR, float32), which peaks are
    constitutive, the cell types x peaks mean rate before depth and batch, each cell's GC capture bias.
    """
    rng = check_random_state(random_state)
    n_cells, n_peaks = len(cells.cell_type), motif.shape[0]
    base = rng.normal(0, 0.5, size=n_peaks)
    const = rng.random(n_peaks) < constitutive
    base[const] += effect
    motif_f = motif.astype(np.float64)
    gc_bias = np.zeros(n_cells)
    g = np.zeros(n_peaks)
    if gc_effects is not None:
        peak_gc, gc_accessibility, gc_bias_sd = gc_effects
        g = (peak_gc - peak_gc.mean()) / 0.1
        base = base + gc_accessibility * g
        gc_bias = rng.normal(0, gc_bias_sd, size=n_cells)

    def log_rate(rows: np.ndarray) -> np.ndarray:
        return (
            base[None, :]
            + effect * (cells.activity[rows] @ motif_f.T)
            + cells.batch_shift[cells.batch[rows]]
            + gc_bias[rows, None] * g[None, :]
        )

    # scale so the expected density is target_density (on a sample of cells)
    sample = rng.choice(n_cells, size=min(n_cells, 500), replace=False)
    scale = _density_offset(log_rate(sample), cells.depth[sample], target_density)
    blocks = []
    for c0 in range(0, n_cells, 2000):
        rows = np.arange(c0, min(n_cells, c0 + 2000))
        lam = np.exp(log_rate(rows) + scale) * cells.depth[rows, None]
        blocks.append(sp.csr_matrix(rng.poisson(lam).astype(np.float32)))
    X = sp.vstack(blocks).tocsr()
    mean_type = np.stack(
        [np.exp(base + effect * (a.astype(float) @ motif_f.T) + scale) for a in cells.active]
    )
    return X, const, mean_type, gc_bias


# ---------------------------------------------------------------------------------------- output
def _write_genome(seqs: dict[str, np.ndarray], out_dir: Path) -> Path:
    """Write the genome FASTA into ``out_dir`` (atomically, dropping a stale index); returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fa = out_dir / "genome.fa"
    tmp = out_dir / f"genome.{os.getpid()}.tmp"
    _write_fasta(tmp, {k: v.astype(np.uint8) for k, v in seqs.items()})
    for stale in (fa, Path(str(fa) + ".fai")):
        if stale.exists():
            stale.unlink()
    tmp.replace(fa)
    return fa


def _assemble(
    X: sp.csr_matrix,
    cells: _Cells,
    chroms: np.ndarray,
    starts: np.ndarray,
    peak_width: int,
    const: np.ndarray,
    tfs: list[str],
    fa: Path,
    random_state,
) -> AnnData:
    """The cells x peaks AnnData: ``obs`` (type, batch, depth, fragments), ``var`` (coordinates); logged."""
    n_cells = X.shape[0]
    types = [f"type{i}" for i in range(len(cells.active))]
    ends = starts + peak_width
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(np.array(types)[cells.cell_type], categories=types),
            "batch": pd.Categorical([f"batch{b}" for b in cells.batch]),
            "depth_factor": cells.depth,
            "n_fragments": np.asarray(X.sum(1)).ravel(),
        },
        index=pd.Index([f"cell{i}" for i in range(n_cells)]),
    )
    var = pd.DataFrame(
        {"chr": chroms.astype(str), "start": starts, "end": ends, "constitutive": const},
        index=pd.Index([f"{c}:{s}-{e}" for c, s, e in zip(chroms, starts, ends)]),
    )
    adata = AnnData(X=X, obs=obs, var=var)
    adata.uns["simulation"] = {
        "random_state": random_state if isinstance(random_state, int) else str(random_state),
        "tfs": tfs,
        "genome": str(fa),
    }
    logg.info(
        "simulated %d cells x %d peaks (%.1f%% non-zero), %d cell types, %d TFs, %d batch(es)",
        n_cells,
        X.shape[1],
        100 * X.nnz / max(1, n_cells * X.shape[1]),
        len(types),
        len(tfs),
        len(cells.batch_shift),
    )
    return adata


def _truth(
    adata: AnnData,
    cells: _Cells,
    motif: np.ndarray,
    site_rows: list[tuple],
    mean_type: np.ndarray,
    params: dict,
) -> SimulationTruth:
    """The :class:`SimulationTruth`, labelled with ``adata``'s names."""
    tfs = params["tfs"]
    types = adata.obs["cell_type"].cat.categories
    return SimulationTruth(
        motif=pd.DataFrame(motif, index=adata.var_names, columns=tfs),
        active=pd.DataFrame(cells.active, index=types, columns=tfs),
        activity=pd.DataFrame(cells.activity, index=adata.obs_names, columns=tfs),
        sites=pd.DataFrame(site_rows, columns=_SITE_COLUMNS),
        accessibility=pd.DataFrame(mean_type, index=types, columns=adata.var_names),
        params=params,
    )


# the simulate_scatac arguments that _draw_cells takes by keyword
_CELL_ARGS = (
    "n_cell_types",
    "n_active",
    "ubiquitous",
    "activity_sd",
    "depth_sd",
    "n_batches",
    "batch_effect",
    "batch_peak_fraction",
)


def _motif_matrices(tfs: list[str], peak_width: int) -> dict[str, np.ndarray]:
    """JASPAR probability matrices ``(L, 4)`` of ``tfs``; checks they fit a peak with room to spare."""
    pwms = {k: v.to_numpy() for k, v in jaspar_motifs(tfs).items()}
    max_len = max(len(p) for p in pwms.values())
    if peak_width < 4 * (max_len + 2):
        raise ValueError(f"peak_width {peak_width} too small for motifs up to {max_len} bp")
    return pwms


def _check_args(n_cells: int, n_peaks: int, n_cell_types: int, target_density: float) -> None:
    if n_cells < n_cell_types:
        raise ValueError(f"n_cells ({n_cells}) must be at least n_cell_types ({n_cell_types})")
    if n_peaks < 10:
        raise ValueError("n_peaks must be at least 10")
    if not 0 < target_density < 1:
        raise ValueError("target_density must be in (0, 1)")


@doc_params()
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
    gc_sd: float = 0.0,
    gc_accessibility: float = 0.0,
    gc_bias_sd: float = 0.0,
    effect: float = 2.5,
    activity_sd: float = 0.3,
    constitutive: float = 0.1,
    target_density: float = 0.05,
    max_count: int | None = None,
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
    gc_sd, gc_accessibility, gc_bias_sd
        The GC bias model (module docstring, step 7; all 0: off): the spread of the peaks' GC content,
        the log-rate change of mean accessibility per +0.1 GC, and the spread of the cells' GC capture
        bias (log-rate change per +0.1 GC). ``gc_sd=0.08, gc_accessibility=0.5, gc_bias_sd=1.0`` with
        ``target_density=0.02`` is a 10x-like regime where uncorrected motif scores follow GC.
    effect
        Log-rate increase per bound active TF (times the cell's activity).
    activity_sd
        Log-normal spread of a cell's activity around its type's program.
    constitutive
        Fraction of peaks open in every cell whatever the TFs.
    target_density
        Fraction of non-zero entries to aim for (2-10% is typical of scATAC).
    max_count
        Cap on a cell's count at a peak (None: none). The Poisson draws of the log-normal rates are
        heavy-tailed (with the GC bias model, single entries of 10^5 and more, a mean of about 30 per
        non-zero), where a real cell has a few fragments per peak at most (two alleles; the Schep 2017
        subset's mean count per non-zero is 1.5). A cap keeps which entries are non-zero and removes the
        tail that would otherwise dominate any sum of counts over peaks.
    depth_sd
        Log-normal spread of per-cell read depth.
    n_batches, batch_effect, batch_peak_fraction
        Batches (cells assigned at random), the size of batch-specific log-rate shifts and on how many
        peaks they fall; each batch also gets its own depth factor.
    out_dir
        Where to write the genome FASTA; default a folder in the data cache named by the parameters.
    {random_state}

    Returns
    -------
    SimulatedData
        The named tuple ``(adata, genome, truth)``:
    adata : :class:`anndata.AnnData`
        Cells x peaks, sparse integer counts; ``obs['cell_type']``, ``obs['batch']``, ``obs['depth_factor']``,
        ``obs['n_fragments']``, ``var['chr', 'start', 'end', 'constitutive']`` and ``uns['simulation']``.
    genome : pathlib.Path
        The synthetic genome's FASTA: any genome argument takes it; ``sfp.Genome(genome)`` opens it.
    truth : :class:`SimulationTruth`
        The ground truth.

    Examples
    --------
    >>> import scfanpy as sfp
    >>> adata, genome, truth = sfp.datasets.simulate_scatac(n_cells=200, n_peaks=300, random_state=1)
    >>> adata.shape, truth.motif.shape
    ((200, 300), (300, 8))
    """
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in locals().items() if k != "out_dir"}
    _check_args(n_cells, n_peaks, n_cell_types, target_density)
    if max_count is not None and (int(max_count) != max_count or max_count < 1):
        raise ValueError(f"max_count must be a positive integer or None, got {max_count!r}")
    tfs = list(tfs)
    rng = check_random_state(random_state)  # one generator for every draw, in this order
    pwms = _motif_matrices(tfs, peak_width)
    seqs, chroms, starts = _layout_genome(rng, n_peaks, n_chromosomes, peak_width, gc)
    _vary_peak_gc(rng, seqs, chroms, starts, peak_width, gc, gc_sd)
    motif, site_rows = _plant_motifs(rng, seqs, chroms, starts, tfs, pwms, motif_rate, peak_width)
    cells = _draw_cells(rng, tfs, n_cells, n_peaks, **{k: params[k] for k in _CELL_ARGS})
    gc_effects = _gc_effects(seqs, chroms, starts, peak_width, gc_sd, gc_accessibility, gc_bias_sd)
    X, const, mean_type, gc_bias = _draw_counts(
        rng, cells, motif, effect, constitutive, target_density, gc_effects
    )
    if max_count is not None:
        X.data = np.minimum(X.data, np.float32(max_count))
    key = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]
    params["gc_bias"] = gc_bias.tolist() if gc_effects is not None else []
    fa = _write_genome(seqs, Path(out_dir) if out_dir is not None else cache_dir() / "simulated" / key)
    adata = _assemble(X, cells, chroms, starts, peak_width, const, tfs, fa, random_state)
    truth = _truth(adata, cells, motif, site_rows, mean_type, params)
    return SimulatedData(adata, fa, truth)
