"""The fault table: each situation created for real, with the behaviour a user gets."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

import asdbench
import known_answer_plugins as known
from asdbench import plugins as plugin_mod
from asdbench.cli import cli
from asdbench.plugins import build_plugins


def _runs(uri):
    client = MlflowClient(uri)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.mark.parametrize("make,expected", [
    (lambda root: root / "missing", "does not exist or is not a folder (expected the DCASE 2020 layout: <type>/train/"),
    (lambda root: root, "no DCASE 2020 Task 2 clips under"),
    (lambda root: _other_layout(root), "does not follow the DCASE 2020 layout (<type>/train/normal_id_II_NNNNNNNN.wav"),
])
def test_a_missing_empty_or_foreign_data_root_is_one_line_and_nothing_runs(tmp_path, tracking_uri, make, expected):
    root = make(tmp_path / "data")
    root.mkdir(parents=True, exist_ok=True) if not root.name == "missing" else None
    result = CliRunner().invoke(cli, ["run", "dcase-ae", "--dataset", "dcase2020t2", "--root", str(root),
                                      "--tracking-uri", tracking_uri])
    assert result.exit_code == 1 and expected in result.output and "Traceback" not in result.output
    assert str(root) in result.output
    assert not (tmp_path / "mlflow.db").exists() or not _runs(tracking_uri)  # nothing started


def _other_layout(root):
    """A DCASE 2021+ file name (sections, domains) where a 2020 one is expected."""
    path = root / "dev_data" / "fan" / "train" / "section_00_source_train_normal_0000_strength_1_ambient.wav"
    path.parent.mkdir(parents=True)
    sf.write(str(path), np.zeros(1600, dtype=np.float32), 16000, subtype="PCM_16")
    return root


@pytest.mark.slow
def test_runs_started_at_once_on_a_fresh_sqlite_store_all_land(tmp_path, monkeypatch):
    """A fresh store and an empty cache: each process creates the store, the experiment and the synthetic data."""
    monkeypatch.setenv("ASDBENCH_CACHE", str(tmp_path / "cache"))
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    procs = [subprocess.Popen([sys.executable, "-m", "asdbench", "run", "dcase-ae", "--set", "dataset.size=tiny",
                               "--set", "epochs=1", "--seed", str(seed), "--tracking-uri", uri],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
             for seed in range(3)]
    errors = [p.communicate(timeout=300)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n".join(e[-1500:] for e in errors)
    runs = _runs(uri)
    assert sorted(r.data.params["seed"] for r in runs) == ["0", "1", "2"]
    assert all(r.info.status == "FINISHED" and "auc/avg" in r.data.metrics for r in runs)


@pytest.mark.parametrize("args,expected", [
    (["run", "no-such-system"], "unknown system 'no-such-system'"),
    (["run", "dcase-ae", "--set", "scorer=nope"], "unknown scorer 'nope'. Available: "),
    (["run", "dcase-ae", "--set", "epoch=3"], "unknown config key 'epoch' for system 'dcase-ae'. Valid keys: "),
    (["run", "dcase-ae", "--set", "epochs=many"], "epochs='many' has the wrong type: expected int"),
    (["run", "dcase-ae", "--set", "pad=mirror"], "pad='mirror' is not one of: repeat, zeros"),
])
def test_unknown_names_and_wrongly_typed_values_are_refused_before_any_work(tracking_uri, args, expected):
    result = CliRunner().invoke(cli, [*args, "--tracking-uri", tracking_uri])
    assert result.exit_code == 1 and expected in result.output and "Traceback" not in result.output


class _RaisingFactory:
    @asdbench.hookimpl
    def register_scorers(self, register):
        def broken(**params):
            raise ZeroDivisionError("division by zero in the scorer's setup")

        register("broken-scorer", broken)


def test_a_third_party_factory_that_raises_is_named_with_its_package(monkeypatch, tracking_uri):
    monkeypatch.setattr(plugin_mod, "_loaded", build_plugins(extra={"third": ("asdbench-third-party", _RaisingFactory())}))
    result = CliRunner().invoke(cli, ["run", "dcase-ae", "--set", "dataset.size=tiny", "--set", "scorer=broken-scorer",
                                      "--tracking-uri", tracking_uri])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert ("cannot build scorer 'broken-scorer' (package asdbench-third-party): ZeroDivisionError: division by zero"
            in result.output)
