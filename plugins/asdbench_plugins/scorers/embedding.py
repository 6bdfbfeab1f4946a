"""Embedding back-ends: scorers fitted on the training embeddings of each class (a machine ID or section).

``knn``, ``kmeans``, ``gmm``, ``mahalanobis`` and ``knn-rescaled`` ("Keeping the Balance", Wilkinghoff et al.,
ICASSP 2025), as the DCASE 2021-2025 top systems and ASDKit run them (../shared/reference/methods-beyond.md,
section 4). Each works on L2-normalised embeddings, so that they compare directions, as the angular losses that
train them do. The runner calls ``fit`` once after training (see CONTRIBUTING.md, "Scorers that fit"); a class
is fitted on its own training clips only, and a clip is scored against its own class.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from asdbench import hookimpl
from asdbench.api import Loss, ModelOutput
from asdbench.errors import AsdbenchError


def pooled_embeddings(output: ModelOutput) -> torch.Tensor:
    """The batch's embeddings as ``(B, D)`` float32; those of patches (``(B, P, D)``) averaged."""
    if output.embedding is None:
        raise AsdbenchError("an embedding back-end (knn, kmeans, gmm, mahalanobis, knn-rescaled, knn-domains, fusion) "
                            "needs a backbone that returns embeddings")
    e = output.embedding.float()
    return e.mean(dim=1) if e.dim() == 3 else e.flatten(1)


def clip_embeddings(output: ModelOutput) -> torch.Tensor:
    """:func:`pooled_embeddings`, L2-normalised."""
    return F.normalize(pooled_embeddings(output), dim=1)


def per_class(e: torch.Tensor, target: torch.Tensor, fits: dict, score_class, name: str) -> torch.Tensor:
    """Scores of the clips ``e`` (float64, CPU), each by ``score_class(rows, fit)`` against its own class's fit."""
    if not fits:
        raise AsdbenchError(f"scorer {name} was not fitted: it needs the training embeddings first")
    target = target.cpu()
    out = torch.empty(len(e), dtype=torch.float64)
    for c in target.unique().tolist():
        if c not in fits:
            raise AsdbenchError(f"scorer {name} has no training embeddings of class {c}")
        rows = target == c
        out[rows] = score_class(e[rows], fits[c])
    return out


def every_class(e: torch.Tensor, target: torch.Tensor, fits: dict, score_class) -> torch.Tensor:
    """:func:`per_class` for ``torch.export`` (ONNX export), which cannot branch on the classes a batch holds: every
    clip scored against every class's fit, each clip's own column taken. The fits become the graph's constants."""
    classes = sorted(fits)
    scores = torch.stack([score_class(e, fits[c]) for c in classes], dim=1)
    column = torch.zeros(max(classes) + 1, dtype=torch.long, device=e.device)
    column[classes] = torch.arange(len(classes), device=e.device)
    return scores.gather(1, column[target].unsqueeze(1)).squeeze(1)


class EmbeddingScorer:
    """Per class, what ``_fit_class`` keeps of its normalised training embeddings; a clip's score is
    ``_score_class`` of its embedding against its own class's fit."""

    def __init__(self) -> None:
        self._fits: dict[int, object] = {}

    def fit(self, embeddings: torch.Tensor, targets: torch.Tensor, loss: Loss | None = None) -> None:
        e = F.normalize(embeddings.double().cpu(), dim=1)
        targets = targets.cpu()
        self._fits = {int(c): self._fit_class(e[targets == c], int(c), loss) for c in targets.unique()}

    def score(self, output: ModelOutput, target: torch.Tensor, loss: Loss) -> torch.Tensor:
        if torch.compiler.is_exporting():
            return every_class(clip_embeddings(output).double(), target, self._fits, self._score_class).float()
        e = clip_embeddings(output).double().cpu() if self._fits else None
        return per_class(e, target, self._fits, self._score_class, type(self).__name__).float().to(
            output.embedding.device)

    def _fit_class(self, e: torch.Tensor, label: int, loss: Loss | None):  # pragma: no cover - interface
        raise NotImplementedError

    def _score_class(self, e: torch.Tensor, fit) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


def _smallest(d: torch.Tensor, k: int) -> torch.Tensor:
    """Mean of the ``k`` smallest values of each row (all of them if a row has fewer)."""
    return d.topk(min(k, d.shape[1]), dim=1, largest=False).values.mean(dim=1)


class KNN(EmbeddingScorer):
    """Mean distance to the ``k`` nearest training embeddings of the class, as ASDKit's cosine kNN:
    ``||e - r|| / 2`` on unit vectors (with k = 1 it ranks as the cosine distance 1 - cos)."""

    def __init__(self, k: int = 1) -> None:
        super().__init__()
        self.k = k

    def _fit_class(self, e, label, loss):
        return e

    def _score_class(self, e, reference):
        return _smallest(torch.cdist(e, reference), self.k) / 2


