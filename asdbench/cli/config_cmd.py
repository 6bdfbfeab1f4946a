"""``asdbench config show``: the resolved configuration of a system, as TOML, and its keys."""

from __future__ import annotations

import click
from rich.table import Table

from asdbench.cli.options import complete, config_options, resolve_from_options
from asdbench.cli.output import console
from asdbench.config import CORE_HELP


@click.group("config")
def config_group() -> None:
    """Inspect configurations."""


@config_group.command("show")
@click.argument("system", shell_complete=complete("system"))
@config_options
@click.option("--keys", is_flag=True, help="List every settable key with its default instead of TOML.")
def show_command(system: str, keys: bool, **options) -> None:
    """Print the resolved config of SYSTEM (reusable with: asdbench run SYSTEM --config FILE)."""
    from asdbench.catalog import plugin_catalog

    config = resolve_from_options(system, **options, plugins=plugin_catalog())
    if not keys:
        click.echo(config.to_toml(), nl=False)
        return
    table = Table(show_edge=False)
    for col in ("key", "value", "about"):
        table.add_column(col)
    for key, value in sorted(config.values.items()):
        table.add_row(key, repr(value), CORE_HELP.get(key, ""))
    console.print(table)
