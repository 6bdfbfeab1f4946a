"""Rich consoles and tables shared by the commands: data on stdout, progress and notes on stderr."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # the tables import NumPy, scikit-learn and torch only when they are drawn: `--help` stays fast
    from asdbench.evaluation.metrics import Report
    from asdbench.plugins import Plugins

console = Console()
err_console = Console(stderr=True)


def wide_console() -> Console:
    """stdout for wide tables: the terminal's width, or 200 columns when piped (a log keeps every figure)."""
    return console if console.is_terminal else Console(width=200)


def metrics_table(report: Report, title: str) -> Table:
    from asdbench.evaluation.results import table_columns, table_rows

    table = Table(title=title)
    table.add_column("machine type")
    for name in table_columns(report):
        table.add_column(name, justify="right")
    rows = table_rows(report)
    for row in rows[:-1]:
        table.add_row(*row)
    table.add_row(*rows[-1], style="bold", end_section=True)
    return table


def warn_plugin_failures(plugins: Plugins) -> None:
    for f in plugins.failures:
        err_console.print(
            f"[yellow]Warning:[/yellow] plugin '{f.entry_point}' of package '{f.package}' failed to load: {f.error} "
            f"(see `asdbench list`; ASDBENCH_LOAD_PLUGINS limits which packages load)",
            highlight=False,
        )


def summary_table(dataset) -> Table:
    """Clips per machine type and ID: the first thing to check before training."""
    from asdbench.data.plan import clip_summary

    table = Table(title=f"Data: {dataset.describe()}", title_justify="left", show_edge=False)
    for col in ("machine type", "ID", "train", "test normal", "test anomaly", "test unlabelled"):
        table.add_column(col, justify="left" if col in ("machine type", "ID") else "right")
    for (mtype, mid), row in clip_summary(dataset.clips("train"), dataset.clips("test")).items():
        table.add_row(mtype, mid, *(str(row[k]) for k in ("train", "test_normal", "test_anomaly", "test_unlabelled")))
    return table


def seeds_table(mean: dict[str, float], std: dict[str, float], n: int, title: str) -> Table:
    """Mean ± std over seeds per machine type, from the flat metric names (``auc/fan``...)."""
    from asdbench.evaluation.summary import mean_std_text

    table = Table(title=f"{title} (mean ± std over {n} runs)")
    table.add_column("machine type")
    for name in ("AUC (%)", "pAUC (%)", "mAUC (%)"):
        table.add_column(name, justify="right")
    types = sorted({k.split("/")[1] for k in mean if k.count("/") == 1 and not k.endswith("/avg")})
    for mtype in [*types, "avg"]:
        cells = [
            mean_std_text(mean[f"{m}/{mtype}"], std[f"{m}/{mtype}"], n) if f"{m}/{mtype}" in mean else "-"
            for m in ("auc", "pauc", "mauc")
        ]
        table.add_row("Average" if mtype == "avg" else mtype, *cells, style="bold" if mtype == "avg" else None)
    return table
