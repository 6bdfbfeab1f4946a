"""``knn-domains``: GenRep's kNN with a source and a target memory, MemMixup and per-domain standardisation, by hand
on one-dimensional embeddings, and in a run on the 2026 layout whose bundle keeps the domains."""

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
from asdbench_plugins.scorers.domain_knn import DomainKNN


def _fitted(points: list[float], target: list[bool], **params) -> DomainKNN:
    scorer = DomainKNN(**params)
    scorer.fit(torch.tensor(points).unsqueeze(1), torch.zeros(len(points), dtype=torch.long),
               domains=torch.tensor(target))
    return scorer


def _scores(scorer: DomainKNN, points: list[float]) -> list[float]:
    output = ModelOutput(embedding=torch.tensor(points).unsqueeze(1))
    return scorer.score(output, torch.zeros(len(points), dtype=torch.long), None).tolist()


def test_the_nearer_memory_decides():
    """Source {0, 1}, target {10}: a clip at 9 is 8 from the source and 1 from the target: 1; one at 0.4: 0.4."""
    scorer = _fitted([0.0, 1.0, 10.0], [False, False, True], normalise=False)
    assert _scores(scorer, [9.0, 0.4]) == pytest.approx([1.0, 0.4])
    one_memory = _fitted([0.0, 1.0, 10.0], [False, False, False], normalise=False)
    assert _scores(one_memory, [9.0]) == pytest.approx([1.0])  # no domains: one memory, as knn
    assert _scores(_fitted([0.0, 1.0, 10.0], [False, False, True], normalise=False, k=2), [9.0]) == pytest.approx(
        [1.0])  # k larger than a memory: what it has


def test_memmixup_adds_each_target_clip_mixed_with_its_nearest_source_clips():
    """Target 10, nearest source 1, alpha 0.9: 9.1 joins the target memory, and a clip at 9 is 0.1 from it."""
    scorer = _fitted([0.0, 1.0, 10.0], [False, False, True], normalise=False, mix_support=1)
    assert _scores(scorer, [9.0]) == pytest.approx([0.1])
    two = _fitted([0.0, 1.0, 10.0], [False, False, True], normalise=False, mix_support=2, alpha=0.5)
    assert _scores(two, [3.0, 5.2]) == pytest.approx([2.0, 0.2])  # mixes 5.5 (with 1) and 5.0 (with 0)


def test_each_memory_is_standardised_by_the_training_clips_distances_to_it_each_leaving_itself_out():
    """Source {0, 1, 2}, target {10, 12}. To the source memory the training clips are 1, 1, 1, 8, 10 away (each
    without itself): mean 4.2, sample std sqrt(19.7); to the target memory 10, 9, 8, 2, 2: mean 6.2, std sqrt(15.2).
    A clip at 11: source (9 - 4.2) / sqrt(19.7) = 1.0815, target (1 - 6.2) / sqrt(15.2) = -1.3338: the minimum."""
    scorer = _fitted([0.0, 1.0, 2.0, 10.0, 12.0], [False, False, False, True, True])
    assert _scores(scorer, [11.0]) == pytest.approx([(1 - 6.2) / math.sqrt(15.2)])
    assert _scores(scorer, [1.5]) == pytest.approx([min((0.5 - 4.2) / math.sqrt(19.7), (8.5 - 6.2) / math.sqrt(15.2))])


def test_what_cannot_be_scored_is_one_line():
    with pytest.raises(AsdbenchError, match="was not fitted"):
        _scores(DomainKNN(), [1.0])
    with pytest.raises(AsdbenchError, match="no training embeddings of class 3"):
        _fitted([0.0, 1.0], [False, True]).score(ModelOutput(embedding=torch.ones(1, 1)), torch.tensor([3]), None)
    with pytest.raises(ValueError, match="metric='manhattan' is not one of"):
        DomainKNN(metric="manhattan")


@pytest.mark.slow
def test_a_run_fits_it_with_each_clips_domain_and_its_bundle_refits_to_the_same_scores(tmp_path):
    from asdbench_plugins.datasets.synthetic_sections import generate_layout

    tree = generate_layout(tmp_path / "d26", "dcase2026t2", "tiny", seed=4)
    plugins = build_plugins()
    cfg = resolve_runtime(resolve(plugins, "stgram-mfn-cee", set_values={
        "dataset": "dcase2026t2", "dataset.root": str(tree), "epochs": 1, "batch_size": 8, "scorer": "knn-domains",
        "scorer.mix_support": 1}))
    result = execute(plugins, make_plan(plugins, cfg), Reporter())
    assert result.scores and all(math.isfinite(s) for _, s in result.scores)
    (state,) = result.models.values()
    assert state["scorer_fit.domains"].sum() == 4  # 2 target clips of each of the 2 sections
    dataset = load_dataset(plugins, cfg)
    folder = write_bundle(tmp_path / "bundle", manifest(cfg, plugins, result, dataset.sample_rate, result.num_samples),
                          result.models)
    decided = {d.path: d.score for d in load_model(folder).score([c.path for c, _ in result.scores])}
    assert {c.path: s for c, s in result.scores} == decided
