"""``pyod``: PyOD's detectors per class on normalised embeddings: PyOD's own scores, a far clip above every training
clip, seeded refits, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from asdbench.api import ModelOutput
from asdbench.errors import AsdbenchError
from asdbench_plugins.scorers.pyod_detectors import DETECTORS, PyODScorer

pytest.importorskip("pyod")


def _data():
    generator = torch.Generator().manual_seed(0)
    centre = torch.tensor([1.0, 0.0, 0.0, 0.0])
    train = centre + 0.05 * torch.randn(60, 4, generator=generator)
    far = torch.tensor([[0.0, 0.0, 1.0, 0.0]])  # orthogonal to every training clip
    return train, far


@pytest.mark.parametrize("detector", sorted(DETECTORS))
def test_a_far_clip_scores_above_every_training_clip_and_refits_give_the_same_scores(detector):
    train, far = _data()
    scorer = PyODScorer(detector=detector)
    scorer.fit(train, torch.zeros(60, dtype=torch.long))
    test = torch.cat([train[:10], far])
    scores = scorer.score(ModelOutput(embedding=test), torch.zeros(11, dtype=torch.long), None)
    assert scores[-1] > scores[:-1].max()
    again = PyODScorer(detector=detector)
    again.fit(train, torch.zeros(60, dtype=torch.long))
    assert torch.equal(again.score(ModelOutput(embedding=test), torch.zeros(11, dtype=torch.long), None), scores)


def test_the_scores_are_pyods_on_the_normalised_embeddings_each_clip_scored_alone():
    """ECOD ranks new data among the training data and the rest of the call's data: asdbench scores each clip alone,
    so a clip's score does not depend on its batch (a bundle scores in batches of its own size)."""
    from pyod.models.ecod import ECOD

    train, far = _data()
    scorer = PyODScorer(detector="ecod")
    scorer.fit(train, torch.zeros(60, dtype=torch.long))
    test = torch.cat([train[:5], far])
    reference = ECOD().fit(F.normalize(train.double(), dim=1).numpy())
    clips = F.normalize(test.float(), dim=1).double().numpy()  # as a model's float32 embeddings reach the scorer
    expected = [reference.decision_function(row[None])[0] for row in clips]
    ours = scorer.score(ModelOutput(embedding=test), torch.zeros(6, dtype=torch.long), None).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-6)
    alone = scorer.score(ModelOutput(embedding=test[2:3]), torch.zeros(1, dtype=torch.long), None).numpy()
    assert alone[0] == ours[2]


def test_what_pyod_cannot_do_is_one_line():
    with pytest.raises(ValueError, match="detector='abod' is not one of"):
        PyODScorer(detector="abod")
    with pytest.raises(AsdbenchError, match="needs two or more training clips of class 0"):
        PyODScorer().fit(torch.ones(1, 4), torch.zeros(1, dtype=torch.long))
