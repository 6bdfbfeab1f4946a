"""``knn-domains``: kNN with a source and a target memory per class, GenRep's MemMixup and a per-domain
normalisation (Saengthong and Shinozaki, "Deep generic representations for domain-generalized anomalous sound
detection", arXiv 2409.05035; their code, GenRepASD), fitted from the normal training clips only.

DCASE 2022-2026 give 990 source clips and 10 target clips per section: one memory of both lets the source side
decide every distance. GenRep keeps two memories and scores a clip by the nearer, after standardising each side's
distances; the authors standardise with the statistics of the test clips' own distances, which asdbench does not
(no test data is seen): here each memory's mean and spread are those of the training clips' distances to it,
each clip's own entries left out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from asdbench import hookimpl
from asdbench.api import Loss, ModelOutput
from asdbench_plugins.scorers.embedding import every_class, per_class, pooled_embeddings

METRICS = ("euclidean", "cosine")


class DomainKNN:
    """Per class (machine ID or section): ``k`` nearest distances in the source memory and in the target memory; a
    clip's score is the smaller of the two, each first standardised (``normalise``). ``mix_support`` > 0 adds
    MemMixup: each target clip is mixed with its ``mix_support`` nearest source clips, ``alpha t + (1 - alpha) s``,
    into the target memory (the authors' n_mix_support, alpha 0.9). ``metric``: ``euclidean`` on the embeddings as
    they are (GenRep, on BEATs features) or ``cosine`` (the Euclidean distance of unit vectors / 2, as ``knn``)."""

    def __init__(self, k: int = 1, mix_support: int = 0, alpha: float = 0.9, normalise: bool = True,
                 metric: str = "euclidean") -> None:
        if k < 1 or mix_support < 0 or not 0 <= alpha <= 1:
            raise ValueError(f"k={k} must be 1 or more, mix_support={mix_support} 0 or more, alpha={alpha} in [0, 1]")
        if metric not in METRICS:
            raise ValueError(f"metric={metric!r} is not one of: {', '.join(METRICS)}")
        self.k, self.mix_support, self.alpha, self.normalise, self.metric = k, mix_support, alpha, normalise, metric
        self._fits: dict[int, list[tuple[torch.Tensor, float, float]]] = {}

    def _embed(self, e: torch.Tensor) -> torch.Tensor:
        e = e.double().cpu()
        return F.normalize(e, dim=1) if self.metric == "cosine" else e

    def _distances(self, e: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        d = torch.cdist(e, memory)
        return d / 2 if self.metric == "cosine" else d

    def _nearest(self, d: torch.Tensor) -> torch.Tensor:
        """Mean of each row's ``k`` smallest distances (infinite ones, left-out entries, excepted)."""
        k = min(self.k, d.shape[1])
        values = d.topk(k, dim=1, largest=False).values
        finite = torch.isfinite(values)
        return torch.where(finite, values, 0).sum(dim=1) / finite.sum(dim=1).clamp(min=1)

    def _memories(self, source: torch.Tensor, target: torch.Tensor, rows_source: torch.Tensor,
                  rows_target: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The class's memories with the training row each entry comes from (a mix: its target clip's)."""
        memories = []
        if len(source):
            memories.append((source, rows_source))
        if len(target):
            if self.mix_support and len(source):
                n = min(self.mix_support, len(source))
                nearest = self._distances(target, source).topk(n, dim=1, largest=False).indices  # (T, n)
                mixes = self.alpha * target.unsqueeze(1) + (1 - self.alpha) * source[nearest]
                target = torch.cat([target, mixes.reshape(-1, target.shape[1])])
                rows_target = torch.cat([rows_target, rows_target.repeat_interleave(n)])
            memories.append((target, rows_target))
        return memories

    def fit(self, embeddings: torch.Tensor, targets: torch.Tensor, loss: Loss | None = None,
            domains: torch.Tensor | None = None) -> None:
        e, targets = self._embed(embeddings), targets.cpu()
        domains = torch.zeros(len(e), dtype=torch.bool) if domains is None else domains.bool().cpu()
        self._fits = {}
        for c in targets.unique().tolist():
            rows = (targets == c).nonzero().squeeze(1)
            is_target = domains[rows]
            memories = self._memories(e[rows[~is_target]], e[rows[is_target]], rows[~is_target], rows[is_target])
            fitted = []
            for memory, origin in memories:
                mean, spread = 0.0, 1.0
                if self.normalise:
                    d = self._distances(e[rows], memory)
                    d[rows.unsqueeze(1) == origin.unsqueeze(0)] = float("inf")  # a clip never meets itself
                    own = self._nearest(d)[torch.isfinite(d).any(dim=1)]
                    if len(own) > 1 and float(own.std()) > 0:
                        mean, spread = float(own.mean()), float(own.std())
                fitted.append((memory, mean, spread))
            self._fits[c] = fitted

    def score(self, output: ModelOutput, target: torch.Tensor, loss: Loss) -> torch.Tensor:
        if torch.compiler.is_exporting():
            return every_class(self._embed(pooled_embeddings(output)), target, self._fits, self._nearer).float()
        e = self._embed(pooled_embeddings(output)) if self._fits else None
        return per_class(e, target, self._fits, self._nearer, "knn-domains").float().to(output.embedding.device)

    def _nearer(self, e: torch.Tensor, memories: list[tuple[torch.Tensor, float, float]]) -> torch.Tensor:
        """The smaller of the standardised distances to the class's memories."""
        return torch.stack([(self._nearest(self._distances(e, memory)) - mean) / spread
                            for memory, mean, spread in memories]).amin(dim=0)


@hookimpl
def register_scorers(register):
    register("knn-domains", DomainKNN, "kNN with a source and a target memory per class, the nearer after "
             "per-domain standardisation, MemMixup optional (GenRep, arXiv 2409.05035)")
