"""``asdbench run``: train and evaluate one system, print the table, log it all to MLflow."""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from asdbench.cli.options import complete, config_options, resolve_from_options, several
from asdbench.cli.output import console, err_console, metrics_table, seeds_table, summary_table, warn_plugin_failures
from asdbench.errors import AsdbenchError
from asdbench.registry import normalize


def _parse_seeds(items: list[str]) -> list[int]:
    text = ",".join(items)
    try:
        seeds = [int(s) for s in items]
    except ValueError:
        raise AsdbenchError(f"--seeds expects integers, got '{text}'") from None
    if len(set(seeds)) != len(seeds):
        raise AsdbenchError(f"--seeds expects distinct integers, got '{text}'")
    return seeds


class RunCommand(click.Command):
    """``run --help`` ends with the systems installed (read from the plugin catalog, without importing torch)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from asdbench.catalog import plugin_catalog

        names = ", ".join(e.name for e in plugin_catalog().registry("system"))
        with formatter.section("Systems"):
            indent = " " * formatter.current_indent
            for line in textwrap.wrap(names, formatter.width - formatter.current_indent, break_on_hyphens=False):
                formatter.write(f"{indent}{line}\n")  # a name with a hyphen is never split
            formatter.write_paragraph()
            formatter.write_text("Each one's settable keys and defaults: asdbench config show SYSTEM --keys")


@click.command("run", cls=RunCommand)
@click.argument("system", required=False, shell_complete=complete("system"))
@config_options
@click.option("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI, else MLflow's sqlite:///mlflow.db).")
@click.option("--experiment", default=None, help="MLflow experiment (default: asdbench/<dataset>).")
@click.option("--run-name", default=None, help="MLflow run name (default: <system>-<config hash>).")
@click.option("--seeds", multiple=True, callback=several, metavar="S1,S2,...",
              help="Run once per seed (repeatable, or comma-separated): a parent MLflow run with a child per seed, mean "
              "and std logged on the parent. --seed instead sets the seed of a single run.")
@click.option("--resume", "resume", default=None, metavar="RUN_ID",
              help="Continue an interrupted (KILLED, FAILED or abandoned RUNNING) run from its checkpoints, in the same "
              "MLflow run, with the run's own config (see 'asdbench runs').")
@click.option("--ddp", type=click.IntRange(min=2), default=None, metavar="N",
              help="Train with N processes (torch DistributedDataParallel; one per GPU, or gloo on CPU), as "
              "'torchrun --nproc-per-node N -m asdbench run ...' does; batch_size stays the global batch.")
@click.option("--quiet", "-q", is_flag=True, help="No progress and no messages, only the result (and errors).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the result as one JSON object on stdout (run ID, config hash, every metric) instead of the "
              "table; progress still goes to stderr.")
def run_command(system: str | None, tracking_uri: str | None, experiment: str | None, run_name: str | None,
                seeds: list[str], resume: str | None, ddp: int | None, quiet: bool, as_json: bool, **options) -> None:
    """Train SYSTEM on a dataset, evaluate it, print AUC/pAUC/mAUC and log everything to MLflow."""
    # torch and MLflow load here, not when the module is imported: `asdbench run --help` does not wait for them
    from asdbench import distributed
    from asdbench.data.plan import make_plan
    from asdbench.plugins import get_plugins
    from asdbench.progress import Reporter, reporter_for
    from asdbench.runtime import Runtime, describe_device
    from asdbench.tracking.store import Store
    from asdbench.training.runner import execute

    seed_list = _parse_seeds(seeds) if seeds else None  # a mistyped option fails before any data is read
    if ddp:
        _relaunch_with_torchrun(ddp)
    if distributed.active() and (seeds or resume):
        raise AsdbenchError("a distributed run (torchrun, --ddp) trains one run from the start: no --seeds or --resume")
    started = time.perf_counter()
    plugins = get_plugins()
    warn_plugin_failures(plugins)
    store = Store(tracking_uri, create=resume is None)  # --resume reads a store that must exist
    config = _config(system, resume, seeds, store, options)
    with err_console.status(f"Preparing dataset '{config.component('dataset')}'..."):
        plan = make_plan(plugins, config)
    config, dataset = plan.config, plan.dataset
    if not distributed.is_main():
        execute(plugins, plan, Reporter())  # rank 0 logs and scores
        return
    reporter = reporter_for(err_console, quiet)
    if not quiet:
        err_console.print(
            f"[bold]{config.system}[/bold] on [bold]{dataset.name}[/bold] | config {config.hash} | "
            f"device {describe_device(Runtime.of(config).device)} | precision {config['precision']} | seed {config['seed']}",
            highlight=False,
        )
        err_console.print(summary_table(dataset))
    out = _Output(started, quiet, as_json)
    with _interrupt_note() as opened:
        if seed_list:
            _run_seeds(plugins, plan, reporter, seed_list, store, experiment, run_name, opened, out)
        else:
            _run_once(plugins, plan, reporter, store, experiment, run_name, resume, opened, out)


def _config(system: str | None, resume: str | None, seeds: list[str], store, options: dict):
    """The run's config from the options; with ``--resume``, from the resumed run's logged config."""
    with tempfile.TemporaryDirectory() as tmp:
        if resume:
            if seeds:
                raise AsdbenchError("--resume continues one run; resume the seeds of a --seeds run one by one")
            if options["config_file"]:
                raise AsdbenchError("--resume reads the run's own logged config; --config cannot replace it")
            logged, options["config_file"] = store.resume_source(resume, Path(tmp))
            if system and normalize(system) != logged:
                raise AsdbenchError(f"run {resume} is a run of '{logged}', not '{system}'")
            system = logged
        elif system is None:
            raise AsdbenchError("name a SYSTEM to run (see 'asdbench list system'), or --resume RUN_ID")
        return resolve_from_options(system, **options)


@dataclass(frozen=True)
class _Output:
    started: float  # perf_counter when the command began
    quiet: bool
    as_json: bool

    def wall_s(self) -> float:
        return round(time.perf_counter() - self.started, 1)

    def done(self, what: str) -> None:
        if not self.quiet:
            err_console.print(f"Done in {time.perf_counter() - self.started:.1f} s; {what}", highlight=False)


@contextmanager
def _interrupt_note() -> Iterator[list[str]]:
    """Ctrl-C: say which run was marked KILLED and how to continue it, and exit 130. Yields the list the MLflow runs
    opened are added to."""
    opened: list[str] = []
    try:
        yield opened
    except KeyboardInterrupt as exc:
        from asdbench.cache import checkpoint_dir

        first = opened[0] if opened else None
        where = (f"; MLflow run {first} marked KILLED, checkpoints in {checkpoint_dir(first)}; "
                 f"continue it with `asdbench run --resume {first}`" if first else "")
        err_console.print(f"[red]Interrupted[/red]{where}", highlight=False)
        sys.exit(128 + getattr(exc, "signum", signal.SIGINT))  # 130 for Ctrl-C, 143 for SIGTERM


def _run_seeds(plugins, plan, reporter, seeds: list[int], store, experiment, run_name, opened: list[str],
               out: _Output) -> None:
    from asdbench.training.tracked_run import tracked_seeds

    config, dataset = plan.config, plan.dataset
    group = tracked_seeds(plugins, plan, reporter, seeds, store, experiment, run_name, opened.append)
    if out.as_json:
        _print_json({"run_id": group.parent_run_id, "system": config.system, "dataset": dataset.name,
                     "config_hash": config.hash, "seeds": seeds, "mean": group.mean, "std": group.std, "wall_s": out.wall_s()})
        return
    console.print(seeds_table(group.mean, group.std, len(seeds),
                              f"{config.system} on {dataset.name}, seeds {','.join(map(str, seeds))}"))
    out.done(f"MLflow parent run {group.parent_run_id}")


def _run_once(plugins, plan, reporter, store, experiment, run_name, resume, opened: list[str], out: _Output) -> None:
    from asdbench.training.tracked_run import tracked_execute

    config, dataset = plan.config, plan.dataset
    run = tracked_execute(plugins, plan, reporter, store, experiment, run_name, opened.append, resume_run_id=resume)
    report = run.result.report
    if out.as_json:
        _print_json({"run_id": run.run_id, "system": config.system, "dataset": dataset.name, "config_hash": config.hash,
                     "seed": config["seed"], "metrics": report.flat() if report is not None else {}, "wall_s": out.wall_s()})
        return
    if report is not None:
        oracle = " [yellow](checkpoint selected on the test set: select=oracle)[/yellow]" if config["select"] == "oracle" else ""
        console.print(metrics_table(report, f"{config.system} on {dataset.name}{oracle}"))
    else:
        console.print("No labelled test clips: scores written, no metrics computed.")
    out.done(f"MLflow run {run.run_id}")


def _print_json(data: dict) -> None:
    """One JSON object on stdout (NaN as null: JSON has no NaN)."""
    def clean(value):
        if isinstance(value, float) and value != value:
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    click.echo(json.dumps(clean(data), sort_keys=True))


def _relaunch_with_torchrun(processes: int) -> None:
    """Replace this process by ``torchrun`` starting ``processes`` copies of the same command without ``--ddp``."""
    args, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--ddp":
            skip = True
        elif not arg.startswith("--ddp="):
            args.append(arg)
    os.execv(sys.executable, [sys.executable, "-m", "torch.distributed.run", "--standalone",
                              f"--nproc-per-node={processes}", "-m", "asdbench", *args])
