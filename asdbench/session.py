"""One tracked run: the runner inside an MLflow run, with every artifact logged at the end.

The CLI's ``asdbench run`` and the scripts in ``benchmarks/`` both call
:func:`tracked_execute`, so a benchmark run is logged exactly like a user's run.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asdbench import distributed, figures, results, tracking
from asdbench.bundle import manifest, write_bundle, write_mlflow_model, write_weights
from asdbench.api import Dataset
from asdbench.cache import cache_dir
from asdbench.comparability import TAG, comparability_key
from asdbench.compare import aggregate
from asdbench.config import RunConfig
from asdbench.errors import AsdbenchError
from asdbench.metrics import UNITS
from asdbench.plugins import Plugins
from asdbench.progress import Reporter
from asdbench.plan import Plan, make_plan
from asdbench.runner import NonFiniteScores, RunResult, clip_summary, execute
from asdbench.runtime import Runtime, describe_device, resolve_runtime


@dataclass(frozen=True)
class TrackedRun:
    run_id: str
    tracking_uri: str
    result: RunResult


def _tags(config: RunConfig, dataset: Dataset, role: str, data: str) -> dict[str, str]:
    """Tags of a run whose config is resolved (:func:`resolve_runtime`), with its comparability key."""
    extra = {"asdbench.select": config["select"], "asdbench.role": role, "asdbench.precision": config["precision"],
             "asdbench.processes": str(distributed.world_size()),
             "asdbench.data": data, TAG: json.dumps(comparability_key(config, data), separators=(",", ":"))}
    return tracking.run_tags(config.system, dataset.name, describe_device(Runtime.of(config).device), config.hash, extra)


def checkpoint_dir(run_id: str) -> Path:
    return cache_dir() / "runs" / run_id / "checkpoints"


def write_result_files(folder: Path, scores: list, report, thresholds: dict[tuple[str, str], float], rule: str,
                       embeddings: dict | None = None) -> None:
    """The files of a set of scored test clips, for a training run and ``asdbench eval`` alike: the official score
    and decision files of the data set's ``rule`` (``scores/``), every clip's score, and where labels exist the
    metrics and figures (unless switched off: :func:`asdbench.figures.wanted`)."""
    results.write_official(folder / "scores", scores, thresholds, rule)
    results.write_clip_scores(folder / "clip_scores.csv", scores)
    saved = None
    if embeddings and len(embeddings) == len(scores):
        saved = results.write_embeddings(folder / "embeddings.npz", embeddings)
    if report is not None:
        if figures.wanted():
            figures.write_figures(folder / "figures", folder / "clip_scores.csv", saved, UNITS[rule])
        results.write_result_csv(folder / "result.csv", report)
        (folder / "metrics.md").write_text(results.metrics_markdown(report))
        (folder / "metrics.json").write_text(results.metrics_json(report))


def write_artifacts(folder: Path, result: RunResult, dataset: Dataset, bundle_manifest: dict) -> None:
    """Everything a run leaves behind, in one folder logged at the end (a failed run logs none of it)."""
    write_result_files(folder, result.scores, result.report, result.thresholds, result.rule, result.embeddings)
    results.write_clip_summary(folder / "data_summary.csv", clip_summary(dataset.clips("train"), dataset.clips("test")))
    (folder / "label_map.json").write_text(json.dumps(result.label_maps, indent=2) + "\n")
    if result.bad_files:
        results.write_bad_files(folder / "bad_files.csv", result.bad_files)
    with tempfile.TemporaryDirectory() as tmp:
        write_mlflow_model(folder / "model", write_bundle(Path(tmp) / "bundle", bundle_manifest, result.models))


def tracked_execute(
    plugins: Plugins,
    config: RunConfig,
    dataset: Dataset,
    reporter: Reporter,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
    on_start: Callable[[str], None] = lambda run_id: None,
    parent_run_id: str | None = None,
    resume_run_id: str | None = None,
    plan: Plan | None = None,
    tags: dict[str, str] | None = None,
) -> TrackedRun:
    """Train and evaluate inside an MLflow run that ends FINISHED, FAILED or KILLED.

    Device and precision are resolved here, once, before anything is logged. A run whose scores are not
    finite ends FAILED with its trained weights logged (``model/``): training time is not lost to it.

    ``resume_run_id`` continues an interrupted run in the same MLflow run, from its checkpoints. Per-epoch
    metrics are logged just before a checkpoint covers them, and a resumed run skips the epochs already logged
    (those a crash between the log and the checkpoint write would repeat): no epoch is logged twice or lost.
    ``plan``: the run's :class:`~asdbench.plan.Plan` when the caller checked the data already (seeds share one).
    ``tags``: more MLflow tags (a sweep's name).
    """
    config = resolve_runtime(config)
    plan = plan or make_plan(config, dataset)  # a run that cannot work fails here, before an MLflow run is opened
    tags = {**_tags(config, dataset, "run", plan.data), **(tags or {})}
    uri = tracking.resolve_tracking_uri(tracking_uri)
    single_group = config["model_per"] == "all"
    with tracking.tracked_run(
        uri, experiment or tracking.experiment_name(dataset.name), run_name or f"{config.system}-{config.hash[:7]}", tags,
        parent_run_id, resume_run_id,
    ) as tracker:
        reporter.info(f"MLflow run {tracker.run_id} in {uri}" + (" (resumed)" if resume_run_id else ""))
        changed = tracking.environment_changes(tracker.client.get_run(tracker.run_id).data.tags) if resume_run_id else []
        if changed:
            reporter.info(f"Note: resumed with other package versions than the run started with ({', '.join(changed)}): "
                          "its numbers may differ from an uninterrupted run's")
        on_start(tracker.run_id)
        if not resume_run_id:
            tracker.log_params(config.values)
            tracker.log_text(config.to_toml(), "config.resolved.toml")
        pending: dict[str, list[tuple[int, dict[str, float]]]] = {}
        logged: dict[str, set[int]] = {}

        def flush(group: str, _epoch: int) -> None:  # every pending epoch is in the checkpoint about to be written
            if resume_run_id and group not in logged:
                logged[group] = tracker.logged_epochs(group, single_group)
            for epoch, stats in pending.pop(group, []):
                if epoch not in logged.get(group, ()):
                    tracker.log_epoch(group, epoch, stats, single_group)

        try:
            result = execute(
                plugins, config, dataset, reporter,
                on_epoch=lambda group, epoch, stats: pending.setdefault(group, []).append((epoch, stats)),
                checkpoint_dir=checkpoint_dir(tracker.run_id),
                resume=resume_run_id is not None,
                on_checkpoint=flush,
                plan=plan,
            )
        except NonFiniteScores as exc:
            with tempfile.TemporaryDirectory() as tmp:
                write_weights(Path(tmp) / "model", exc.result.models)
                tracker.log_artifacts(Path(tmp))
            raise AsdbenchError(f"{exc}; the trained weights are logged with MLflow run {tracker.run_id} (model/)") from None
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
            write_artifacts(Path(tmp), result, dataset,
                            manifest(config, plugins, result, dataset.sample_rate, result.num_samples, tracker.run_id))
            tracker.log_artifacts(Path(tmp))
        if result.report is not None:
            tracker.log_metrics(result.report.flat())
            tracker.set_tag("mlflow.note.content", results.metrics_markdown(result.report))
    # The run finished and its final weights are artifacts: its checkpoints are kept only for runs that did not.
    shutil.rmtree(checkpoint_dir(tracker.run_id), ignore_errors=True)
    return TrackedRun(tracker.run_id, uri, result)


def resume_source(tracking_uri: str | None, run_id: str, folder: Path) -> tuple[str, Path]:
    """The system of an asdbench run and its logged ``config.resolved.toml`` (downloaded into ``folder``): what
    ``--resume`` rebuilds the run's config from."""
    client = tracking.client(tracking_uri)
    try:
        run = client.get_run(run_id)
    except Exception:  # noqa: BLE001 - MLflow raises several types for an unknown id
        raise AsdbenchError(f"no MLflow run {run_id} in {client.tracking_uri} (see `asdbench runs`)") from None
    system = run.data.tags.get("asdbench.system")
    if not system or run.data.tags.get("asdbench.role", "run") != "run":
        raise AsdbenchError(f"run {run_id} is not a run of `asdbench run` (a --seeds parent is resumed seed by seed)")
    try:
        path = client.download_artifacts(run_id, "config.resolved.toml", str(folder))
    except Exception:  # noqa: BLE001
        raise AsdbenchError(f"run {run_id} has no config.resolved.toml artifact to resume from") from None
    return system, Path(path)


@dataclass(frozen=True)
class TrackedSeeds:
    parent_run_id: str
    runs: tuple[TrackedRun, ...]
    mean: dict[str, float]
    std: dict[str, float]


def tracked_seeds(
    plugins: Plugins,
    config: RunConfig,
    dataset: Dataset,
    reporter: Reporter,
    seeds: list[int],
    tracking_uri: str | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
    on_start: Callable[[str], None] = lambda run_id: None,
) -> TrackedSeeds:
    """One parent MLflow run with a child run per seed; the parent gets ``mean/<metric>`` and ``std/<metric>``
    (MLflow does not aggregate runs by itself) and ``n_runs``."""
    config = resolve_runtime(config)
    plan = make_plan(config, dataset)  # a run that cannot work fails before the parent run is opened; seeds share it
    uri = tracking.resolve_tracking_uri(tracking_uri)
    name = run_name or f"{config.system}-{config.hash[:7]}-seeds"
    with tracking.tracked_run(uri, experiment or tracking.experiment_name(dataset.name), name,
                              _tags(config, dataset, "seeds", plan.data)) as parent:
        on_start(parent.run_id)
        parent.log_params({**{k: v for k, v in config.values.items() if k != "seed"},
                           "seeds": ",".join(map(str, seeds)), "n_runs": len(seeds)})
        runs = tuple(
            tracked_execute(plugins, config.replace(seed=seed), dataset, reporter, uri, experiment,
                            f"seed-{seed}", parent_run_id=parent.run_id, plan=plan)
            for seed in seeds
        )
        mean, std = aggregate([r.result.report.flat() for r in runs if r.result.report is not None])
        parent.log_metrics({f"mean/{k}": v for k, v in mean.items()})
        parent.log_metrics({f"std/{k}": v for k, v in std.items()})
    return TrackedSeeds(parent.run_id, runs, mean, std)
