"""A model to numbers on a set of examples: eval-mode forward passes in batches, the anomaly scores of clips
(against every class a clip may be of), their embeddings, and the loss on held-out examples.

A run's test set, its selection score and a served model's new recordings are all scored here, by the same
functions, so a bundle gives back exactly the scores its run logged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext

import torch

from asdbench.api import ModelOutput
from asdbench.build import AnomalyModel
from asdbench.data.examples import Examples, indices_on
from asdbench.errors import AsdbenchError
from asdbench.progress import Reporter


@torch.no_grad()
def validation_loss(model: AnomalyModel, data: Examples, device: torch.device, batch_size: int) -> float:
    """The training loss on held-out examples, in eval mode and float32 (ArcFace: with its margin, no mixing)."""
    total, count = torch.zeros((), device=device), 0
    for output, y in _forward(model, data, device, batch_size, frame_axis=False):
        total += model.loss(output, y).float() * len(y)
        count += len(y)
    return (total / max(count, 1)).item()

def _forward(model: AnomalyModel, data: Examples, device: torch.device, batch_size: int, frame_axis: bool,
             step=None) -> Iterator[tuple[ModelOutput, torch.Tensor]]:
    """Eval-mode forward passes over every example in order, batch by batch: each batch's output and targets."""
    model.to(device).eval()
    for idx in indices_on(data.inputs.device, torch.arange(len(data)).split(batch_size)):
        x, y = data.batch(idx, device)
        yield model(x, data.features_ready, frame_axis), y
        if step is not None:
            step.advance(len(idx))

def _embedding(output: ModelOutput, frame_axis: bool) -> torch.Tensor | None:
    """A batch's clip embeddings as ``(B, D)`` float32 (patches' averaged), or ``None``."""
    if output.embedding is None:
        return None
    emb = output.embedding.float()
    return (emb.mean(dim=1) if frame_axis else emb).flatten(1)

def score_targets(scorer, output: ModelOutput, targets: torch.Tensor, loss) -> torch.Tensor:
    """Scores of a batch; targets of shape ``(N, K)`` (:func:`target_matrix`) score each clip against each of its
    classes and keep the lowest: the class the clip most plausibly is."""
    if targets.dim() == 1:
        return scorer.score(output, targets, loss).float()
    each = [torch.where(targets[:, k] >= 0, scorer.score(output, targets[:, k].clamp(min=0), loss).float(), torch.inf)
            for k in range(targets.shape[1])]
    return torch.stack(each).amin(dim=0)

@torch.no_grad()
def frame_scores(model: AnomalyModel, scorer, data: Examples, device: torch.device, batch_size: int) -> torch.Tensor:
    """``(clips, frames)``: each frame of a frame-based model's clips scored as a clip of one frame, to show where in
    a clip its score comes from (for a scorer that averages over frames, as recon-error, the clip's score is their
    mean)."""
    model.to(device).eval()
    out = []
    for idx in indices_on(data.inputs.device, torch.arange(len(data)).split(batch_size)):
        x, y = data.batch(idx, device)
        features = x if data.features_ready else model.frontend(x)
        clips, frames = features.shape[:2]
        output = model(features.flatten(0, 1).unsqueeze(1), True, frame_axis=True)
        scores = score_targets(scorer, output, y.repeat_interleave(frames, dim=0), model.loss)
        out.append(scores.reshape(clips, frames))
    return torch.cat(out).cpu() if out else torch.zeros(0, 0)

@torch.no_grad()
def batch_scores(model: AnomalyModel, scorer, data: Examples, device: torch.device,
                 batches: list[torch.Tensor]) -> list[float]:
    """The score of each batch of examples (frames) taken as the frames of one clip: what the official DCASE
    2023-2026 baseline fits its decision threshold on (``threshold.scores=batches``)."""
    model.to(device).eval()
    out = []
    for idx in indices_on(data.inputs.device, batches):
        x, y = data.batch(idx, device)
        output = model(x.unsqueeze(0), data.features_ready, frame_axis=True)
        out.append(score_targets(scorer, output, y[:1], model.loss).item())
    return out

@torch.no_grad()
def embed(model: AnomalyModel, data: Examples, device: torch.device, batch_size: int,
          frame_axis: bool = False) -> torch.Tensor:
    """The clips' embeddings ``(N, D)``, in order, on the CPU: what a fitted scorer learns from."""
    out = [_embedding(output, frame_axis) for output, _ in _forward(model, data, device, batch_size, frame_axis)]
    if not out or any(e is None for e in out):
        raise AsdbenchError("this scorer fits on embeddings, but the backbone returns none")
    return torch.cat(out).cpu()

@torch.no_grad()
def score_examples(
    model: AnomalyModel, scorer, data: Examples, device: torch.device, batch_size: int,
    frame_axis: bool = False, reporter: Reporter | None = None, label: str = "",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Anomaly scores of all clips, in order, computed in batches in eval mode (see ``AnomalyModel.forward``),
    and the clips' embeddings (averaged over frames) when the backbone has them. Targets of shape ``(N, K)`` score
    each clip against each of its classes (:func:`score_targets`).

    Always in float32, whatever the training precision: a score is what the benchmark reports, and
    bf16's 8-bit mantissa would tie and reorder close scores, so AUCs would move with the precision."""
    out, embeddings = [], []
    task = reporter.task(f"Scoring {label}", len(data)) if reporter else nullcontext(None)
    with task as step:
        for output, y in _forward(model, data, device, batch_size, frame_axis, step):
            out.append(score_targets(scorer, output, y, model.loss))
            if (emb := _embedding(output, frame_axis)) is not None:
                embeddings.append(emb)
    scores = torch.cat(out).cpu() if out else torch.zeros(0)
    return scores, (torch.cat(embeddings).cpu() if embeddings and len(embeddings) == len(out) else None)
