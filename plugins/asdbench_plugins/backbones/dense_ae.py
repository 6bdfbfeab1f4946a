"""``dense-ae``: the DCASE 2020 Task 2 baseline autoencoder (Koizumi et al., 2020), and the same network of the
official DCASE 2023–2026 baseline (nttcslab/dcase2023_task2_baseline_ae), which PyTorch initialises."""

from __future__ import annotations

import torch
from torch import nn

from asdbench import hookimpl
from asdbench.api import Backbone, ModelOutput


def _dense_block(n_in: int, n_out: int) -> list[nn.Module]:
    # Keras BatchNormalization defaults: momentum 0.99 (torch: 0.01), epsilon 1e-3.
    return [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out, eps=1e-3, momentum=0.01), nn.ReLU()]


INITS = ("glorot", "torch")


def dense_autoencoder(in_dim: int, out_dim: int, hidden: int, layers: int, bottleneck: int,
                      init: str = "glorot") -> tuple[nn.Sequential, nn.Sequential]:
    """Encoder ``layers`` x hidden -> bottleneck and decoder bottleneck -> ``layers`` x hidden -> linear ``out_dim``,
    every hidden layer Dense + BatchNorm(momentum 0.01, eps 1e-3) + ReLU. ``init``: Glorot-uniform weights and zero
    biases as Keras initialises them (the 2020 baseline), or PyTorch's own (``torch``: the 2023–2026 baseline)."""
    if init not in INITS:
        raise ValueError(f"init={init!r} is not one of: {', '.join(INITS)}")
    encoder = _dense_block(in_dim, hidden)
    for _ in range(layers - 1):
        encoder += _dense_block(hidden, hidden)
    encoder += _dense_block(hidden, bottleneck)
    decoder = _dense_block(bottleneck, hidden)
    for _ in range(layers - 1):
        decoder += _dense_block(hidden, hidden)
    decoder.append(nn.Linear(hidden, out_dim))
    encoder, decoder = nn.Sequential(*encoder), nn.Sequential(*decoder)
    for module in (*encoder, *decoder):
        if init == "glorot" and isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return encoder, decoder


class DenseAutoencoder(Backbone):
    """Dense autoencoder on stacked log-mel frames: 4 x 128, an 8-d bottleneck, 4 x 128, linear output.

    Works on the last axis, so ``(B, V, D)`` inputs are reconstructed vector by vector.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 128, layers: int = 4,
                 bottleneck: int = 8, init: str = "glorot") -> None:
        super().__init__()
        dim = input_shape[-1]
        self.encoder, self.decoder = dense_autoencoder(dim, dim, hidden, layers, bottleneck, init)
        self.embedding_dim = bottleneck

    def forward(self, features: torch.Tensor) -> ModelOutput:
        flat = features.reshape(-1, features.shape[-1])
        code = self.encoder(flat)
        recon = self.decoder(code).reshape(features.shape)
        return ModelOutput(embedding=code.reshape(*features.shape[:-1], -1), reconstruction=recon, target=features)


@hookimpl
def register_backbones(register):
    register("dense-ae", DenseAutoencoder)
