"""``plain-ae``: the DCASE 2020 autoencoder without batch norm, for tests of distributed training on CPU.

torch has no CPU synchronised batch norm, so a distributed CPU run of a batch-norm model normalises each
process's share on its own and cannot equal a single-process run; without batch norm it must, to float
tolerance, which is what the DDP test checks.
"""

from __future__ import annotations

import torch
from torch import nn

from asdbench import hookimpl
from asdbench.api import Backbone, ModelOutput, SystemSpec
from asdbench_plugins.systems.dcase_ae import DCASE_AE


class PlainAutoencoder(Backbone):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 64, bottleneck: int = 8) -> None:
        super().__init__()
        dim = input_shape[-1]
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, bottleneck), nn.ReLU(),
                                 nn.Linear(bottleneck, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, features: torch.Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=self.net(features), target=features)


@hookimpl
def register_backbones(register):
    register("plain-ae-backbone", PlainAutoencoder)


@hookimpl
def register_systems(register):
    register("plain-ae", SystemSpec(**{**DCASE_AE.__dict__, "backbone": "plain-ae-backbone"}),
             "test only: the DCASE 2020 autoencoder without batch norm")
