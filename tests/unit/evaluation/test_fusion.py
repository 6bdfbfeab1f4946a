"""``fusion``: each back-end standardised by its cross-fitted scores on the training clips of the clip's class, then
the minimum (or mean), checked with members whose scores are known; and the built-in members in a run."""

from __future__ import annotations

import math

import pytest
import torch

from asdbench.api import ModelOutput
from asdbench_plugins.scorers import fusion as fusion_module
from asdbench_plugins.scorers.fusion import Fusion


class _Column:
    """A back-end whose score is one embedding column times a factor, whatever it was fitted on: its cross-fitted
    training scores are the training values themselves."""

    column, factor = 0, 1.0

    def fit(self, embeddings, targets, loss=None):
        pass

    def score(self, output, target, loss):
        return output.embedding[:, self.column] * self.factor


class _Second(_Column):
    column, factor = 1, 10.0


def test_members_are_standardised_per_class_by_their_training_scores_then_combined(monkeypatch):
    """Class 0 trains on (0, 0), (2, 1), (4, 2): the first member's scores 0, 2, 4 (mean 2, std 2), the second's
    0, 10, 20 (mean 10, std 10). A clip (3, 0.5) of class 0: (3 - 2) / 2 = 0.5 and (5 - 10) / 10 = -0.5."""
    monkeypatch.setattr(fusion_module, "MEMBERS", {"first": _Column, "second": _Second})
    train = torch.tensor([[0.0, 0.0], [2.0, 1.0], [4.0, 2.0], [100.0, 100.0], [104.0, 100.0]])
    classes = torch.tensor([0, 0, 0, 1, 1])
    clip = ModelOutput(embedding=torch.tensor([[3.0, 0.5], [3.0, 0.5]]))
    for combine, expected in (("min", -0.5), ("mean", 0.0)):
        scorer = Fusion(members="first,second", combine=combine)
        scorer.fit(train, classes)
        assert scorer.score(clip, torch.tensor([0, 0]), None).tolist() == pytest.approx([expected] * 2)
    # class 1 has its own scales: the first member mean 102, std 2 sqrt(2); the second 1000 twice, no spread (1)
    scorer = Fusion(members="first,second", combine="mean")
    scorer.fit(train, classes)
    expected = ((3 - 102) / (2 * math.sqrt(2)) + (5 - 1000) / 1) / 2
    assert scorer.score(clip, torch.tensor([1, 1]), None).tolist()[0] == pytest.approx(expected)


def test_members_must_be_two_known_back_ends():
    with pytest.raises(ValueError, match="must name two or more of"):
        Fusion(members="knn")
    with pytest.raises(ValueError, match="must name two or more of"):
        Fusion(members="knn,lof")
    with pytest.raises(ValueError, match="combine='max' is not one of"):
        Fusion(combine="max")
