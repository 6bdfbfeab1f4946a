"""``execute``: a plan's groups -> (features) -> train -> score -> metrics, for any system."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from asdbench import distributed
from asdbench.api import Clip
from asdbench.build import build_frontend, build_model, count_parameters
from asdbench.cache import cache_dir
from asdbench.config import RunConfig
from asdbench.data import feature_cache
from asdbench.data.examples import (
    FEATURE_BATCH,
    Examples,
    Lengths,
    Reader,
    as_float,
    as_frames,
    loader_fingerprint,
    target_matrix,
)
from asdbench.data.groups import UNITS, Group, class_name, id_name
from asdbench.data.plan import Plan
from asdbench.errors import AsdbenchError, described
from asdbench.evaluation import fitted
from asdbench.evaluation.metrics import Report
from asdbench.evaluation.scoring import batch_scores, embed, score_examples, validation_loss
from asdbench.evaluation.summary import evaluate_scores, nonfinite
from asdbench.evaluation.thresholds import threshold
from asdbench.plugins import Plugins
from asdbench.progress import Reporter
from asdbench.runtime import Runtime, model_seed, seed_everything
from asdbench.training.checkpoint import Identity, Slot
from asdbench.training.loop import TrainSettings, held_out_examples, held_out_rows, settings_from, train


@dataclass
class RunResult:
    scores: list[tuple[Clip, float]]
    report: Report | None
    n_params: int
    rule: str = "dcase2020"  # the data set's evaluation rule (asdbench.evaluation.metrics), and so its unit: ID or section
    num_samples: int = 0  # the longest of the models' clip lengths (model_samples)
    model_samples: dict[str, int] = field(default_factory=dict)  # per model: the clip length its clips were cut or padded to
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


class UnscoredRun(AsdbenchError):
    """A run whose models trained but whose scores cannot be reported. Carries the run's result, so the trained
    weights can still be kept (see :func:`asdbench.training.tracked_run.tracked_execute`)."""

    def __init__(self, message: str, result: RunResult) -> None:
        super().__init__(message)
        self.result = result


class NonFiniteScores(UnscoredRun):
    """Scores that are NaN or infinite: no metric can be computed."""


class ScorerFailed(UnscoredRun):
    """The scorer raised while scoring a trained model (a plugin's bug): named with its package."""


def check_finite(result: RunResult) -> None:
    """Raise :class:`NonFiniteScores` naming the machine IDs and how many clips of each, if any score is not finite."""
    problem = nonfinite(result.scores, UNITS[result.rule])
    if problem:
        raise NonFiniteScores(problem, result)


@dataclass
class _Run:
    """What every model of a run shares while it trains: the plan, where its inputs come from, where it writes."""

    plugins: Plugins
    plan: Plan
    reporter: Reporter
    readers: dict[int, Reader]  # one per clip length (a model's, see Plan.samples)
    settings: TrainSettings
    on_epoch: Callable[[str, int, dict[str, float]], None]
    on_checkpoint: Callable[[str, int], None]
    checkpoint_dir: Path | None
    resume: bool
    identity: Identity | None

    @property
    def config(self) -> RunConfig:
        return self.plan.config

    def reader(self, num_samples: int) -> Reader:
        """The reader of clips cut or padded to ``num_samples``."""
        if num_samples not in self.readers:
            plan, config = self.plan, self.plan.config
            self.readers[num_samples] = Reader(
                plan.dataset, loader_fingerprint(plan.dataset, config), num_samples, config["pad"],
                np.dtype(np.int16 if plan.exact_int16 else np.float32), Runtime.of(config).device, self.reporter,
                config["cache"])
        return self.readers[num_samples]


def execute(
    plugins: Plugins,
    plan: Plan,
    reporter: Reporter,
    on_epoch: Callable[[str, int, dict[str, float]], None] = lambda group, epoch, stats: None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    on_checkpoint: Callable[[str, int], None] = lambda group, epoch: None,
) -> RunResult:
    """Train one model per group of ``plan`` and score its test clips; metrics where labels exist.

    The plan's config is resolved for this machine (:func:`~asdbench.data.plan.make_plan`): the device and
    precision a run logs are the ones it trains with. With ``checkpoint_dir`` each model is checkpointed there
    (``on_checkpoint(group, epoch)`` before each write); with ``resume`` too, each continues from its checkpoint, and
    the run ends with exactly the scores an uninterrupted run would have given.
    """
    config, dataset = plan.config, plan.dataset
    runtime = Runtime.of(config)
    runtime.apply()
    distributed.init(runtime.device)
    for note in plan.notes:
        reporter.info(f"[yellow]Note:[/yellow] {note}")
    _report_cache(plan, reporter)
    if plan.bad:
        reporter.info(f"[yellow]Skipped {len(plan.bad)} bad files[/yellow] (--skip-bad-files), e.g. {plan.bad[0][1]}")
    if plan.untested:
        reporter.info(f"No model for {len(plan.untested)} machine IDs without test clips in this protocol: "
                      + ", ".join(plan.untested) + (" (their clips still train the other IDs' models as outliers)"
                                                    if config["model_per"] == "id-vs-others" else ""))
    settings = settings_from(config)
    if settings.select == "oracle":
        reporter.info("[yellow]select=oracle: the kept checkpoint is chosen on the test set (the authors' protocol); "
                      "its metrics are an upper bound[/yellow]")
    rule = plan.rule
    result = RunResult([], None, 0, rule, num_samples=max(plan.samples.values(), default=0))
    run = _Run(plugins, plan, reporter, {}, settings, on_epoch, on_checkpoint, checkpoint_dir, resume,
               Identity(config.values, config.hash, plan.data) if checkpoint_dir else None)
    try:
        for group in plan.groups:
            _train_group(run, group, result)
    finally:
        distributed.finish()  # the last collective is behind: each process leaves the group before it exits
    seen = [r.lengths for r in run.readers.values() if r.lengths.shortest is not None]
    result.clip_seconds = (min((s.shortest for s in seen), default=0) / dataset.sample_rate,
                           max((s.longest for s in seen), default=0) / dataset.sample_rate)
    result.padded_clips, result.cut_clips = sum(s.padded for s in seen), sum(s.cut for s in seen)
    result.bad_files = [(str(c.path), reason) for c, reason in plan.bad]
    check_finite(result)
    unit = UNITS[rule]
    result.thresholds = {key: threshold(np.array(values), config["threshold.rule"], config["threshold.q"],
                                        id_name(*key, unit))
                         for key, values in sorted(result.train_scores.items())}
    result.report = evaluate_scores(result.scores, rule, result.thresholds)
    return result


def _bytes(n: int) -> str:
    return f"{n / 1e9:,.2f} GB" if n >= 1e9 else f"{n / 1e6:,.1f} MB"


def _report_cache(plan: Plan, reporter: Reporter) -> None:
    """What the run may write into the cache, against the space free there: a disk that fills stops a run midway."""
    waves, features = plan.cache_bytes
    if not waves + features:
        return
    folder = cache_dir()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    line = (f"Cache: up to {_bytes(waves)} of decoded waves and {_bytes(features)} of features for this run, "
            f"{_bytes(free)} free at {folder}")
    if waves + features > free:
        line = (f"[yellow]{line}: more than is free; free space there, point ASDBENCH_CACHE at another disk, or "
                "--set cache=false[/yellow]")
    reporter.info(line)


def _train_group(run: _Run, group: Group, result: RunResult) -> None:
    """Train ``group``'s model, then (on the main process) score its training clips for the thresholds and its
    test clips, into ``result``. The model draws from a random stream of its own (:func:`asdbench.runtime.model_seed`):
    its weights, batch order and augmentation are those of this seed and this model, whatever else the run trains."""
    config, dataset, reporter, device = run.config, run.plan.dataset, run.reporter, Runtime.of(run.config).device
    generator = seed_everything(model_seed(config["seed"], group.name))
    unit = UNITS[run.plan.rule]
    labels = [class_name(c, unit) for c in group.classes]
    result.label_maps[group.name] = labels
    result.decides[group.name] = [id_name(t, i, unit) for t, i in group.decides]
    reporter.info(f"Model '{group.name}': {len(labels)} classes: " + ", ".join(f"{k}={v}" for k, v in enumerate(labels)))
    num_samples = run.plan.samples[group.name]
    result.model_samples[group.slug] = num_samples
    reader = run.reader(num_samples)
    frontend = build_frontend(run.plugins, config, dataset.sample_rate, num_samples, reader.microphones)
    fingerprint = feature_cache.frontend_fingerprint(frontend, config.component("frontend"), config.params("frontend"))
    lengths = Lengths(num_samples)
    train_data = reader.examples(frontend, fingerprint, group, group.train, f"{group.name} train", lengths, reuse=True)
    test_data = (reader.examples(frontend, fingerprint, group, group.test, f"{group.name} test", lengths,
                                 scoring=True) if group.test else None)
    reporter.info(
        f"Clips: {lengths.shortest / dataset.sample_rate:.2f}-{lengths.longest / dataset.sample_rate:.2f} s at "
        f"{dataset.sample_rate} Hz, cut or padded to {num_samples / dataset.sample_rate:.2f} s ({num_samples} "
        f"samples): {lengths.padded} shorter clips padded (pad={config['pad']}), {lengths.cut} longer clips cut"
    )
    input_shape = train_data.example_shape if train_data.features_ready else frontend.output_shape(num_samples)
    train_clips = train_data  # clip by clip, for the training scores that calibrate thresholds
    hold_out = config["hold_out"] if config["hold_out"] != "none" or run.settings.select != "val" else "clips"
    val_data, kept = None, list(range(len(train_data)))
    if hold_out == "clips":
        kept, held = held_out_rows(train_data.targets, run.settings.val_fraction, config["seed"])
        train_data, val_data = train_data.subset(kept), train_data.subset(held)
        if not len(val_data):
            raise AsdbenchError(f"hold_out=clips: no class of model '{group.name}' has two training clips, so none can "
                                "be held out; use select=last, hold_out=none")
        reporter.info(f"Model '{group.name}': {len(val_data)} of {len(train_clips)} training clips held out "
                      f"{_held_for(config)}")
    augmentation = run.plan.augmentation
    if augmentation is not None and augmentation.stage == "waves":
        train_data = _with_augmented_clips(run, group, reader, frontend, train_data, [group.train[i] for i in kept])
    framed = config["train_unit"] == "frame"
    if framed:
        train_data = as_frames(train_data)
        val_data = as_frames(val_data) if val_data is not None else None
        input_shape = train_data.example_shape
    if hold_out == "examples":
        kept, held = held_out_examples(len(train_data), run.settings.val_fraction, config["seed"])
        if not kept or not held:
            raise AsdbenchError(f"hold_out=examples: model '{group.name}' has {len(train_data)} training examples, "
                                f"too few to hold out val_fraction={run.settings.val_fraction} of them and train on "
                                "the rest")
        reporter.info(f"Model '{group.name}': {len(held)} of {len(train_data)} training examples held out "
                      f"{_held_for(config)}")
        train_data, val_data = train_data.subset(kept), train_data.subset(held)
    model, scorer = build_model(run.plugins, config, frontend, input_shape, len(group.classes))
    if callable(getattr(model.backbone, "fit_input", None)) and train_data.features_ready:
        model.backbone.fit_input(train_data.all_inputs())  # input statistics (per-band standardisation), before training
    result.n_params = max(result.n_params, count_parameters(model))
    result.input_shapes[group.slug] = input_shape

    def selection_score(evaluated) -> float:
        if run.settings.select == "val":
            return -validation_loss(evaluated, val_data, device, FEATURE_BATCH)
        try:
            values = score_examples(evaluated, scorer, test_data, device, FEATURE_BATCH, framed)[0].tolist()
        except AsdbenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's scorer may raise anything: name it, not a traceback
            raise AsdbenchError(f"{_scorer_named(run)} failed while select={config['select']} scored model "
                                f"'{group.name}' for checkpoint selection: {described(exc)}; fix the scorer, then "
                                "--resume the run from its last checkpoint") from None
        rep = evaluate_scores(list(zip(group.test, values)), run.plan.rule) if all(map(math.isfinite, values)) else None
        return float("nan") if rep is None else rep.auc + rep.pauc

    main = distributed.is_main()  # in a distributed run, the other processes train their shares and score nothing
    if config["epochs"] == 0:  # nothing to train (checked by the plan): the scorer fits the outputs as they are
        reporter.info(f"Model '{group.name}': nothing to train (epochs=0); its scorer is fitted on the training clips")
        result.selected_epochs[group.name] = 0
    else:
        result.selected_epochs[group.name] = train(
            model, train_data, run.settings, Runtime.of(config), generator, reporter, group.name,
            lambda epoch, stats: run.on_epoch(group.name, epoch, stats),
            Slot(run.checkpoint_dir / f"{group.slug}.pt", run.identity, run.resume) if run.checkpoint_dir and main else None,
            select_score=selection_score if val_data is not None or test_data is not None else None,
            on_checkpoint=lambda epoch: run.on_checkpoint(group.name, epoch),
            augmentation=augmentation if augmentation is not None and augmentation.stage != "waves" else None,
            classes=len(group.classes),
        )
    if not main:
        return
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    try:
        fit_state = _threshold_scores(run, group, model, scorer, _Trained(train_clips, train_data, val_data), framed,
                                      result)
        del train_clips, train_data
        if test_data is not None:
            values, embeddings = score_examples(model, scorer, test_data, device, FEATURE_BATCH, framed, reporter,
                                                group.name)
            result.scores += list(zip(group.test, values.tolist()))
            if embeddings is not None:
                result.embeddings.update(zip(group.test, embeddings.numpy()))
    except AsdbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin's scorer may raise anything; the trained weights are kept
        result.models[group.slug] = weights
        raise ScorerFailed(f"{_scorer_named(run)} failed on model '{group.name}': {described(exc)}", result) from None
    result.models[group.slug] = {**weights, **fit_state}


def _held_for(config: RunConfig) -> str:
    uses = (["to select the checkpoint (select=val)"] if config["select"] == "val" else []) + (
        ["for the thresholds (threshold.scores=batches)"] if config["threshold.scores"] == "batches" else [])
    return " and ".join(uses) or "(never trained on)"


@dataclass
class _Trained:
    """A model's training data after training: its clips (for the thresholds' clip scores), the examples it trained
    on (what a scorer fits on) and those held out of training."""

    clips: Examples
    examples: Examples
    held: Examples | None


def _with_augmented_clips(run: _Run, group: Group, reader: Reader, frontend, train_data: Examples,
                          clips: list[Clip]) -> Examples:
    """``train_data`` (the clips ``clips``, as trained on: no held-out clip) and the clips a wave augmentation makes
    of them, drawn from a stream of this model's own: the same in every run and resume of this seed."""
    label = f"{group.name} train, {run.config.component('augmentation')}"
    waves = as_float(reader.waves(tuple(clips), f"{group.name} train")[0])
    generator = torch.Generator().manual_seed(model_seed(run.config["seed"], f"{group.name}\0augmentation"))
    try:
        made, source = run.plan.augmentation(waves, clips, generator)
    except AsdbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin's own error: name it, not a traceback
        raise AsdbenchError(f"augmentation '{run.config.component('augmentation')}' failed on model '{group.name}': "
                            f"{described(exc)}") from None
    extra = reader.examples_of_waves(frontend, made.float(), train_data.targets[source], label,
                                     None if train_data.domains is None else train_data.domains[source])
    run.reporter.info(f"Model '{group.name}': {len(extra)} augmented clips ({run.config.component('augmentation')}) "
                      f"join its {len(clips)} training clips")
    return train_data.joined(extra)


def _scorer_named(run: _Run) -> str:
    name = run.config.component("scorer")
    return f"the scorer '{name}' of package {run.plugins.registry('scorer').get(name).package}"


def _threshold_scores(run: _Run, group: Group, model, scorer, trained: _Trained, framed: bool,
                      result: RunResult) -> dict[str, torch.Tensor]:
    """Score the training clips of the IDs ``group`` decides for (their thresholds come from these; with
    ``threshold.scores=batches``, batches of its training and held-out frames), fitting the scorer first where it
    fits; the fit's state, to keep with the weights."""
    device, train_clips = Runtime.of(run.config).device, trained.clips
    decides = set(group.decides)
    own = [i for i, c in enumerate(group.train) if (c.machine_type, c.machine_id) in decides]
    own_clips = train_clips.subset(own)
    # scored as test clips are: against every class of their ID
    own_clips = own_clips.with_targets(target_matrix([group.alternatives(group.train[i]) for i in own]))
    fit_state, values = {}, None
    if fitted.fits(scorer):  # fitted on the training embeddings; their scores for the thresholds cross-fitted
        embeddings = embed(model, train_clips, device, FEATURE_BATCH, framed)
        domains = train_clips.example_domains()
        crossed_values, crossed = fitted.fit(scorer, embeddings, train_clips.targets, model.loss, own,
                                             own_clips.targets, domains)
        values = crossed_values.tolist()
        fit_state = fitted.fit_state(embeddings, train_clips.targets, domains)
        if not crossed:
            run.reporter.info(f"[yellow]Model '{group.name}': a class has a single training clip, so the thresholds "
                              "come from scores of the fit that saw each clip (too low for neighbour scorers)[/yellow]")
    elif fitted.fits_outputs(scorer):  # fitted on the model's outputs over the examples it trained on, with domains
        fit_state = fitted.fit_outputs(scorer, model, trained.examples, device, run.settings.batch_size,
                                       run.config["seed"])
    if run.config["threshold.scores"] == "batches":
        size, seed = run.settings.batch_size, run.config["seed"]
        values = batch_scores(model, scorer, trained.examples, device,
                              fitted.shuffled_batches(len(trained.examples), size, seed))
        if trained.held is not None:
            values += batch_scores(model, scorer, trained.held, device,
                                   [idx for idx in torch.arange(len(trained.held)).split(size) if len(idx) > 1])
        for machine in group.decides:  # one threshold per model (the official: a model per section)
            result.train_scores.setdefault(machine, []).extend(values)
        return fit_state
    if values is None:
        values = score_examples(model, scorer, own_clips, device, FEATURE_BATCH, framed)[0].tolist()
    for i, value in zip(own, values):
        clip = group.train[i]
        result.train_scores.setdefault((clip.machine_type, clip.machine_id), []).append(value)
    return fit_state
