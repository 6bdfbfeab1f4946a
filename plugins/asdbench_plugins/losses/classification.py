"""Machine-ID classification losses: ``arcface`` (additive angular margin) and ``cross-entropy``.

Both own the classification head over the backbone's embedding, so the same
backbone serves either loss, and the scorer reads the logits the loss defines.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from asdbench import hookimpl
from asdbench.api import Loss, Mix, ModelOutput


def _embedding(output: ModelOutput) -> torch.Tensor:
    if output.embedding is None:
        raise TypeError("classification losses need a backbone that returns an embedding")
    return output.embedding.float()


def full_precision(tensor: torch.Tensor):
    """The heads run in float32 even under bf16 autocast: a bf16 cosine has ~3 significant
    digits, which s = 30 turns into ties between anomaly scores. Their cost is negligible."""
    return torch.autocast(tensor.device.type, enabled=False)


class ArcFace(Loss):
    """ArcFace (Deng et al., CVPR 2019): cross-entropy over s·cos(θ + m) for the true ID, s·cos θ otherwise.

    As insightface's ``ArcMarginProduct`` that the STgram-MFN code uses (``easy_margin=False``):
    where θ + m would pass π, the target logit falls back to ``cos θ − m·sin m``.
    Xavier-uniform class weights; defaults m = 0.7, s = 30 (the paper's).
    """

    def __init__(self, num_classes: int, embedding_dim: int, margin: float = 0.7, scale: float = 30.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.xavier_uniform_(self.weight)
        self.margin, self.scale = margin, scale
        self.cos_m, self.sin_m = math.cos(margin), math.sin(margin)
        self.th = math.cos(math.pi - margin)
        self.mm = math.sin(math.pi - margin) * margin

    def cosine(self, output: ModelOutput) -> torch.Tensor:
        embedding = _embedding(output)
        with full_precision(embedding):
            return F.linear(F.normalize(embedding), F.normalize(self.weight.float()))

    def logits(self, output: ModelOutput, target: torch.Tensor) -> torch.Tensor:
        cosine = self.cosine(output)
        sine = torch.sqrt((1.0 - cosine.pow(2)).clamp(0.0, 1.0))
        phi = cosine * self.cos_m - sine * self.sin_m
        phi = torch.where(cosine > self.th, phi, cosine - self.mm)
        one_hot = F.one_hot(target, cosine.shape[1]).to(cosine.dtype)
        return self.scale * (one_hot * phi + (1.0 - one_hot) * cosine)

    def class_scores(self, output: ModelOutput) -> torch.Tensor:
        return self.scale * self.cosine(output)

    def forward(self, output: ModelOutput, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(output, target), target)

    def mixed(self, output: ModelOutput, target: torch.Tensor, mix: Mix) -> torch.Tensor:
        """ArcMix: each label's cross-entropy over logits with the margin on that label, weighted by the mix (the
        two labels of a FeatEx sample, or of a mixup)."""
        partner = mix.targets(target)
        logits = self.logits(output, target)
        own = F.cross_entropy(logits, target, reduction="none")
        other = F.cross_entropy(self._partner_logits(output, logits, partner), partner, reduction="none")
        lam = mix.lam.to(own.dtype)
        return lam * own + (1 - lam) * other

    def _partner_logits(self, output: ModelOutput, own_logits: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
        """The logits the second label's cross-entropy is taken over: with the margin on that label."""
        return self.logits(output, partner)


class NoisyArcMix(ArcFace):
    """ArcFace trained on mixed examples (Choi et al., ICASSP 2024; their losses.py). ``mode="noisy"`` (Noisy-ArcMix):
    one set of logits with the margin on the example's own class y_a, cross-entropy to y_a and to the partner's
    class y_b weighted by the mixup weight: the y_b term sees a margin on a class other than y_b, the "noise".
    ``mode="arcmix"``: a second set of logits with the margin on y_b for the y_b term. Unmixed batches (validation)
    take plain ArcFace."""

    def __init__(self, num_classes: int, embedding_dim: int, margin: float = 0.7, scale: float = 30.0,
                 mode: str = "noisy") -> None:
        super().__init__(num_classes, embedding_dim, margin, scale)
        if mode not in ("noisy", "arcmix"):
            raise ValueError(f"mode must be noisy or arcmix, not {mode!r}")
        self.mode = mode

    def _partner_logits(self, output: ModelOutput, own_logits: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
        return own_logits if self.mode == "noisy" else super()._partner_logits(output, own_logits, partner)


class CrossEntropy(Loss):
    """Cross-entropy over a linear head on the embedding (the paper's "CEE" variant)."""

    def __init__(self, num_classes: int, embedding_dim: int) -> None:
        super().__init__()
        self.head = nn.Linear(embedding_dim, num_classes)

    def logits(self, output: ModelOutput, target: torch.Tensor) -> torch.Tensor:
        return self.class_scores(output)

    def class_scores(self, output: ModelOutput) -> torch.Tensor:
        embedding = _embedding(output)
        with full_precision(embedding):
            return self.head(embedding)

    def forward(self, output: ModelOutput, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.class_scores(output), target)


@hookimpl
def register_losses(register):
    register("arcface", ArcFace)
    register("cross-entropy", CrossEntropy)
    register("noisy-arcmix", NoisyArcMix, "ArcFace on mixed examples, margin on the own class only (Noisy-ArcMix)")
