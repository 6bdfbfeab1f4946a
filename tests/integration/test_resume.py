"""Interrupted runs resume to exactly the scores of an uninterrupted run: SIGKILL, SIGTERM, a crash."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

import known_answer_plugins as known
from asdbench import plugins as plugin_mod
from asdbench.cache import checkpoint_dir
from asdbench.cli import cli
from asdbench.errors import AsdbenchError
from asdbench.plugins import build_plugins
from asdbench.training.checkpoint import Identity, load, read, save
from support import store_client

# Two models (fan, valve), a cosine schedule, a checkpoint after every epoch, float32: bit-identical on a CPU. The
# interruption comes after the valve model's fourth epoch, with about 36 to go.
EPOCHS = 40
ARGS = ["dcase-ae", "--set", "dataset.size=tiny", "--set", f"epochs={EPOCHS}", "--set", "precision=fp32",
        "--set", "scheduler=cosine", "--set", "checkpoint_every_s=0"]


def _only_run(client):
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    return runs[0]


def _clip_scores(client, run_id, folder):
    return Path(client.download_artifacts(run_id, "clip_scores.csv", str(folder))).read_text()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    result = CliRunner().invoke(cli, ["run", *ARGS, "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    client = MlflowClient(uri)
    return _clip_scores(client, _only_run(client).info.run_id, folder)


def _interrupt(uri, sig):
    """Start a real `asdbench run` process and send it ``sig`` once the valve model has 3 or more checkpointed epochs."""
    proc = subprocess.Popen([sys.executable, "-m", "asdbench", "run", *ARGS, "--tracking-uri", uri],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    client = store_client(uri)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            run = _only_run(client)
            # Epochs are logged just before their checkpoint is written: 4 logged means at least 3 checkpointed.
            if len(client.get_metric_history(run.info.run_id, "train/loss/valve")) >= 4:
                break
        except Exception:  # noqa: BLE001 - the store may not exist yet
            pass
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(sig)
    stderr = proc.communicate(timeout=60)[1].decode(errors="replace")
    return client, _only_run(client).info.run_id, stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig,status", [(signal.SIGKILL, "RUNNING"), (signal.SIGTERM, "KILLED")])
def test_an_interrupted_run_resumes_to_the_uninterrupted_scores(sig, status, uninterrupted, tracking_uri, tmp_path):
    client, run_id, stderr = _interrupt(tracking_uri, sig)
    assert client.get_run(run_id).info.status == status, stderr[-3000:]  # SIGKILL cannot be caught: left RUNNING
    checkpoint = read(checkpoint_dir(run_id) / "valve.pt")
    assert 3 <= checkpoint["epoch"] < EPOCHS and not checkpoint["finished"]
    assert read(checkpoint_dir(run_id) / "fan.pt")["finished"]  # the first model is done: not trained again
    listed = CliRunner(env={"COLUMNS": "250"}).invoke(cli, ["runs", "--tracking-uri", tracking_uri])
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if run_id in line)
    assert "dcase-ae" in row and ("RUNNING (process gone)" if sig == signal.SIGKILL else "KILLED") in row
    # Epochs are logged just before the checkpoint that holds them is written: a kill in between leaves one more.
    logged = int(re.search(rf"fan {EPOCHS}, valve (\d+) of {EPOCHS}", row).group(1))
    assert logged in (checkpoint["epoch"], checkpoint["epoch"] + 1) and "yes" in row
    records = json.loads(CliRunner().invoke(cli, ["runs", "--json", "--tracking-uri", tracking_uri]).output)
    record = next(r for r in records if r["run_id"] == run_id)
    assert record["resumable"] and record["checkpoints"] and record["epochs_done"] == f"fan {EPOCHS}, valve {logged} of {EPOCHS}"
    result = CliRunner().invoke(cli, ["run", "--resume", run_id, "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    assert f"resumed after epoch {checkpoint['epoch']} of {EPOCHS}" in result.output
    assert f"Model 'fan': trained to epoch {EPOCHS} before the interruption" in result.output
    assert client.get_run(run_id).info.status == "FINISHED" and len(client.search_runs(
        [e.experiment_id for e in client.search_experiments()])) == 1
    assert _clip_scores(client, run_id, tmp_path) == uninterrupted  # bit for bit
    for group in ("fan", "valve"):  # every epoch logged once
        assert sorted(m.step for m in client.get_metric_history(run_id, f"train/loss/{group}")) == list(range(1, EPOCHS + 1))
    again = CliRunner().invoke(cli, ["run", "--resume", run_id, "--tracking-uri", tracking_uri])
    assert again.exit_code == 1 and f"run {run_id} is FINISHED" in again.output


@pytest.mark.parametrize("select", ["last", "oracle"])  # oracle: the best epoch so far is in the checkpoint too
def test_a_crashed_run_resumes_to_the_uninterrupted_scores(monkeypatch, tmp_path, select):
    tree = known.write_tree(tmp_path / "data")
    monkeypatch.setattr(plugin_mod, "_loaded", build_plugins(extra={"known": (known.PACKAGE, known)}))
    args = ["run", "peak-level", "--root", str(tree), "--set", "epochs=6", "--set", "scorer.source=reconstruction",
            "--set", "checkpoint_every_s=0", "--set", "scheduler=cosine", "--set", f"select={select}",
            "--set", "select_every=1"]
    reference_uri, uri = f"sqlite:///{tmp_path / 'reference.db'}", f"sqlite:///{tmp_path / 'crash.db'}"
    assert CliRunner().invoke(cli, [*args, "--tracking-uri", reference_uri]).exit_code == 0
    reference = MlflowClient(reference_uri)
    expected = _clip_scores(reference, _only_run(reference).info.run_id, tmp_path / "a")
    # fan: 22 clips, 3 batches x 6 epochs; pump: 16 clips, 2 batches an epoch: crash in pump epoch 3, batch 1
    monkeypatch.setattr(known, "CRASH_AT_BATCH", known._batches_seen[0] + 3 * 6 + 2 * 2 + 1)
    crashed = CliRunner().invoke(cli, [*args, "--tracking-uri", uri])
    assert crashed.exit_code == 1 and "injected crash" in str(crashed.exception)
    client = MlflowClient(uri)
    run_id = _only_run(client).info.run_id
    assert client.get_run(run_id).info.status == "FAILED"
    assert read(checkpoint_dir(run_id) / "pump.pt")["epoch"] == 2  # resumed mid-model, not from scratch
    monkeypatch.setattr(known, "CRASH_AT_BATCH", 0)
    changed = CliRunner().invoke(cli, ["run", "--resume", run_id, "--set", "epochs=7", "--tracking-uri", uri])
    assert changed.exit_code == 1 and "epochs = 6 (checkpoint) vs 7 (now)" in changed.output
    recorded = torch.get_num_threads()  # the run's threads=auto, as it recorded it
    threads = CliRunner().invoke(cli, ["run", "--resume", run_id, "--set", f"threads={recorded + 1}", "--tracking-uri", uri])
    assert threads.exit_code == 1 and f"threads = {recorded} (checkpoint) vs {recorded + 1} (now)" in threads.output
    torch.set_num_threads(recorded + 1)  # this process's default is now another count: the resume uses the run's own
    try:
        resumed = CliRunner().invoke(cli, ["run", "--resume", run_id, "--tracking-uri", uri])
        assert torch.get_num_threads() == recorded
    finally:
        torch.set_num_threads(recorded)
    assert resumed.exit_code == 0, resumed.output
    assert _clip_scores(client, run_id, tmp_path / "b") == expected
    kept = {k: v for k, v in client.get_run(run_id).data.metrics.items() if k.startswith("selected_epoch/")}
    assert kept == {k: v for k, v in _only_run(reference).data.metrics.items() if k.startswith("selected_epoch/")}


def test_a_checkpoint_for_another_setting_or_not_a_checkpoint_is_refused_in_one_line(tmp_path):
    import asdbench

    identity = Identity({"epochs": 3, "lr": 0.001}, "abc", "data-1")
    path = tmp_path / "fan.pt"
    save(path, {"epoch": 1}, identity)
    assert load(path, identity)["epoch"] == 1
    with pytest.raises(AsdbenchError, match=r"epochs = 3 \(checkpoint\) vs 5 \(now\); lr = 0\.001 \(checkpoint\) "
                                            r"vs '<absent>' \(now\)$"):
        load(path, Identity({"epochs": 5}, "abc", "data-1"))
    with pytest.raises(AsdbenchError, match=r"the data \(fingerprint data-1 vs data-2"):
        load(path, Identity({"epochs": 3, "lr": 0.001}, "abc", "data-2"))
    with pytest.raises(AsdbenchError, match=rf"asdbench version {asdbench.__version__} \(checkpoint\) vs 9\.9 \(now\)"):
        load(path, Identity({"epochs": 3, "lr": 0.001}, "abc", "data-1", version="9.9"))

    (tmp_path / "noise.pt").write_bytes(os.urandom(256))
    torch.save({"epoch": 1}, tmp_path / "plain.pt")
    torch.save({"format": "asdbench-checkpoint", "format_version": 1, "x": Path("/")}, tmp_path / "pickle.pt")
    for name, reason in (("noise.pt", "is not an asdbench checkpoint"), ("plain.pt", "no 'asdbench-checkpoint' marker"),
                         ("pickle.pt", "is not an asdbench checkpoint")):  # a pickled object: never unpickled
        with pytest.raises(AsdbenchError, match=reason) as caught:
            read(tmp_path / name)
        assert "\n" not in str(caught.value)
