"""``neg-log-prob``: the negative log probability of the clip's own machine ID."""

from __future__ import annotations

import torch

from asdbench import hookimpl
from asdbench.api import Loss, ModelOutput


class NegativeLogProbability:
    """−log softmax(logits)[own ID], with the logits as the loss defines them (ArcFace: margin on the own ID, as the STgram-MFN code scores)."""

    def score(self, output: ModelOutput, target: torch.Tensor, loss: Loss) -> torch.Tensor:
        log_prob = torch.log_softmax(loss.logits(output, target).float(), dim=1)
        return -log_prob.gather(1, target.unsqueeze(1)).squeeze(1)


@hookimpl
def register_scorers(register):
    register("neg-log-prob", NegativeLogProbability)
