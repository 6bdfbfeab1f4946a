"""``nll``: negative log-likelihood of a clip under a density model."""

from __future__ import annotations

import torch

from asdbench import hookimpl
from asdbench.api import Loss, ModelOutput


class NegativeLogLikelihood:
    """Mean negative log-likelihood (nats per dimension) over the clip's feature vectors."""

    def score(self, output: ModelOutput, target: torch.Tensor, loss: Loss) -> torch.Tensor:
        if output.log_likelihood is None:
            raise TypeError("the nll scorer needs a backbone that returns a log-likelihood")
        return -output.log_likelihood.reshape(output.log_likelihood.shape[0], -1).mean(dim=1)


@hookimpl
def register_scorers(register):
    register("nll", NegativeLogLikelihood)
