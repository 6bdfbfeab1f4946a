"""The worked example of CONTRIBUTING.md, installed as a user would, seen by `list` and used in a run."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

EXAMPLE = Path(__file__).parents[2] / "examples" / "asdbench-example-scorer"


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True)


@pytest.fixture
def installed_example(tmp_path) -> dict[str, str]:
    """The environment of processes that have the example installed: pip builds and installs it as for a user, into
    a folder of its own first on their path, not into the environment the other tests share while it runs. A copy
    is built, so the build leaves nothing in the source tree; --no-build-isolation builds with this environment's
    setuptools, without a download."""
    source = shutil.copytree(EXAMPLE, tmp_path / "example")
    _pip("install", "--no-deps", "--no-build-isolation", "--target", str(tmp_path / "site"), str(source))
    path = os.pathsep.join(filter(None, [str(tmp_path / "site"), os.environ.get("PYTHONPATH")]))
    return {**{k: v for k, v in os.environ.items() if k != "ASDBENCH_LOAD_PLUGINS"}, "PYTHONPATH": path}


def _asdbench(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asdbench", *args], capture_output=True, text=True, env=env)


@pytest.mark.slow
def test_third_party_scorer_is_listed_and_runs(installed_example, tracking_uri):
    env = installed_example
    listed = _asdbench("list", "scorer", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    scorers = {e["name"]: e for e in json.loads(listed.stdout)["scorer"]}
    assert scorers["peak-recon-error"]["package"] == "asdbench-example-scorer"
    assert scorers["peak-recon-error"]["description"].startswith("Mean of the `top` largest")

    run = _asdbench("run", "dcase-ae", "--set", "dataset.size=tiny", "--set", "epochs=1", "--set", "scorer=peak-recon-error",
                    "--set", "scorer.top=3", "--tracking-uri", tracking_uri, env=env)
    assert run.returncode == 0, run.stderr
    client = MlflowClient(tracking_uri)
    (found,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert found.info.status == "FINISHED"
    assert found.data.params["scorer"] == "peak-recon-error" and found.data.params["scorer.top"] == "3"
    assert "auc/avg" in found.data.metrics

    # The allow-list hides it again: built-ins only.
    hidden = _asdbench("list", "scorer", "--json", env={**env, "ASDBENCH_LOAD_PLUGINS": "asdbench"})
    assert "peak-recon-error" not in hidden.stdout
