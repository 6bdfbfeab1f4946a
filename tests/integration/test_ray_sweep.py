"""The one sweep on Ray: its cancellation of running tasks on Ctrl-C leaves both runs resumable (skipping and
resuming themselves are tested on the serial runner, tests/unit/scale/test_sweep.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from support import SUITE, store_client
from support import runs_of as _runs

EPOCHS = 100  # per model: Ctrl-C comes at the second model's third epoch (97 to go, seconds on a busy machine)


@pytest.mark.slow
def test_a_two_worker_sweep_on_ray_resumes_what_ctrl_c_stopped(tmp_path):
    """Ctrl-C on a two-worker Ray sweep cancels its running tasks, ends both runs KILLED or FAILED and leaves no
    epoch lost: the same sweep run again (serially) resumes both to FINISHED, every epoch logged once."""
    uri = f"sqlite:///{tmp_path / 'sweep.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    # An interrupted sweep: stopped (Ctrl-C) once both runs have logged a few checkpointed epochs
    (tmp_path / "long.toml").write_text(SUITE.format(name="long", epochs=EPOCHS))
    proc = subprocess.Popen([sys.executable, "-m", "asdbench", "sweep", str(tmp_path / "long.toml"), "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    client, deadline = store_client(uri), time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            runs = _runs(uri)
            if len(runs) == 2 and all(len(client.get_metric_history(r.info.run_id, "train/loss/valve")) >= 3
                                      for r in runs):
                break
        except Exception:  # noqa: BLE001 - the store may not exist yet
            pass
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
    proc.send_signal(signal.SIGINT)
    stderr = proc.communicate(timeout=120)[1].decode()
    assert proc.returncode == 130, stderr[-3000:]
    interrupted = {r.info.run_id: r.info.status for r in _runs(uri)}
    # nothing left RUNNING: KILLED where the task took the interrupt, FAILED where Ray's cancellation surfaced as
    # another error inside it; either is resumed
    assert len(interrupted) == 2 and set(interrupted.values()) <= {"KILLED", "FAILED"}, interrupted

    # resumed by the serial runner (the same run_spec as a Ray task's): a second Ray instance would add its start-up
    resumed = subprocess.run([sys.executable, "-m", "asdbench", "sweep", str(tmp_path / "long.toml"), "--serial"],
                             capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stderr.count("resumed, done") == 2
    final = {r.info.run_id: r for r in _runs(uri)}
    assert set(final) == set(interrupted) and {r.info.status for r in final.values()} == {"FINISHED"}
    for run in final.values():  # every epoch logged once across the interruption
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "train/loss/valve"))
        assert steps == list(range(1, EPOCHS + 1)) and run.data.tags["asdbench.sweep"] == "long"
    assert "dcase-ae" in resumed.stdout and "idnn" in resumed.stdout  # the sweep's compare table
