"""``asdbench sweep``: a suite expands into runs, runs serially or on a local Ray instance with two workers, skips
what is FINISHED, and resumes what an interrupted sweep left."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from asdbench.cli import cli
from asdbench.errors import AsdbenchError
from asdbench.plugins import get_plugins
from asdbench.scale.suite import read_suite
from support import SUITE
from support import runs_of as _runs


def test_a_suite_expands_its_grid_and_checks_every_run(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('name = "g"\nsystems = ["dcase-ae", "stgram-mfn"]\nseeds = [0, 1]\n[set]\nepochs = 2\n'
                    '[grid]\nlr = [1e-3, 1e-4]\n[system.stgram-mfn]\nbatch_size = 16\n[resources]\nnum_gpus = 1\n')
    suite = read_suite(path, get_plugins())
    assert len(suite.runs) == 2 * 2 * 2 and suite.num_gpus == 1.0
    assert {(r.system, r.seed, r.values["lr"]) for r in suite.runs} == {
        (s, seed, lr) for s in ("dcase-ae", "stgram-mfn") for seed in (0, 1) for lr in (1e-3, 1e-4)}
    assert all(r.values.get("batch_size") == (16 if r.system == "stgram-mfn" else None) for r in suite.runs)
    path.write_text('systems = ["dcase-ae"]\n[set]\nepoch = 2\n')
    with pytest.raises(AsdbenchError, match=r"grid.toml: run dcase-ae seed 0 .*unknown config key 'epoch'"):
        read_suite(path, get_plugins())
    dry = CliRunner().invoke(cli, ["sweep", str(tmp_path / "grid.toml"), "--dry-run"])
    assert dry.exit_code == 1 and "unknown config key 'epoch'" in dry.output


@pytest.mark.parametrize("text, message", [
    ('systems = ["dcase-ae"]\nset = 3\n', "'set' must be a table ([set]), not int 3"),
    ('systems = ["dcase-ae"]\ngrid = "lr"\n', "'grid' must be a table ([grid]), not str 'lr'"),
    ('systems = ["dcase-ae"]\n[system]\ndcase-ae = 1\n', "[system.dcase-ae] must be a table of keys, not 1"),
    ('systems = ["dcase-ae"]\n[resources]\nnum_cpus = "many"\n', "resources.num_cpus must be a number of at least 0"),
    ('name = "it\'s"\nsystems = ["dcase-ae"]\n', "name \"it's\" may hold letters, digits, _ - . : and spaces only"),
])
def test_a_suite_of_the_wrong_shape_is_one_line(tmp_path, text, message):
    """Such suites used to end in a traceback (a name with a quote, in a broken MLflow query after its runs)."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["sweep", str(path), "--dry-run"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"Error: {path}: {message}"), result.output


def test_a_serial_sweep_runs_skips_and_resumes(tmp_path, monkeypatch):
    """The skip and resume rules, in this process: a sweep interrupted in its first run's epoch 3 resumes that run
    and runs the other, every epoch logged once; run again, it skips both."""
    from asdbench.tracking import store as tracking

    uri = f"sqlite:///{tmp_path / 'sweep.db'}"
    (tmp_path / "suite.toml").write_text(SUITE.format(name="serial", epochs=5))
    args = ["sweep", str(tmp_path / "suite.toml"), "--serial", "--tracking-uri", uri]
    log_epoch = tracking.Tracker.log_epoch

    def interrupted_at_epoch_3(self, group, epoch, stats, single_group):
        if epoch == 3:
            monkeypatch.setattr(tracking.Tracker, "log_epoch", log_epoch)
            raise KeyboardInterrupt
        log_epoch(self, group, epoch, stats, single_group)

    monkeypatch.setattr(tracking.Tracker, "log_epoch", interrupted_at_epoch_3)
    stopped = CliRunner().invoke(cli, args)
    assert stopped.exit_code == 130, stopped.output
    assert [(r.data.tags["asdbench.system"], r.info.status) for r in _runs(uri)] == [("dcase-ae", "KILLED")]
    resumed = CliRunner().invoke(cli, args)
    assert resumed.exit_code == 0, resumed.output
    assert "resumed, done dcase-ae" in resumed.stderr and "done idnn" in resumed.stderr
    client = MlflowClient(uri)
    final = _runs(uri)
    assert sorted(r.data.tags["asdbench.system"] for r in final) == ["dcase-ae", "idnn"]
    for run in final:
        assert run.info.status == "FINISHED" and run.data.tags["asdbench.sweep"] == "serial"
        for mtype in ("fan", "valve"):  # every epoch logged once across the interruption
            assert sorted(m.step for m in client.get_metric_history(run.info.run_id, f"train/loss/{mtype}")) == [1, 2, 3, 4, 5]
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and again.stderr.count("skipped") == 2, again.output
    assert len(_runs(uri)) == 2



def test_without_ray_a_sweep_says_how_to_install_it(monkeypatch, tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.format(name="no-ray", epochs=1))
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as where the sweep extra is not installed
    listed = CliRunner().invoke(cli, ["sweep", str(suite), "--dry-run"])
    assert listed.exit_code == 0, listed.output  # listing the runs needs no Ray
    result = CliRunner().invoke(cli, ["sweep", str(suite)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: asdbench sweep runs its runs on Ray, which is not installed: "
                                    "pip install 'asdbench[sweep]'") and result.stderr.count("\n") == 1
    assert not (tmp_path / "mlflow.db").exists()
