"""The D-GEX network as a pure torch module (no AnnData).

Chen et al., "Gene expression inference with deep learning", Bioinformatics 32(12), 2016: a fully connected
multi-layer perceptron from standardised landmark genes to standardised target genes, tanh hidden units,
dropout after each hidden layer and a linear output layer. When targets are many, the output genes are split
into disjoint groups, each predicted by its own sub-network that sees all landmarks (the paper split its 9,520
GEO targets into two halves of 4,760, each with its own network, to fit GPU memory).

Shapes: a minibatch ``tensors[X_KEY]`` is ``(cells, genes)`` in the units of the registered layer; the
landmarks are its columns ``landmark_index`` and the targets its columns ``target_index``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from scvi import REGISTRY_KEYS
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
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
        self._init_weights()

    def _init_weights(self) -> None:
        # initialisation of the authors' release: Glorot-uniform hidden layers (suited to tanh) and a
        # near-zero read-out, so training starts from the per-gene mean (0 in standardised units)
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        for layer in linears:
            nn.init.zeros_(layer.bias)
            if layer is linears[-1]:
                nn.init.uniform_(layer.weight, -1e-4, 1e-4)
            else:
                nn.init.xavier_uniform_(layer.weight)

    def reset_parameters(self) -> None:
        """Draw the weights again, consuming the random stream exactly as construction does."""
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
        self._init_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DGEXModule(BaseModuleClass):
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
        (groups from ``split_targets``). ``1`` gives a single network over all targets.
    loss
        ``'mse'`` (squared error on standardised targets, the paper's objective) or ``'mae'``.
    landmark_index, target_index
        Columns of the minibatch matrix holding the landmarks and the targets (default: the first
        ``n_input`` columns, then the next ``n_output``).

    Notes
    -----
    The network works in standardised units (per-gene zero mean, unit variance); the buffers
    ``x_mean``, ``x_std``, ``y_mean``, ``y_std`` (set by :meth:`set_standardization`) convert from and to
    the data's units, so a saved state dict is self-contained. On CUDA the network runs in bfloat16
    autocast; its outputs are float32.
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
        loss: Literal["mse", "mae"] = "mse",
        landmark_index: np.ndarray | None = None,
        target_index: np.ndarray | None = None,
    ):
        super().__init__()
        if n_input < 1 or n_output < 1:
            raise ValueError(f"need at least one input and one output, got {n_input} -> {n_output}")
        if n_layers < 0:
            raise ValueError(f"n_layers must be >= 0, got {n_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if loss not in ("mse", "mae"):
            raise ValueError(f"loss must be 'mse' or 'mae', got {loss!r}")
        self.n_input, self.n_output, self.objective = int(n_input), int(n_output), loss
        groups = split_targets(self.n_output, int(n_networks))
        self.subnets = nn.ModuleList(
            _MLP(self.n_input, len(g), int(n_hidden), int(n_layers), float(dropout)) for g in groups
        )
        # contiguous groups: concatenating the sub-network outputs restores the target order
        self.group_sizes = [len(g) for g in groups]
        if landmark_index is None:
            landmark_index = np.arange(self.n_input)
        if target_index is None:
            target_index = np.arange(self.n_input, self.n_input + self.n_output)
        self.register_buffer("landmark_index", torch.as_tensor(np.asarray(landmark_index), dtype=torch.long))
        self.register_buffer("target_index", torch.as_tensor(np.asarray(target_index), dtype=torch.long))
        self.register_buffer("x_mean", torch.zeros(self.n_input))
        self.register_buffer("x_std", torch.ones(self.n_input))
        self.register_buffer("y_mean", torch.zeros(self.n_output))
        self.register_buffer("y_std", torch.ones(self.n_output))

    # ---- set-up ---------------------------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """Initialise every sub-network again (same random draws as constructing the module)."""
        for net in self.subnets:
            net.reset_parameters()

    @torch.no_grad()
    def set_standardization(
        self, x_mean: np.ndarray, x_std: np.ndarray, y_mean: np.ndarray, y_std: np.ndarray
    ) -> None:
        """Set the per-gene means and standard deviations of landmarks (``x``) and targets (``y``)."""
        for name, val in (("x_mean", x_mean), ("x_std", x_std), ("y_mean", y_mean), ("y_std", y_std)):
            getattr(self, name).copy_(torch.as_tensor(np.asarray(val, dtype=np.float32)))

    @torch.no_grad()
    def set_output_bias(self, bias: np.ndarray) -> None:
        """Set the read-out biases (one per target, in target order), e.g. to start at the median."""
        bias = torch.as_tensor(np.asarray(bias, dtype=np.float32))
        start = 0
        for net, size in zip(self.subnets, self.group_sizes):
            net.net[-1].bias.copy_(bias[start : start + size])
            start += size

    # ---- networks -------------------------------------------------------------------------------------
    def network(self, z: torch.Tensor) -> torch.Tensor:
        """Standardised landmarks ``(batch, n_input)`` to standardised targets ``(batch, n_output)``."""
        if len(self.subnets) == 1:
            return self.subnets[0](z)
        return torch.cat([net(z) for net in self.subnets], dim=-1)

    def _get_inference_input(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"x": tensors[REGISTRY_KEYS.X_KEY][:, self.landmark_index]}

    @auto_move_data
    def inference(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Landmarks in the data's units ``(batch, n_input)`` -> ``{'pred'}``: standardised targets."""
        z = (x - self.x_mean) / self.x_std
        with torch.autocast(device_type=z.device.type, dtype=torch.bfloat16, enabled=z.device.type == "cuda"):
            pred = self.network(z)
        return {"pred": pred.float()}

    def _get_generative_input(self, tensors, inference_outputs) -> dict:
        return {}

    def generative(self) -> dict:
        """D-GEX is a regression: nothing generative."""
        return {}

    def loss(self, tensors, inference_outputs, generative_outputs) -> LossOutput:
        """Squared (or absolute) error on standardised targets, averaged over cells and genes.

        ``extra_metrics['mae']`` is the mean absolute error in the data's units.
        """
        y = tensors[REGISTRY_KEYS.X_KEY][:, self.target_index]
        y = (y - self.y_mean) / self.y_std
        pred = inference_outputs["pred"]
        lossf = F.mse_loss if self.objective == "mse" else F.l1_loss
        loss = lossf(pred, y)
        with torch.no_grad():
            mae = ((pred - y).abs() * self.y_std).mean()
        return LossOutput(loss=loss, n_obs_minibatch=y.shape[0], extra_metrics={"mae": mae})

    def sample(self, *args, **kwargs):
        """D-GEX has no generative model to sample from."""
        raise NotImplementedError("DGEXModule is a regression network; it has no sample()")

    @torch.no_grad()
    def predict_targets(self, x: torch.Tensor) -> torch.Tensor:
        """Landmarks in the data's units ``(batch, n_input)`` -> targets in the data's units."""
        return self.inference(x)["pred"] * self.y_std + self.y_mean
