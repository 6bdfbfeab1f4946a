"""The command line's own structure: commands imported lazily, their listed help true to each command."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click

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
