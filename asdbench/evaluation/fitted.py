"""Scorers that learn from the training data after training: fitting them, scoring the training clips for
thresholds without letting a clip see itself, and carrying the fit in a model's weights.

Two kinds (CONTRIBUTING.md, "Scorers that fit"). A scorer with ``fit(embeddings, targets, loss)`` (kNN, k-means,
GMM...) learns from the clip embeddings of all the model's training clips, each with its class (and its domain, where
``fit`` takes ``domains``); a bundle keeps those and fits again when loaded. A scorer with
``fit_outputs(batches, loss)`` (the official DCASE 2023-2026 baseline's Selective Mahalanobis) learns from the
model's outputs on its training examples, batch by batch, with each example's domain; it returns what it learned,
which a bundle keeps and gives back to ``load_fit``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import torch

from asdbench.api import Loss, ModelOutput
from asdbench.data.examples import Examples, indices_on
from asdbench.evaluation.scoring import score_targets

FIT_PREFIX = "scorer_fit."  # the fit's data travel in the model's state dict (and safetensors file) under this prefix
OUTPUTS_PREFIX = f"{FIT_PREFIX}outputs."  # what a fit_outputs scorer learned, under FIT_PREFIX


def fits(scorer: object) -> bool:
    return callable(getattr(scorer, "fit", None))


def fits_outputs(scorer: object) -> bool:
    return callable(getattr(scorer, "fit_outputs", None))


def fitted_at_all(scorer: object) -> bool:
    return fits(scorer) or fits_outputs(scorer)


def shuffled_batches(count: int, batch_size: int, seed: int) -> list[torch.Tensor]:
    """Batches of ``batch_size`` example numbers in a random order drawn from ``seed``, batches of one left out: how
    the official DCASE 2023-2026 baseline reads its shuffled training loader after training."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return [idx for idx in order.split(batch_size) if len(idx) > 1]


@torch.no_grad()
def fit_outputs(scorer, model, examples: Examples, device: torch.device, batch_size: int,
                seed: int) -> dict[str, torch.Tensor]:
    """Fit ``scorer`` on the model's eval-mode outputs over ``examples`` (those it trained on), each with its clip's
    domain, in :func:`shuffled_batches`, as the official baseline's covariance pass reads them. Returns the fit,
    prefixed for the model's weights."""
    domains = examples.example_domains()

    def batches() -> Iterator[tuple[ModelOutput, torch.Tensor, torch.Tensor]]:
        model.to(device).eval()
        for idx in indices_on(examples.inputs.device, shuffled_batches(len(examples), batch_size, seed)):
            x, y = examples.batch(idx, device)
            yield model(x, examples.features_ready), y, domains[idx.cpu()].to(device)

    state = scorer.fit_outputs(batches(), model.loss)
    return {f"{OUTPUTS_PREFIX}{k}": v.detach().cpu().contiguous() for k, v in state.items()}


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


def takes_domains(scorer: object) -> bool:
    """Whether the scorer's ``fit`` takes each clip's domain (``domains``: domain-aware back-ends)."""
    return "domains" in inspect.signature(scorer.fit).parameters


def _fit(scorer, embeddings: torch.Tensor, targets: torch.Tensor, loss: Loss, domains: torch.Tensor | None) -> None:
    if domains is not None and takes_domains(scorer):
        scorer.fit(embeddings, targets, loss, domains=domains)
    else:
        scorer.fit(embeddings, targets, loss)


def fit(scorer, embeddings: torch.Tensor, targets: torch.Tensor, loss: Loss, own: list[int],
        own_targets: torch.Tensor, domains: torch.Tensor | None = None) -> tuple[torch.Tensor, bool]:
    """Fit ``scorer`` on all training embeddings; return the scores of the training clips ``own`` (scored against
    ``own_targets``, as test clips are), for the thresholds, and whether they were cross-fitted.

    Each of those scores comes from a fit on the other half of the training clips (two folds, alternating within
    each class): scored by a fit that saw it, a clip would be its own nearest neighbour and every kNN training score
    0, so the thresholds would flag nearly every normal clip. Where a class has a single training clip no such
    split exists, and the scores come from the full fit (``False``). ``domains`` (True: target domain) go to scorers
    that take them, and their folds then alternate within each class's clips of each domain, where each has two."""
    aware = domains is not None and takes_domains(scorer)
    folds = _folds(targets * 2 + domains.long()) if aware else None
    if folds is None:
        folds = _folds(targets)
    scores = torch.empty(len(own))
    own_index = torch.tensor(own, dtype=torch.long)
    if folds is not None:
        for held_out in (0, 1):
            kept = folds != held_out
            _fit(scorer, embeddings[kept], targets[kept], loss, None if domains is None else domains[kept])
            rows = (folds[own_index] == held_out).nonzero().squeeze(1)
            if len(rows):
                output = ModelOutput(embedding=embeddings[own_index[rows]])
                scores[rows] = score_targets(scorer, output, own_targets[rows], loss).cpu()
    _fit(scorer, embeddings, targets, loss, domains)
    if folds is None:
        scores = score_targets(scorer, ModelOutput(embedding=embeddings[own_index]), own_targets, loss).cpu()
    return scores, folds is not None


def fit_state(embeddings: torch.Tensor, targets: torch.Tensor,
              domains: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """What a bundle keeps of the fit: the embeddings, classes and domains it was fitted on (refitting is
    deterministic)."""
    state = {f"{FIT_PREFIX}embeddings": embeddings.contiguous(), f"{FIT_PREFIX}targets": targets.contiguous()}
    if domains is not None:
        state[f"{FIT_PREFIX}domains"] = domains.bool().contiguous()
    return state


def split_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A saved model's weights, and its scorer's fit data (empty if its scorer does not fit)."""
    weights = {k: v for k, v in state.items() if not k.startswith(FIT_PREFIX)}
    return weights, {k: v for k, v in state.items() if k.startswith(FIT_PREFIX)}


def restore(scorer, state: dict[str, torch.Tensor], loss: Loss) -> None:
    """Give ``scorer`` back its fit from a bundle's fit data: fitted again on the embeddings (:func:`fit_state`), or
    handed what :func:`fit_outputs` learned."""
    if fits(scorer):  # bundles made before domains were kept refit without them
        _fit(scorer, state[f"{FIT_PREFIX}embeddings"], state[f"{FIT_PREFIX}targets"], loss,
             state.get(f"{FIT_PREFIX}domains"))
    else:
        scorer.load_fit({k[len(OUTPUTS_PREFIX):]: v for k, v in state.items() if k.startswith(OUTPUTS_PREFIX)})
