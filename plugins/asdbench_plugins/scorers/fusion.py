"""``fusion``: several embedding back-ends as one score, each standardised by its own scores on the training clips
(the label-free fusion of "Scoring backends matter more than pooling", arXiv 2606.19269: no back-end wins on every
machine, and the minimum of the z-normalised scores beats each fixed one on the target domain)."""

from __future__ import annotations

import torch

from asdbench import hookimpl
from asdbench.api import Loss, ModelOutput
from asdbench.errors import AsdbenchError
from asdbench.evaluation.fitted import fit as cross_fit
from asdbench_plugins.scorers.domain_knn import DomainKNN
from asdbench_plugins.scorers.embedding import KNN, GMMScorer, KMeansScorer, KNNRescaled, Mahalanobis

MEMBERS = {"knn": KNN, "knn-rescaled": KNNRescaled, "kmeans": KMeansScorer, "gmm": GMMScorer,
           "mahalanobis": Mahalanobis, "knn-domains": DomainKNN}
COMBINE = ("min", "mean")


class Fusion:
    """``members`` (comma-separated back-ends, each with its defaults) fitted on the training embeddings; each one's
    scores of the training clips, cross-fitted (two folds per class, so that a clip never meets itself), give per
    class its mean and standard deviation; a clip's score combines the members' standardised scores by ``combine``
    (``min``: the paper's; ``mean``)."""

    def __init__(self, members: str = "knn,mahalanobis,knn-rescaled", combine: str = "min") -> None:
        names = [n.strip() for n in members.split(",") if n.strip()]
        unknown = [n for n in names if n not in MEMBERS]
        if unknown or len(names) < 2:
            raise ValueError(f"members={members!r} must name two or more of: {', '.join(MEMBERS)}")
        if combine not in COMBINE:
            raise ValueError(f"combine={combine!r} is not one of: {', '.join(COMBINE)}")
        self.members = [MEMBERS[n]() for n in names]
        self.combine = combine
        self._scales: list[dict[int, tuple[float, float]]] = []

    def fit(self, embeddings: torch.Tensor, targets: torch.Tensor, loss: Loss | None = None,
            domains: torch.Tensor | None = None) -> None:
        everything = list(range(len(targets)))
        self._scales = []
        for member in self.members:
            scores, _ = cross_fit(member, embeddings, targets, loss, everything, targets, domains)
            scales = {}
            for c in targets.unique().tolist():
                own = scores[targets == c].double()
                spread = float(own.std()) if len(own) > 1 else 0.0
                scales[c] = (float(own.mean()), spread if spread > 0 else 1.0)
            self._scales.append(scales)

    def score(self, output: ModelOutput, target: torch.Tensor, loss: Loss) -> torch.Tensor:
        if not self._scales:
            raise AsdbenchError("scorer fusion was not fitted: it needs the training embeddings first")
        standardised = []
        for member, scales in zip(self.members, self._scales):
            values = member.score(output, target, loss).double().cpu()
            mean = torch.tensor([scales[c][0] for c in target.cpu().tolist()], dtype=torch.float64)
            spread = torch.tensor([scales[c][1] for c in target.cpu().tolist()], dtype=torch.float64)
            standardised.append((values - mean) / spread)
        stacked = torch.stack(standardised)
        combined = stacked.amin(dim=0) if self.combine == "min" else stacked.mean(dim=0)
        return combined.float().to(output.embedding.device)


@hookimpl
def register_scorers(register):
    register("fusion", Fusion, "embedding back-ends standardised by their training scores and combined (min or mean; "
             "arXiv 2606.19269)")
