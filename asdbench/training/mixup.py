"""Mixup of training batches (config ``mixup``): the blend weights and partners of each batch.

One mechanism for the recipes that mix: Noisy-ArcMix and OS-SCL (one weight per batch from Beta(0.5, 0.5), a
shuffled partner), Wilkinghoff's sub-cluster AdaCos (a weight per example, uniform = Beta(1, 1), the batch reversed
as partners). The draws come from a NumPy generator seeded from the run's generator at each epoch, so a run is
repeatable and a resumed one draws what the uninterrupted run drew.
"""

from __future__ import annotations

import numpy as np
import torch

from asdbench.api import Mix


class Mixer:
    def __init__(self, mode: str, alpha: float, partner: str) -> None:
        self.mode, self.alpha, self.partner = mode, alpha, partner
        self._rng: np.random.Generator | None = None

    @property
    def active(self) -> bool:
        return self.mode != "none"

    def start_epoch(self, generator: torch.Generator) -> None:
        if self.active:
            self._rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))

    def draw(self, n: int, device: torch.device) -> Mix | None:
        """The mix of a batch of ``n`` examples, on ``device`` (copied without blocking the host)."""
        if not self.active:
            return None
        rng = self._rng
        lam = np.full(n, rng.beta(self.alpha, self.alpha)) if self.mode == "batch" else rng.beta(self.alpha, self.alpha, n)
        partner = rng.permutation(n) if self.partner == "shuffle" else np.arange(n)[::-1].copy()
        return Mix(_to(torch.from_numpy(lam).float(), device), _to(torch.from_numpy(partner).long(), device))


def _to(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor
