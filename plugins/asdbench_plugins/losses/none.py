"""``none``: the loss of a system that trains nothing (a frozen encoder whose embeddings a fitted scorer reads);
such a run has ``epochs=0``."""

from __future__ import annotations

import torch

from asdbench import hookimpl
from asdbench.api import Loss, ModelOutput
from asdbench.errors import AsdbenchError


class NoLoss(Loss):
    """No objective: a run with it trains no epoch (``epochs=0``), its scorer fits the training clips' outputs."""

    def __init__(self, num_classes: int, embedding_dim: int) -> None:
        super().__init__()

    def forward(self, output: ModelOutput, target: torch.Tensor) -> torch.Tensor:
        raise AsdbenchError("loss 'none' has nothing to minimise: a system with it trains no epoch (epochs=0); "
                            "choose a loss (arcface, adacos...) to train")


@hookimpl
def register_losses(register):
    register("none", NoLoss)
