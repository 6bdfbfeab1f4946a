"""Model contracts: frontend -> backbone -> (loss, scorer).

The same four pieces carry both families of ASD methods:
classifier-style (ID classification; ``ModelOutput.embedding``/``logits``) and
reconstruction-style (autoencoders; ``ModelOutput.reconstruction``/``target``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import nn


@dataclass
class ModelOutput:
    """What a backbone returns; each method fills the fields it has."""

    embedding: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    target: torch.Tensor | None = None
    log_likelihood: torch.Tensor | None = None  # per example, for density models (flows)


@dataclass
class Mix:
    """Mixup of a training batch (config ``mixup``): example ``i`` becomes ``lam[i]`` of itself and ``1 - lam[i]``
    of example ``partner[i]``, its target the same blend of both targets."""

    lam: torch.Tensor  # (B,) float
    partner: torch.Tensor  # (B,) long: indices into the batch

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (inputs or features, batch first) mixed."""
        lam = self.lam.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
        return lam * x + (1 - lam) * x[self.partner]

    def targets(self, target: torch.Tensor) -> torch.Tensor:
        """The partners' targets (the second label of each mixed example)."""
        return target[self.partner]


class Frontend(nn.Module):
    """Waveform batch ``(B, L)`` to features ``(B, ...)``.

    May hold trainable weights (e.g. TgramNet); a frontend without weights lets
    the runner compute its features once and cache them. Under mixup the runner mixes the
    frontend's output, unless the frontend has ``forward_mixed(wave, mix)`` to mix inside
    (e.g. the waveform of one branch and the spectrogram of another).
    """

    sample_rate: int

    def output_shape(self, num_samples: int) -> tuple[int, ...]:
        """Feature shape of one clip of ``num_samples`` samples (without the batch axis)."""
        # The probe goes where the frontend's tensors are: a frontend already moved to the GPU has its STFT window
        # and mel filters there.
        device = next((t.device for t in (*self.parameters(), *self.buffers())), torch.device("cpu"))
        with torch.no_grad():
            return tuple(self(torch.zeros(1, num_samples, device=device)).shape[1:])

    @property
    def has_weights(self) -> bool:
        return any(True for _ in self.parameters())


class Backbone(nn.Module):
    """Features ``(B, ...)`` to a :class:`ModelOutput`. ``embedding_dim`` is 0 if it has no embedding."""

    embedding_dim: int = 0

    def forward(self, features: torch.Tensor) -> ModelOutput:  # pragma: no cover - interface
        raise NotImplementedError


class Loss(nn.Module):
    """Training objective. May own weights (an ArcFace head), which are trained too.

    ``forward`` returns the scalar to minimise. ``logits`` returns the class scores
    as this loss sees them for the given targets (ArcFace: with its margin on the
    target class), for scorers; ``class_scores`` the target-free scores, for the
    training accuracy the runner reports (``None``: not a classifier).
    """

    def forward(self, output: ModelOutput, target: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def mixed(self, output: ModelOutput, target: torch.Tensor, mix: Mix) -> torch.Tensor:
        """Per-example losses ``(B,)`` of a mixed batch (``target``: each example's own class, ``mix.targets(target)``
        its partner's). A loss trains with mixup only where it defines this."""
        raise TypeError(f"{type(self).__name__} cannot train with mixup: it defines no mixed() loss")

    def logits(self, output: ModelOutput, target: torch.Tensor) -> torch.Tensor:
        if output.logits is None:
            raise TypeError(f"{type(self).__name__} has no class logits for this backbone's output")
        return output.logits

    def class_scores(self, output: ModelOutput) -> torch.Tensor | None:
        return output.logits


@runtime_checkable
class Scorer(Protocol):
    """One anomaly score per clip, higher = more anomalous."""

    def score(self, output: ModelOutput, target: torch.Tensor, loss: Loss) -> torch.Tensor:
        """Return a ``(B,)`` tensor of scores for the clips of the batch."""
        ...
