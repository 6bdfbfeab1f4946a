"""One tracked run: the runner inside an MLflow run, with every artifact logged at the end.

The CLI's ``asdbench run``, a sweep's tasks and the scripts in ``benchmarks/`` all call
:func:`tracked_execute` with a :class:`~asdbench.data.plan.Plan` they made, so a benchmark run is
logged exactly like a user's run.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asdbench import distributed
from asdbench.cache import checkpoint_dir
from asdbench.data.plan import Plan, clip_summary
from asdbench.errors import AsdbenchError
from asdbench.evaluation import results
from asdbench.evaluation.artifacts import draw_figures, write_result_files
from asdbench.evaluation.summary import aggregate
from asdbench.plugins import Plugins
from asdbench.progress import Reporter
from asdbench.runtime import Runtime, describe_device
from asdbench.serving.bundle import manifest, write_bundle, write_mlflow_model, write_weights
from asdbench.tracking.comparability import TAG, comparability_key
from asdbench.tracking.store import Store, Tracker, environment_changes, run_tags
from asdbench.training.runner import RunResult, UnscoredRun, execute


@dataclass(frozen=True)
class TrackedRun:
    run_id: str
    tracking_uri: str
    result: RunResult


def _tags(plan: Plan, role: str) -> dict[str, str]:
    """Tags of a planned run, with its comparability key."""
    config = plan.config
    extra = {"asdbench.select": config["select"], "asdbench.role": role, "asdbench.precision": config["precision"],
             "asdbench.processes": str(distributed.world_size()),
             "asdbench.data": plan.data, TAG: json.dumps(comparability_key(config, plan.data), separators=(",", ":"))}
    return run_tags(config.system, plan.dataset.name, describe_device(Runtime.of(config).device), config.hash, extra)


def write_artifacts(folder: Path, result: RunResult, plan: Plan, bundle_manifest: dict) -> None:
    """Everything a run leaves behind, in one folder logged at the end (a failed run logs none of it)."""
    write_result_files(folder, result.scores, result.report, result.thresholds, result.rule, result.embeddings)
    dataset = plan.dataset
    results.write_clip_summary(folder / "data_summary.csv", clip_summary(dataset.clips("train"), dataset.clips("test")))
    (folder / "label_map.json").write_text(json.dumps(result.label_maps, indent=2) + "\n")
    if result.bad_files:
        results.write_bad_files(folder / "bad_files.csv", result.bad_files)
    with tempfile.TemporaryDirectory() as tmp:
        write_mlflow_model(folder / "model", write_bundle(Path(tmp) / "bundle", bundle_manifest, result.models))


class _EpochLog:
    """Per-epoch metrics, held until the checkpoint that covers them is written: a resumed run then skips the
    epochs already logged (those a crash between the log and the checkpoint write would repeat), so no epoch is
    logged twice or lost."""

    def __init__(self, tracker: Tracker, single_group: bool, resumed: bool) -> None:
        self.tracker, self.single_group, self.resumed = tracker, single_group, resumed
        self.pending: dict[str, list[tuple[int, dict[str, float]]]] = {}
        self.logged: dict[str, set[int]] = {}

    def add(self, group: str, epoch: int, stats: dict[str, float]) -> None:
        self.pending.setdefault(group, []).append((epoch, stats))

    def flush(self, group: str, _epoch: int) -> None:  # every pending epoch is in the checkpoint about to be written
        if self.resumed and group not in self.logged:
            self.logged[group] = self.tracker.logged_epochs(group, self.single_group)
        for epoch, stats in self.pending.pop(group, []):
            if epoch not in self.logged.get(group, ()):
                self.tracker.log_epoch(group, epoch, stats, self.single_group)


def _log_result(tracker: Tracker, plugins: Plugins, plan: Plan, result: RunResult, reporter: Reporter) -> None:
    """A finished run's parameters measured on the way, metrics and artifacts, and then its figures: whatever
    becomes of those, the results are logged."""
    tracker.log_params({
        "n_params": result.n_params,
        "n_models": len(result.models),
        "n_classes": max(len(labels) for labels in result.label_maps.values()),
        "data.shortest_clip_s": round(result.clip_seconds[0], 3),
        "data.longest_clip_s": round(result.clip_seconds[1], 3),
        "data.padded_clips": result.padded_clips,
        "data.cut_clips": result.cut_clips,
        "data.bad_files": len(result.bad_files),
    })
    tracker.log_metrics({f"selected_epoch/{group}": epoch for group, epoch in result.selected_epochs.items()})
    with tempfile.TemporaryDirectory() as tmp:
        write_artifacts(Path(tmp), result, plan, manifest(plan.config, plugins, result, plan.dataset.sample_rate,
                                                          result.num_samples, tracker.run_id))
        tracker.log_artifacts(Path(tmp))
        if result.report is not None:
            tracker.log_metrics(result.report.flat())
            tracker.set_tag("mlflow.note.content", results.metrics_markdown(result.report))
        draw_figures(Path(tmp), result.rule, tracker.log_artifacts,
                     lambda message: reporter.info(f"[yellow]Note:[/yellow] {message}"))


def tracked_execute(
    plugins: Plugins,
    plan: Plan,
    reporter: Reporter,
    store: Store,
    experiment: str | None = None,
    run_name: str | None = None,
    on_start: Callable[[str], None] = lambda run_id: None,
    parent_run_id: str | None = None,
    resume_run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> TrackedRun:
    """Train and evaluate ``plan`` inside an MLflow run of ``store`` that ends FINISHED, FAILED or KILLED.

    A run whose scores are not finite ends FAILED with its trained weights logged (``model/``): training time is
    not lost to it. ``resume_run_id`` continues an interrupted run in the same MLflow run, from its checkpoints.
    ``tags``: more MLflow tags (a sweep's name).
    """
    config = plan.config
    with store.open_run(plan.dataset.name, experiment, run_name or f"{config.system}-{config.hash[:7]}",
                        {**_tags(plan, "run"), **(tags or {})}, parent_run_id, resume_run_id) as tracker:
        reporter.info(f"MLflow run {tracker.run_id} in {store.uri}" + (" (resumed)" if resume_run_id else ""))
        changed = environment_changes(store.run(tracker.run_id).data.tags) if resume_run_id else []
        if changed:
            reporter.info(f"Note: resumed with other package versions than the run started with ({', '.join(changed)}): "
                          "its numbers may differ from an uninterrupted run's")
        on_start(tracker.run_id)
        if not resume_run_id:
            tracker.log_params(config.values)
            tracker.log_text(config.to_toml(), "config.resolved.toml")
        epochs = _EpochLog(tracker, config["model_per"] == "all", resume_run_id is not None)
        try:
            result = execute(plugins, plan, reporter, on_epoch=epochs.add, checkpoint_dir=checkpoint_dir(tracker.run_id),
                             resume=resume_run_id is not None, on_checkpoint=epochs.flush)
        except UnscoredRun as exc:  # scores not finite, or a scorer that failed: the trained weights are kept
            with tempfile.TemporaryDirectory() as tmp:
                write_weights(Path(tmp) / "model", exc.result.models)
                tracker.log_artifacts(Path(tmp))
            raise AsdbenchError(f"{exc}; the trained weights are logged with MLflow run {tracker.run_id} (model/)") from None
        _log_result(tracker, plugins, plan, result, reporter)
    # The run finished and its final weights are artifacts: its checkpoints are kept only for runs that did not.
    shutil.rmtree(checkpoint_dir(tracker.run_id), ignore_errors=True)
    return TrackedRun(tracker.run_id, store.uri, result)


@dataclass(frozen=True)
class TrackedSeeds:
    parent_run_id: str
    runs: tuple[TrackedRun, ...]
    mean: dict[str, float]
    std: dict[str, float]


def tracked_seeds(
    plugins: Plugins,
    plan: Plan,
    reporter: Reporter,
    seeds: list[int],
    store: Store,
    experiment: str | None = None,
    run_name: str | None = None,
    on_start: Callable[[str], None] = lambda run_id: None,
) -> TrackedSeeds:
    """One parent MLflow run with a child run per seed, all of one plan; the parent gets ``mean/<metric>`` and
    ``std/<metric>`` (MLflow does not aggregate runs by itself) and ``n_runs``."""
    config = plan.config
    with store.open_run(plan.dataset.name, experiment, run_name or f"{config.system}-{config.hash[:7]}-seeds",
                        _tags(plan, "seeds")) as parent:
        on_start(parent.run_id)
        parent.log_params({**{k: v for k, v in config.values.items() if k != "seed"},
                           "seeds": ",".join(map(str, seeds)), "n_runs": len(seeds)})
        runs = tuple(tracked_execute(plugins, plan.with_seed(seed), reporter, store, experiment, f"seed-{seed}",
                                     parent_run_id=parent.run_id)
                     for seed in seeds)
        mean, std = aggregate([r.result.report.flat() for r in runs if r.result.report is not None])
        parent.log_metrics({f"mean/{k}": v for k, v in mean.items()})
        parent.log_metrics({f"std/{k}": v for k, v in std.items()})
    return TrackedSeeds(parent.run_id, runs, mean, std)
