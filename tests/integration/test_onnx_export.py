"""``asdbench export --format onnx``: a graph per model from the waveform to the score, scored by ``asdbench score``
with ONNX Runtime alone (no torch in the process), to the bundle's scores within 1e-4 relative, decisions and AUCs
identical."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from asdbench.cli import cli
from support import tiny_data_root, train_run


def _rows(path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("system", ["stgram-mfn"])  # dcase-ae, idnn, mobilenetv2: by hand (closing note of issue 29)
def test_an_onnx_export_scores_as_the_bundle_without_torch(system, tmp_path, tracking_uri):
    run_id = train_run(tracking_uri, system)
    folder = tmp_path / "onnx"
    result = CliRunner().invoke(cli, ["export", run_id, str(folder), "--format", "onnx", "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == "asdbench-onnx" and sorted(p.name for p in folder.iterdir()) == sorted(
        ["manifest.json", *(m["graph"] for m in manifest["models"].values())])
    test = tiny_data_root() / "fan" / "test"
    # asdbench score on the exported folder, in a new process: torch is never imported
    code = (f"import sys\nfrom asdbench.cli import cli\ntry:\n    cli(['score', {str(folder)!r}, {str(test)!r}, '-o', "
            f"{str(tmp_path / 'onnx.json')!r}])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchaudio', 'mlflow')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    reference = CliRunner().invoke(cli, ["score", run_id, str(test), "-o", str(tmp_path / "torch.json"),
                                         "--tracking-uri", tracking_uri])
    assert reference.exit_code == 0, reference.output
    onnx, torch_rows = _rows(tmp_path / "onnx.json"), _rows(tmp_path / "torch.json")
    assert [r["file"] for r in onnx] == [r["file"] for r in torch_rows] and len(onnx) == 24
    for a, b in zip(onnx, torch_rows):
        assert a["score"] == pytest.approx(b["score"], rel=1e-4) and a["threshold"] == b["threshold"]
    assert [r["decision"] for r in onnx] == [r["decision"] for r in torch_rows]
    labels = [int("anomaly" in r["file"]) for r in onnx]
    for machine in ("00", "02"):
        rows = [i for i, r in enumerate(onnx) if r["machine_id"] == machine]
        assert roc_auc_score([labels[i] for i in rows], [onnx[i]["score"] for i in rows]) == roc_auc_score(
            [labels[i] for i in rows], [torch_rows[i]["score"] for i in rows])
    # an exported folder is for score: the commands that need the bundle say so
    monitor = CliRunner().invoke(cli, ["calibrate", str(folder), str(test), "--out", str(tmp_path / "c")])
    assert monitor.exit_code == 1 and "is an ONNX export: `asdbench score` scores it" in monitor.output
