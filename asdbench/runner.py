"""``execute``: dataset -> groups -> (features) -> train -> score -> metrics, for any system."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from asdbench import feature_cache, metrics, wave_cache
from asdbench.api import Clip, Dataset, Frontend
from asdbench.build import build_model, count_parameters, instantiate
from asdbench.config import RunConfig
from asdbench.errors import AsdbenchError
from asdbench.groups import Group, make_groups
from asdbench.plugins import Plugins
from asdbench.progress import Reporter
from asdbench.runtime import pick_device, seed_everything
from asdbench.train import INT16_SCALE, Examples, score, settings_from, train

FEATURE_BATCH = 64


@dataclass
class RunResult:
    scores: list[tuple[Clip, float]]
    report: metrics.Report | None
    n_params: int
    models: dict[str, dict] = field(default_factory=dict)
    label_maps: dict[str, list[str]] = field(default_factory=dict)
    selected_epochs: dict[str, int] = field(default_factory=dict)
    clip_seconds: tuple[float, float] = (0.0, 0.0)  # shortest and longest clip decoded
    embeddings: dict[Clip, np.ndarray] = field(default_factory=dict)  # test clips, when the backbone has embeddings


def load_dataset(plugins: Plugins, config: RunConfig) -> Dataset:
    return instantiate(plugins, config, "dataset")


def clip_summary(train: list[Clip], test: list[Clip]) -> dict[tuple[str, str], dict[str, int]]:
    """Counts per (type, ID): train, test normal, test anomaly, test unlabelled."""
    counts: Counter = Counter()
    for c in train:
        counts[(c.machine_type, c.machine_id, "train")] += 1
    for c in test:
        kind = {0: "test_normal", 1: "test_anomaly", None: "test_unlabelled"}[c.label]
        counts[(c.machine_type, c.machine_id, kind)] += 1
    out: dict[tuple[str, str], dict[str, int]] = {}
    for (mtype, mid, kind), n in counts.items():
        row = out.setdefault((mtype, mid), {"train": 0, "test_normal": 0, "test_anomaly": 0, "test_unlabelled": 0})
        row[kind] = n
    return dict(sorted(out.items()))


class _Lengths:
    """Shortest and longest decoded clip, for the sanity report."""

    def __init__(self) -> None:
        self.shortest, self.longest = None, 0

    def add(self, n: int) -> None:
        self.shortest = n if self.shortest is None else min(self.shortest, n)
        self.longest = max(self.longest, n)


def _waves(dataset: Dataset, clips: tuple[Clip, ...], num_samples: int, reporter: Reporter, label: str,
           use_cache: bool) -> tuple[torch.Tensor, np.ndarray]:
    """The clips as an int16 matrix (half the memory of float32, exact for 16-bit PCM), each cut to its
    first ``num_samples`` samples or zero-padded, and their lengths before cutting; decoded once into the
    on-disk cache when ``use_cache``."""
    with reporter.task(f"Reading {label}", len(clips)) as step:
        if use_cache:
            waves, sizes = wave_cache.load_or_decode(dataset.name, dataset.sample_rate, num_samples, clips,
                                                     dataset.load, step.advance)
        else:
            waves = np.zeros((len(clips), num_samples), dtype=np.int16)
            sizes = wave_cache.decode_into(waves, clips, dataset.load, step.advance)
    return torch.from_numpy(waves[: len(clips)]), sizes


@torch.no_grad()
def _features_into(out: np.ndarray, frontend: Frontend, waves: torch.Tensor, device: torch.device,
                   reporter: Reporter, label: str) -> None:
    frontend.to(device).eval()
    with reporter.task(f"Features {label}", len(waves)) as step:
        for start in range(0, len(waves), FEATURE_BATCH):
            batch = waves[start : start + FEATURE_BATCH]
            out[start : start + len(batch)] = frontend(batch.to(device).float().mul_(INT16_SCALE)).cpu().numpy()
            step.advance(len(batch))


class _LastInputs:
    """The inputs of the last clip list read: groups that share their training clips (``id-vs-others``:
    every ID of a type) decode and featurise them once. One entry, so memory stays that of one group."""

    def __init__(self) -> None:
        self.clips: tuple[Clip, ...] | None = None
        self.inputs: torch.Tensor | None = None


def _examples(
    dataset: Dataset, frontend: Frontend, fingerprint: str, group: Group, clips: tuple[Clip, ...], num_samples: int,
    device: torch.device, reporter: Reporter, label: str, lengths: _Lengths, last: _LastInputs, use_cache: bool,
) -> Examples:
    """Waveforms of ``clips``, or their features when the frontend has no weights: computed once per run,
    and with ``use_cache`` once across runs (see :mod:`asdbench.feature_cache`)."""
    targets = torch.tensor([group.target(c) for c in clips], dtype=torch.long)
    if last.clips != clips:
        def features(out: np.ndarray) -> np.ndarray:
            waves, sizes = _waves(dataset, clips, num_samples, reporter, label, use_cache)
            _features_into(out, frontend, waves, device, reporter, label)
            return sizes

        if frontend.has_weights:
            inputs, sizes = _waves(dataset, clips, num_samples, reporter, label, use_cache)
        elif use_cache:
            wave_key = wave_cache.cache_key(dataset.name, dataset.sample_rate, num_samples, clips)
            shape = (len(clips), *frontend.output_shape(num_samples))
            cached, sizes = feature_cache.load_or_compute(wave_key, fingerprint, shape, features)
            inputs = torch.from_numpy(cached)
        else:
            inputs = torch.from_numpy(np.empty((len(clips), *frontend.output_shape(num_samples)), dtype=np.float32))
            sizes = features(inputs.numpy())
        if len(sizes):
            lengths.add(int(sizes.min()))
            lengths.add(int(sizes.max()))
        last.clips, last.inputs = clips, inputs
    return Examples(last.inputs, targets, features_ready=not frontend.has_weights)


def _as_frames(data: Examples) -> Examples:
    """Each frame (or patch) of each clip becomes one training example (``train_unit=frame``)."""
    if not data.features_ready or data.inputs.dim() < 3:
        raise AsdbenchError("train_unit=frame needs a frontend without weights that returns (clips, frames, ...) features")
    frames = data.inputs.shape[1]
    return Examples(data.inputs.flatten(0, 1), data.targets.repeat_interleave(frames), True)


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
    groups = make_groups(dataset.clips("train"), dataset.clips("test"), config["model_per"])
    settings = settings_from(config)
    if settings.select == "oracle":
        reporter.info("[yellow]select=oracle: the kept checkpoint is chosen on the test set (the authors' protocol); "
                      "its metrics are an upper bound[/yellow]")
    result = RunResult([], None, 0)
    lengths, last_train = _Lengths(), _LastInputs()
    for group in groups:
        labels = [f"{t}/id_{i}" for t, i in group.classes]
        result.label_maps[group.name] = labels
        reporter.info(f"Model '{group.name}': {len(labels)} classes: " + ", ".join(f"{k}={v}" for k, v in enumerate(labels)))
        frontend = instantiate(plugins, config, "frontend", sample_rate=dataset.sample_rate, num_samples=num_samples)
        fingerprint = feature_cache.frontend_fingerprint(frontend, config.component("frontend"), config.params("frontend"))
        train_data = _examples(dataset, frontend, fingerprint, group, group.train, num_samples, device, reporter,
                               f"{group.name} train", lengths, last_train, config["cache"])
        test_data = (
            _examples(dataset, frontend, fingerprint, group, group.test, num_samples, device, reporter, f"{group.name} test",
                      lengths, _LastInputs(), config["cache"])
            if group.test else None
        )
        reporter.info(
            f"Clips: {lengths.shortest / dataset.sample_rate:.2f}-{lengths.longest / dataset.sample_rate:.2f} s at "
            f"{dataset.sample_rate} Hz, cut or padded to {seconds:.2f} s ({num_samples} samples)"
        )
        input_shape = tuple(train_data.inputs.shape[1:]) if train_data.features_ready else frontend.output_shape(num_samples)
        if config["train_unit"] == "frame":
            train_data = _as_frames(train_data)
            input_shape = tuple(train_data.inputs.shape[1:])
        model, scorer = build_model(plugins, config, frontend, input_shape, len(group.classes))
        result.n_params = max(result.n_params, count_parameters(model))

        framed = config["train_unit"] == "frame"

        def group_scores(_model=model, _scorer=scorer, _data=test_data) -> list[float]:
            return score(_model, _scorer, _data, device, FEATURE_BATCH, settings.precision, framed)[0].tolist()

        def selection_score(_group=group) -> float:
            rep = evaluate(list(zip(_group.test, group_scores())))
            return float("nan") if rep is None else rep.auc + rep.pauc

        result.selected_epochs[group.name] = train(
            model, train_data, settings, device, generator, reporter, group.name,
            lambda epoch, stats, _g=group.name: on_epoch(_g, epoch, stats),
            checkpoint_dir / f"{group.slug}.pt" if checkpoint_dir else None,
            evaluate=selection_score if test_data is not None else None,
        )
        del train_data
        if test_data is not None:
            values, embeddings = score(model, scorer, test_data, device, FEATURE_BATCH, settings.precision, framed,
                                       reporter, group.name)
            result.scores += list(zip(group.test, values.tolist()))
            if embeddings is not None:
                result.embeddings.update(zip(group.test, embeddings.numpy()))
        result.models[group.slug] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    result.report = evaluate(result.scores)
    result.clip_seconds = ((lengths.shortest or 0) / dataset.sample_rate, lengths.longest / dataset.sample_rate)
    return result
