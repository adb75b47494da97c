"""SAILER's training: the scvi-tools training plan with cyclical KL annealing, and the default epochs.

Kept apart from :mod:`scfanpy.models._sailer` (the AnnData-facing model) as scvi-tools keeps its
training plans apart from its models.
"""

from __future__ import annotations

import math

import torch
from scvi.train import TrainingPlan

from ._sailer_module import SAILERModule

__all__ = ["SAILERTrainingPlan", "cyclical_beta", "default_epochs", "SMALL_DATA_CELLS"]


def cyclical_beta(epoch: int, *, n_epochs_warmup: int, cycle_epochs: float, ratio: float = 0.5) -> float:
    """Weight of the KL and invariance terms at ``epoch`` (0-based).

    0 during the reconstruction-only warm-up; afterwards cyclical annealing (Fu et al. 2019): in
    each cycle of ``cycle_epochs`` epochs the weight rises linearly from 0 to 1 over the first
    ``ratio`` of the cycle and stays at 1 for the rest.
    """
    if epoch < n_epochs_warmup:
        return 0.0
    t = (epoch - n_epochs_warmup) % max(cycle_epochs, 1e-12)
    return float(min(1.0, t / max(ratio * cycle_epochs, 1e-12)))


class SAILERTrainingPlan(TrainingPlan):
    """scvi :class:`~scvi.train.TrainingPlan` whose ``kl_weight`` follows ``cyclical_beta``.

    Parameters
    ----------
    module
        A :class:`SAILERModule`.
    n_epochs_warmup
        Reconstruction-only epochs at the start.
    kl_cycle_epochs
        Length of one annealing cycle in epochs.
    kl_cycle_ratio
        Fraction of a cycle over which the weight rises from 0 to 1.
    **kwargs
        Passed to :class:`~scvi.train.TrainingPlan` (``lr``, ``weight_decay``, ``optimizer``, ...).
    """

    def __init__(
        self,
        module: SAILERModule,
        *,
        n_epochs_warmup: int = 10,
        kl_cycle_epochs: float = 100.0,
        kl_cycle_ratio: float = 0.5,
        **kwargs,
    ):
        super().__init__(module, **kwargs)
        self.n_epochs_warmup = int(n_epochs_warmup)
        self.kl_cycle_epochs = float(kl_cycle_epochs)
        self.kl_cycle_ratio = float(kl_cycle_ratio)

    @property
    def kl_weight(self):
        """The annealed weight ``beta`` of the current epoch."""
        beta = cyclical_beta(
            self.current_epoch,
            n_epochs_warmup=getattr(self, "n_epochs_warmup", 0),
            cycle_epochs=getattr(self, "kl_cycle_epochs", 100.0),
            ratio=getattr(self, "kl_cycle_ratio", 0.5),
        )
        return torch.tensor(beta, device=self.device)


#: below this many cells the default number of epochs shrinks (small data overfits)
SMALL_DATA_CELLS = 2400


def default_epochs(n_cells: int) -> int:
    """Default epochs for ``n_cells`` cells.

    400 (paper) from 2,400 to 20,000 cells; above, fewer (about 8 M cell-passes, at least 20); below
    2,400 cells, ``400 * n_cells / 2400`` (at least 100), because small sets overfit: on the real
    600-cell Schep 2017 and Granja 2019 subsets, Leiden ARI of the latent fell from 0.62 to 0.37 and
    from 0.34 to 0.24 between 100-120 and 400 epochs (``benchmarks/bench_sailer.py``, no batch key).
    """
    n = max(int(n_cells), 1)
    if n < SMALL_DATA_CELLS:
        return int(max(100, math.ceil(400 * n / SMALL_DATA_CELLS)))
    return int(min(400, max(20, math.ceil(400 * 20_000 / n))))
