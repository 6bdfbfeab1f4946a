"""Embedding back-ends (knn, knn-rescaled, kmeans, gmm, mahalanobis): hand-computed scores, the relation between a
one-component GMM and the Mahalanobis distance, and every one of them fitted and scoring in a run."""

from __future__ import annotations

import math

import pytest
import torch

from asdbench.api import ModelOutput
from asdbench.config import resolve
from asdbench.data.plan import load_dataset, make_plan
from asdbench.errors import AsdbenchError
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.runtime import resolve_runtime
from asdbench.serving.bundle import manifest, write_bundle
from asdbench.serving.model import load_model
from asdbench.training.runner import execute


def _scorer(name: str, **params):
    return build_plugins().registry("scorer").get(name).factory(**params)


def _scores(scorer, points, targets) -> list[float]:
    out = scorer.score(ModelOutput(embedding=torch.tensor(points)), torch.tensor(targets), None)
    return out.tolist()


def test_knn_is_half_the_euclidean_distance_to_the_nearest_unit_vectors_of_the_class():
    knn = _scorer("knn")
    knn.fit(torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]]), torch.tensor([0, 0, 1]))  # normalised on fit
    scores = _scores(knn, [[1.0, 0.0], [0.6, 0.8], [1.0, 0.0]], [0, 0, 1])
    assert scores == pytest.approx([0.0, math.sqrt(0.4) / 2, 1.0], abs=1e-6)
    two = _scorer("knn", k=2)
    two.fit(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
    assert _scores(two, [[1.0, 0.0]], [0]) == pytest.approx([math.sqrt(2) / 4], abs=1e-6)


def test_knn_rescaled_divides_each_distance_by_the_neighbours_own_density():
    # a and b are close to each other (c = 0.632), the isolated c far from both (c = 1.897): x is as far from a as
    # from c (sqrt 2), but c's neighbourhood is sparse, so c is the nearest after rescaling.
    scorer = _scorer("knn-rescaled", k=1, k_ref=1)
    scorer.fit(torch.tensor([[1.0, 0.0], [0.8, 0.6], [-1.0, 0.0]]), torch.tensor([0, 0, 0]))
    assert _scores(scorer, [[0.0, -1.0]], [0]) == pytest.approx([math.sqrt(2 / 3.6)], abs=1e-6)


def test_kmeans_scores_the_cosine_distance_to_the_nearest_centre():
    scorer = _scorer("kmeans", n_clusters=2)
    scorer.fit(torch.tensor([[0.8, 0.6], [0.8, -0.6], [-0.8, 0.6], [-0.8, -0.6]]), torch.tensor([0, 0, 0, 0]))
    # centres (1, 0) and (-1, 0) after re-normalising the cluster means
    assert _scores(scorer, [[1.0, 0.0], [0.6, 0.8], [-0.6, 0.8]], [0, 0, 0]) == pytest.approx([0.0, 0.4, 0.4], abs=1e-6)


def test_gmm_scores_minus_the_largest_component_log_density_as_scikit_learn_computes_it_in_every_class():
    """Per class, its own mixture (two components, full covariances); the scores under torch.export's path (every
    clip against every class, its own column taken: what the ONNX graph computes) are the same numbers."""
    from unittest import mock

    from sklearn.mixture import GaussianMixture

    g = torch.Generator().manual_seed(0)
    embeddings = torch.randn(60, 3, generator=g)
    targets = torch.tensor([0] * 30 + [2] * 30)
    scorer = _scorer("gmm", n_components=2)
    scorer.fit(embeddings, targets)
    test = torch.randn(10, 3, generator=g)
    test_targets = torch.tensor([0, 2] * 5)
    scores = _scores(scorer, test.tolist(), test_targets.tolist())
    unit = torch.nn.functional.normalize
    for c in (0, 2):
        mixture = GaussianMixture(n_components=2, covariance_type="full", reg_covar=1e-3, random_state=0).fit(
            unit(embeddings[targets == c].double(), dim=1).numpy())
        rows = (test_targets == c).nonzero().squeeze(1)
        expected = -mixture._estimate_log_prob(unit(test[rows].double(), dim=1).numpy()).max(axis=1)
        assert [scores[i] for i in rows.tolist()] == pytest.approx(expected.tolist(), rel=1e-6)
    with mock.patch("torch.compiler.is_exporting", return_value=True):
        assert _scores(scorer, test.tolist(), test_targets.tolist()) == scores


def test_mahalanobis_by_hand_and_a_one_component_gmm_is_the_same_distance_up_to_a_constant():
    maha = _scorer("mahalanobis")
    maha.fit(torch.tensor([[0.8, 0.6], [0.8, -0.6]]), torch.tensor([0, 0]))
    # mean (0.8, 0), covariance diag(0, 0.36) + 1e-3 I
    assert _scores(maha, [[1.0, 0.0], [0.6, 0.8]], [0, 0]) == pytest.approx([40.0, 40.0 + 0.64 / 0.361], rel=1e-6)

    torch.manual_seed(0)
    train, test = torch.randn(200, 3) + torch.tensor([3.0, 0, 0]), torch.randn(20, 3) + torch.tensor([3.0, 0, 0])
    gmm, maha = _scorer("gmm", n_components=1), _scorer("mahalanobis")
    for s in (gmm, maha):
        s.fit(train, torch.zeros(200, dtype=torch.long))
    g, m = (torch.tensor(_scores(s, test.tolist(), [0] * 20)) for s in (gmm, maha))
    offset = g - 0.5 * m  # -log N(x) = 0.5 (x - mu)' Sigma^-1 (x - mu) + 0.5 log det(2 pi Sigma)
    assert offset.std() < 1e-4 and m.std() > 0.1


def test_an_unfitted_scorer_and_a_backbone_without_embeddings_are_one_line_errors():
    knn = _scorer("knn")
    with pytest.raises(AsdbenchError, match="was not fitted"):
        _scores(knn, [[1.0, 0.0]], [0])
    knn.fit(torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    with pytest.raises(AsdbenchError, match="needs a backbone that returns embeddings"):
        knn.score(ModelOutput(reconstruction=torch.zeros(1, 2)), torch.tensor([0]), None)
    with pytest.raises(AsdbenchError, match="no training embeddings of class 3"):
        _scores(knn, [[1.0, 0.0]], [3])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["knn", "knn-rescaled", "kmeans", "gmm", "mahalanobis", "knn-domains", "fusion",
                                  "pyod"])
def test_every_embedding_scorer_fits_and_scores_in_a_run_and_its_bundle_refits_to_the_same_scores(name, tmp_path):
    plugins = build_plugins()
    cfg = resolve_runtime(resolve(plugins, "stgram-mfn-cee", set_values={
        "dataset.size": "tiny", "epochs": 1, "batch_size": 16, "scorer": name, "clip_seconds": 1.0}))
    result = execute(plugins, make_plan(plugins, cfg), Reporter())
    assert len(result.scores) == 48 and all(math.isfinite(s) for _, s in result.scores)
    # The thresholds come from cross-fitted training scores: a clip scored by a fit that saw it would be its own
    # nearest neighbour, every kNN training score 0 and every threshold 0. (A GMM's -log density may be negative.)
    # (knn-domains and fusion standardise their scores: below zero is normal for them too.)
    may_be_negative = ("gmm", "knn-domains", "fusion")
    assert all(t > 0 if name not in may_be_negative else math.isfinite(t) for t in result.thresholds.values())
    assert all("scorer_fit.embeddings" in state for state in result.models.values())
    # A bundle keeps the embeddings; loading it fits the scorer again, and the scores are the run's, exactly.
    dataset = load_dataset(plugins, cfg)
    folder = write_bundle(tmp_path / "bundle", manifest(cfg, plugins, result, dataset.sample_rate, result.num_samples),
                          result.models)
    decided = {d.path: d.score for d in load_model(folder).score([c.path for c, _ in result.scores])}
    assert {c.path: s for c, s in result.scores} == decided
