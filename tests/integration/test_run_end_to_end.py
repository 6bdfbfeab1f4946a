"""`asdbench run dcase-ae --dataset synthetic` on the tiny set, checked through MLflow."""

import csv
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from sklearn.metrics import roc_auc_score

import asdbench
from asdbench import plugins as plugin_mod
from asdbench.cache import checkpoint_dir
from asdbench.cli import cli
from asdbench.config import resolve
from asdbench.data.plan import make_plan
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.training.runner import execute
from support import store_client

TINY = ["--dataset", "synthetic", "--set", "dataset.size=tiny", "--set", "epochs=2", "--set", "batch_size=64"]


def _only_run(uri):
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    return client, runs[0]


@pytest.mark.slow
def test_run_logs_metrics_params_tags_and_artifacts(tracking_uri, tmp_path, monkeypatch):
    monkeypatch.setenv("ASDBENCH_FIGURES", "1")  # the default; the other tests switch figures off
    result = CliRunner().invoke(cli, ["run", "dcase-ae", *TINY, "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    assert "Average" in result.output and "AUC (%)" in result.output

    client, run = _only_run(tracking_uri)
    assert run.info.status == "FINISHED"
    assert not checkpoint_dir(run.info.run_id).exists()  # the final weights are artifacts; checkpoints are gone
    assert client.get_experiment(run.info.experiment_id).name == "asdbench/synthetic"
    tags = run.data.tags
    assert tags["asdbench.system"] == "dcase-ae" and tags["asdbench.dataset"] == "synthetic"
    assert tags["asdbench.version"] == asdbench.__version__ and tags["asdbench.device"] == "cpu"
    params = run.data.params
    # device and precision (auto) are logged as this machine resolved them, once, in params and tags alike.
    assert params["device"] == "cpu" and params["precision"] == tags["asdbench.precision"] != "auto"
    assert params["pad"] == "repeat" and params["data.padded_clips"] == "0" and params["data.cut_clips"] == "0"
    key = json.loads(tags["asdbench.comparability"])
    assert "seed" not in key and "cache" not in key and key["precision"] == json.dumps(params["precision"])
    assert key["data"] == json.dumps(tags["asdbench.data"]) and key["device"] == '"cpu"'
    assert params["threads"] == key["threads"] == str(torch.get_num_threads())  # threads=auto, recorded as the count
    assert params["epochs"] == "2" and params["frontend.frames"] == "5" and params["model_per"] == "type"
    assert params["n_params"] == "267928" and params["n_models"] == "2"
    assert len(client.get_metric_history(run.info.run_id, "train/loss/fan")) == 2

    metrics = run.data.metrics
    for key in ("auc/fan/id_00", "pauc/valve/id_02", "auc/fan", "pauc/fan", "mauc/valve", "auc/avg", "pauc/avg", "mauc/avg"):
        assert key in metrics

    out = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path)))
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert (out / "data_summary.csv").read_text().splitlines()[:2] == [
        "machine_type,machine_id,train,test_normal,test_anomaly,test_unlabelled", "fan,00,10,6,6,0"]
    assert {"config.resolved.toml", "result.csv", "metrics.md", "metrics.json", "model/MLmodel",
            "model/artifacts/bundle/manifest.json", "model/artifacts/bundle/weights/fan.safetensors",
            "model/artifacts/bundle/weights/valve.safetensors", "scores/anomaly_score_fan_id_00.csv",
            "scores/anomaly_score_valve_id_02.csv", "scores/decision_result_fan_id_00.csv"} <= names

    # The logged metrics are sklearn's on the logged per-clip scores, labels read from file names.
    for mtype, mid in (("fan", "00"), ("valve", "02")):
        rows = list(csv.reader(open(out / "scores" / f"anomaly_score_{mtype}_id_{mid}.csv")))
        assert [r[0] for r in rows] == sorted(r[0] for r in rows)
        y = [int(r[0].startswith("anomaly_")) for r in rows]
        s = [float(r[1]) for r in rows]
        assert metrics[f"auc/{mtype}/id_{mid}"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert metrics[f"pauc/{mtype}/id_{mid}"] == pytest.approx(roc_auc_score(y, s, max_fpr=0.1), abs=1e-12)

    lines = (out / "result.csv").read_text().split("\n")
    assert lines[:2] == ["fan", "id,AUC,pAUC"]
    assert lines[2].split(",")[0] == "00" and float(lines[2].split(",")[1]) == pytest.approx(metrics["auc/fan/id_00"])
    assert lines[4].startswith("Average,") and lines[5] == ""
    from safetensors.torch import load_file

    state = load_file(out / "model" / "artifacts" / "bundle" / "weights" / "fan.safetensors")
    assert "backbone.encoder.0.weight" in state
    bundle = json.loads((out / "model" / "artifacts" / "bundle" / "manifest.json").read_text())
    assert bundle["run_id"] == run.info.run_id
    assert (bundle["format"], bundle["system"], bundle["config_hash"]) == ("asdbench-model", "dcase-ae", tags["asdbench.config_hash"])
    assert bundle["models"]["fan"]["classes"] == ["fan/id_00", "fan/id_02"] and bundle["models"]["fan"]["input_shape"] == [640]
    assert bundle["models"]["fan"]["decides"] == ["fan/id_00", "fan/id_02"]
    assert bundle["plugins"]["backbone"] == {"name": "dense-ae", "package": "asdbench", "package_version": asdbench.__version__}
    assert bundle["threshold"] == {"rule": "gamma", "q": 0.9}
    assert set(bundle["thresholds"]) == {"fan/id_00", "fan/id_02", "valve/id_00", "valve/id_02"}
    assert all(t["n_train"] == 10 for t in bundle["thresholds"].values())

    # Figures: logged with the run, and drawn again by `asdbench plot`.
    import matplotlib.image

    expected = {f"figures/{kind}_{t}.png" for kind in ("roc", "scores", "tsne") for t in ("fan", "valve")}
    assert expected <= names
    for name in expected:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert matplotlib.image.imread(out / name).ndim == 3
    plot = CliRunner().invoke(cli, ["plot", run.info.run_id, "--out", str(tmp_path / "plots"), "--tracking-uri", tracking_uri])
    assert plot.exit_code == 0, plot.output
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {n.split("/")[1] for n in expected}
    missing = CliRunner().invoke(cli, ["plot", "0" * 32, "--tracking-uri", tracking_uri])
    assert missing.exit_code == 1 and "Traceback" not in missing.output


@pytest.mark.parametrize("precision", ["fp32", "auto"])  # fp32: the loop a GPU runs, in float32
def test_same_seed_same_scores(precision):
    plugins = build_plugins()
    values = {"dataset.size": "tiny", "epochs": 2, "precision": precision}
    plan = make_plan(plugins, resolve(plugins, "dcase-ae", set_values={**values, "seed": 3}))
    first = execute(plugins, plan, Reporter())
    second = execute(plugins, plan, Reporter())
    assert [s for _, s in first.scores] == [s for _, s in second.scores]
    other = execute(plugins, plan.with_seed(4), Reporter())
    assert [s for _, s in first.scores] != [s for _, s in other.scores]


def test_a_model_trains_the_same_whatever_else_the_run_holds():
    """Each model draws from its own random stream (seed and model name): a run of the last machine type alone gives
    it exactly the scores of the full run, where one stream for the run made them depend on the types before it."""
    plugins = build_plugins()
    values = {"dataset.size": "tiny", "epochs": 2, "seed": 5}
    full = execute(plugins, make_plan(plugins, resolve(plugins, "dcase-ae", set_values=values)), Reporter())
    types = sorted({c.machine_type for c, _ in full.scores})
    alone = execute(plugins, make_plan(plugins, resolve(plugins, "dcase-ae", set_values={**values, "types": types[-1:]})),
                    Reporter())
    assert len(types) == 2 and {c.machine_type for c, _ in alone.scores} == {types[-1]}
    assert [(c.path, s) for c, s in full.scores if c.machine_type == types[-1]] == [(c.path, s) for c, s in alone.scores]
    assert alone.thresholds == {k: v for k, v in full.thresholds.items() if k[0] == types[-1]}


class _Exploding:
    def __init__(self, error: type[BaseException]) -> None:
        self.error = error

    @asdbench.hookimpl
    def register_scorers(self, register):
        error = self.error

        class Explodes:
            """Raises while scoring."""

            def score(self, output, target, loss):
                raise error("scorer exploded")

        register("explodes", Explodes)


@pytest.mark.parametrize("error,status,code", [(RuntimeError, "FAILED", 1), (KeyboardInterrupt, "KILLED", 130)])
def test_crashed_or_interrupted_runs_are_not_left_running(monkeypatch, tracking_uri, error, status, code):
    monkeypatch.setattr(plugin_mod, "_loaded", build_plugins(extra={"boom": ("asdbench-boom", _Exploding(error))}))
    result = CliRunner().invoke(cli, ["run", "dcase-ae", *TINY, "--set", "scorer=explodes", "--set", "epochs=1",
                                      "--tracking-uri", tracking_uri])
    assert result.exit_code == code
    _, run = _only_run(tracking_uri)
    assert run.info.status == status
    assert "auc/avg" not in run.data.metrics


def test_unknown_system_and_bad_key_are_one_line_errors(tracking_uri):
    result = CliRunner().invoke(cli, ["run", "no-such-system", "--tracking-uri", tracking_uri])
    assert result.exit_code == 1 and "unknown system 'no-such-system'" in result.output
    result = CliRunner().invoke(cli, ["run", "dcase-ae", "--set", "epoch=1", "--tracking-uri", tracking_uri])
    assert result.exit_code == 1 and "Valid keys:" in result.output and "Traceback" not in result.output


def test_tracking_uri_and_figures_from_environment(monkeypatch, tracking_uri):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("ASDBENCH_FIGURES", "off")
    result = CliRunner().invoke(cli, ["run", "dcase-ae", *TINY, "--set", "epochs=1"])
    assert result.exit_code == 0, result.output
    client, run = _only_run(tracking_uri)
    assert run.info.status == "FINISHED"
    assert client.list_artifacts(run.info.run_id, "figures") == [] and client.list_artifacts(run.info.run_id, "scores")


@pytest.mark.slow
def test_stgram_mfn_runs_on_synthetic(tracking_uri):
    result = CliRunner().invoke(cli, ["run", "stgram-mfn", *TINY, "--set", "epochs=1", "--set", "batch_size=16",
                                      "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    assert "4 classes: 0=fan/id_00, 1=fan/id_02, 2=valve/id_00, 3=valve/id_02" in result.output
    client, run = _only_run(tracking_uri)
    assert run.info.status == "FINISHED" and run.data.tags["asdbench.select"] == "last"
    assert run.data.params["loss"] == "arcface" and run.data.params["loss.margin"] == "0.7"
    assert run.data.params["data.shortest_clip_s"] == "1.0"
    assert "train/accuracy" in run.data.metrics and "mauc/valve" in run.data.metrics


def test_grad_clip_bounds_the_gradient_norm_of_a_step():
    from asdbench.training.step import train_step

    plugins = build_plugins()
    cfg = resolve(plugins, "stgram-mfn-cee")
    frontend = plugins.registry("frontend").get("logmel").factory(16000, 4000)
    from asdbench.build import build_model

    model, _ = build_model(plugins, cfg, frontend, frontend.output_shape(4000), num_classes=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(4, 4000) * 100, torch.tensor([0, 1, 2, 0])

    def grad_norm():
        return torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters() if p.grad is not None)).item()

    train_step(model, optimizer, x, y, False, None, grad_clip=0.0)
    assert grad_norm() > 0.5
    train_step(model, optimizer, x, y, False, None, grad_clip=0.5)
    assert grad_norm() <= 0.5 + 1e-5


@pytest.mark.slow
def test_a_killed_run_ends_killed(tracking_uri):
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "asdbench", "run", "dcase-ae", "--set", "dataset.size=tiny", "--set", "epochs=100000",
         "--tracking-uri", tracking_uri], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    client = store_client(tracking_uri)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until training is under way (bounded)
        try:
            runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        except Exception:  # noqa: BLE001 - no experiment yet
            runs = []
        if runs and (checkpoint_dir(runs[0].info.run_id) / "fan.pt").exists():  # training is under way
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and b"Interrupted" in err, err.decode()[-3000:]  # 128 + SIGTERM, as a shell says
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "KILLED"
    assert (checkpoint_dir(run.info.run_id) / "fan.pt").exists()  # an unfinished run keeps its checkpoints
