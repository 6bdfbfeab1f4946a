"""The one training loop every system shares."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from asdbench.build import AnomalyModel
from asdbench.errors import AsdbenchError
from asdbench.progress import Reporter


@dataclass
class Examples:
    """Training or scoring inputs: waveforms, or features when the frontend has no weights."""

    inputs: torch.Tensor
    targets: torch.Tensor
    features_ready: bool

    def __len__(self) -> int:
        return self.targets.shape[0]


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    scheduler: str


def save_atomic(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary name, then rename: a crash never leaves a torn checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch; a last batch of one example is dropped (batch norm cannot train on it)."""
    batches = list(torch.randperm(n, generator=generator).split(batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()
    return batches


def train(
    model: AnomalyModel,
    data: Examples,
    settings: TrainSettings,
    device: torch.device,
    generator: torch.Generator,
    reporter: Reporter,
    label: str,
    on_epoch: Callable[[int, dict[str, float]], None],
    checkpoint: Path | None,
) -> None:
    """Adam (+ optional cosine annealing) over model, frontend and loss weights; a checkpoint each epoch.

    Losses are summed on the device and read back once per epoch, so the step never
    waits on the host.
    """
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
        if settings.scheduler == "cosine"
        else None
    )
    with reporter.task(f"Training {label}", settings.epochs) as step:
        for epoch in range(1, settings.epochs + 1):
            model.train()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            seen = 0
            has_logits = False
            for idx in _batches(len(data), settings.batch_size, generator):
                x = data.inputs[idx].to(device, non_blocking=True)
                y = data.targets[idx].to(device, non_blocking=True)
                output = model(x, data.features_ready)
                loss = model.loss(output, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach() * len(idx)
                seen += len(idx)
                if output.logits is not None:
                    has_logits = True
                    correct += (output.logits.detach().argmax(dim=1) == y).sum()
            if scheduler is not None:
                scheduler.step()
            stats = {"loss": (loss_sum / max(seen, 1)).item(), "lr": optimizer.param_groups[0]["lr"]}
            if has_logits:
                stats["accuracy"] = (correct / max(seen, 1)).item()
            if not math.isfinite(stats["loss"]):
                raise AsdbenchError(f"training of {label} diverged at epoch {epoch} (loss {stats['loss']}); try a lower lr")
            on_epoch(epoch, stats)
            if checkpoint is not None:
                save_atomic(
                    {"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict()}, checkpoint
                )
            status = f"loss {stats['loss']:.4g}" + (f" acc {stats['accuracy']:.3f}" if has_logits else "")
            step.advance(status=status)


@torch.no_grad()
def score(
    model: AnomalyModel, scorer, data: Examples, device: torch.device, batch_size: int, reporter: Reporter, label: str
) -> torch.Tensor:
    """Anomaly scores of all examples, in order, computed in batches in eval mode."""
    model.to(device).eval()
    out = []
    with reporter.task(f"Scoring {label}", len(data)) as step:
        for start in range(0, len(data), batch_size):
            x = data.inputs[start : start + batch_size].to(device)
            y = data.targets[start : start + batch_size].to(device)
            out.append(scorer.score(model(x, data.features_ready), y, model.loss).float())
            step.advance(len(x))
    return torch.cat(out).cpu() if out else torch.zeros(0)
