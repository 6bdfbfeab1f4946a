"""Distributed training of one run: 2 processes (gloo, CPU) log one run whose scores are a single process's, to float
tolerance, for the same global batch and seed."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from mlflow import MlflowClient

TESTKIT = Path(__file__).parents[1] / "plugins" / "asdbench-testkit"
ARGS = ["run", "plain-ae", "--set", "dataset.size=tiny", "--set", "epochs=2", "--set", "batch_size=100",
        "--set", "precision=fp32", "--device", "cpu"]


@pytest.fixture
def testkit(tmp_path) -> dict[str, str]:
    """The environment of processes that see the testkit plugin as installed: its package and its metadata
    (``entry_points.txt``, what asdbench reads) first on their path. Nothing is installed into the environment
    the other tests share."""
    project = tomllib.loads((TESTKIT / "pyproject.toml").read_text())["project"]
    site = tmp_path / "site"
    shutil.copytree(TESTKIT / "asdbench_testkit", site / "asdbench_testkit")
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    (info / "entry_points.txt").write_text("[asdbench]\n" + "".join(
        f"{name} = {target}\n" for name, target in project["entry-points"]["asdbench"].items()))
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "ASDBENCH_LOAD_PLUGINS": "asdbench,asdbench-testkit"}


def _scores(uri: str, folder: Path) -> tuple[object, dict[str, float]]:
    client = MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    path = client.download_artifacts(run.info.run_id, "clip_scores.csv", str(folder))
    with open(path, newline="") as fh:
        return run, {f"{r['machine_type']}/{r['file']}": float(r["score"]) for r in csv.DictReader(fh)}


@pytest.mark.slow
def test_two_gloo_processes_log_one_run_with_the_single_process_scores(testkit, tmp_path):
    single_uri, ddp_uri = f"sqlite:///{tmp_path / 'single.db'}", f"sqlite:///{tmp_path / 'ddp.db'}"
    single = subprocess.run([sys.executable, "-m", "asdbench", *ARGS, "--tracking-uri", single_uri],
                            capture_output=True, text=True, env=testkit, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = subprocess.run([sys.executable, "-m", "asdbench", *ARGS, "--ddp", "2", "--tracking-uri", ddp_uri],
                         capture_output=True, text=True, env=testkit, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    run_single, expected = _scores(single_uri, tmp_path / "a")
    run_ddp, found = _scores(ddp_uri, tmp_path / "b")  # one run: only rank 0 logs
    assert run_ddp.data.tags["asdbench.processes"] == "2" and run_single.data.tags["asdbench.processes"] == "1"
    assert found.keys() == expected.keys() and len(found) == 48
    assert found == pytest.approx(expected, rel=1e-4)
    for group in ("fan", "valve"):  # the logged loss is the global batch's, not one process's
        a = [m.value for m in MlflowClient(single_uri).get_metric_history(run_single.info.run_id, f"train/loss/{group}")]
        b = [m.value for m in MlflowClient(ddp_uri).get_metric_history(run_ddp.info.run_id, f"train/loss/{group}")]
        assert b == pytest.approx(a, rel=1e-4)
