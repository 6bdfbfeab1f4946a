"""The command line's own structure: commands imported lazily, their listed help true to each command."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
import pytest

from asdbench.cli import COMMANDS, cli


def test_listed_help_is_each_commands_own_first_line():
    ctx = click.Context(cli)
    for name, (module, attr, short) in COMMANDS.items():
        command = getattr(importlib.import_module(module), attr)
        assert command.name == name
        assert short == command.get_short_help_str(limit=1000), name


def test_help_imports_no_command_module_and_no_mlflow():
    code = ("import sys; from asdbench.cli import cli\n"
            "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('mlflow', 'asdbench.cli.', 'matplotlib', 'ray'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    assert "bench    Measure training" in out


@pytest.mark.parametrize("command", ["run", "compare"])
def test_a_commands_help_imports_neither_torch_nor_mlflow(command):
    code = ("import sys; from asdbench.cli import cli\n"
            f"try:\n    cli([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('mlflow', 'torch', 'matplotlib', 'ray'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]" and "Usage:" in out


def test_a_batch_job_gets_plain_epoch_lines_and_json_on_stdout(tracking_uri):
    import json

    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["run", "dcase-ae", "--set", "dataset.size=tiny", "--set", "epochs=2",
                                      "--tracking-uri", tracking_uri, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert len(summary["run_id"]) == 32 and summary["system"] == "dcase-ae" and 0 < summary["metrics"]["auc/avg"] <= 1
    epochs = [line for line in result.stderr.splitlines() if line.startswith("Training fan: ")]
    assert [line.split()[2] for line in epochs] == ["1/2", "2/2", "done,"]  # one line per epoch, then the phase's end
    assert " loss " in epochs[0] and epochs[0].endswith("examples/s") and not any("━" in line for line in epochs)
    quiet = CliRunner().invoke(cli, ["run", "dcase-ae", "--set", "dataset.size=tiny", "--set", "epochs=1",
                                     "--tracking-uri", tracking_uri, "--quiet"])
    assert quiet.exit_code == 0 and "Average" in quiet.stdout
    assert "Training" not in quiet.stderr and "Done in" not in quiet.stderr


def test_options_of_several_values_take_repeats_and_comma_lists_alike():
    from asdbench.cli.options import several

    assert several(None, None, ("0,1", "2", " 3 , ")) == ["0", "1", "2", "3"]
    from click.testing import CliRunner

    bad = CliRunner().invoke(cli, ["run", "dcase-ae", "--seeds", "1", "--seeds", "1"])
    assert bad.exit_code == 1 and "--seeds expects distinct integers, got '1,1'" in bad.output


def test_a_plugins_command_is_found_when_asked_for(monkeypatch):
    from click.testing import CliRunner

    from asdbench import hookimpl
    from asdbench.plugins import get_plugins

    class Hello:
        @hookimpl
        def register_commands(self, cli):
            @cli.command("hello-plugin")
            def hello():
                """Say hello."""
                click.echo("hello from a plugin")

    get_plugins().manager.register(Hello())
    monkeypatch.setattr(cli, "_plugins_loaded", False, raising=False)
    result = CliRunner().invoke(cli, ["hello-plugin"])
    assert result.exit_code == 0 and result.output == "hello from a plugin\n"
    cli.commands.pop("hello-plugin", None)
