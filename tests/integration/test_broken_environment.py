"""A companion of torch that does not load is one line naming both versions and the fix, in a run and in the
doctor (the README's install broke this way once): each in a process of its own, with a torchaudio of another
release first on its path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def broken_torchaudio(tmp_path_factory) -> dict[str, str]:
    """An environment whose torchaudio, of another release, fails to load as torchaudio 2.11.1 did beside torch
    2.11.0: a package first on the path that raises the same chained OSError, with its own metadata."""
    root = tmp_path_factory.mktemp("broken")
    package = root / "torchaudio"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import os\nlib = os.path.join(os.path.dirname(__file__), 'lib', 'libtorchaudio.so')\n"
        "try:\n    raise OSError(lib + ': undefined symbol: torch_exception_get_what_without_backtrace')\n"
        "except OSError as e:\n    raise OSError('Could not load this library: ' + lib) from e\n")
    info = root / "torchaudio-9.9.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torchaudio\nVersion: 9.9.1\n")
    return {"PYTHONPATH": str(root)}

def _asdbench(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asdbench", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **env}, timeout=120)

def test_a_run_with_a_torchaudio_of_another_release_is_one_line(broken_torchaudio, tmp_path):
    result = _asdbench(["run", "dcase-ae", "--dataset", "synthetic"], broken_torchaudio, tmp_path)
    torch = metadata.version("torch").split("+")[0]
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"Error: torchaudio 9.9.1 does not load beside torch {metadata.version('torch')} "
                                    "(libtorchaudio.so: undefined symbol: torch_exception_get_what_without_backtrace)")
    assert result.stderr.rstrip().endswith(f"-m pip install 'torchaudio=={torch}'")
    assert not (tmp_path / "mlflow.db").exists()  # nothing was started

def test_doctor_names_the_broken_companion(broken_torchaudio, tmp_path):
    result = _asdbench(["doctor", "--json"], broken_torchaudio, tmp_path)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    found = {(f["section"], f["name"]): f for f in report["findings"]}
    assert found[("native libraries", "torch")]["status"] == "ok"
    assert found[("native libraries", "torchvision beside torch")]["status"] == "ok"
    torchaudio = found[("native libraries", "torchaudio beside torch")]
    assert torchaudio["status"] == "fail" and torchaudio["value"].startswith("torchaudio 9.9.1 does not load")
    assert found[("packages", "lock")]["status"] == "warn" and "torchaudio 9.9.1 (lock: " in found[("packages", "lock")]["value"]
    assert report["packages"]["torchaudio"] == "9.9.1" and not report["ok"]
