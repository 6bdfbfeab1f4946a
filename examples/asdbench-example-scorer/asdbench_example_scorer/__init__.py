"""``peak-recon-error``: score a clip by its worst frames, not its average.

A short knock or squeal barely moves a clip's mean reconstruction error; the mean of
its ``top`` worst frames moves a lot. Works with any backbone that reconstructs
``(clips, frames, dim)`` features, such as ``dense-ae`` in the ``dcase-ae`` system:

    asdbench run dcase-ae --set scorer=peak-recon-error --set scorer.top=3
"""

import torch

import asdbench


class PeakReconstructionError:
    """Mean of the `top` largest per-frame reconstruction errors of a clip."""

    def __init__(self, top: int = 5) -> None:
        self.top = top

    def score(self, output, target, loss):
        err = (output.reconstruction - output.target) ** 2
        per_frame = err.reshape(err.shape[0], err.shape[1], -1).mean(dim=2)
        k = min(self.top, per_frame.shape[1])
        return per_frame.topk(k, dim=1).values.mean(dim=1)


@asdbench.hookimpl
def register_scorers(register):
    register("peak-recon-error", PeakReconstructionError)
