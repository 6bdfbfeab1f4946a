"""``mse``: mean squared reconstruction error, the autoencoders' objective."""

from __future__ import annotations

import torch

from asdbench import hookimpl
from asdbench.api import Loss, ModelOutput


class MSELoss(Loss):
    """Mean squared error between a backbone's reconstruction and its target."""

    def __init__(self, num_classes: int, embedding_dim: int) -> None:
        super().__init__()

    def forward(self, output: ModelOutput, target: torch.Tensor) -> torch.Tensor:
        if output.reconstruction is None or output.target is None:
            raise TypeError("the mse loss needs a backbone that returns a reconstruction")
        return torch.mean((output.reconstruction - output.target) ** 2)


@hookimpl
def register_losses(register):
    register("mse", MSELoss)
