"""``execute``: dataset -> groups -> (features) -> train -> score -> metrics, for any system."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from asdbench import distributed, feature_cache, fitted, metrics, wave_cache
from asdbench.api import Clip, Dataset, Frontend
from asdbench.build import build_model, count_parameters, instantiate
from asdbench.checkpoint import Identity, Slot
from asdbench.config import RunConfig
from asdbench.errors import AsdbenchError
from asdbench.fingerprint import code_fingerprint
from asdbench.groups import Group, class_name, id_name
from asdbench.plan import Plan, make_plan
from asdbench.plugins import Plugins
from asdbench.progress import Reporter
from asdbench.runtime import Runtime, seed_everything
from asdbench.selection import select_machines, unwrap
from asdbench.thresholds import threshold
from asdbench.train import (Examples, as_float, embed, hold_out, score, settings_from, target_matrix, train,
                            validation_loss)

FEATURE_BATCH = 64


@dataclass
class RunResult:
    scores: list[tuple[Clip, float]]
    report: metrics.Report | None
    n_params: int
    rule: str = "dcase2020"  # the data set's evaluation rule (asdbench.metrics), and so its unit: ID or section
    num_samples: int = 0  # the clip length every clip was cut or padded to
    models: dict[str, dict] = field(default_factory=dict)
    label_maps: dict[str, list[str]] = field(default_factory=dict)
    decides: dict[str, list[str]] = field(default_factory=dict)  # per model: the IDs it decides for (not its outliers)
    selected_epochs: dict[str, int] = field(default_factory=dict)
    clip_seconds: tuple[float, float] = (0.0, 0.0)  # shortest and longest clip decoded
    padded_clips: int = 0  # clips shorter than the configured length, padded by the ``pad`` rule
    cut_clips: int = 0  # clips longer than it, cut
    bad_files: list[tuple[str, str]] = field(default_factory=list)  # skipped (skip_bad_files): path, reason
    embeddings: dict[Clip, np.ndarray] = field(default_factory=dict)  # test clips, when the backbone has embeddings
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # per model: what its backbone was built for
    train_scores: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # per ID it decides for
    thresholds: dict[tuple[str, str], float] = field(default_factory=dict)  # per ID, from its training scores


def load_dataset(plugins: Plugins, config: RunConfig) -> Dataset:
    """The configured data set, narrowed to the ``types`` and ``ids`` the config names."""
    return select_machines(instantiate(plugins, config, "dataset"), config.values)


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
    """Shortest and longest decoded clip, and how many were padded or cut, for the run log."""

    def __init__(self, num_samples: int) -> None:
        self.num_samples = num_samples
        self.shortest, self.longest, self.padded, self.cut = None, 0, 0, 0

    def add(self, sizes: np.ndarray) -> None:
        if not len(sizes):
            return
        self.shortest = int(sizes.min()) if self.shortest is None else min(self.shortest, int(sizes.min()))
        self.longest = max(self.longest, int(sizes.max()))
        self.padded += int((sizes < self.num_samples).sum())
        self.cut += int((sizes > self.num_samples).sum())


class _Reader:
    """Waveforms and features of clip lists, for one run: decoded into the wave cache, featurised into the
    feature cache (weightless frontends), with the lengths seen along the way."""

    def __init__(self, dataset: Dataset, source: str, num_samples: int, pad: str, dtype: np.dtype, device: torch.device,
                 reporter: Reporter, use_cache: bool) -> None:
        self.dataset, self.source, self.num_samples, self.pad, self.dtype = dataset, source, num_samples, pad, dtype
        self.device, self.reporter, self.use_cache = device, reporter, use_cache
        self.lengths = _Lengths(num_samples)
        # The inputs of the last training clip list read: groups that share their training clips (``id-vs-others``:
        # every ID of a type) decode and featurise them once. One entry, so memory stays that of one group.
        self._last: tuple[tuple[Clip, ...], torch.Tensor, np.ndarray] | None = None

    def waves(self, clips: tuple[Clip, ...], label: str) -> tuple[torch.Tensor, np.ndarray]:
        """The clips as a matrix, each cut to its first ``num_samples`` samples or padded, and their lengths
        before that: int16 where that is exact (16-bit PCM, half the memory of float32), else float32."""
        d = self.dataset
        with self.reporter.task(f"Reading {label}", len(clips)) as step:
            if self.use_cache:
                waves, sizes = wave_cache.load_or_decode(self.source, d.sample_rate, self.num_samples, self.pad,
                                                         self.dtype, clips, d.load, step.advance)
            else:
                waves = np.zeros((len(clips), self.num_samples), dtype=self.dtype)
                sizes = wave_cache.decode_into(waves, clips, d.load, self.pad, step.advance)
        return torch.from_numpy(waves[: len(clips)]), sizes

    @torch.no_grad()
    def _features_into(self, out: np.ndarray, frontend: Frontend, waves: torch.Tensor, label: str) -> None:
        frontend.to(self.device).eval()
        with self.reporter.task(f"Features {label}", len(waves)) as step:
            for start in range(0, len(waves), FEATURE_BATCH):
                batch = waves[start : start + FEATURE_BATCH]
                out[start : start + len(batch)] = frontend(as_float(batch.to(self.device))).cpu().numpy()
                step.advance(len(batch))

    def examples(self, frontend: Frontend, fingerprint: str, group: Group, clips: tuple[Clip, ...], label: str,
                 lengths: _Lengths, reuse: bool = False, scoring: bool = False) -> Examples:
        """Waveforms of ``clips``, or their features when the frontend has no weights: computed once per run,
        and with the cache once across runs (see :mod:`asdbench.feature_cache`). ``reuse``: keep the inputs
        for the next call with the same clips. The clips' lengths go into ``lengths`` (the model's) and, when
        read afresh, into the run's. ``scoring``: targets are every class a clip may be of (test clips)."""
        targets = (target_matrix([group.alternatives(c) for c in clips]) if scoring else
                   torch.tensor([group.target(c) for c in clips], dtype=torch.long))
        if reuse and self._last is not None and self._last[0] == clips:
            lengths.add(self._last[2])
            return Examples(self._last[1], targets, features_ready=not frontend.has_weights)

        def features(out: np.ndarray) -> np.ndarray:
            waves, sizes = self.waves(clips, label)
            self._features_into(out, frontend, waves, label)
            return sizes

        shape = (len(clips), *frontend.output_shape(self.num_samples)) if not frontend.has_weights else None
        if frontend.has_weights:
            inputs, sizes = self.waves(clips, label)
        elif self.use_cache:
            wave_key = wave_cache.cache_key(self.source, self.dataset.sample_rate, self.num_samples, self.pad, self.dtype,
                                            clips)
            cached, sizes = feature_cache.load_or_compute(wave_key, fingerprint, shape, features)
            inputs = torch.from_numpy(cached)
        else:
            inputs = torch.from_numpy(np.empty(shape, dtype=np.float32))
            sizes = features(inputs.numpy())
        self.lengths.add(sizes)
        lengths.add(sizes)
        if reuse:
            self._last = (clips, inputs, sizes)
        return Examples(inputs, targets, features_ready=not frontend.has_weights)


