"""A trained model used after its run, in this process: eval reproduces the run's metrics and files, a registered
model and an exported bundle score other recordings, and bad bundles get one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from asdbench.cli import cli
from asdbench.errors import AsdbenchError
from asdbench.serving.model import load_model
from support import run_artifacts, tiny_data_root, train_run


def _broken(bundle: Path, tmp_path: Path, name: str, change) -> Path:
    folder = tmp_path / name
    __import__("shutil").copytree(bundle, folder)
    change(folder)
    return folder

def _edit_manifest(edit):
    def change(folder: Path) -> None:
        data = json.loads((folder / "manifest.json").read_text())
        edit(data)
        (folder / "manifest.json").write_text(json.dumps(data))
    return change


def test_eval_on_the_runs_own_test_set_reproduces_its_metrics_and_files(tmp_path, tracking_uri):
    run_id = train_run(tracking_uri, "dcase-ae")
    result = CliRunner().invoke(cli, ["eval", run_id, "--out", str(tmp_path / "official"), "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    eval_id = result.output.strip().split("MLflow run ")[-1].split(";")[0].strip()
    client = mlflow.MlflowClient(tracking_uri)
    trained, evaluated = client.get_run(run_id), client.get_run(eval_id)
    official = {k: v for k, v in trained.data.metrics.items() if k.split("/")[0] in ("auc", "pauc", "mauc")}
    assert len(official) > 10 and {k: evaluated.data.metrics[k] for k in official} == official
    tags = evaluated.data.tags
    assert tags["asdbench.role"] == "eval" and tags["asdbench.trained_by"] == run_id
    # The official files, in --out and in the eval run, byte for byte those of the training run.
    train_files = run_artifacts(tracking_uri, run_id, tmp_path / "train") / "scores"
    eval_files = run_artifacts(tracking_uri, eval_id, tmp_path / "eval") / "scores"
    names = sorted(p.name for p in train_files.iterdir())
    assert len(names) == 8 and sorted(p.name for p in (tmp_path / "official").iterdir()) == names
    for name in names:
        assert (tmp_path / "official" / name).read_bytes() == (train_files / name).read_bytes() == (eval_files / name).read_bytes()
    # compare keeps to training runs: in each of its tables the system is one row of one run
    table = CliRunner().invoke(cli, ["compare", "--tracking-uri", tracking_uri])
    assert table.exit_code == 0 and table.output.count("dcase-ae") == table.output.count("│ dcase-ae │ 1 │") == 3
    # another protocol's data set, or keys that are not the data set's
    wrong = CliRunner().invoke(cli, ["eval", run_id, "--set", "epochs=3", "--tracking-uri", tracking_uri])
    assert wrong.exit_code == 1 and "eval takes dataset keys only" in wrong.output

def test_registered_model_exported_bundle_and_other_recordings(tmp_path, monkeypatch, dcase_ae_run):
    run_id, tracking_uri = dcase_ae_run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)  # the registry's store (not mlflow.set_tracking_uri: global)
    version = mlflow.register_model(f"runs:/{run_id}/model", "pump-monitor")
    clip = tiny_data_root() / "valve" / "test" / "anomaly_id_02_00000003.wav"
    reference = load_model(run_id, tracking_uri=tracking_uri).score([clip])[0]
    registered = load_model(f"models:/pump-monitor/{version.version}", tracking_uri=tracking_uri).score([clip])[0]
    assert registered.score == reference.score and (registered.machine_type, registered.machine_id) == ("valve", "02")

    bundle = tmp_path / "bundle"
    result = CliRunner().invoke(cli, ["export", run_id, str(bundle), "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in bundle.rglob("*")) == ["fan.safetensors", "manifest.json", "valve.safetensors", "weights"]
    exported = load_model(bundle)
    assert exported.score([clip])[0].score == reference.score

    # A recording named and filed any way, given its machine; two identical channels read like the mono file.
    wave, rate = sf.read(str(clip), dtype="int16")
    sf.write(str(tmp_path / "take 1.wav"), np.stack([wave, wave], axis=1), rate, subtype="PCM_16")
    renamed = exported.score([tmp_path / "take 1.wav"], machine_type="valve", machine_id="02")[0]
    assert renamed.score == reference.score
    cli_result = CliRunner().invoke(cli, ["score", str(bundle), str(tmp_path / "take 1.wav")])
    assert cli_result.exit_code == 1 and "holds no machine ID" in cli_result.output and "--machine-id" in cli_result.output
    # Another sample rate is resampled to the model's, as a data set's clips are
    sf.write(str(tmp_path / "id_02_44k.wav"), np.repeat(wave, 2), 2 * rate, subtype="PCM_16")
    resampled = exported.score([tmp_path / "id_02_44k.wav"], machine_type="valve")[0]
    assert resampled.machine_id == "02" and abs(resampled.score - reference.score) < 0.05 * abs(reference.score)
    unknown = CliRunner().invoke(cli, ["score", str(bundle), str(clip), "--machine-id", "07"])
    assert unknown.exit_code == 1 and "has no valve/id_07; it decides for fan/id_00" in unknown.output
    # Small batches stream the same scores
    files = sorted((tiny_data_root() / "fan" / "test").glob("*.wav"))
    assert [d.score for d in exported.score(files, batch_size=5)] == pytest.approx(
        [d.score for d in exported.score(files)], rel=1e-6)
    json_out = CliRunner().invoke(cli, ["score", str(bundle), str(tiny_data_root() / "fan" / "test"), "-o",
                                        str(tmp_path / "s.json")])
    assert json_out.exit_code == 0, json_out.output
    rows = json.loads((tmp_path / "s.json").read_text())
    assert len(rows) == 24 and set(rows[0]) == {"file", "machine_type", "machine_id", "score", "threshold", "decision"}
    assert "fan/id_00" in json_out.output and "24 files scored" in json_out.output
    bad_format = CliRunner().invoke(cli, ["score", str(bundle), str(clip), "-o", str(tmp_path / "s.txt")])
    assert bad_format.exit_code == 1 and "write a .csv or .json file" in bad_format.output

def test_bad_bundles_get_one_line_errors(tmp_path, dcase_ae_run):
    run_id, tracking_uri = dcase_ae_run
    bundle = tmp_path / "bundle"
    assert CliRunner().invoke(cli, ["export", run_id, str(bundle), "--tracking-uri", tracking_uri]).exit_code == 0
    clip = str(tiny_data_root() / "fan" / "test" / "normal_id_00_00000000.wav")
    weights = "weights/fan.safetensors"
    cases = {
        "newer": (_edit_manifest(lambda d: d.update(format_version=99)),
                  "is a bundle of format version 99, written by asdbench"),
        "plugin": (_edit_manifest(lambda d: d["config"].update(backbone="wavenet-ae")),
                   "needs the backbone plugin 'wavenet-ae' of package asdbench"),
        "weights": (lambda f: (f / weights).write_bytes((f / weights).read_bytes()[:100]) and _edit_manifest(
            lambda d: d["models"]["fan"].pop("sha256"))(f), f"{weights} is corrupt: not a readable safetensors file"),
        "missing": (lambda f: (f / weights).unlink(), f"is incomplete: {weights} is missing"),
        "json": (lambda f: (f / "manifest.json").write_text("{not json"), "manifest.json is corrupt: not valid JSON"),
        "foreign": (lambda f: (f / "manifest.json").write_text('{"name": "resnet"}'),
                    "is not the manifest of an asdbench model bundle"),
        "shape": (_edit_manifest(lambda d: d["config"].update({"backbone.bottleneck": 16})),
                  "does not fit the model its manifest describes"),
        "empty": (lambda f: (f / "manifest.json").unlink(), "is not an asdbench model bundle"),
        # hand-edited manifests: a weight path out of the bundle, wrong types, a checksum that does not match
        "outside": (_edit_manifest(lambda d: d["models"]["fan"].update(weights="../../etc/passwd")),
                    "models.fan.weights must be a file weights/NAME.safetensors inside the bundle"),
        "absolute": (_edit_manifest(lambda d: d["models"]["fan"].update(weights="/tmp/fan.safetensors")),
                     "models.fan.weights must be a file weights/NAME.safetensors inside the bundle"),
        "rate": (_edit_manifest(lambda d: d.update(sample_rate="16k")), "sample_rate must be a positive whole number"),
        "models": (_edit_manifest(lambda d: d.update(models=[])), "models must be a table of one or more models"),
        "shape-type": (_edit_manifest(lambda d: d["models"]["fan"].update(input_shape="640")),
                       "models.fan.input_shape must be a list of positive whole numbers"),
        "threshold": (_edit_manifest(lambda d: d["thresholds"].update({"fan/id_00": 0.5})),
                      "thresholds must be a table of {\"value\": number} per machine"),
        "swapped": (lambda f: (f / weights).write_bytes((f / "weights/valve.safetensors").read_bytes()),
                    f"{weights} is corrupt: its SHA-256 differs from the one the manifest records"),
    }
    for name, (change, message) in cases.items():
        folder = _broken(bundle, tmp_path, name, change)
        result = CliRunner().invoke(cli, ["score", str(folder), clip])
        assert result.exit_code == 1, (name, result.output)
        assert message in result.output and "Traceback" not in result.output, (name, result.output)
        assert len(result.output.strip().splitlines()) == 1, (name, result.output)
    unknown = CliRunner().invoke(cli, ["score", "0" * 32, clip, "--tracking-uri", tracking_uri])
    assert unknown.exit_code == 1 and f"cannot fetch model runs:/{'0' * 32}/model" in unknown.output
    nothing = CliRunner().invoke(cli, ["score", "no-such-model", clip])
    assert nothing.exit_code == 1 and "neither a folder, a run ID nor a runs:/ or models:/ URI" in nothing.output


def test_a_recording_with_nan_samples_is_an_error_never_a_decision(tmp_path, dcase_ae_run):
    """A broken sensor's WAV used to score NaN, be decided normal and exit 0 (with -o x.json, a bare NaN)."""
    run_id, tracking_uri = dcase_ae_run
    broken = tmp_path / "fan" / "test" / "normal_id_00_99999999.wav"
    broken.parent.mkdir(parents=True)
    sf.write(str(broken), np.tile(np.float32([0.1, np.nan, -0.1]), 8000), 16000, subtype="FLOAT")
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(cli, ["score", run_id, str(broken), "-o", str(out), "--tracking-uri", tracking_uri])
    assert result.exit_code == 1 and "Traceback" not in result.output and not out.exists()
    assert f"{broken}: 5334 samples are not finite (NaN or infinite)" in result.output  # of the 16,001 read
    with pytest.raises(AsdbenchError, match="samples are not finite"):
        load_model(f"runs:/{run_id}", tracking_uri=tracking_uri).score([broken])