class KNNRescaled(EmbeddingScorer):
    """"Keeping the Balance" (as ASDKit's KnnRescale): every training embedding r gets c(r), its mean distance to
    its ``k_ref`` nearest other training embeddings; a clip's score is the mean of its ``k`` smallest
    ``||e - r|| / c(r)``. Dense regions no longer score lower just for being dense."""

    def __init__(self, k: int = 1, k_ref: int = 4) -> None:
        super().__init__()
        self.k, self.k_ref = k, k_ref

    def _fit_class(self, e, label, loss):
        if len(e) < 2:
            return e, torch.ones(len(e), dtype=e.dtype)
        d = torch.cdist(e, e)
        d.fill_diagonal_(math.inf)
        return e, _smallest(d, self.k_ref)

    def _score_class(self, e, fit):
        reference, scale = fit
        return _smallest(torch.cdist(e, reference) / scale, self.k)


class KMeansScorer(EmbeddingScorer):
    """Cosine distance to the nearest of ``n_clusters`` k-means centres of the class (scikit-learn KMeans,
    random_state 0, centres re-normalised as ASDKit does): ``min_c 1 - cos(e, c)``."""

    def __init__(self, n_clusters: int = 16) -> None:
        super().__init__()
        self.n_clusters = n_clusters

    def _fit_class(self, e, label, loss):
        from sklearn.cluster import KMeans

        k = min(self.n_clusters, len(e))
        centres = KMeans(n_clusters=k, random_state=0, n_init="auto").fit(e.numpy()).cluster_centers_
        return F.normalize(torch.from_numpy(centres), dim=1)

    def _score_class(self, e, centres):
        return (1 - e @ centres.T).min(dim=1).values


class GMMScorer(EmbeddingScorer):
    """A Gaussian mixture per class (scikit-learn, full covariances, ``reg_covar`` added to their diagonals);
    score = -max_k log N(e; mu_k, Sigma_k), the mixture weights ignored, as Wilkinghoff's sub-cluster AdaCos
    back-end. Where the loss has sub-cluster centres (``loss.centres(label)``, one per component), they start
    the means."""

    def __init__(self, n_components: int = 1, reg_covar: float = 1e-3) -> None:
        super().__init__()
        self.n_components, self.reg_covar = n_components, reg_covar

    def _fit_class(self, e, label, loss):
        from sklearn.mixture import GaussianMixture

        k = min(self.n_components, len(e))
        centres = getattr(loss, "centres", None)
        init = None
        if callable(centres) and k == self.n_components:
            init = F.normalize(centres(label).detach().double().cpu(), dim=1).numpy()
            init = init if init.shape[0] == k else None
        gmm = GaussianMixture(n_components=k, covariance_type="full", reg_covar=self.reg_covar, means_init=init,
                              random_state=0).fit(e.numpy())
        return torch.from_numpy(gmm.means_), torch.from_numpy(gmm.precisions_cholesky_)

    def _score_class(self, e, fit):
        """scikit-learn's component log-density (``_estimate_log_gaussian_prob``): through the Cholesky factors of
        the precisions it fitted, matrix products only, so that the score exports to ONNX as it is computed here."""
        means, precision_cholesky = fit
        y = torch.einsum("nd,kde->nke", e, precision_cholesky) - torch.einsum("kd,kde->ke", means, precision_cholesky)
        log_det = torch.diagonal(precision_cholesky, dim1=1, dim2=2).log().sum(dim=1)
        log_density = -0.5 * (e.shape[1] * math.log(2 * math.pi) + y.square().sum(dim=2)) + log_det
        return -log_density.max(dim=1).values


class Mahalanobis(EmbeddingScorer):
    """Squared Mahalanobis distance to the class's training embeddings: mean and maximum-likelihood covariance
    with ``ridge`` added to its diagonal (the regulariser of ``gmm``'s ``reg_covar``, so that a one-component
    ``gmm`` ranks clips exactly as this does)."""

    def __init__(self, ridge: float = 1e-3) -> None:
        super().__init__()
        self.ridge = ridge

    def _fit_class(self, e, label, loss):
        mean = e.mean(dim=0)
        centred = e - mean
        covariance = centred.T @ centred / len(e) + self.ridge * torch.eye(e.shape[1], dtype=e.dtype)
        return mean, torch.linalg.inv(covariance)

    def _score_class(self, e, fit):
        mean, precision = fit
        d = e - mean
        return ((d @ precision) * d).sum(dim=1)


@hookimpl
def register_scorers(register):
    register("knn", KNN, "cosine k-nearest-neighbour distance to the clip's class's training embeddings (k=1)")
    register("knn-rescaled", KNNRescaled, "kNN with each neighbour's distance rescaled by its local density "
             "('Keeping the Balance', ICASSP 2025)")
    register("kmeans", KMeansScorer, "cosine distance to the nearest of 16 k-means centres of the class")
    register("gmm", GMMScorer, "-max component log-density of a full-covariance Gaussian mixture per class")
    register("mahalanobis", Mahalanobis, "squared Mahalanobis distance to the class's training embeddings")


