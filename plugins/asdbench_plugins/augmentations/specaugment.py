"""``specaugment``: frequency and time masking of training features (Park et al., "SpecAugment", Interspeech 2019),
as DCASE systems use it on log-mel spectrograms; no time warping."""

from __future__ import annotations

import torch

from asdbench import hookimpl
from asdbench.errors import AsdbenchError

FILLS = ("mean", "zero")


class SpecAugment:
    """``freq_masks`` bands of up to ``freq_width`` bins and ``time_masks`` spans of up to ``time_width`` frames per
    example, each width uniform in [0, max] and its start uniform where it fits, drawn anew for every example of
    every batch, the same across an example's channels. The last two axes of the features are (frequency, time), as
    log-mel frontends give them; masked cells take the mean of their example's channel (``fill=mean``: log-mel in
    dB has no natural zero, and STgram's Tgram and log-mel channels differ in scale) or 0."""

    stage = "features"

    def __init__(self, freq_masks: int = 2, freq_width: int = 16, time_masks: int = 2, time_width: int = 32,
                 fill: str = "mean") -> None:
        if min(freq_masks, freq_width, time_masks, time_width) < 0:
            raise ValueError("mask counts and widths must be 0 or more")
        if fill not in FILLS:
            raise ValueError(f"fill={fill!r} is not one of: {', '.join(FILLS)}")
        self.freq_masks, self.freq_width, self.time_masks, self.time_width, self.fill = (
            freq_masks, freq_width, time_masks, time_width, fill)

    def __call__(self, features: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if features.dim() < 3:
            raise AsdbenchError(f"specaugment masks (frequency, time) features; this frontend gives examples of shape "
                                f"{tuple(features.shape[1:])} (frames of stacked vectors, train_unit=frame?)")
        n, (bins, frames) = features.shape[0], features.shape[-2:]
        keep = (_spans(n, bins, self.freq_masks, self.freq_width, generator)[:, :, None]
                & _spans(n, frames, self.time_masks, self.time_width, generator)[:, None, :]).to(features.device)
        keep = keep.reshape(n, *([1] * (features.dim() - 3)), bins, frames)
        fill = (features.mean(dim=(-2, -1), keepdim=True) if self.fill == "mean" else torch.zeros((), dtype=features.dtype,
                                                                                                  device=features.device))
        return torch.where(keep, features, fill)


def _spans(n: int, size: int, count: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """``(n, size)`` bool, False inside ``count`` random spans of each row: widths uniform in [0, width] (at most
    ``size``), starts uniform in [0, size - width]."""
    keep = torch.ones(n, size, dtype=torch.bool)
    positions = torch.arange(size)
    for _ in range(count):
        widths = torch.randint(0, min(width, size) + 1, (n,), generator=generator)
        starts = (torch.rand(n, generator=generator) * (size - widths + 1)).long()
        keep &= ~((positions >= starts[:, None]) & (positions < (starts + widths)[:, None]))
    return keep


@hookimpl
def register_augmentations(register):
    register("specaugment", SpecAugment, "frequency and time masks on each training batch's features (Park et al., "
             "2019)")
