"""Train and evaluate systems on the synthetic set, one seed each, logging every run to MLflow.

    python benchmarks/run_systems.py --systems dcase-ae --size small --seed 0

Prints per system the AUC / pAUC / mAUC average, the AUC of each machine type and the
wall time, and writes the same figures as JSON with ``--json FILE``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from asdbench.config import parse_assignments, resolve
from asdbench.data.plan import make_plan
from asdbench.errors import AsdbenchError
from asdbench.plugins import get_plugins
from asdbench.progress import Reporter, RichReporter
from asdbench.training.runner import execute


@click.command()
@click.option("--systems", default="dcase-ae", show_default=True, help="Comma-separated system names.")
@click.option("--size", default="small", show_default=True, type=click.Choice(["tiny", "small", "full"]))
@click.option("--seed", default=0, show_default=True)
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="Extra config for every system.")
@click.option("--tracking-uri", default=None)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--no-tracking", is_flag=True, help="Do not log to MLflow (for machines without an MLflow install).")
def main(systems: str, size: str, seed: int, assignments: tuple[str, ...], tracking_uri: str | None, json_path: Path | None,
         quiet: bool, no_tracking: bool) -> None:
    console = Console(stderr=True)
    plugins = get_plugins()
    rows, failures = [], []
    for system in [s.strip() for s in systems.split(",") if s.strip()]:
        plan = make_plan(plugins, resolve(plugins, system, set_values={"dataset.size": size, "seed": seed,
                                                                       **parse_assignments(assignments)}))
        config = plan.config
        reporter = Reporter() if quiet else RichReporter(console)
        started = time.perf_counter()
        try:
            if no_tracking:
                run_id, result = None, execute(plugins, plan, reporter)
            else:
                from asdbench.tracking.store import Store  # imports MLflow
                from asdbench.training.tracked_run import tracked_execute

                run = tracked_execute(plugins, plan, reporter, Store(tracking_uri), run_name=f"bench-{system}-seed{seed}")
                run_id, result = run.run_id, run.result
        except AsdbenchError as exc:  # one system failing (e.g. diverging) does not lose the others' figures
            console.print(f"[red]{system} failed:[/red] {exc}", highlight=False)
            failures.append(system)
            continue
        report = result.report
        rows.append({
            "system": system, "run_id": run_id, "wall_s": round(time.perf_counter() - started, 1),
            "device": config["device"], "epochs": config["epochs"],
            "auc_avg": report.auc, "pauc_avg": report.pauc, "mauc_avg": report.mauc,
            "auc_per_type": {t.machine_type: t.auc for t in report.types},
            "mauc_per_type": {t.machine_type: t.mauc for t in report.types},
        })
        if json_path:  # after every system, atomically: an interrupted benchmark keeps what it measured
            tmp = json_path.with_name(f".{json_path.name}.partial")
            tmp.write_text(json.dumps(rows, indent=2) + "\n")
            os.replace(tmp, json_path)

    types = sorted({t for r in rows for t in r["auc_per_type"]})
    table = Table(title=f"synthetic {size}, seed {seed} (AUC / mAUC %, wall time)")
    for col in ["system", *types, "AUC avg", "pAUC avg", "mAUC avg", "wall s"]:
        table.add_column(col, justify="left" if col == "system" else "right")
    for r in rows:
        per_type = [f"{100 * r['auc_per_type'][t]:.1f} / {100 * r['mauc_per_type'][t]:.1f}" for t in types]
        table.add_row(r["system"], *per_type, f"{100 * r['auc_avg']:.2f}", f"{100 * r['pauc_avg']:.2f}",
                      f"{100 * r['mauc_avg']:.2f}", f"{r['wall_s']:.1f}")
    Console(width=160).print(table)
    if failures:
        raise SystemExit(f"failed: {', '.join(failures)}")


if __name__ == "__main__":
    main()
