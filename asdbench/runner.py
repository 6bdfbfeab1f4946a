"""``run``: dataset -> groups -> (features) -> train -> score -> metrics, for any system."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from asdbench import metrics
from asdbench.api import Clip, Dataset, Frontend
from asdbench.audio import fit_length
from asdbench.build import build_model, count_parameters, instantiate
from asdbench.config import RunConfig
from asdbench.errors import AsdbenchError
from asdbench.groups import Group, make_groups
from asdbench.plugins import Plugins
from asdbench.progress import Reporter
from asdbench.runtime import pick_device, seed_everything
from asdbench.train import Examples, TrainSettings, score, train

FEATURE_BATCH = 64


@dataclass
class RunResult:
    scores: list[tuple[Clip, float]]
    report: metrics.Report | None
    n_params: int
    models: dict[str, dict] = field(default_factory=dict)


def load_dataset(plugins: Plugins, config: RunConfig) -> Dataset:
    return instantiate(plugins, config, "dataset")


def clip_summary(train: list[Clip], test: list[Clip]) -> dict[tuple[str, str], dict[str, int]]:
    """Counts per (type, ID): train, test normal, test anomaly, test unlabelled."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    counts = Counter()
    for c in train:
        counts[(c.machine_type, c.machine_id, "train")] += 1
    for c in test:
        kind = {0: "test_normal", 1: "test_anomaly", None: "test_unlabelled"}[c.label]
        counts[(c.machine_type, c.machine_id, kind)] += 1
    for (mtype, mid, kind), n in counts.items():
        row = out.setdefault((mtype, mid), {"train": 0, "test_normal": 0, "test_anomaly": 0, "test_unlabelled": 0})
        row[kind] = n
    return dict(sorted(out.items()))


def _waves(dataset: Dataset, clips: tuple[Clip, ...], num_samples: int, reporter: Reporter, label: str) -> torch.Tensor:
    waves = np.zeros((len(clips), num_samples), dtype=np.float32)
    with reporter.task(f"Reading {label}", len(clips)) as step:
        for i, clip in enumerate(clips):
            waves[i] = fit_length(dataset.load(clip), num_samples)
            step.advance()
    return torch.from_numpy(waves)


@torch.no_grad()
def _features(frontend: Frontend, waves: torch.Tensor, device: torch.device, reporter: Reporter, label: str) -> torch.Tensor:
    frontend.to(device).eval()
    chunks = []
    with reporter.task(f"Features {label}", len(waves)) as step:
        for start in range(0, len(waves), FEATURE_BATCH):
            batch = waves[start : start + FEATURE_BATCH]
            chunks.append(frontend(batch.to(device)).cpu())
            step.advance(len(batch))
    return torch.cat(chunks)


def _examples(
    dataset: Dataset, frontend: Frontend, group: Group, clips: tuple[Clip, ...], num_samples: int,
    device: torch.device, reporter: Reporter, label: str,
) -> Examples:
    targets = torch.tensor([group.target(c) for c in clips], dtype=torch.long)
    waves = _waves(dataset, clips, num_samples, reporter, label)
    if frontend.has_weights:
        return Examples(waves, targets, features_ready=False)
    return Examples(_features(frontend, waves, device, reporter, label), targets, features_ready=True)


def _as_frames(data: Examples) -> Examples:
    """Each feature vector of each clip becomes one training example (``train_unit=frame``)."""
    if not data.features_ready or data.inputs.dim() != 3:
        raise AsdbenchError("train_unit=frame needs a frontend without weights that returns (clips, frames, dim) features")
    n, v, d = data.inputs.shape
    return Examples(data.inputs.reshape(n * v, 1, d), data.targets.repeat_interleave(v), True)


def execute(
    plugins: Plugins,
    config: RunConfig,
    dataset: Dataset,
    reporter: Reporter,
    on_epoch: Callable[[str, int, dict[str, float]], None] = lambda group, epoch, stats: None,
    checkpoint_dir: Path | None = None,
) -> RunResult:
    """Train one model per group and score its test clips; metrics where labels exist."""
    device = pick_device(config["device"])
    generator = seed_everything(config["seed"])
    seconds = config["clip_seconds"] or dataset.clip_seconds
    num_samples = int(round(seconds * dataset.sample_rate))
    train_clips, test_clips = dataset.clips("train"), dataset.clips("test")
    groups = make_groups(train_clips, test_clips, config["model_per"])
    settings = TrainSettings(config["epochs"], config["batch_size"], config["lr"], config["weight_decay"], config["scheduler"])

    scores: list[tuple[Clip, float]] = []
    models: dict[str, dict] = {}
    n_params = 0
    for group in groups:
        frontend = instantiate(plugins, config, "frontend", sample_rate=dataset.sample_rate)
        train_data = _examples(dataset, frontend, group, group.train, num_samples, device, reporter, f"{group.name} train")
        input_shape = tuple(train_data.inputs.shape[1:]) if train_data.features_ready else frontend.output_shape(num_samples)
        if config["train_unit"] == "frame":
            train_data = _as_frames(train_data)
            input_shape = tuple(train_data.inputs.shape[1:])
        model, scorer = build_model(plugins, config, frontend, input_shape, len(group.classes))
        n_params = max(n_params, count_parameters(model))
        checkpoint = checkpoint_dir / f"{group.slug}.pt" if checkpoint_dir else None
        train(
            model, train_data, settings, device, generator, reporter, group.name,
            lambda epoch, stats, _g=group.name: on_epoch(_g, epoch, stats), checkpoint,
        )
        del train_data
        if group.test:
            test_data = _examples(dataset, frontend, group, group.test, num_samples, device, reporter, f"{group.name} test")
            group_scores = score(model, scorer, test_data, device, FEATURE_BATCH, reporter, group.name).tolist()
            scores += list(zip(group.test, group_scores))
        models[group.slug] = {k: v.detach().cpu() for k, v in model.state_dict().items()}

    return RunResult(scores, evaluate(scores), n_params, models)


def evaluate(scores: list[tuple[Clip, float]]) -> metrics.Report | None:
    """Per-ID metrics from labelled test clips; ``None`` if no clip carries a label."""
    by_id: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for clip, value in scores:
        if clip.label is not None:
            by_id.setdefault((clip.machine_type, clip.machine_id), []).append((clip.label, value))
    if not by_id:
        return None
    per_id = [
        metrics.id_metrics(mtype, mid, [label for label, _ in rows], [v for _, v in rows])
        for (mtype, mid), rows in sorted(by_id.items())
    ]
    return metrics.report(per_id)
