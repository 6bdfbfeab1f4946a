"""``flow-outlier``: maximum likelihood on a machine's own data, with a bounded push-down of its outliers."""

from __future__ import annotations

import torch

from asdbench import hookimpl
from asdbench.api import Loss, ModelOutput


class FlowOutlierLoss(Loss):
    """NLL of the target ID's examples + weight · mean hinge(margin − (NLL_outlier − NLL_target)).

    After Dohi et al. (ICASSP 2021): the flow should give its own machine (class 0) high
    likelihood and the other machines of the type (classes > 0) low likelihood. The
    paper's exact loss could not be read; this form is our choice. The outlier term is a
    hinge on the gap between an outlier's NLL and the batch's mean target NLL (nats per
    dimension): it is bounded below by 0 and stops pushing once outliers are ``margin``
    below the target data, so the likelihood of outliers cannot be driven to zero and the
    loss cannot diverge. ``outlier_weight = 0`` gives the plain flow.
    """

    def __init__(self, num_classes: int, embedding_dim: int, margin: float = 1.0, outlier_weight: float = 1.0) -> None:
        super().__init__()
        self.margin, self.outlier_weight = margin, outlier_weight

    def class_scores(self, output: ModelOutput) -> None:
        return None

    def forward(self, output: ModelOutput, target: torch.Tensor) -> torch.Tensor:
        if output.log_likelihood is None:
            raise TypeError("the flow-outlier loss needs a backbone that returns a log-likelihood")
        nll = -output.log_likelihood.reshape(-1)
        own = target.reshape(-1) == 0
        target_nll = nll[own].mean() if own.any() else nll.new_zeros(())
        if self.outlier_weight == 0 or own.all():
            return target_nll
        gap = nll[~own] - target_nll.detach()
        return target_nll + self.outlier_weight * torch.relu(self.margin - gap).mean()


@hookimpl
def register_losses(register):
    register("flow-outlier", FlowOutlierLoss)
