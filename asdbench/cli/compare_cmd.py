"""``asdbench compare``: paper-style tables of logged runs, seeds aggregated, best values in bold."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table as RichTable

from asdbench import compare
from asdbench.cli.output import console, err_console
from asdbench.config import parse_assignments


@click.command("compare")
@click.option("--dataset", "-d", default=None, help="Only runs on this dataset (required when the store mixes datasets).")
@click.option("--system", "systems", multiple=True, help="Only these systems (repeatable).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only runs with this MLflow tag (repeatable).")
@click.option("--run-id", "run_ids", multiple=True, help="Exactly these runs (repeatable).")
@click.option("--table", "which", default="all", show_default=True, type=click.Choice(["2", "3", "4", "all"]),
              help="Table 2 (AUC, pAUC), 3 (mAUC) or 4 (AUC, mAUC) of the STgram-MFN paper.")
@click.option("--format", "fmt", default="rich", show_default=True, type=click.Choice(["rich", "markdown", "csv", "latex", "json"]))
@click.option("--reference", type=click.Choice(["paper"]), default=None, help="Add the STgram-MFN paper's published rows.")
@click.option("--ci", is_flag=True, help="Add 95% bootstrap intervals of AUC and mAUC per machine type.")
@click.option("--paired", nargs=2, default=None, metavar="A B", help="Per-ID AUC difference of system A over B, paired bootstrap.")
@click.option("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
def compare_command(dataset, systems, tags, run_ids, which, fmt, reference, ci, paired, tracking_uri) -> None:
    """Compare logged runs side by side, one row per system (mean ± std over seeds)."""
    runs = compare.load_runs(tracking_uri, dataset, systems, {k: str(v) for k, v in parse_assignments(tags).items()}, run_ids)
    rows = compare.rows_from_runs(runs)
    if reference == "paper":
        if runs[0].dataset != "dcase2020t2":
            err_console.print(f"[yellow]Note:[/yellow] the paper's rows are DCASE 2020 Task 2 results; these runs are on "
                              f"'{runs[0].dataset}'.", highlight=False)
        rows += compare.reference_rows()
    tables = [compare.build_table(w, rows) for w in (["2", "3", "4"] if which == "all" else [which])]
    extra = []
    if ci:
        extra.append(compare.interval_table(tracking_uri, runs))
    if paired:
        extra.append(compare.paired_table(tracking_uri, runs, *paired))
    if fmt != "rich":
        click.echo(compare.render(tables, fmt), nl=False)
        for title, head, body in extra:
            click.echo("\n" + compare.render_cells(title, head, body, fmt), nl=False)
        return
    for table in tables:
        out = RichTable(title=f"{table.title}, dataset {runs[0].dataset}")
        out.add_column("system", no_wrap=True)
        out.add_column("n", justify="right")
        for column in table.columns:
            out.add_column(compare.header(column), justify="right")
        for values in compare.cells(table, "rich"):
            out.add_row(*values)
        Console(width=max(console.width, 30 + 16 * len(table.columns))).print(out)  # as wide as the paper's tables
    if any(r.oracle for r in rows):
        console.print(f"{compare.ORACLE_MARK} checkpoint selected on the test set (select=oracle): an upper bound.")
    for title, head, body in extra:
        out = RichTable(title=title)
        for name in head:
            out.add_column(name, justify="left" if name in ("system", "machine type", "ID") else "right")
        for values in body:
            out.add_row(*values)
        Console(width=max(console.width, 30 + 16 * len(head))).print(out)
