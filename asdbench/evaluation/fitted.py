"""Scorers that learn from the training embeddings (kNN, k-means, GMM...): fitting them, scoring the training
clips for thresholds without letting a clip see itself, and carrying the fit in a model's weights.

A scorer fits when it has a ``fit(embeddings, targets, loss)`` method (CONTRIBUTING.md, "Scorers that fit"). The
runner fits it once after training on the embeddings of all the model's training clips, each with its class.
"""

from __future__ import annotations

import torch

from asdbench.api import Loss, ModelOutput
from asdbench.evaluation.scoring import score_targets

FIT_PREFIX = "scorer_fit."  # the fit's data travel in the model's state dict (and safetensors file) under this prefix


def fits(scorer: object) -> bool:
    return callable(getattr(scorer, "fit", None))


def _folds(targets: torch.Tensor) -> torch.Tensor | None:
    """Fold 0 or 1 of each clip, alternating within each class; ``None`` if some class has a single clip (it could
    not be in both folds)."""
    fold = torch.empty(len(targets), dtype=torch.long)
    for c in targets.unique():
        rows = (targets == c).nonzero().squeeze(1)
        if len(rows) < 2:
            return None
        fold[rows] = torch.arange(len(rows)) % 2
    return fold


def fit(scorer, embeddings: torch.Tensor, targets: torch.Tensor, loss: Loss, own: list[int],
        own_targets: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Fit ``scorer`` on all training embeddings; return the scores of the training clips ``own`` (scored against
    ``own_targets``, as test clips are), for the thresholds, and whether they were cross-fitted.

    Each of those scores comes from a fit on the other half of the training clips (two folds, alternating within
    each class): scored by a fit that saw it, a clip would be its own nearest neighbour and every kNN training score
    0, so the thresholds would flag nearly every normal clip. Where a class has a single training clip no such
    split exists, and the scores come from the full fit (``False``)."""
    folds = _folds(targets)
    scores = torch.empty(len(own))
    own_index = torch.tensor(own, dtype=torch.long)
    if folds is not None:
        for held_out in (0, 1):
            scorer.fit(embeddings[folds != held_out], targets[folds != held_out], loss)
            rows = (folds[own_index] == held_out).nonzero().squeeze(1)
            if len(rows):
                output = ModelOutput(embedding=embeddings[own_index[rows]])
                scores[rows] = score_targets(scorer, output, own_targets[rows], loss).cpu()
    scorer.fit(embeddings, targets, loss)
    if folds is None:
        scores = score_targets(scorer, ModelOutput(embedding=embeddings[own_index]), own_targets, loss).cpu()
    return scores, folds is not None


def fit_state(embeddings: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """What a bundle keeps of the fit: the embeddings and classes it was fitted on (refitting is deterministic)."""
    return {f"{FIT_PREFIX}embeddings": embeddings.contiguous(), f"{FIT_PREFIX}targets": targets.contiguous()}


def split_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A saved model's weights, and its scorer's fit data (empty if its scorer does not fit)."""
    weights = {k: v for k, v in state.items() if not k.startswith(FIT_PREFIX)}
    return weights, {k: v for k, v in state.items() if k.startswith(FIT_PREFIX)}


def refit(scorer, state: dict[str, torch.Tensor], loss: Loss) -> None:
    """Fit ``scorer`` again from a bundle's fit data (:func:`fit_state`)."""
    scorer.fit(state[f"{FIT_PREFIX}embeddings"], state[f"{FIT_PREFIX}targets"], loss)
