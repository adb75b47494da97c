"""SAILER's torch module: an invariant conditional VAE over binarised peaks (no AnnData here).

See :class:`scfanpy.models.SAILER` for the model, its defaults and how they relate to the paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from scvi import REGISTRY_KEYS
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn
from torch.distributions import Bernoulli, Normal, kl_divergence

__all__ = ["SAILERModule", "pairwise_gaussian_kl", "DEPTH_KEY"]

#: registry key of the per-cell read depth (accessible peaks per cell, raw, not logged)
DEPTH_KEY = "sailer_depth"

_LOGVAR_CLAMP = (-12.0, 8.0)


def pairwise_gaussian_kl(mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """Closed-form ``KL(N(mu_i, var_i) || N(mu_j, var_j))`` for every pair of diagonal Gaussians.

    Parameters
    ----------
    mu, var
        ``(B, d)`` means and variances.

    Returns
    -------
    ``(B, B)`` matrix whose ``[i, j]`` entry is the KL divergence of posterior ``i`` from posterior
    ``j`` (zero on the diagonal). Costs ``O(B^2 d)`` through three matrix products.
    """
    inv = var.reciprocal()
    trace = var @ inv.T  # sum_d var_i / var_j
    mu2 = mu * mu
    quad = mu2 @ inv.T - 2.0 * (mu @ (mu * inv).T) + (mu2 * inv).sum(1)[None, :]
    logdet = var.log().sum(1)
    return 0.5 * (trace + quad - mu.shape[1] + logdet[None, :] - logdet[:, None])


def _mlp(sizes: Sequence[int], slope: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.LeakyReLU(slope)]
    return nn.Sequential(*layers)


class SAILERModule(BaseModuleClass):
    r"""Invariant conditional VAE of SAILER (Cao et al. 2021), in pure torch.

    Encoder ``x -> n_hidden[0] -> n_hidden[1] -> (mean, log-variance)`` sees only the binarised peak
    vector; the decoder ``[z, standardised log depth, batch one-hot, continuous covariates] ->
    n_hidden[1] -> n_hidden[0] -> peak logits`` is the only place confounders enter. The loss summed
    over a minibatch of ``B`` cells is

    .. math::

        \sum_i (1+\lambda) w\,\mathrm{BCE}_i + \beta\,\mathrm{KL}(q_i\|N(0,I))
        + \lambda\beta\,\frac{s}{B}\sum_j \mathrm{KL}(q_i\|q_j)

    with ``w = reconstruction_weight``, ``lambda = invariance_weight``, ``beta`` the annealed weight the
    training plan passes as ``kl_weight`` and ``s = 1`` (``invariance_reduction='cell'``) or
    ``s = 1/B`` (``'batch'``, the paper code's scaling).

    Parameters
    ----------
    n_input
        Number of peaks.
    n_batch
        Number of batches (``<= 1``: no batch input to the decoder).
    n_continuous_cov
        Extra continuous covariates given to the decoder.
    n_hidden
        Hidden layer widths of the encoder (the decoder mirrors them).
    n_latent
        Latent dimension.
    invariance_weight
        ``lambda``.
    reconstruction_weight
        ``w``.
    invariance_reduction
        ``'cell'`` or ``'batch'`` (see above).
    negative_slope
        LeakyReLU slope.
    depth_mean, depth_std
        Mean and standard deviation of log depth over the training cells (used to standardise).
    """

    def __init__(
        self,
        n_input: int,
        n_batch: int = 0,
        n_continuous_cov: int = 0,
        n_hidden: Sequence[int] = (1000, 100),
        n_latent: int = 10,
        invariance_weight: float = 1.0,
        reconstruction_weight: float = 1.0,
        invariance_reduction: Literal["cell", "batch"] = "cell",
        negative_slope: float = 0.2,
        depth_mean: float = 0.0,
        depth_std: float = 1.0,
    ):
        super().__init__()
        if invariance_reduction not in ("cell", "batch"):
            raise ValueError("invariance_reduction must be 'cell' or 'batch'")
        if invariance_weight < 0 or reconstruction_weight <= 0:
            raise ValueError("invariance_weight must be >= 0 and reconstruction_weight > 0")
        self.n_input = n_input
        self.n_batch = n_batch if n_batch > 1 else 0
        self.n_continuous_cov = n_continuous_cov
        self.n_hidden = tuple(int(h) for h in n_hidden)
        self.n_latent = n_latent
        self.invariance_weight = float(invariance_weight)
        self.reconstruction_weight = float(reconstruction_weight)
        self.invariance_reduction = invariance_reduction
        self.register_buffer("depth_mean", torch.tensor(float(depth_mean)))
        self.register_buffer("depth_std", torch.tensor(float(depth_std)))

        self.encoder = _mlp((n_input, *self.n_hidden), negative_slope)
        self.mean_head = nn.Linear(self.n_hidden[-1], n_latent)
        self.logvar_head = nn.Linear(self.n_hidden[-1], n_latent)
        n_cond = 1 + self.n_batch + n_continuous_cov
        self.decoder = _mlp((n_latent + n_cond, *self.n_hidden[::-1]), negative_slope)
        self.output = nn.Linear(self.n_hidden[0], n_input)

    # ---- scvi plumbing
    def _get_inference_input(self, tensors):
        return {"x": tensors[REGISTRY_KEYS.X_KEY]}

    def _get_generative_input(self, tensors, inference_outputs, transform_batch=None, depth=None):
        batch_index = tensors[REGISTRY_KEYS.BATCH_KEY]
        if transform_batch is not None:
            batch_index = torch.full_like(batch_index, int(transform_batch))
        d = tensors[DEPTH_KEY]
        if depth is not None:
            d = torch.full_like(d, float(depth))
        return {
            "z": inference_outputs["z"],
            "depth": d,
            "batch_index": batch_index,
            "cont_covs": tensors.get(REGISTRY_KEYS.CONT_COVS_KEY),
        }

    def standardise_depth(self, depth: torch.Tensor) -> torch.Tensor:
        """Standardised log depth ``(log d - mean) / std`` as ``(B, 1)``."""
        return (depth.reshape(-1, 1).float().clamp_min(1e-8).log() - self.depth_mean) / self.depth_std

    @auto_move_data
    def inference(self, x: torch.Tensor, n_samples: int = 1) -> dict[str, torch.Tensor | Normal]:
        """Encode the binarised peaks: returns ``qz`` (Normal) and a sample ``z``."""
        h = self.encoder((x > 0).float())
        mean = self.mean_head(h)
        logvar = self.logvar_head(h).clamp(*_LOGVAR_CLAMP)
        qz = Normal(mean, torch.exp(0.5 * logvar))
        z = qz.rsample() if n_samples == 1 else qz.rsample((n_samples,))
        return {"qz": qz, "z": z}

    @auto_move_data
    def generative(self, z, depth, batch_index, cont_covs=None) -> dict[str, Bernoulli]:
        """Decode ``[z, log depth, batch, covariates]`` to Bernoulli peak probabilities ``px``."""
        lead = z.shape[:-1]
        cond = [self.standardise_depth(depth)]
        if self.n_batch:
            cond.append(F.one_hot(batch_index.reshape(-1).long(), self.n_batch).float())
        if self.n_continuous_cov and cont_covs is not None:
            cond.append(cont_covs.float())
        c = torch.cat(cond, dim=-1)
        if z.dim() == 3:  # (n_samples, B, d)
            c = c.unsqueeze(0).expand(z.shape[0], -1, -1)
        h = torch.cat([z, c], dim=-1).reshape(-1, z.shape[-1] + c.shape[-1])
        logits = self.output(self.decoder(h)).reshape(*lead, self.n_input)
        return {"px": Bernoulli(logits=logits)}

    def invariance_penalty(self, qz: Normal) -> torch.Tensor:
        """Per-cell bound on the information ``z`` keeps about the confounders: ``mean_j KL(q_i||q_j)``."""
        return pairwise_gaussian_kl(qz.loc, qz.scale.pow(2)).mean(1)

    def loss(self, tensors, inference_outputs, generative_outputs, kl_weight: float = 1.0) -> LossOutput:
        """SAILER's loss (see the class docstring); ``kl_weight`` is the annealed ``beta``."""
        x = (tensors[REGISTRY_KEYS.X_KEY] > 0).float()
        qz = inference_outputs["qz"]
        logits = generative_outputs["px"].logits
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
        kl = kl_divergence(qz, Normal(torch.zeros_like(qz.loc), torch.ones_like(qz.scale))).sum(-1)
        lam = self.invariance_weight
        if lam > 0:
            inv = self.invariance_penalty(qz)
            scale = 1.0 if self.invariance_reduction == "cell" else 1.0 / x.shape[0]
        else:  # penalty off: still reported, not optimised
            with torch.no_grad():
                inv = self.invariance_penalty(qz)
            scale = 0.0
        loss = (
            (1 + lam) * self.reconstruction_weight * rec + kl_weight * kl + lam * kl_weight * scale * inv
        ).sum()
        return LossOutput(
            loss=loss,
            reconstruction_loss=rec,
            kl_local=kl,
            extra_metrics={"invariance": inv.mean().detach(), "beta": torch.as_tensor(float(kl_weight))},
        )
