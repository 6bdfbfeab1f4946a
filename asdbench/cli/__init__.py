"""The ``asdbench`` command line: click commands, rich output, one-line errors."""

from __future__ import annotations

import sys

import click

from asdbench import __version__
from asdbench.cli.bench_cmd import bench_command
from asdbench.cli.cache_cmd import cache_group
from asdbench.cli.compare_cmd import compare_command
from asdbench.cli.config_cmd import config_group
from asdbench.cli.data import data_group
from asdbench.cli.list_cmd import list_command
from asdbench.cli.model_cmd import eval_command, export_command, score_command
from asdbench.cli.plot_cmd import plot_command
from asdbench.cli.output import err_console
from asdbench.cli.run import run_command
from asdbench.cli.runs_cmd import runs_command
from asdbench.cli.sweep_cmd import sweep_command
from asdbench.errors import AsdbenchError

EPILOG = """\b
Quick start:
  asdbench run dcase-ae --dataset synthetic       train and evaluate on generated data
  asdbench list                                   every plugin, by kind
  asdbench runs                                   the logged runs; resume one with run --resume RUN_ID
  asdbench score RUN_ID recordings/               score new WAV files with a trained model, decide per file
  asdbench config show dcase-ae                   the resolved config and its keys
  asdbench bench --systems stgram-mfn             training and inference throughput
"""


class AsdbenchGroup(click.Group):
    """Turns :class:`AsdbenchError` into one ``Error: ...`` line, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AsdbenchError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=AsdbenchGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="asdbench")
def cli() -> None:
    """Benchmark suite for unsupervised anomalous sound detection."""


cli.add_command(run_command)
cli.add_command(runs_command)
cli.add_command(score_command)
cli.add_command(eval_command)
cli.add_command(export_command)
cli.add_command(sweep_command)
cli.add_command(list_command)
cli.add_command(data_group)
cli.add_command(config_group)
cli.add_command(compare_command)
cli.add_command(plot_command)
cli.add_command(bench_command)
cli.add_command(cache_group)


def main() -> None:
    from asdbench.plugins import get_plugins

    try:
        get_plugins().manager.hook.register_commands(cli=cli)
    except AsdbenchError as exc:
        err_console.print(f"[red]Error:[/red] {exc}", highlight=False)
        sys.exit(1)
    cli()
