"""``glow``: a Glow normalizing flow (Kingma & Dhariwal, 2018) over feature vectors, with affine coupling.

Each step is ActNorm (data-initialised), an invertible linear map (Glow's 1x1 convolution
on a vector, LU-parameterised so its log-determinant is a sum) and an affine coupling
layer; the base density is a standard normal. The backbone returns the exact
log-likelihood of every vector, in nats per dimension.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from asdbench import hookimpl
from asdbench.api import Backbone, ModelOutput


class ActNorm(nn.Module):
    """Per-dimension scale and shift, initialised from the first batch to zero mean and unit variance."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.compiler.is_exporting() and not self.initialized:  # an exported model is a trained one
            with torch.no_grad():
                self.bias.copy_(-x.mean(0))
                self.log_scale.copy_(-torch.log(x.std(0) + 1e-6))
                self.initialized.fill_(True)
        return (x + self.bias) * torch.exp(self.log_scale), self.log_scale.sum().expand(x.shape[0])


class InvertibleLinear(nn.Module):
    """W = P L (U + diag(sign · exp(log_s))): invertible, with log|det W| = sum(log_s)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        # A random rotation from torch's global generator, which the run's ``seed`` seeds like every other weight.
        q, _ = torch.linalg.qr(torch.randn(dim, dim))
        p, lower, upper = torch.linalg.lu(q)
        diag = torch.diagonal(upper)
        self.register_buffer("sigma", p.argmax(dim=1))  # P as an index: y @ P.T == y[:, sigma]
        self.register_buffer("sign", torch.sign(diag))
        self.register_buffer("lower_mask", torch.tril(torch.ones(dim, dim), -1))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(diag.abs()))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        eye = torch.eye(self.lower.shape[0], device=x.device, dtype=x.dtype)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign * torch.exp(self.log_s))
        # x @ (P L U).T without forming W: two products with the data, and P as a gather.
        return (x @ upper.T @ lower.T)[:, self.sigma], self.log_s.sum().expand(x.shape[0])


class AffineCoupling(nn.Module):
    """The second half scaled and shifted by a network of the first: y_b = (x_b + t) · sigmoid(h + 2), as in Glow."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.half = dim // 2
        self.net = nn.Sequential(
            nn.Linear(self.half, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * (dim - self.half)),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xa, xb = x[:, : self.half], x[:, self.half :]
        h, t = self.net(xa).chunk(2, dim=1)
        scale = torch.sigmoid(h + 2.0)
        return torch.cat((xa, (xb + t) * scale), dim=1), torch.log(scale).sum(dim=1)


class Glow(Backbone):
    """Glow flow with affine coupling over the last axis of the features; log-likelihood in nats per dimension."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, steps: int = 4, hidden: int = 256) -> None:
        super().__init__()
        dim = input_shape[-1]
        layers: list[nn.Module] = []
        for _ in range(steps):
            layers += [ActNorm(dim), InvertibleLinear(dim), AffineCoupling(dim, hidden)]
        self.layers = nn.ModuleList(layers)
        self.dim = dim

    def forward(self, features: torch.Tensor) -> ModelOutput:
        z = features.reshape(-1, self.dim).float()
        logdet = torch.zeros(z.shape[0], device=z.device)
        for layer in self.layers:
            z, step_logdet = layer(z)
            logdet = logdet + step_logdet
        log_prior = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(dim=1)
        per_dim = ((log_prior + logdet) / self.dim).reshape(features.shape[:-1])
        return ModelOutput(embedding=z.reshape(features.shape), log_likelihood=per_dim)


@hookimpl
def register_backbones(register):
    register("glow", Glow)
