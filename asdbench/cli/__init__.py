"""The ``asdbench`` command line: click commands, rich output, one-line errors."""

from __future__ import annotations

import importlib
import sys

import click

from asdbench import __version__
from asdbench.environment import NATIVE_ERRORS, diagnose
from asdbench.errors import AsdbenchError

# Each command is imported only when it runs (or its own --help is asked for), so that ``asdbench --help``
# and light commands do not pay for torch, MLflow or matplotlib. The short help shown in the command list is
# kept here; a test checks it against each command's docstring.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("asdbench.cli.run", "run_command",
            "Train SYSTEM on a dataset, evaluate it, print AUC/pAUC/mAUC and log everything to MLflow."),
    "runs": ("asdbench.cli.runs_cmd", "runs_command",
             "List the asdbench runs of the store, newest first: what to pass to run --resume RUN_ID."),
    "score": ("asdbench.cli.model_cmd", "score_command",
              "Score WAV FILES (or folders of them) with a trained MODEL: score, threshold and decision per file."),
    "calibrate": ("asdbench.cli.model_cmd", "calibrate_command",
                  "Refit MODEL's decision thresholds on normal recordings of a site (FILES or folders), without "
                  "retraining: a new bundle in --out whose manifest records the data, the rule and the time."),
    "eval": ("asdbench.cli.model_cmd", "eval_command",
             "Score a trained MODEL on a data set's test clips without training, logged as a new MLflow run."),
    "export": ("asdbench.cli.model_cmd", "export_command",
               "Write a trained MODEL as a bundle FOLDER (manifest.json + safetensors weights), to score without MLflow."),
    "monitor": ("asdbench.cli.monitor_cmd", "monitor_command",
                "Watch SOURCE with a trained MODEL: sliding windows, a score per window, events where the score stays "
                "above the threshold; JSON lines on stdout."),
    "sweep": ("asdbench.cli.sweep_cmd", "sweep_command",
              "Run every run of SUITE.toml (systems x seeds x a grid of settings) as Ray tasks; finished runs are "
              "skipped, interrupted ones resumed."),
    "list": ("asdbench.cli.list_cmd", "list_command",
             "List datasets, frontends, backbones, losses, scorers and systems."),
    "data": ("asdbench.cli.data", "data_group", "Data sets: download the official ones, check what a dataset finds, generate the synthetic one."),
    "config": ("asdbench.cli.config_cmd", "config_group", "Inspect configurations."),
    "compare": ("asdbench.cli.compare_cmd", "compare_command",
                "Compare logged runs side by side: one row per system and comparable set of runs (mean ± std over seeds)."),
    "plot": ("asdbench.cli.plot_cmd", "plot_command",
             "Draw RUN_ID's ROC curves and score histograms per machine type, and t-SNE of its embeddings."),
    "bench": ("asdbench.cli.bench_cmd", "bench_command",
              "Measure training and inference throughput, end to end and model-only, per system and variant."),
    "doctor": ("asdbench.cli.doctor_cmd", "doctor_command",
               "Check this installation: package versions and the lock, whether torch, torchaudio and torchvision load"
               " together, the device, the MLflow store and the cache folder, the plugins."),
    "cache": ("asdbench.cli.cache_cmd", "cache_group",
              "The cache under $ASDBENCH_CACHE (default ~/.cache/asdbench): sizes, and clearing."),
}

EPILOG = """\b
Quick start:
  asdbench run dcase-ae --dataset synthetic       train and evaluate on generated data
  asdbench list                                   every plugin, by kind
  asdbench runs                                   the logged runs; resume one with run --resume RUN_ID
  asdbench score RUN_ID recordings/               score new WAV files with a trained model, decide per file
  asdbench config show dcase-ae                   the resolved config and its keys
  asdbench bench --systems stgram-mfn             training and inference throughput
  asdbench doctor                                 check the installation (attach --json to a bug report)

Plugins may add commands of their own; 'asdbench list' shows what is installed.
"""


class AsdbenchGroup(click.Group):
    """Turns :class:`AsdbenchError` into one ``Error: ...`` line, never a traceback; imports each built-in
    command only when it is used (commands added with ``add_command``, e.g. by plugins, work as usual)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMANDS:
            module, attr, _ = COMMANDS[name]
            self.add_command(getattr(importlib.import_module(module), attr), name)
        elif name not in self.commands:
            self.load_plugin_commands()
        return self.commands.get(name)

    def load_plugin_commands(self) -> None:
        """Commands plugins add (``register_commands``), asked for only when a name is not a built-in command:
        loading plugins imports torch, which ``--help`` and the light commands should not wait for."""
        if getattr(self, "_plugins_loaded", False):
            return
        self._plugins_loaded = True
        from asdbench.plugins import get_plugins

        get_plugins().manager.hook.register_commands(cli=self)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # the whole first line of each command's help, loaded or not (a test keeps COMMANDS equal to it)
        rows = [(name, COMMANDS[name][2] if name in COMMANDS else self.commands[name].get_short_help_str(limit=1000))
                for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AsdbenchError as exc:
            raise click.ClickException(str(exc)) from None
        except NATIVE_ERRORS as exc:  # torchaudio from another torch release, wherever it is first imported
            problem = diagnose(exc)
            if problem is None:
                raise
            raise click.ClickException(str(problem)) from None


@click.group(cls=AsdbenchGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="asdbench")
def cli() -> None:
    """Benchmark suite for unsupervised anomalous sound detection."""




def main() -> None:
    try:
        cli(standalone_mode=True)
    except (AsdbenchError, *NATIVE_ERRORS) as exc:  # while a command is looked up: a plugin or module fails to load
        problem = exc if isinstance(exc, AsdbenchError) else diagnose(exc)
        if problem is None:
            raise
        from asdbench.cli.output import err_console

        err_console.print(f"[red]Error:[/red] {problem}", highlight=False)
        sys.exit(1)
