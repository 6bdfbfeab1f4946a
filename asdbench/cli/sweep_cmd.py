"""``asdbench sweep SUITE.toml``: a grid of runs on Ray, one progress bar, a line per run, the compare table at the end."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from asdbench.cli.compare_cmd import compare_command
from asdbench.cli.output import console, err_console
from asdbench.errors import AsdbenchError

MARKS = {"finished": "[green]done[/green]", "resumed": "[green]resumed, done[/green]", "skipped": "[dim]skipped[/dim]",
         "failed": "[red]FAILED[/red]"}


@click.command("sweep")
@click.argument("suite_file", metavar="SUITE.toml", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--address", default=None, help="Join a Ray cluster: auto, or ray://HOST:10001 (default: a local Ray "
              "instance started for the sweep).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local Ray: runs at once (default: as many as the CPUs hold at the suite's num_cpus per run).")
@click.option("--retries", type=click.IntRange(min=0), default=1, show_default=True,
              help="Times a failed run is retried (resumed from its checkpoints).")
@click.option("--tracking-uri", default=None, help="MLflow store every run logs to (default: MLFLOW_TRACKING_URI, else "
              "sqlite:///mlflow.db; on a cluster, a server every node reaches).")
@click.option("--experiment", default=None, help="MLflow experiment (default: asdbench/<dataset>).")
@click.option("--serial", is_flag=True, help="Run the runs one after another in this process, without Ray (same "
              "skipping, resuming and retries).")
@click.option("--dry-run", is_flag=True, help="List the runs and exit.")
@click.pass_context
def sweep_command(ctx: click.Context, suite_file: Path, address: str | None, workers: int | None, retries: int,
                  tracking_uri: str | None, experiment: str | None, serial: bool, dry_run: bool) -> None:
    """Run every run of SUITE.toml (systems x seeds x a grid of settings) as Ray tasks; finished runs are skipped,
    interrupted ones resumed. See benchmarks/suites/ for examples."""
    # MLflow, the plugins (torch) and Ray load here, not at import: `sweep --help` does not wait for them
    from asdbench.plugins import get_plugins
    from asdbench.scale.suite import read_suite
    from asdbench.scale.sweep import absolute_uri, check_address, require_ray, run_serially, run_sweep
    from asdbench.tracking.store import resolve_tracking_uri

    suite = read_suite(suite_file, get_plugins())
    if dry_run:
        table = Table(title=f"Sweep '{suite.name}': {len(suite.runs)} runs, each {suite.num_cpus:g} CPUs, "
                            f"{suite.num_gpus:g} GPUs")
        for column in ("#", "system", "seed", "settings"):
            table.add_column(column)
        for number, spec in enumerate(suite.runs, start=1):
            shown = " ".join(f"{k}={v}" for k, v in sorted(spec.values.items()) if k != "seed")
            table.add_row(str(number), spec.system, str(spec.seed), shown)
        console.print(table)
        return
    if serial and (address or workers):
        raise AsdbenchError("--serial runs in this process: --address and --workers are for Ray")
    if not serial:
        require_ray()  # before Ray is asked for anything: a missing Ray is one line, not a traceback
        check_address(address)
    uri = absolute_uri(resolve_tracking_uri(tracking_uri))
    where = "this process, one after another" if serial else "Ray at " + address if address else "a local Ray instance"
    err_console.print(f"Sweep '{suite.name}': {len(suite.runs)} runs in {where}; MLflow store {uri}", highlight=False)
    columns = (TextColumn("[bold]Sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    failed = []
    try:
        with Progress(*columns, console=err_console) as progress:
            bar = progress.add_task("sweep", total=len(suite.runs))

            def report(outcome) -> None:
                detail = outcome.message or f"{outcome.seconds:.1f} s"
                progress.console.print(f"{MARKS[outcome.status]} {outcome.spec.label}: {detail}"
                                       + (f" (run {outcome.run_id})" if outcome.run_id else ""), highlight=False)
                if outcome.status == "failed":
                    failed.append(outcome)
                progress.advance(bar)

            if serial:
                run_serially(suite, uri, report, retries, experiment)
            else:
                run_sweep(suite, uri, report, address, workers, retries, experiment)
    except KeyboardInterrupt:
        err_console.print("[red]Interrupted[/red]: remaining runs cancelled, running ones marked KILLED; run the same "
                          "sweep again to resume them", highlight=False)
        sys.exit(130)
    ctx.invoke(compare_command, tags=(f"asdbench.sweep={suite.name}",), tracking_uri=uri)
    if failed:
        err_console.print(f"[red]{len(failed)} of {len(suite.runs)} runs failed[/red]; run the sweep again to retry "
                          "them", highlight=False)
        sys.exit(1)