def _as_frames(data: Examples) -> Examples:
    """Each frame (or patch) of each clip becomes one training example (``train_unit=frame``)."""
    if not data.features_ready or data.inputs.dim() < 3:
        raise AsdbenchError("train_unit=frame needs a frontend without weights that returns (clips, frames, ...) features")
    frames = data.inputs.shape[1]
    return Examples(data.inputs.flatten(0, 1), data.targets.repeat_interleave(frames), True)


def evaluate(scores: list[tuple[Clip, float]], rule: str = "dcase2020",
             thresholds: dict[tuple[str, str], float] | None = None) -> metrics.Report | None:
    """Per-unit metrics from labelled test clips under the data set's evaluation ``rule``, with detection metrics
    where ``thresholds`` decide; ``None`` if no clip carries a label."""
    by_id: dict[tuple[str, str], list[tuple[Clip, float]]] = {}
    for clip, value in scores:
        if clip.label is not None:
            by_id.setdefault((clip.machine_type, clip.machine_id), []).append((clip, value))
    if not by_id:
        return None
    per_id = []
    for (mtype, mid), rows in sorted(by_id.items()):
        decisions = [int(v > thresholds[(mtype, mid)]) for _, v in rows] if thresholds else None
        per_id.append(metrics.id_metrics(mtype, mid, [c.label for c, _ in rows], [v for _, v in rows], rule,
                                         [c.domain for c, _ in rows], decisions))
    by_type: dict[str, list[tuple[Clip, float]]] = {}
    for (mtype, _), rows in by_id.items():
        by_type.setdefault(mtype, []).extend(rows)
    pooled = {t: metrics.pooled([c.label for c, _ in rows], [v for _, v in rows]) for t, rows in by_type.items()}
    return metrics.report(per_id, metrics.UNITS[rule], rule, pooled)


class NonFiniteScores(AsdbenchError):
    """Scores that are NaN or infinite: no metric can be computed. Carries the run's result, so the trained
    weights can still be kept (see :func:`asdbench.session.tracked_execute`)."""

    def __init__(self, message: str, result: RunResult) -> None:
        super().__init__(message)
        self.result = result


def check_finite(result: RunResult) -> None:
    """Raise :class:`NonFiniteScores` naming the machine IDs and how many clips of each, if any score is not finite."""
    problem = nonfinite(result.scores, metrics.UNITS[result.rule])
    if problem:
        raise NonFiniteScores(problem, result)


