"""``neg-log-prob``: the negative log probability of the clip's own machine ID."""

from __future__ import annotations

import torch

from asdbench import hookimpl
from asdbench.api import Loss, ModelOutput


class NegativeLogProbability:
    """−log softmax(logits)[own ID], with the logits as the loss defines them (ArcFace: margin on the own ID, as the STgram-MFN code scores).

    For systems that classify patches of a clip (``train_unit=frame``), the clip's score
    is the mean over its patches.
    """

    def score(self, output: ModelOutput, target: torch.Tensor, loss: Loss) -> torch.Tensor:
        framed = output.embedding is not None and output.embedding.dim() == 3
        patches = output.embedding.shape[1] if framed else 1
        if framed:
            output = ModelOutput(embedding=output.embedding.flatten(0, 1),
                                 logits=None if output.logits is None else output.logits.flatten(0, 1))
            target = target.repeat_interleave(patches)
        log_prob = torch.log_softmax(loss.logits(output, target).float(), dim=1)
        per_example = -log_prob.gather(1, target.unsqueeze(1)).squeeze(1)
        return per_example.reshape(-1, patches).mean(dim=1)


@hookimpl
def register_scorers(register):
    register("neg-log-prob", NegativeLogProbability)