def test_score_reads_headers_first_skips_bad_files_on_request_and_stays_in_its_folder(tmp_path, dcase_ae_run):
    """One bad file among many used to stop the job at its end with nothing written; a link out of the folder was
    followed."""
    run_id, tracking_uri = dcase_ae_run
    folder = tmp_path / "fan" / "test"
    folder.mkdir(parents=True)
    good = sorted((tiny_data_root() / "fan" / "test").glob("*id_00*.wav"))[:4]
    for clip in good:
        __import__("shutil").copy(clip, folder / clip.name)
    corrupt = folder / "normal_id_00_90000000.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(64))
    nan = folder / "normal_id_00_90000001.wav"
    sf.write(str(nan), np.tile(np.float32([0.1, np.nan, -0.1]), 8000), 16000, subtype="FLOAT")
    elsewhere = tmp_path / "elsewhere.wav"
    __import__("shutil").copy(good[0], elsewhere)
    (folder / "normal_id_00_90000002.wav").symlink_to(elsewhere)
    out = tmp_path / "scores.csv"
    stopped = CliRunner().invoke(cli, ["score", run_id, str(folder), "-o", str(out), "--tracking-uri", tracking_uri])
    assert stopped.exit_code == 1 and not out.exists(), stopped.output
    assert stopped.output.strip().splitlines()[-1].startswith(f"Error: {corrupt}: not a readable WAV file")
    assert "nothing was scored" in stopped.output
    skipped = CliRunner().invoke(cli, ["score", run_id, str(folder), "-o", str(out), "--skip-bad-files",
                                       "--tracking-uri", tracking_uri])
    assert skipped.exit_code == 0, skipped.output
    rows = out.read_text().splitlines()
    assert [Path(r.split(",")[0]).name for r in rows[1:]] == [c.name for c in good]  # the link's target is not read
    text = " ".join(skipped.output.split())
    assert f"Skipped {corrupt}: not a readable WAV file" in text and f"Skipped {nan}: 5334 samples are not finite" in text
    assert "1 links lead out of the folders named and are not followed" in text and "2 bad files skipped" in text


def test_only_the_start_a_model_needs_is_read_from_a_long_recording(tmp_path):
    """An hour of 48 kHz audio in six channels took 10 GB to score its first second; here a minute of it is read
    in well under the 69 MB its samples take as float32, and the start is exactly what a whole read gives."""
    import tracemalloc

    from asdbench.audio import read_wav

    path = tmp_path / "long.wav"
    rng = np.random.default_rng(0)
    sf.write(str(path), rng.uniform(-0.5, 0.5, (48000 * 60, 6)).astype(np.float32), 48000, subtype="PCM_16")
    tracemalloc.start()
    start = read_wav(path, 48000, "first", max_samples=48000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3_000_000 and start.shape == (48001,)
    whole = read_wav(path, 48000, "first")
    assert np.array_equal(start, whole[:48001])
    resampled = read_wav(path, 16000, "mean", max_samples=16000)  # the sinc filter sees a second beyond the start
    np.testing.assert_allclose(resampled, read_wav(path, 16000, "mean")[:16001], atol=1e-6)
