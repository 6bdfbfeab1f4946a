"""The one Store object: which runs are asdbench's (role, experiment), and one-line errors for what is not there."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from asdbench.cli import cli
from asdbench.errors import AsdbenchError
from asdbench.tracking.store import Store


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
    store = Store(f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}")
    assert not (tmp_path / "new").exists()
    assert store.runs() == []
    assert (tmp_path / "new" / "mlflow.db").is_file()


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
