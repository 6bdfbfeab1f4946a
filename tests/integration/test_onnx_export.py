"""``asdbench export --format onnx`` for every built-in system: a graph per model from the waveform to the score,
scored by ``asdbench score`` with ONNX Runtime alone (no torch in the process), to the bundle's scores within 1e-4
relative, rankings and AUCs identical (``pytest --exports`` for all of them; the default run, stgram-mfn). The encoder systems
refuse in one line (tests/unit/training/test_encoder_systems.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from asdbench.cli import cli
from asdbench.plugins import build_plugins
from support import tiny_data_root, train_run

ENCODERS = ("beats", "hf-encoder")  # a checkpoint file each; their Kaldi filter bank does not export
SYSTEMS = sorted(e.name for e in build_plugins().registry("system") if e.factory.frontend not in ENCODERS)
RELATIVE = 1e-4


def _score_without_torch(folder, test, out, cwd) -> None:
    """``asdbench score`` on the exported folder in a new process, which must never import torch (nor MLflow)."""
    code = (f"import sys\nfrom asdbench.cli import cli\ntry:\n    cli(['score', {str(folder)!r}, {str(test)!r}, '-o', "
            f"{str(out)!r}])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchaudio', 'mlflow')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


# The default run exports the paper's system; pytest --exports, every system (about 15 s of export each on 2 cores).
# The traced paths of glow's ActNorm, tfgram's pooling and the embedding back-ends (every class's fit, each clip's
# own column) have their own quick tests.
DEFAULT_RUN = ("stgram-mfn",)


@pytest.mark.slow
@pytest.mark.parametrize("system", [pytest.param(s, marks=() if s in DEFAULT_RUN else pytest.mark.exports)
                                    for s in SYSTEMS])
def test_every_system_exports_and_scores_as_its_bundle_without_torch(system, tmp_path, tracking_uri):
    run_id = train_run(tracking_uri, system, "types=fan")  # one model where a system trains one per type
    folder = tmp_path / "onnx"
    result = CliRunner().invoke(cli, ["export", run_id, str(folder), "--format", "onnx", "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == "asdbench-onnx" and sorted(p.name for p in folder.iterdir()) == sorted(
        ["manifest.json", *(m["graph"] for m in manifest["models"].values())])
    test = tiny_data_root() / "fan" / "test"
    _score_without_torch(folder, test, tmp_path / "onnx.json", tmp_path)
    reference = CliRunner().invoke(cli, ["score", run_id, str(test), "-o", str(tmp_path / "torch.json"),
                                         "--tracking-uri", tracking_uri])
    assert reference.exit_code == 0, reference.output
    onnx, torch_rows = (json.loads((tmp_path / name).read_text()) for name in ("onnx.json", "torch.json"))
    assert [r["file"] for r in onnx] == [r["file"] for r in torch_rows] and len(onnx) == 24
    for a, b in zip(onnx, torch_rows):
        assert a["score"] == pytest.approx(b["score"], rel=RELATIVE) and a["threshold"] == b["threshold"]
        if not _tied(b["score"], b["threshold"]):  # a score within the tolerance of its threshold may flip
            assert a["decision"] == b["decision"]
    labels = [int("anomaly" in r["file"]) for r in onnx]
    for machine in ("00", "02"):
        rows = [i for i, r in enumerate(onnx) if r["machine_id"] == machine]
        exported, reference = [onnx[i]["score"] for i in rows], [torch_rows[i]["score"] for i in rows]
        # clips the model tells apart are ranked alike; a 1-epoch model may score some clips within float noise of
        # each other, and only those may swap (then the AUC may move by their share of the pairs)
        tied = 0
        for i in range(len(rows)):
            for j in range(i):
                if _tied(reference[i], reference[j]):
                    tied += 1
                else:
                    assert (exported[i] > exported[j]) == (reference[i] > reference[j])
        if not tied:
            assert roc_auc_score([labels[i] for i in rows], exported) == roc_auc_score([labels[i] for i in rows],
                                                                                       reference)


def _tied(a: float, b: float) -> bool:
    return abs(a - b) <= 2 * RELATIVE * max(abs(a), abs(b))


def test_int8_quantises_the_backbone_on_calibration_recordings_and_keeps_the_ranking(dcase_ae_run, tmp_path):
    """dcase-ae's dense layers in INT8, calibrated on the training recordings: well under its float weights' size,
    its scores ranked as the bundle's; an export is for score, and the commands that need the bundle say so."""
    import onnx
    from scipy.stats import spearmanr

    run_id, uri = dcase_ae_run
    data = tiny_data_root()
    folder = tmp_path / "int8"
    only_fan = CliRunner().invoke(cli, ["export", run_id, str(folder), "--format", "onnx", "--int8",
                                        str(data / "fan" / "train"), "--tracking-uri", uri])
    assert only_fan.exit_code == 1 and not folder.exists()
    assert "holds no recording of valve/id_00, valve/id_02: INT8 calibration needs" in only_fan.output
    calibration = tmp_path / "calibration"
    for machine_type in ("fan", "valve"):
        (calibration / machine_type).mkdir(parents=True)
        for wav in sorted((data / machine_type / "train").glob("*.wav")):
            shutil.copyfile(wav, calibration / machine_type / wav.name)
    result = CliRunner().invoke(cli, ["export", run_id, str(folder), "--format", "onnx", "--int8", str(calibration),
                                      "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["quantization"]["format"] == "int8-qdq"
    bundle = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/model", tracking_uri=uri,
                                                      dst_path=str(tmp_path / "bundle")))
    for slug, entry in manifest["models"].items():
        graph = onnx.load(str(folder / entry["graph"]))
        assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in graph.graph.node}
        assert entry["int8"]["calibration_files"] == 20  # the type's training clips
        float_weights = sum(p.stat().st_size for p in bundle.rglob(f"*{slug}*.safetensors"))
        assert 0 < (folder / entry["graph"]).stat().st_size < 0.6 * float_weights
    test = data / "valve" / "test"
    assert CliRunner().invoke(cli, ["score", str(folder), str(test), "-o", str(tmp_path / "int8.json")]).exit_code == 0
    assert CliRunner().invoke(cli, ["score", run_id, str(test), "-o", str(tmp_path / "float.json"),
                                    "--tracking-uri", uri]).exit_code == 0
    float_scores, int8_scores = ([r["score"] for r in json.loads((tmp_path / f"{name}.json").read_text())]
                                 for name in ("float", "int8"))
    assert float_scores != int8_scores and spearmanr(float_scores, int8_scores).statistic > 0.95
    calibrate = CliRunner().invoke(cli, ["calibrate", str(folder), str(test), "--out", str(tmp_path / "c")])
    assert calibrate.exit_code == 1 and "is an ONNX export: `asdbench score` scores it" in calibrate.output


def test_a_part_that_does_not_trace_is_named_in_one_line_and_nothing_is_left(dcase_ae_run, tmp_path, monkeypatch):
    """A scorer that branches on the scores it computes (as a plugin might): the export stops naming the scorer,
    after the frontend was found to export on its own; the CLI leaves neither the folder nor its partial copy."""
    from asdbench_plugins.scorers.recon_error import ReconstructionError

    score = ReconstructionError.score

    def branching(self, output, target, loss):
        values = score(self, output, target, loss)
        return values * 2 if bool(values.sum() > 1e6) else values

    monkeypatch.setattr(ReconstructionError, "score", branching)
    run_id, uri = dcase_ae_run
    result = CliRunner().invoke(cli, ["export", run_id, str(tmp_path / "onnx"), "--format", "onnx",
                                      "--tracking-uri", uri])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("Error: dcase-ae cannot be exported to ONNX: its scorer 'recon-error' does not "
                                    "trace (GuardOnDataDependentSymNode: "), result.output
    assert list(tmp_path.iterdir()) == []
