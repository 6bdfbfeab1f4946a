"""A trained model used after its run: bundles loaded in a new process by the CLI, the API and MLflow's pyfunc
reproduce the run's scores exactly, and their decisions follow the thresholds."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from support import logged_scores, run_artifacts, tiny_data_root, train_run


def _in_new_process(code: str, env_uri: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "MLFLOW_TRACKING_URI": env_uri})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("system, sets, splits", [
    ("stgram-mfn", (), True),  # a frontend with weights (TgramNet), channels-last backbone, ArcFace logits in the score
    ("dcase-ae", (), True),  # features computed before the model, frame examples, one model per type
    # a model per ID whose other classes are outliers; after one epoch on tiny data it scores every clip of an ID
    # alike (to 1e-7), so its thresholds do not split the set: its decisions are checked, not their spread
    ("mobilenetv2", ("model_per=id-vs-others",), False),
])
def test_cli_api_and_pyfunc_in_a_new_process_reproduce_the_runs_scores_exactly(tmp_path, tracking_uri, system, sets,
                                                                                splits):
    run_id = train_run(tracking_uri, system, *sets)
    artifacts = run_artifacts(tracking_uri, run_id, tmp_path / "artifacts")
    logged = logged_scores(artifacts)
    manifest = json.loads((artifacts / "model" / "artifacts" / "bundle" / "manifest.json").read_text())
    thresholds = {name: t["value"] for name, t in manifest["thresholds"].items()}
    root = tiny_data_root()
    tests = [str(root / t / "test") for t in ("fan", "valve")]

    # The CLI, the Python API and the MLflow pyfunc, in one new process (nothing of the training process is shared)
    out = tmp_path / "scores.csv"
    argv = ["asdbench", "score", run_id, *tests, "-o", str(out), "--tracking-uri", tracking_uri]
    code = f"""
import json, sys, asdbench, mlflow
from asdbench.cli import main
sys.argv = {argv!r}
try:
    main()
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
files = {tests!r}
model = asdbench.load_model("runs:/{run_id}")
api = {{f"{{d.machine_type}}/{{d.path.name}}": [d.score, int(d.anomalous)] for d in model.score(files)}}
frame = mlflow.pyfunc.load_model("runs:/{run_id}/model").predict(sorted(str(p) for f in files for p in __import__("pathlib").Path(f).glob("*.wav")))
pyfunc = {{f"{{t}}/{{f.rsplit('/', 1)[1]}}": [s, d] for t, f, s, d in zip(frame.machine_type, frame.file, frame.score, frame.decision)}}
print(json.dumps([api, pyfunc]))
"""
    api, pyfunc = json.loads(_in_new_process(code, tracking_uri).strip().splitlines()[-1])
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(logged) == 48
    for row in rows:
        name = f"{row['machine_type']}/{Path(row['file']).name}"
        assert float(row["score"]) == logged[name]  # exactly, not approximately
        assert float(row["threshold"]) == thresholds[f"{row['machine_type']}/id_{row['machine_id']}"]
        assert row["decision"] == str(int(float(row["score"]) > float(row["threshold"])))
    if splits:  # the thresholds split this set: decisions differ
        assert 0 < sum(r["decision"] == "1" for r in rows) < len(rows)
    for found in (api, pyfunc):
        assert {name: value for name, (value, _) in found.items()} == logged
        assert all(decision == int(score > thresholds[f"{name.split('/')[0]}/id_{name.split('_id_')[1][:2]}"])
                   for name, (score, decision) in found.items())