def nonfinite(scores: list[tuple[Clip, float]], unit: str = "id") -> str | None:
    """What is wrong when some scores are NaN or infinite (how many clips of which IDs), else ``None``."""
    def name(clip: Clip) -> str:
        return id_name(clip.machine_type, clip.machine_id, unit)

    bad = Counter(name(c) for c, v in scores if not math.isfinite(v))
    if not bad:
        return None
    total = Counter(name(c) for c, _ in scores)
    where = ", ".join(f"{n} ({count} of {total[n]})" for n, count in sorted(bad.items()))
    return f"{sum(bad.values())} test clips have a non-finite score (NaN or infinite): {where}; no metric can be computed"


def execute(
    plugins: Plugins,
    config: RunConfig,
    dataset: Dataset,
    reporter: Reporter,
    on_epoch: Callable[[str, int, dict[str, float]], None] = lambda group, epoch, stats: None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    on_checkpoint: Callable[[str, int], None] = lambda group, epoch: None,
    plan: Plan | None = None,
) -> RunResult:
    """Train one model per group and score its test clips; metrics where labels exist.

    ``config`` must be resolved for this machine (:func:`asdbench.runtime.resolve_runtime`): the device and
    precision a run logs are the ones it trains with. With ``checkpoint_dir`` each model is checkpointed there
    (``on_checkpoint(group, epoch)`` before each write); with ``resume`` too, each continues from its checkpoint, and
    the run ends with exactly the scores an uninterrupted run would have given. ``plan``: the run's
    :class:`~asdbench.plan.Plan`, when the caller made it already.
    """
    runtime = Runtime.of(config)
    device = runtime.device
    distributed.init(device)
    main = distributed.is_main()  # in a distributed run, the other processes train their shares and score nothing
    generator = seed_everything(config["seed"])
    seconds = config["clip_seconds"] or dataset.clip_seconds
    num_samples = int(round(seconds * dataset.sample_rate))
    plan = plan or make_plan(config, dataset)
    groups, untested = plan.groups, plan.untested
    for note in plan.notes:
        reporter.info(f"[yellow]Note:[/yellow] {note}")
    if plan.bad:
        reporter.info(f"[yellow]Skipped {len(plan.bad)} bad files[/yellow] (--skip-bad-files), e.g. {plan.bad[0][1]}")
    if untested:
        reporter.info(f"No model for {len(untested)} machine IDs without test clips in this protocol: "
                      + ", ".join(untested) + (" (their clips still train the other IDs' models as outliers)"
                                               if config["model_per"] == "id-vs-others" else ""))
    settings = settings_from(config)
    if settings.select == "oracle":
        reporter.info("[yellow]select=oracle: the kept checkpoint is chosen on the test set (the authors' protocol); "
                      "its metrics are an upper bound[/yellow]")
    rule = metrics.rule_of(dataset)
    unit = metrics.UNITS[rule]
    result = RunResult([], None, 0, rule, num_samples=num_samples)
    reader = _Reader(dataset, loader_fingerprint(dataset, config), num_samples, config["pad"],
                     np.dtype(np.int16 if plan.exact_int16 else np.float32), device, reporter, config["cache"])
    identity = Identity(config.values, config.hash, plan.data) if checkpoint_dir else None
    for group in groups:
        labels = [class_name(c, unit) for c in group.classes]
        result.label_maps[group.name] = labels
        result.decides[group.name] = [id_name(t, i, unit) for t, i in group.decides]
        reporter.info(f"Model '{group.name}': {len(labels)} classes: " + ", ".join(f"{k}={v}" for k, v in enumerate(labels)))
        frontend = instantiate(plugins, config, "frontend", sample_rate=dataset.sample_rate, num_samples=num_samples)
        fingerprint = feature_cache.frontend_fingerprint(frontend, config.component("frontend"), config.params("frontend"))
        lengths = _Lengths(num_samples)
        train_data = reader.examples(frontend, fingerprint, group, group.train, f"{group.name} train", lengths, reuse=True)
        test_data = (reader.examples(frontend, fingerprint, group, group.test, f"{group.name} test", lengths,
                                     scoring=True) if group.test else None)
        reporter.info(
            f"Clips: {lengths.shortest / dataset.sample_rate:.2f}-{lengths.longest / dataset.sample_rate:.2f} s at "
            f"{dataset.sample_rate} Hz, cut or padded to {seconds:.2f} s ({num_samples} samples): "
            f"{lengths.padded} shorter clips padded (pad={config['pad']}), {lengths.cut} longer clips cut"
        )
        input_shape = tuple(train_data.inputs.shape[1:]) if train_data.features_ready else frontend.output_shape(num_samples)
        train_clips = train_data  # clip by clip, for the training scores that calibrate thresholds
        val_data = None
        if settings.select == "val":
            train_data, val_data = hold_out(train_data, settings.val_fraction, config["seed"])
            if not len(val_data):
                raise AsdbenchError(f"select=val: no class of model '{group.name}' has two training clips, so none can "
                                    "be held out for validation; use select=last")
            reporter.info(f"Model '{group.name}': {len(val_data)} of {len(train_clips)} training clips held out to "
                          "select the checkpoint (select=val)")
        if config["train_unit"] == "frame":
            train_data = _as_frames(train_data)
            val_data = _as_frames(val_data) if val_data is not None else None
            input_shape = tuple(train_data.inputs.shape[1:])
        model, scorer = build_model(plugins, config, frontend, input_shape, len(group.classes))
        if callable(getattr(model.backbone, "fit_input", None)) and train_data.features_ready:
            model.backbone.fit_input(train_data.inputs)  # input statistics (per-band standardisation), before training
        result.n_params = max(result.n_params, count_parameters(model))
        result.input_shapes[group.slug] = input_shape

        framed = config["train_unit"] == "frame"

        def selection_score(evaluated, _group=group, _val=val_data, _scorer=scorer, _data=test_data) -> float:
            if _val is not None:
                return -validation_loss(evaluated, _val, device, FEATURE_BATCH)
            values = score(evaluated, _scorer, _data, device, FEATURE_BATCH, framed)[0].tolist()
            rep = evaluate(list(zip(_group.test, values)), rule) if all(map(math.isfinite, values)) else None
            return float("nan") if rep is None else rep.auc + rep.pauc

        result.selected_epochs[group.name] = train(
            model, train_data, settings, runtime, generator, reporter, group.name,
            lambda epoch, stats, _g=group.name: on_epoch(_g, epoch, stats),
            Slot(checkpoint_dir / f"{group.slug}.pt", identity, resume) if checkpoint_dir and main else None,
            evaluate=selection_score if val_data is not None or test_data is not None else None,
            on_checkpoint=lambda epoch, _g=group.name: on_checkpoint(_g, epoch),
        )
        del train_data
        if not main:
            continue
        decides = set(group.decides)
        own = [i for i, c in enumerate(group.train) if (c.machine_type, c.machine_id) in decides]
        own_clips = train_clips.subset(own)
        own_clips = Examples(own_clips.inputs, target_matrix([group.alternatives(group.train[i]) for i in own]),
                             own_clips.features_ready)  # scored as test clips are: against every class of their ID
        fit_state = {}
        if fitted.fits(scorer):  # fitted on the training embeddings; their scores for the thresholds cross-fitted
            embeddings = embed(model, train_clips, device, FEATURE_BATCH, framed)
            values, crossed = fitted.fit(scorer, embeddings, train_clips.targets, model.loss, own, own_clips.targets)
            values = values.tolist()
            fit_state = fitted.fit_state(embeddings, train_clips.targets)
            if not crossed:
                reporter.info(f"[yellow]Model '{group.name}': a class has a single training clip, so the thresholds "
                              "come from scores of the fit that saw each clip (too low for neighbour scorers)[/yellow]")
        else:
            values = score(model, scorer, own_clips, device, FEATURE_BATCH, framed)[0].tolist()
        for i, value in zip(own, values):
            clip = group.train[i]
            result.train_scores.setdefault((clip.machine_type, clip.machine_id), []).append(value)
        del train_clips
        if test_data is not None:
            values, embeddings = score(model, scorer, test_data, device, FEATURE_BATCH, framed, reporter, group.name)
            result.scores += list(zip(group.test, values.tolist()))
            if embeddings is not None:
                result.embeddings.update(zip(group.test, embeddings.numpy()))
        result.models[group.slug] = {**{k: v.detach().cpu() for k, v in model.state_dict().items()}, **fit_state}
    lengths = reader.lengths
    result.clip_seconds = ((lengths.shortest or 0) / dataset.sample_rate, lengths.longest / dataset.sample_rate)
    result.padded_clips, result.cut_clips = lengths.padded, lengths.cut
    result.bad_files = [(str(c.path), reason) for c, reason in plan.bad]
    check_finite(result)
    result.thresholds = {key: threshold(np.array(values), config["threshold.rule"], config["threshold.q"],
                                        id_name(*key, unit))
                         for key, values in sorted(result.train_scores.items())}
    result.report = evaluate(result.scores, rule, result.thresholds)
    return result


def loader_fingerprint(dataset: Dataset, config: RunConfig) -> str:
    """What the dataset's ``load`` depends on: its plugin, resolved parameters and code (the wave cache key)."""
    return code_fingerprint(unwrap(dataset), config.component("dataset"), config.params("dataset"), dataset.sample_rate)
