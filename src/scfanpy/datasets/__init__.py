"""Real public datasets (fetched with pooch, checked by sha256), JASPAR motifs, and the simulator.

The download cache and registry (:func:`fetch`, :func:`keys`, :func:`registry`, :func:`cache_dir`,
:func:`set_cache_dir`, :func:`seed_cache`) live in :mod:`scfanpy._registry`, shared with
:mod:`scfanpy.genome`; this package does not import :mod:`scfanpy.genome`: genome loaders return FASTA
paths (open them with :class:`scfanpy.Genome`) and :func:`~scfanpy.genome.read_fasta` lives there.
"""

from .._registry import cache_dir, fetch, keys, registry, seed_cache, set_cache_dir
from ._jaspar import jaspar_motifs, jaspar_table
from ._loaders import (
    bertsnr,
    bertsnr_sites,
    bertsnr_tfs,
    deepbind_encode,
    deepbind_experiments,
    deepbind_published_auc,
    encode_dream_index,
    encode_dream_peaks,
    factornet_weights,
    granja2019,
    hg19_blacklist,
    hg19_chr20,
    hg19_chr22_block,
    scfan_bulk_metrics,
    scfan_model_tfs,
    scfan_tf_activity,
    schep2017,
)
from ._simulate import SimulatedData, SimulationTruth, simulate_scatac

__all__ = [
    "SimulatedData",
    "SimulationTruth",
    "bertsnr",
    "bertsnr_sites",
    "bertsnr_tfs",
    "cache_dir",
    "deepbind_encode",
    "deepbind_experiments",
    "deepbind_published_auc",
    "encode_dream_index",
    "encode_dream_peaks",
    "factornet_weights",
    "fetch",
    "granja2019",
    "hg19_blacklist",
    "hg19_chr20",
    "hg19_chr22_block",
    "jaspar_motifs",
    "jaspar_table",
    "keys",
    "registry",
    "scfan_bulk_metrics",
    "scfan_model_tfs",
    "scfan_tf_activity",
    "schep2017",
    "seed_cache",
    "set_cache_dir",
    "simulate_scatac",
]
