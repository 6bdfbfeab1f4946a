"""The augmentation contract: training data made more varied, never what is scored (config ``augmentation``).

Three stages, as an augmentation declares with ``stage``:

- ``"features"``: ``augmentation(features, generator) -> features`` changes every training batch where the
  frontend made its features (cached or not), with a fresh draw per batch from ``generator``: a CPU
  ``torch.Generator`` seeded at each epoch from the model's random stream, so a resumed run draws what the
  uninterrupted run drew (SpecAugment).
- ``"waves"``: ``augmentation(waves, clips, generator) -> (new_waves, source)`` gets a model's training clips
  as waves ``(N, S)`` float32 with their :class:`~asdbench.api.Clip` records and returns extra training clips
  ``(M, S)``, each of the class of ``clips[source[m]]``; drawn once per model from ``generator`` (noise mixing).
  Their features are computed like the clips', so this works with every frontend and training unit.
- ``"mix"``: ``augmentation.draw(target, classes, generator) -> Mix`` gives every training batch its
  :class:`~asdbench.api.Mix` in place of mixup's, with labels among ``class_factor`` x K classes (the loss is
  built with that many; FeatEx's feature exchange), drawn as the ``"features"`` stage draws.
"""

from __future__ import annotations

from typing import Literal, Protocol

import torch

from asdbench.api.dataset import Clip
from asdbench.api.model import Mix


class FeatureAugmentation(Protocol):
    stage: Literal["features"]

    def __call__(self, features: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...


class WaveAugmentation(Protocol):
    stage: Literal["waves"]

    def __call__(self, waves: torch.Tensor, clips: list[Clip],
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]: ...


class MixAugmentation(Protocol):
    stage: Literal["mix"]
    class_factor: int  # the loss learns class_factor x K classes; test clips are scored on the first K

    def draw(self, target: torch.Tensor, classes: int, generator: torch.Generator) -> Mix: ...


Augmentation = FeatureAugmentation | WaveAugmentation | MixAugmentation
STAGES = ("features", "waves", "mix")
