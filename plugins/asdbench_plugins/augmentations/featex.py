"""``featex``: feature exchange (Wilkinghoff, "Self-supervised learning for anomalous sound detection", ICASSP 2024),
on the branches a frontend stacks as channels (STgram: log-mel | Tgram; TFgram, TASTgram: three)."""

from __future__ import annotations

import torch

from asdbench import hookimpl
from asdbench.api import Mix


class FeatEx:
    """With probability ``p`` a training example exchanges its channels from ``channel`` on (the second branch)
    for those of its partner in the reversed batch, and becomes a sample of a new class, as the authors' layer
    labels it: the classifier learns 3 x K classes, an unexchanged example its class y (the first K), an exchanged
    one half "y's first branch" (K + y) and half "the partner's second branch" (2K + y'). The model must tell which
    branches belong together, a self-supervised task; test clips are scored on the first K classes, their own.
    Drawn per batch from the epoch's generator; needs a loss that trains on mixed batches (``mixed``), and replaces
    mixup (one mix per batch)."""

    stage = "mix"
    class_factor = 3

    def __init__(self, channel: int = 1, p: float = 0.5) -> None:
        if channel < 1:
            raise ValueError(f"channel={channel} must be 1 or more: channels before it stay, the rest are exchanged")
        if not 0 <= p <= 1:
            raise ValueError(f"p={p} must lie in [0, 1]")
        self.channel, self.p = channel, p

    def draw(self, target: torch.Tensor, classes: int, generator: torch.Generator) -> Mix:
        n = len(target)
        exchanged = (torch.rand(n, generator=generator) < self.p).to(target.device)
        partner = torch.arange(n - 1, -1, -1, device=target.device)
        own = torch.where(exchanged, classes + target, target)
        return Mix(lam=torch.where(exchanged, 0.5, 1.0), partner=partner, exchange=self.channel, own=own,
                   partner_targets=torch.where(exchanged, 2 * classes + target[partner], own))


@hookimpl
def register_augmentations(register):
    register("featex", FeatEx, "feature exchange: a training example takes its partner's second branch (Tgram) and "
             "learns a class of its own among 3K (Wilkinghoff, ICASSP 2024)")
