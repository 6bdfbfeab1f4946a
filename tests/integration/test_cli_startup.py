"""What a command imports, in a fresh process: help and describing commands load neither torch nor MLflow."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

import pytest

from asdbench.cli import cli
from asdbench.tracking.store import Store


def test_help_imports_no_command_module_and_no_mlflow():
    code = ("import sys; from asdbench.cli import cli\n"
            "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('mlflow', 'asdbench.cli.', 'matplotlib', 'ray'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    assert re.search(r"\n  bench +Measure training", out)

def _heavy_modules_after(script: str) -> tuple[list[str], str]:
    """Run ``script`` in a fresh process with the plugin catalog written first; the torch, MLflow, matplotlib and
    Ray modules it imported, and its output."""
    from asdbench.catalog import plugin_catalog

    plugin_catalog()  # the first call loads the plugins and writes the catalog; later processes read it
    code = (f"import sys\nfrom asdbench.cli import cli\n{script}\n"
            "print(sorted(m for m in sys.modules if m.startswith(('mlflow', 'torch', 'matplotlib', 'ray'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return ast.literal_eval(out.strip().splitlines()[-1]), out

def test_every_commands_help_imports_neither_torch_nor_mlflow():
    from asdbench.cli.reference import _contexts

    paths = [ctx.command_path.split()[1:] for ctx in _contexts(cli, "asdbench")]
    calls = "".join(f"try:\n    cli({[*path, '--help']!r})\nexcept SystemExit:\n    pass\n" for path in paths)
    heavy, out = _heavy_modules_after(calls)
    assert heavy == [] and out.count("Usage: ") == len(paths) == 23
    assert "subcluster-adacos" in out  # run --help's systems, read from the catalog

@pytest.mark.parametrize("args, shown", [
    (["list", "system"], "stgram-mfn-cee"),
    (["config", "show", "stgram-mfn"], '"loss.margin" = 0.7'),
])
def test_describing_commands_import_neither_torch_nor_mlflow(args, shown):
    heavy, out = _heavy_modules_after(f"try:\n    cli({args!r})\nexcept SystemExit:\n    pass")
    assert heavy == [] and shown in out

def test_compare_reads_a_store_without_torch_or_matplotlib(tmp_path):
    Store(f"sqlite:///{tmp_path}/empty.db").client  # an empty store, made in this process
    code = ("import sys; from asdbench.cli import cli\n"
            f"try:\n    cli(['compare', '--tracking-uri', 'sqlite:///{tmp_path}/empty.db'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('torch', 'matplotlib', 'ray'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]" and "no finished asdbench runs" in result.stderr
