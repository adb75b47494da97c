"""The D-GEX network as a pure torch module (no AnnData).

Chen et al., "Gene expression inference with deep learning", Bioinformatics 32(12), 2016: a fully connected
multi-layer perceptron from standardised landmark genes to standardised target genes, tanh hidden units,
dropout after each hidden layer and a linear output layer. When targets are many, the output genes are split
into disjoint groups, each predicted by its own sub-network that sees all landmarks (the paper split its 9,520
GEO targets into two halves of 4,760, each with its own network, to fit GPU memory).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["DGEXModule", "split_targets"]


def split_targets(n_targets: int, n_networks: int) -> list[np.ndarray]:
    """Partition target indices ``0..n_targets-1`` into ``n_networks`` contiguous, near-equal groups."""
    if n_networks < 1 or n_networks > max(n_targets, 1):
        raise ValueError(f"n_networks must be in [1, {n_targets}], got {n_networks}")
    return [np.asarray(g, dtype=np.int64) for g in np.array_split(np.arange(n_targets), n_networks)]


class _MLP(nn.Module):
    """``n_layers`` x (Linear -> tanh -> Dropout) followed by a linear read-out."""

    def __init__(self, n_input: int, n_output: int, n_hidden: int, n_layers: int, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        d = n_input
        for _ in range(n_layers):
            layers += [nn.Linear(d, n_hidden), nn.Tanh()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = n_hidden
        layers.append(nn.Linear(d, n_output))
        self.net = nn.Sequential(*layers)
        # initialisation of the authors' release: Glorot-uniform hidden layers (suited to tanh) and a
        # near-zero read-out, so training starts from the per-gene mean (0 in standardised units)
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                nn.init.zeros_(layer.bias)
                if layer is layers[-1]:
                    nn.init.uniform_(layer.weight, -1e-4, 1e-4)
                else:
                    nn.init.xavier_uniform_(layer.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DGEXModule(nn.Module):
    """D-GEX multi-layer perceptron, outputs optionally split over independent sub-networks.

    Parameters
    ----------
    n_input
        Number of landmark genes.
    n_output
        Number of target genes.
    n_hidden
        Units per hidden layer (the paper tried 3000, 6000 and 9000).
    n_layers
        Hidden layers per sub-network (the paper tried 1-3).
    dropout
        Dropout rate after each hidden layer (the paper tried 0%, 10% and 25%).
    n_networks
        Number of sub-networks; target ``j`` is predicted by the sub-network whose group holds it
        (groups from :func:`split_targets`). ``1`` gives a single network over all targets.

    Notes
    -----
    Inputs and outputs are in standardised units (per-gene zero mean, unit variance); the model class
    (:class:`scfanpy.models.DGEX`) does the scaling.
    """

    def __init__(
        self,
        n_input: int,
        n_output: int,
        *,
        n_hidden: int = 1000,
        n_layers: int = 2,
        dropout: float = 0.25,
        n_networks: int = 1,
    ):
        super().__init__()
        if n_input < 1 or n_output < 1:
            raise ValueError(f"need at least one input and one output, got {n_input} -> {n_output}")
        if n_layers < 0:
            raise ValueError(f"n_layers must be >= 0, got {n_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.n_input, self.n_output = int(n_input), int(n_output)
        groups = split_targets(self.n_output, int(n_networks))
        self.subnets = nn.ModuleList(
            _MLP(self.n_input, len(g), int(n_hidden), int(n_layers), float(dropout)) for g in groups
        )
        # contiguous groups: concatenating the sub-network outputs restores the target order
        self.group_sizes = [len(g) for g in groups]

    @torch.no_grad()
    def set_output_bias(self, bias: np.ndarray) -> None:
        """Set the read-out biases (one per target, in target order), e.g. to start at the median."""
        bias = torch.as_tensor(np.asarray(bias, dtype=np.float32))
        start = 0
        for net, size in zip(self.subnets, self.group_sizes):
            net.net[-1].bias.copy_(bias[start : start + size])
            start += size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map standardised landmarks ``(batch, n_input)`` to standardised targets ``(batch, n_output)``."""
        if len(self.subnets) == 1:
            return self.subnets[0](x)
        return torch.cat([net(x) for net in self.subnets], dim=-1)
