"""``subcluster-adacos`` (Wilkinghoff, IJCNN 2021) and ``adacos`` (its one-sub-cluster case, Zhang et al. 2019).

As the author's Keras layer (wilkinghoff/sub-cluster-AdaCos@260d509, subcluster_adacos.py;
../shared/reference/methods-beyond.md, section 3.1): each class owns K centres (columns of W, 128 x C*K, Glorot
uniform, no bias, trainable); p = softmax(s * cos) over the C*K columns, summed over each class's K columns, is the
class probability; the loss is the cross-entropy of those probabilities with the (mixed) label. The scale starts at
sqrt(2) ln(CK - 1) and, in each training step and before its logits, becomes
ln(B_avg) / cos(min(pi/4, median_i theta_i)) + 1e-7, where B_avg is the mean over examples of the sum of exp(s * cos)
over all columns (the target's too) and theta_i = n_i * sum_j y_ij theta_ij, y the mixed label repeated over the
K columns of each class and n_i the number of classes in example i's label (1 or 2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from asdbench import hookimpl
from asdbench.api import Loss, Mix, ModelOutput
from asdbench_plugins.losses.classification import full_precision


class SubclusterAdaCos(Loss):
    def __init__(self, num_classes: int, embedding_dim: int, subclusters: int = 16, dynamic: bool = True) -> None:
        super().__init__()
        self.classes, self.subclusters, self.dynamic = num_classes, subclusters, dynamic
        self.weight = nn.Parameter(torch.empty(embedding_dim, num_classes * subclusters))
        nn.init.xavier_uniform_(self.weight)
        self.register_buffer("scale", torch.tensor(self.initial_scale(num_classes, subclusters)))

    @staticmethod
    def initial_scale(classes: int, subclusters: int) -> float:
        return math.sqrt(2) * math.log(classes * subclusters - 1)

    def centres(self, label: int) -> torch.Tensor:
        """Class ``label``'s K centres ``(K, D)``: where a GMM back-end starts its components."""
        return self.weight.T.reshape(self.classes, self.subclusters, -1)[label]

    def cosine(self, output: ModelOutput) -> torch.Tensor:
        if output.embedding is None:
            raise TypeError("AdaCos needs a backbone that returns an embedding")
        embedding = output.embedding.float()
        with full_precision(embedding):  # the scale turns bf16's rounding of the cosines into ties
            return F.linear(F.normalize(embedding), F.normalize(self.weight.float(), dim=0).T)

    def _soft(self, target: torch.Tensor, mix: Mix | None) -> torch.Tensor:
        one_hot = F.one_hot(target, self.classes).float()
        if mix is None:
            return one_hot
        lam = mix.lam.float().unsqueeze(1)
        return lam * one_hot + (1 - lam) * F.one_hot(mix.targets(target), self.classes).float()

    @torch.no_grad()
    def update_scale(self, cosine: torch.Tensor, soft: torch.Tensor) -> None:
        """The dynamic scale of this batch (Wilkinghoff's form: the target's columns in B_avg, the n_i factor)."""
        logits = self.scale * cosine
        top = logits.max()
        b_avg = (torch.exp(logits - top).sum(dim=1).mean()).log() + top  # ln(B_avg), shifted for safety
        labels = soft.repeat_interleave(self.subclusters, dim=1)
        n = (soft > 0).sum(dim=1).float()
        theta = n * (labels * torch.acos(cosine.clamp(-1 + 1e-7, 1 - 1e-7))).sum(dim=1)
        angle = torch.clamp(theta.median(), max=math.pi / 4)
        self.scale.copy_(b_avg / torch.cos(angle) + 1e-7)

    def log_probabilities(self, cosine: torch.Tensor) -> torch.Tensor:
        """Class log-probabilities ``(B, C)``: softmax over all C*K columns, summed within each class."""
        log_p = torch.log_softmax(self.scale * cosine, dim=1)
        return torch.logsumexp(log_p.reshape(len(cosine), self.classes, self.subclusters), dim=2)

    def _losses(self, output: ModelOutput, soft: torch.Tensor) -> torch.Tensor:
        cosine = self.cosine(output)
        if self.dynamic and self.training and torch.is_grad_enabled():
            self.update_scale(cosine, soft)
        return -(soft * self.log_probabilities(cosine)).sum(dim=1)

    def forward(self, output: ModelOutput, target: torch.Tensor) -> torch.Tensor:
        return self._losses(output, self._soft(target, None)).mean()

    def mixed(self, output: ModelOutput, target: torch.Tensor, mix: Mix) -> torch.Tensor:
        return self._losses(output, self._soft(target, mix))

    def logits(self, output: ModelOutput, target: torch.Tensor) -> torch.Tensor:
        return self.log_probabilities(self.cosine(output))

    def class_scores(self, output: ModelOutput) -> torch.Tensor:
        return self.log_probabilities(self.cosine(output))


class AdaCos(SubclusterAdaCos):
    """AdaCos: one centre per class, the dynamic scale as above."""

    def __init__(self, num_classes: int, embedding_dim: int, dynamic: bool = True) -> None:
        super().__init__(num_classes, embedding_dim, subclusters=1, dynamic=dynamic)


@hookimpl
def register_losses(register):
    register("subcluster-adacos", SubclusterAdaCos, "sub-cluster AdaCos, K centres per class, dynamic scale "
             "(Wilkinghoff 2021)")
    register("adacos", AdaCos, "AdaCos: sub-cluster AdaCos with one centre per class")
