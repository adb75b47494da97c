"""Preprocessing: peak coordinates, genome sequences, neighbour smoothing, training windows."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "parse_peaks": "._peaks",
        "add_sequences": "._sequences",
        "one_hot": "._sequences",  # scfanpy._torch.one_hot, re-exported
        "smooth": "._smooth",
        "lsi": "._smooth",
        "make_training_windows": "._windows",
        "dinucleotide_shuffle": "._shuffle",
    },
)
