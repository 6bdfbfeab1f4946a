"""``asdbench runs``: the runs of the MLflow store, to find the one to resume or compare."""

from __future__ import annotations

import json
import time

import click
from rich.table import Table

from asdbench.cli.output import wide_console


def _age(start_ms: int | None) -> str:
    seconds = max(0.0, time.time() - (start_ms or 0) / 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _epochs_done(client, run) -> str:
    """Per model, the last epoch logged (epochs are logged once a checkpoint holds them), of the run's epochs."""
    total = run.data.params.get("epochs", "?")
    keys = sorted(k for k in run.data.metrics if k == "train/loss" or k.startswith("train/loss/"))
    if not keys:
        return f"0/{total}"
    done = {k.removeprefix("train/loss").lstrip("/") or "all": max(m.step for m in client.get_metric_history(run.info.run_id, k))
            for k in keys}
    if len(done) == 1:
        return f"{next(iter(done.values()))}/{total}"
    return ", ".join(f"{group} {epoch}" for group, epoch in done.items()) + f" of {total}"


@click.command("runs")
@click.option("--status", "statuses", multiple=True, type=click.Choice(["RUNNING", "FINISHED", "FAILED", "KILLED"]),
              help="Only runs in this state (repeatable).")
@click.option("--limit", default=20, show_default=True, help="The newest N runs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table.")
@click.option("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
def runs_command(statuses: tuple[str, ...], limit: int, as_json: bool, tracking_uri: str | None) -> None:
    """List the asdbench runs of the store, newest first: what to pass to run --resume RUN_ID."""

    from asdbench.cache import checkpoint_dir
    from asdbench.tracking.store import Store, alive

    store = Store(tracking_uri, create=False)
    query = " OR ".join(f"attributes.status = '{s}'" for s in statuses)
    records = []
    for run in store.runs(query, max_results=limit, order_by=["attributes.start_time DESC"]):
        tags = run.data.tags
        status = run.info.status
        if status == "RUNNING" and not alive(tags):
            status = "RUNNING (process gone)"
        records.append({
            "run_id": run.info.run_id, "system": tags.get("asdbench.system", "?"),
            "dataset": tags.get("asdbench.dataset", "?"), "status": status, "epochs_done": _epochs_done(store.client, run),
            "start_time": run.info.start_time, "resumable": status not in ("FINISHED", "RUNNING"),  # RUNNING: alive
            "checkpoints": checkpoint_dir(run.info.run_id).exists()})
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    table = Table(title=f"asdbench runs in {store.uri}")
    for column in ("run id", "system", "dataset", "status", "epochs done", "started", "resume"):
        table.add_column(column, justify="right" if column in ("epochs done", "started") else "left",
                         no_wrap=column == "run id")
    for r in records:
        resume = ("yes" if r["checkpoints"] else "yes, from epoch 1") if r["resumable"] else ""
        table.add_row(r["run_id"], r["system"], r["dataset"], r["status"], r["epochs_done"],
                      f"{_age(r['start_time'])} ago", resume)
    wide_console().print(table)
