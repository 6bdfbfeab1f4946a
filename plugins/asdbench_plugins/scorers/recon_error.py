"""``recon-error``: the mean squared reconstruction error of a clip."""

from __future__ import annotations

import torch

from asdbench import hookimpl
from asdbench.api import Loss, ModelOutput


class ReconstructionError:
    """Mean squared reconstruction error over the whole clip (the DCASE 2020 baseline's score)."""

    def score(self, output: ModelOutput, target: torch.Tensor, loss: Loss) -> torch.Tensor:
        if output.reconstruction is None or output.target is None:
            raise TypeError("the recon-error scorer needs a backbone that returns a reconstruction")
        err = (output.reconstruction - output.target) ** 2
        return err.reshape(err.shape[0], -1).mean(dim=1)


@hookimpl
def register_scorers(register):
    register("recon-error", ReconstructionError)
