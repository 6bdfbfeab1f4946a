"""Reproduce a row of the STgram-MFN paper on the real DCASE 2020 Task 2 data, on one GPU.

    python benchmarks/reproduce_paper.py --root /data/dcase2020t2                  # stgram-mfn, last epoch
    python benchmarks/reproduce_paper.py --root /data/dcase2020t2 --select oracle  # the authors' protocol
    python benchmarks/reproduce_paper.py --root DIR --system stgram-mfn-cee

Paper protocol: train on the development and additional training sets (41 machine
IDs), 200 epochs, batch 128, Adam 1e-4 with cosine annealing, evaluate on the
development test set. The run is logged to MLflow like any ``asdbench run``; the table
puts its AUC / pAUC / mAUC per machine type beside the paper's (Tables 2-3), whose
checkpoint was selected on the test set, so compare them with ``--select oracle``.
"""

from __future__ import annotations

import time

import click
from rich.console import Console
from rich.table import Table

from asdbench.config import parse_assignments, resolve
from asdbench.data.plan import make_plan
from asdbench.plugins import get_plugins
from asdbench.progress import RichReporter
from asdbench.report.published import paper_row
from asdbench.tracking.store import Store
from asdbench.training.tracked_run import tracked_execute


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@click.command()
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False), help="Where the DCASE 2020 T2 zips were unpacked.")
@click.option("--system", default="stgram-mfn", show_default=True)
@click.option("--select", default="last", show_default=True, type=click.Choice(["last", "oracle"]))
@click.option("--seed", default=0, show_default=True)
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="Further overrides, e.g. epochs=300.")
@click.option("--tracking-uri", default=None)
def main(root: str, system: str, select: str, seed: int, assignments: tuple[str, ...], tracking_uri: str | None) -> None:
    console = Console(stderr=True)
    plugins = get_plugins()
    config = resolve(plugins, system, set_values={
        "dataset": "dcase2020t2", "dataset.root": root, "dataset.protocol": "paper", "select": select, "seed": seed,
        **parse_assignments(assignments),
    })
    plan = make_plan(plugins, config)
    console.print(plan.dataset.describe(), highlight=False)
    started = time.perf_counter()
    run = tracked_execute(plugins, plan, RichReporter(console), Store(tracking_uri), run_name=f"paper-{system}-{select}-seed{seed}")
    hours = (time.perf_counter() - started) / 3600
    report, paper = run.result.report, paper_row(system) or {}
    table = Table(title=f"{system}, select={select}, seed {seed}: ours vs the paper (%), {hours:.2f} h, MLflow run {run.run_id}")
    for col in ("machine type", "AUC", "paper AUC", "pAUC", "paper pAUC", "mAUC", "paper mAUC"):
        table.add_column(col, justify="left" if col == "machine type" else "right")
    rows = [(t.machine_type, t.auc, t.pauc, t.mauc) for t in report.types] + [("Average", report.auc, report.pauc, report.mauc)]
    for name, auc, pauc, mauc in rows:
        ref = paper.get(name, {})
        table.add_row(name, _pct(100 * auc), _pct(ref.get("auc")), _pct(100 * pauc), _pct(ref.get("pauc")),
                      _pct(100 * mauc), _pct(ref.get("mauc")))
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
