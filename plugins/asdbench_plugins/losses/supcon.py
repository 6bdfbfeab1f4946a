"""``arcface-supcon``: OS-SCL's loss (Huang et al., ICASSP 2025): Noisy-ArcMix's mixed ArcFace plus a supervised
contrastive loss on the same embeddings.

As the authors' losses.py and trainer.py (huangswt/OS-SCL@9aca394; ../shared/reference/methods-beyond.md, section 2.3):
on a mixed batch, lam * CE(logits, y_a) + (1 - lam) * CE(logits, y_b) with the ArcFace margin on y_a (m = 0.4,
s = 30), plus SupCon (Khosla et al. 2020, one view, every example an anchor) of the normalised embeddings of the
*mixed* examples labelled with y_a only, temperature 0.02 and base temperature 0.07, weighted 1:1. An anchor without
a positive in the batch adds 0 but counts in the mean. Unmixed batches (validation) take plain ArcFace.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from asdbench import hookimpl
from asdbench.api import Mix, ModelOutput
from asdbench_plugins.losses.classification import NoisyArcMix, full_precision


def supcon(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.02, base_temperature: float = 0.07) -> torch.Tensor:
    """Per-anchor supervised contrastive losses ``(B,)``: -(T / T_b) mean over the anchor's positives p of
    [z_i.z_p / T - log sum_{a != i} exp(z_i.z_a / T)]; 0 for an anchor without positives."""
    z = F.normalize(z.float(), dim=1)
    similarity = z @ z.T / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    log_denominator = torch.logsumexp(similarity.masked_fill(self_mask, float("-inf")), dim=1, keepdim=True)
    positives = (labels.unsqueeze(0) == labels.unsqueeze(1)) & ~self_mask
    count = positives.sum(dim=1)
    mean_log_prob = ((similarity - log_denominator) * positives).sum(dim=1) / count.clamp(min=1)
    return -(temperature / base_temperature) * mean_log_prob * (count > 0)


class ArcFaceSupCon(NoisyArcMix):
    def __init__(self, num_classes: int, embedding_dim: int, margin: float = 0.4, scale: float = 30.0,
                 temperature: float = 0.02, base_temperature: float = 0.07, supcon_weight: float = 1.0) -> None:
        super().__init__(num_classes, embedding_dim, margin, scale, mode="noisy")
        self.temperature, self.base_temperature, self.supcon_weight = temperature, base_temperature, supcon_weight

    def mixed(self, output: ModelOutput, target: torch.Tensor, mix: Mix) -> torch.Tensor:
        with full_precision(output.embedding):
            contrast = supcon(output.embedding, target, self.temperature, self.base_temperature)
        return super().mixed(output, target, mix) + self.supcon_weight * contrast


@hookimpl
def register_losses(register):
    register("arcface-supcon", ArcFaceSupCon, "mixed ArcFace plus supervised contrastive loss (OS-SCL)")
