"""``wilkinghoff-cnn``: the residual CNN of Wilkinghoff's sub-cluster AdaCos system (IJCNN 2021), in PyTorch.

From the author's Keras code (wilkinghoff/sub-cluster-AdaCos@260d509, main.py; ../shared/reference/methods-beyond.md,
section 3.2), on a log-mel image of T frames x 128 bands:

- each mel band standardised with the mean and standard deviation of all training frames (``fit_input``, called by
  the runner on the training features before training; kept as buffers, so a bundle carries them);
- Conv 16@7x7 stride 2 -> LeakyReLU(0.1) -> BN -> MaxPool 3 stride 2;
- two residual units of 16 channels: x = BN(x + Conv3(BN(LReLU(Conv3(LReLU(x))))));
- three stages of 32, 64 and 128 channels: a strided unit (the residual branch's first conv has stride 2, the
  shortcut is MaxPool 2 then a 1x1 conv) and a residual unit;
- MaxPool over the remaining time axis (10 frames for 313), flatten (4 bands x 128 channels) and Dense 128: the
  embedding.

Convolutions and the dense layer have biases; batch norm as Keras's (epsilon 1e-3, momentum 0.99). 766,944
trainable parameters for 313 x 128 inputs (768,896 as Keras counts, with the batch-norm statistics). Keras's
"same" padding puts the odd pixel of a strided convolution at the end; here padding is symmetric (the same
shapes and parameters, a one-pixel shift).
"""

from __future__ import annotations

import torch
from torch import nn

from asdbench import hookimpl
from asdbench.api import Backbone, ModelOutput

SLOPE = 0.1


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class _Unit(nn.Module):
    """A residual unit; strided (``down``): the branch's first conv has stride 2 and the shortcut is MaxPool 2 and a
    1x1 convolution to the new width."""

    def __init__(self, inp: int, out: int, down: bool) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            nn.LeakyReLU(SLOPE), nn.Conv2d(inp, out, 3, 2 if down else 1, 1), nn.LeakyReLU(SLOPE), _bn(out),
            nn.Conv2d(out, out, 3, 1, 1))
        self.shortcut = (nn.Sequential(nn.MaxPool2d(2, ceil_mode=True), nn.Conv2d(inp, out, 1)) if down
                         else nn.Identity())
        self.bn = _bn(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.shortcut(x) + self.branch(x))


class WilkinghoffCNN(Backbone):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, embedding_dim: int = 128) -> None:
        super().__init__()
        channels, bands, frames = input_shape
        self.register_buffer("input_mean", torch.zeros(bands))
        self.register_buffer("input_std", torch.ones(bands))
        self.stem = nn.Sequential(nn.Conv2d(channels, 16, 7, 2, 3), nn.LeakyReLU(SLOPE), _bn(16), nn.MaxPool2d(3, 2))
        units, width = [_Unit(16, 16, False), _Unit(16, 16, False)], 16
        for out in (32, 64, 128):
            units += [_Unit(width, out, True), _Unit(out, out, False)]
            width = out
        self.units = nn.Sequential(*units)
        with torch.no_grad():
            grid = self._trunk(torch.zeros(1, channels, frames, bands)).shape[2:]
        self.pool = nn.MaxPool2d((grid[0], 1))
        self.dense = nn.Linear(128 * grid[1], embedding_dim)
        self.embedding_dim = embedding_dim

    @torch.no_grad()
    def fit_input(self, features: torch.Tensor) -> None:
        """Per-band mean and standard deviation of the training features ``(N, C, bands, frames)``."""
        self.input_mean.copy_(features.mean(dim=(0, 1, 3)))  # reductions over the other axes: no copy of the set
        self.input_std.copy_(features.std(dim=(0, 1, 3)).clamp(min=1e-8))

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.units(self.stem(x))

    def forward(self, features: torch.Tensor) -> ModelOutput:
        x = (features - self.input_mean[:, None]) / self.input_std[:, None]
        x = self.pool(self._trunk(x.transpose(2, 3)))  # (B, C, time, bands), as the Keras model's (time, freq)
        return ModelOutput(embedding=self.dense(x.flatten(1)))


@hookimpl
def register_backbones(register):
    register("wilkinghoff-cnn", WilkinghoffCNN, "Wilkinghoff's residual CNN of sub-cluster AdaCos (IJCNN 2021)")
