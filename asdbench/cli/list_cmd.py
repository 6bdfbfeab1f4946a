"""``asdbench list``: every plugin by kind, with its package and description."""

from __future__ import annotations

import json

import click
from rich.table import Table

from asdbench.catalog import plugin_catalog
from asdbench.cli.output import console
from asdbench.registry import KINDS, PLURALS


@click.command("list")
@click.argument("kind", required=False, type=click.Choice(KINDS))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of tables.")
def list_command(kind: str | None, as_json: bool) -> None:
    """List datasets, frontends, backbones, losses, scorers and systems."""
    plugins = plugin_catalog()
    kinds = [kind] if kind else list(KINDS)
    if as_json:
        data = {
            k: [{"name": e.name, "package": e.package, "description": e.description} for e in plugins.registry(k)]
            for k in kinds
        }
        data["failed"] = [f.__dict__ for f in plugins.failures]
        click.echo(json.dumps(data, indent=2))
        return
    for k in kinds:
        table = Table(title=PLURALS[k], title_justify="left", show_edge=False)
        table.add_column("name", style="bold cyan", no_wrap=True)
        table.add_column("package", no_wrap=True)
        table.add_column("description")
        for e in plugins.registry(k):
            table.add_row(e.name, e.package, e.description)
        console.print(table)
        console.print()
    if plugins.failures:
        table = Table(title="failed to load", title_justify="left", show_edge=False, title_style="bold red")
        for col in ("package", "entry point", "error"):
            table.add_column(col)
        for f in plugins.failures:
            table.add_row(f.package, f.entry_point, f.error)
        console.print(table)
