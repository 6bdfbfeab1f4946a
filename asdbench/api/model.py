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
    of example ``partner[i]``, its target the same blend of both targets.

    A feature exchange (FeatEx, an augmentation of stage ``mix``) blends no values: with ``exchange`` = c, an
    example with ``lam < 1`` takes its partner's channels from c on whole, and its two labels are ``own`` and
    ``partner_targets``, classes of the exchange's larger class set, in place of its and its partner's classes."""

    lam: torch.Tensor  # (B,) float
    partner: torch.Tensor  # (B,) long: indices into the batch
    exchange: int | None = None  # FeatEx: the first channel taken from the partner
    own: torch.Tensor | None = None  # (B,) long: each example's own label, where it is not its class
    partner_targets: torch.Tensor | None = None  # (B,) long: its second label, where not its partner's class

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (inputs or features, batch first) mixed."""
        if self.exchange is not None:
            swap = (self.lam < 1).reshape(-1, *([1] * (x.dim() - 1)))
            c = self.exchange
            return torch.cat([x[:, :c], torch.where(swap, x[self.partner, c:], x[:, c:])], dim=1)
        lam = self.lam.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
        return lam * x + (1 - lam) * x[self.partner]

    def first(self, target: torch.Tensor) -> torch.Tensor:
        """Each example's first label: its own class, or the exchange's label for it."""
        return target if self.own is None else self.own

    def targets(self, target: torch.Tensor) -> torch.Tensor:
        """The second label of each mixed example: its partner's class, or the exchange's label for it."""
        return target[self.partner] if self.partner_targets is None else self.partner_targets


class Frontend(nn.Module):
    """Waveform batch ``(B, L)`` to features ``(B, ...)``.

    May hold trainable weights (e.g. TgramNet); a frontend without weights to train (none, or only frozen
    ones) lets the runner compute its features once and cache them. Under mixup the runner mixes the
    frontend's output, unless the frontend has ``forward_mixed(wave, mix)`` to mix inside
    (e.g. the waveform of one branch and the spectrogram of another).
    """

    sample_rate: int

    def output_shape(self, num_samples: int) -> tuple[int, ...]:
        """Feature shape of one clip of ``num_samples`` samples (without the batch axis)."""
        return _probe(self, self, num_samples)

    @property
    def has_weights(self) -> bool:
        """Whether training changes the frontend: frozen weights (a pretrained encoder with ``tune=none``) count as
        none, so its features are computed once and cached."""
        return any(p.requires_grad for p in self.parameters())


class WindowedFrontend(Frontend):
    """A weightless frontend whose examples are windows of one base feature map, cut along its time axis (stacked
    context frames, patches of a log-mel). The runner caches the base, not the windows, which overlap (five stacked
    frames stored each frame five times: 5.9 GB for 8,000 clips of 10 s instead of 1.2 GB), and cuts the windows as
    batches are gathered; the features are the same, value for value (:func:`windowed_features`).

    ``base(wave)``: ``(B, L) -> (B, frames, *rest)``, time first, so that a window is one block of memory;
    ``window(frames)``: the window's size and step for a base of that many frames; ``arrange(windows)``:
    ``(K, size, *rest) -> (K, *example)``, one example per window.
    """

    def base(self, wave: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def window(self, frames: int) -> tuple[int, int]:  # pragma: no cover - interface
        raise NotImplementedError

    def arrange(self, windows: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return windowed_features(self, self.base(wave))

    def base_shape(self, num_samples: int) -> tuple[int, ...]:
        """Shape of the base features of one clip (what the feature cache keeps of it)."""
        return _probe(self, self.base, num_samples)


def _probe(frontend: Frontend, compute, num_samples: int) -> tuple[int, ...]:
    """The shape ``compute`` (the frontend, or its ``base``) gives one silent clip, without the batch axis. The probe
    goes where the frontend's tensors are: a frontend already moved to the GPU has its STFT window and mel filters
    there."""
    device = next((t.device for t in (*frontend.parameters(), *frontend.buffers())), torch.device("cpu"))
    mics = getattr(frontend, "microphones", 1)  # a frontend of several microphones takes (B, mics, samples)
    with torch.no_grad():
        return tuple(compute(torch.zeros(1, *([mics] if mics > 1 else []), num_samples, device=device)).shape[1:])


def windowed_features(frontend: WindowedFrontend, base: torch.Tensor) -> torch.Tensor:
    """Every window of each clip's base, arranged: ``(B, frames, *rest) -> (B, windows, *example)``."""
    size, step = frontend.window(base.shape[1])
    return arranged_windows(base, size, step, frontend.arrange)


def arranged_windows(base: torch.Tensor, size: int, step: int, arrange) -> torch.Tensor:
    windows = base.unfold(1, size, step).movedim(-1, 2)  # (B, V, size, *rest)
    return arrange(windows.flatten(0, 1)).unflatten(0, windows.shape[:2])


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
