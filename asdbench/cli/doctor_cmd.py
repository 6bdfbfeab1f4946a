"""``asdbench doctor``: the environment as a bug report needs it, and whether it is one asdbench runs in."""

from __future__ import annotations

import json
import sys

import click
from rich.markup import escape
from rich.table import Table

from asdbench.cli.output import err_console, wide_console

MARKS = {"ok": "[green]ok[/green]", "info": "[dim]-[/dim]", "warn": "[yellow]warn[/yellow]", "fail": "[red]FAIL[/red]"}


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (attach it to a bug report) instead of a table.")
def doctor_command(as_json: bool) -> None:
    """Check this installation: package versions and the lock, whether torch, torchaudio and torchvision load
    together, the device, the MLflow store and the cache folder, the plugins. Exits 1 when a check fails."""
    from asdbench.cli.doctor_checks import examine  # torch loads in the checks, each guarded

    report = examine()
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        table = Table(title="asdbench doctor")
        for column in ("", "section", "check", "finding"):
            table.add_column(column, overflow="fold")
        for finding in report.findings:
            table.add_row(MARKS[finding.status], finding.section, finding.name, escape(finding.value))
        wide_console().print(table)
    if report.failed:
        if not as_json:
            err_console.print(f"[red]{sum(f.status == 'fail' for f in report.findings)} check(s) failed[/red]",
                              highlight=False)
        sys.exit(1)
