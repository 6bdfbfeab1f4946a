"""The one Store object: which runs are asdbench's (role, experiment), and one-line errors for what is not there."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import sqlalchemy
from click.testing import CliRunner
from mlflow import MlflowClient

from asdbench.cli import cli
from asdbench.errors import AsdbenchError
from asdbench.tracking.store import Store, client, sqlite_database


@pytest.fixture
def store(tracking_uri) -> Store:
    """Runs of every kind: asdbench's own (role run, untagged role, a --seeds parent, an eval), a run of another
    tool in an asdbench experiment, and an asdbench run in a custom experiment."""
    store = Store(tracking_uri)
    client = MlflowClient(tracking_uri)
    ours = store.client.create_experiment("asdbench/synthetic")
    custom = store.client.create_experiment("my-experiment")
    for name, experiment, tags in [
        ("run", ours, {"asdbench.system": "dcase-ae", "asdbench.role": "run"}),
        ("untagged", ours, {"asdbench.system": "idnn"}),  # logged before roles: a run
        ("parent", ours, {"asdbench.system": "dcase-ae", "asdbench.role": "seeds"}),
        ("eval", ours, {"asdbench.system": "dcase-ae", "asdbench.role": "eval"}),
        ("foreign", ours, {}),
        ("custom", custom, {"asdbench.system": "idnn", "asdbench.role": "run"}),
    ]:
        run = client.create_run(experiment, run_name=name, tags=tags)
        client.set_terminated(run.info.run_id, "FINISHED")
    return store


def _names(runs) -> set[str]:
    return {r.info.run_name for r in runs}


def test_runs_are_asdbench_runs_of_the_roles_asked_in_the_experiments_asked(store):
    assert _names(store.runs()) == {"run", "untagged", "custom"}  # --experiment NAME's runs too: they used to vanish
    assert _names(store.runs(roles=("run", "seeds", "eval"))) == {"run", "untagged", "parent", "eval", "custom"}
    assert _names(store.runs(prefix="asdbench/")) == {"run", "untagged"}
    assert _names(store.runs(roles=None)) == {"run", "untagged", "parent", "eval", "foreign", "custom"}
    assert _names(store.runs("tags.\"asdbench.system\" = 'idnn'")) == {"untagged", "custom"}


def test_runs_and_compare_show_runs_of_a_custom_experiment(store):
    listed = CliRunner().invoke(cli, ["runs", "--json", "--tracking-uri", store.uri])
    assert listed.exit_code == 0 and {r["system"] for r in json.loads(listed.output)} == {"dcase-ae", "idnn"}
    assert len(json.loads(listed.output)) == 3


def test_what_is_not_there_is_one_line(store, tmp_path):
    with pytest.raises(AsdbenchError, match=rf"^no MLflow run {'0' * 32} in {store.uri} \(see `asdbench runs`\)$"):
        store.run("0" * 32)
    (parent,) = [r for r in store.runs(roles=("seeds",))]
    with pytest.raises(AsdbenchError, match="is not a run of `asdbench run`"):
        store.resume_source(parent.info.run_id, tmp_path)
    (run,) = [r for r in store.runs() if r.info.run_name == "run"]
    with pytest.raises(AsdbenchError, match=f"^run {run.info.run_id} has no config.resolved.toml artifact"):
        store.resume_source(run.info.run_id, tmp_path)
    with pytest.raises(AsdbenchError, match="^nothing here$"):
        store.download(run.info.run_id, "clip_scores.csv", tmp_path, "nothing here")


def test_the_store_is_created_on_first_use_not_when_named(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert not (tmp_path / "mlflow.db").exists()
    assert store.runs() == []
    assert (tmp_path / "mlflow.db").is_file()


def test_a_missing_store_is_reported_and_not_created(tmp_path):
    """A mistyped --tracking-uri used to become a fresh empty store (and its folders) that showed no runs."""
    missing = tmp_path / "typo" / "mlflow.db"
    wav = tmp_path / "normal_id_00_00000000.wav"
    sf.write(str(wav), np.zeros(1600, dtype=np.float32), 16000)
    uri = f"sqlite:///{missing}"
    expected = (f"Error: no MLflow store at {missing}: nothing has been logged there (check --tracking-uri or "
                "MLFLOW_TRACKING_URI; `asdbench run` creates the store)")
    for args in (["runs"], ["compare"], ["plot", "0" * 32, "--out", str(tmp_path / "figures")],
                 ["run", "--resume", "0" * 32], ["score", "0" * 32, str(wav)]):
        result = CliRunner().invoke(cli, [*args, "--tracking-uri", uri])
        assert result.exit_code == 1 and result.output.strip().splitlines()[-1] == expected, (args, result.output)
    result = CliRunner().invoke(cli, ["run", "dcase-ae", "--set", "dataset.size=tiny", "--tracking-uri", uri])
    assert result.exit_code == 1 and result.output.strip().splitlines()[-1] == (
        f"Error: the MLflow store {uri} cannot be created: its folder {missing.parent} does not exist")
    assert "Training" not in result.output and not missing.parent.exists()


def test_an_unreachable_server_is_one_line_in_seconds_not_minutes_of_retries():
    with socket.socket() as probe:  # a loopback port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    for args in (["runs"], ["compare"]):
        started = time.monotonic()
        result = CliRunner().invoke(cli, [*args, "--tracking-uri", uri])
        assert time.monotonic() - started < 10
        assert result.exit_code == 1 and result.output.strip().splitlines() == [
            f"Error: the MLflow store {uri} cannot be reached: Connection refused (is the server running? "
            "--tracking-uri or MLFLOW_TRACKING_URI name another store)"], result.output


def test_a_read_only_store_folder_still_lets_runs_and_compare_read(store, tmp_path):
    """The lock file beside the store made every command fail where the folder could not be written. Root ignores
    permissions, so the folder is made immutable (chattr +i), which binds root too."""
    folder = sqlite_database(store.uri).parent
    Path(folder, ".mlflow.db.asdbench-lock").unlink(missing_ok=True)  # gone, and it cannot be created again
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available on this file system")
    try:
        listed = CliRunner().invoke(cli, ["runs", "--json", "--tracking-uri", store.uri])
        assert listed.exit_code == 0 and len(json.loads(listed.output)) == 3, listed.output
        compared = CliRunner().invoke(cli, ["compare", "--tracking-uri", store.uri, "--format", "csv"])
        assert compared.exit_code == 0 and "idnn" in compared.output, compared.output
        written = CliRunner().invoke(cli, ["run", "dcase-ae", "--set", "dataset.size=tiny", "--tracking-uri", store.uri])
        assert written.exit_code == 1 and "Training" not in written.output and "Traceback" not in written.output
        assert written.output.strip().splitlines()[-1] == (
            f"Error: the MLflow store {store.uri} cannot be written: (sqlite3.OperationalError) unable to open database "
            "file"), written.output
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_corrupt_store_is_one_line_naming_it_and_nothing_is_trained(tmp_path):
    """A file that is no SQLite store used to end every command in a traceback of a hundred lines or more."""
    database = tmp_path / "mlflow.db"
    database.write_bytes(b"SQLite format 3\0" + bytes(range(256)) * 20)
    uri = f"sqlite:///{database}"
    expected = f"Error: the MLflow store {uri} cannot be used: (sqlite3.DatabaseError) file is not a database"
    for args in (["runs"], ["compare"], ["run", "dcase-ae", "--set", "dataset.size=tiny", "--set", "epochs=1"]):
        result = CliRunner().invoke(cli, [*args, "--tracking-uri", uri])
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert result.output.strip().splitlines()[-1] == expected and "Training" not in result.output


class _Racing:
    """The MLflow client of a store that another process is creating: its first use fails as the loser of that race
    does (CI saw exactly this when a test's plain MlflowClient polled the store a run was creating)."""

    failures = 0

    def __init__(self, error: str, times: int) -> None:
        self.error, self.times = error, times

    def __call__(self, tracking_uri: str) -> MlflowClient:
        real, racing = MlflowClient(tracking_uri=tracking_uri), self

        class Client:
            def search_experiments(self, **kwargs):
                if racing.failures < racing.times:
                    racing.failures += 1
                    raise sqlalchemy.exc.OperationalError("ALTER TABLE ...", {}, sqlite3.OperationalError(racing.error))
                return real.search_experiments(**kwargs)

        return Client()


def test_a_store_another_process_is_creating_is_waited_for_not_reported_unusable(tmp_path, monkeypatch):
    racing = _Racing("table sql_trace_metric_daily_rollups already exists", times=3)
    monkeypatch.setattr("asdbench.tracking.store.MlflowClient", racing)
    assert [e.name for e in client(f"sqlite:///{tmp_path / 'mlflow.db'}").search_experiments()] == ["Default"]
    assert racing.failures == 3


def test_an_out_of_date_schema_is_waited_for_only_on_a_store_being_created(tmp_path, monkeypatch):
    """On a fresh store it is the other process's migration under way; on an old store it is the user's to upgrade,
    reported at once."""
    error = "Detected out-of-date database schema (found version 1b5f0d9ad7c1, but expected 3500859a5d39)"
    monkeypatch.setattr("asdbench.tracking.store.MlflowClient", _Racing(error, times=1))
    client(f"sqlite:///{tmp_path / 'fresh.db'}")
    old = tmp_path / "old.db"
    MlflowClient(f"sqlite:///{old}").search_experiments()
    monkeypatch.setattr("asdbench.tracking.store.MlflowClient", _Racing(error, times=1))
    started = time.monotonic()
    with pytest.raises(AsdbenchError, match="cannot be used: .*out-of-date database schema"):
        client(f"sqlite:///{old}")
    assert time.monotonic() - started < 5
