"""``asdbench run``: train and evaluate one system, print the table, log it all to MLflow."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import click
import torch
from rich.table import Table

from asdbench.cache import cache_dir
from asdbench.cli.options import config_options, resolve_from_options
from asdbench.cli.output import console, err_console, metrics_table, warn_plugin_failures
from asdbench.config import RunConfig
from asdbench.plugins import get_plugins
from asdbench.progress import RichReporter
from asdbench.runner import RunResult, clip_summary, execute, load_dataset
from asdbench.runtime import describe_device, pick_device
from asdbench import results, tracking


def _summary_table(dataset) -> Table:
    table = Table(title=f"Data: {dataset.describe()}", title_justify="left", show_edge=False)
    for col in ("machine type", "ID", "train", "test normal", "test anomaly", "test unlabelled"):
        table.add_column(col, justify="left" if col in ("machine type", "ID") else "right")
    for (mtype, mid), row in clip_summary(dataset.clips("train"), dataset.clips("test")).items():
        table.add_row(mtype, mid, *(str(row[k]) for k in ("train", "test_normal", "test_anomaly", "test_unlabelled")))
    return table


def write_artifacts(folder: Path, config: RunConfig, result: RunResult) -> None:
    """Everything a run leaves behind, in one folder logged at the end (a failed run logs none of it)."""
    results.write_score_csvs(folder / "scores", result.scores)
    if result.report is not None:
        results.write_result_csv(folder / "result.csv", result.report)
        (folder / "metrics.md").write_text(results.metrics_markdown(result.report))
        (folder / "metrics.json").write_text(results.metrics_json(result.report))
    (folder / "model").mkdir()
    for slug, state in result.models.items():
        torch.save(state, folder / "model" / f"{slug}.pt")


@click.command("run")
@click.argument("system")
@config_options
@click.option("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI, else MLflow's sqlite:///mlflow.db).")
@click.option("--experiment", default=None, help="MLflow experiment (default: asdbench/<dataset>).")
@click.option("--run-name", default=None, help="MLflow run name (default: <system>-<config hash>).")
def run_command(system: str, tracking_uri: str | None, experiment: str | None, run_name: str | None, **options) -> None:
    """Train SYSTEM on a dataset, evaluate it, print AUC/pAUC/mAUC and log everything to MLflow."""
    started = time.perf_counter()
    plugins = get_plugins()
    warn_plugin_failures(plugins)
    config = resolve_from_options(system, **options)
    device = pick_device(config["device"])
    with err_console.status(f"Preparing dataset '{config.component('dataset')}'..."):
        dataset = load_dataset(plugins, config)
    err_console.print(
        f"[bold]{config.system}[/bold] on [bold]{dataset.name}[/bold] | config {config.hash} | "
        f"device {describe_device(device)} | seed {config['seed']}",
        highlight=False,
    )
    err_console.print(_summary_table(dataset))

    tags = tracking.run_tags(config.system, dataset.name, describe_device(device), config.hash)
    reporter = RichReporter(err_console)
    run_id = None
    single_group = config["model_per"] == "all"
    try:
        with tracking.tracked_run(
            tracking_uri, experiment or tracking.experiment_name(dataset.name), run_name or f"{config.system}-{config.hash[:7]}", tags
        ) as tracker:
            run_id = tracker.run_id
            err_console.print(f"MLflow run {run_id} in {tracking.resolve_tracking_uri(tracking_uri)}", highlight=False)
            tracker.log_params(config.values)
            tracker.log_text(config.to_toml(), "config.resolved.toml")
            result = execute(
                plugins, config, dataset, reporter,
                on_epoch=lambda group, epoch, stats: tracker.log_epoch(group, epoch, stats, single_group),
                checkpoint_dir=cache_dir() / "runs" / run_id / "checkpoints",
            )
            tracker.log_params({"n_params": result.n_params, "n_models": len(result.models)})
            with tempfile.TemporaryDirectory() as tmp:
                write_artifacts(Path(tmp), config, result)
                tracker.log_artifacts(Path(tmp))
            if result.report is not None:
                tracker.log_metrics(result.report.flat())
                tracker.set_tag("mlflow.note.content", results.metrics_markdown(result.report))
    except KeyboardInterrupt:
        where = f"; MLflow run {run_id} marked KILLED, checkpoints in {cache_dir() / 'runs' / run_id}" if run_id else ""
        err_console.print(f"[red]Interrupted[/red]{where}", highlight=False)
        sys.exit(130)

    if result.report is not None:
        console.print(metrics_table(result.report, f"{config.system} on {dataset.name}"))
    else:
        console.print("No labelled test clips: scores written, no metrics computed.")
    err_console.print(f"Done in {time.perf_counter() - started:.1f} s; MLflow run {run_id}", highlight=False)
