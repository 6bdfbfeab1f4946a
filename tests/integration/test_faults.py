"""The fault table: each situation created for real, with the behaviour a user gets."""

import io
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
    (lambda root: _other_layout(root), "holds a DCASE 2022-2025 Task 2 layout (sections, domains), not DCASE 2020's: "
                                       "use --dataset dcase2022t2 or dcase2023t2"),
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
             for seed in range(2)]  # two racing processes on two cores: the race the lock settles
    errors = [p.communicate(timeout=300)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-1500:] for e in errors)
    runs = _runs(uri)
    assert sorted(r.data.params["seed"] for r in runs) == ["0", "1"]
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


@pytest.fixture
def known_cli(monkeypatch):
    monkeypatch.setattr(plugin_mod, "_loaded", build_plugins(extra={"known": (known.PACKAGE, known)}))


def _peak_run(tree, uri, *extra):
    return CliRunner().invoke(cli, ["run", "peak-level", "--root", str(tree), "--tracking-uri", uri, *extra])


def _float_wav(value: float) -> bytes:
    """A float WAV whose samples include ``value``: what a broken sensor writes."""
    buffer = io.BytesIO()
    sf.write(buffer, np.tile(np.float32([0.1, value, -0.1]), 2000), 16000, subtype="FLOAT", format="WAV")
    return buffer.getvalue()


@pytest.mark.parametrize("content,reason", [
    (_float_wav(np.nan), "2000 samples are not finite (NaN or infinite)"),  # a broken sensor, once called normal
    (_float_wav(np.inf), "2000 samples are not finite (NaN or infinite)"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt garbage", "not a readable WAV file"),  # corrupt
    (None, "truncated"),  # a whole file cut in half
    (b"", "not a readable WAV file"),  # zero bytes
    (b"ID3\x04\x00 an mp3 named .wav", "not a readable WAV file"),  # another format
])
def test_a_bad_wav_stops_the_run_before_training_or_is_skipped(known_cli, tmp_path, tracking_uri, content, reason):
    tree = known.write_tree(tmp_path / "data")
    bad = tree / "dev_data" / "fan" / "test" / "anomaly_id_00_00000003.wav"
    bad.write_bytes(bad.read_bytes()[: len(bad.read_bytes()) // 2] if content is None else content)
    stopped = _peak_run(tree, tracking_uri)
    assert stopped.exit_code == 1 and "Traceback" not in stopped.output
    assert f"{bad}: {reason}" in stopped.output and "--skip-bad-files" in stopped.output
    assert "Training" not in stopped.output and not _runs(tracking_uri)  # nothing trained, no run left behind
    checked = CliRunner().invoke(cli, ["data", "check", "--dataset", "dcase2020t2", "--root", str(tree)])
    assert checked.exit_code == 1 and "1 files cannot be read" in checked.output
    assert reason in " ".join(checked.output.split())  # the table wraps long lines
    skipped = _peak_run(tree, tracking_uri, "--skip-bad-files")
    assert skipped.exit_code == 0, skipped.output
    (run,) = _runs(tracking_uri)
    assert run.data.params["data.bad_files"] == "1" and run.data.metrics["auc/avg"] == 1.0
    listed = MlflowClient(tracking_uri).download_artifacts(run.info.run_id, "bad_files.csv", str(tmp_path))
    rows = open(listed).read().splitlines()
    assert rows[0] == "file,reason" and rows[1].startswith(f"{bad},{bad}: {reason}") and len(rows) == 2


def test_other_rates_channels_and_sample_formats_are_converted_as_declared(known_cli, tmp_path, tracking_uri):
    tree = known.write_tree(tmp_path / "data", {"pump": "FLOAT"})
    fan = tree / "dev_data" / "fan"
    t44 = np.arange(int(0.25 * 44100)) / 44100
    sf.write(str(fan / "train" / "normal_id_00_00000005.wav"), 0.2 * np.sin(2 * np.pi * 300 * t44), 44100)  # 44.1 kHz
    t = np.arange(4000) / 16000
    stereo = np.stack([0.25 * np.sin(2 * np.pi * 440 * t), 0.9 * np.sin(2 * np.pi * 440 * t)], axis=1)
    sf.write(str(fan / "test" / "normal_id_02_00000001.wav"), stereo, 16000, subtype="PCM_24")  # 2 channels, 24 bit
    loud = tree / "dev_data" / "pump" / "test" / "anomaly_id_00_00000002.wav"
    sf.write(str(loud), (1.5 * np.sin(2 * np.pi * 250 * t)).astype(np.float32), 16000, subtype="FLOAT")  # beyond 1.0
    result = _peak_run(tree, tracking_uri)
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("Note:")]
    assert notes == [  # once per run, not per file
        "Note: 1 files at 44100 Hz are resampled to 16000 Hz",
        "Note: 1 files have 2 channels: read as the dataset declares (dataset.channel)",
        "Note: 33 files are FLOAT, PCM_24: kept at full precision (float32)",  # pump: 2 x 16, + 1
    ]
    (run,) = _runs(tracking_uri)
    scores = MlflowClient(tracking_uri).download_artifacts(run.info.run_id, "clip_scores.csv", str(tmp_path))
    by_name = {(r.split(",")[0], r.split(",")[2]): float(r.split(",")[4]) for r in open(scores).read().splitlines()[1:]}
    assert by_name[("pump", loud.name)] == pytest.approx(1.5, abs=1e-6)  # a float sample above 1 is not clipped
    assert by_name[("fan", "normal_id_02_00000001.wav")] == pytest.approx(0.25, abs=1e-6)  # the first channel


def test_undefined_metrics_are_blank_and_absent_never_a_crash_or_half(known_cli, tmp_path, tracking_uri):
    tree = known.write_tree(tmp_path / "data")
    for path in (tree / "dev_data" / "fan" / "test").glob("anomaly_id_02_*.wav"):
        path.unlink()  # fan id_02: normal clips only
    for path in (tree / "dev_data" / "pump").rglob("*_id_02_*.wav"):
        path.unlink()  # pump: a machine type with one ID
    result = _peak_run(tree, tracking_uri, "--set", "model_per=id")
    assert result.exit_code == 0, result.output
    (run,) = _runs(tracking_uri)
    metrics = run.data.metrics
    assert "auc/fan/id_02" not in metrics and "pauc/fan/id_02" not in metrics
    assert metrics["auc/fan/id_00"] == 1.0 and metrics["auc/pump/id_00"] == metrics["mauc/pump"] == 1.0
    compared = CliRunner().invoke(cli, ["compare", "--tracking-uri", tracking_uri, "--format", "json", "--ci"])
    assert compared.exit_code == 0, compared.output
    for path in (tree / "dev_data").rglob("anomaly_*.wav"):
        path.unlink()  # a one-class test set: nothing can be measured
    one_class = _peak_run(tree, tracking_uri, "--set", "model_per=id")
    assert one_class.exit_code == 0, one_class.output
    latest = max(_runs(tracking_uri), key=lambda r: r.info.start_time)
    assert not [k for k in latest.data.metrics if k.split("/")[0] in ("auc", "pauc", "mauc")]
    assert "0.5" not in "".join(line for line in one_class.output.splitlines() if "Average" in line)


@pytest.mark.slow
def test_a_full_disk_fails_the_run_cleanly_without_a_partial_cache_entry(tmp_path, tracking_uri):
    """A file-size limit (ulimit -f) makes the wave cache's 19 MB entry unwritable, as a full disk would."""
    import resource

    from asdbench.cache import cache_dir

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (8 * 2**20, 8 * 2**20))

    proc = subprocess.run([sys.executable, "-m", "asdbench", "run", "dcase-ae", "--set", "dataset.size=tiny",
                           "--set", "clip_seconds=30", "--set", "epochs=1", "--tracking-uri", tracking_uri],
                          capture_output=True, text=True, env=os.environ.copy(), preexec_fn=limit, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]  # an error, not a SIGBUS (-7) or SIGXFSZ (-25)
    assert "Error: cannot write the cache entry" in proc.stderr and "File too large" in proc.stderr
    assert "Traceback" not in proc.stderr
    (run,) = _runs(tracking_uri)
    assert run.info.status == "FAILED"
    waves = cache_dir() / "waves"
    entries = list(waves.iterdir()) if waves.exists() else []
    assert not [p for p in entries if "partial" in p.name]  # no half-written entry
    assert all((p / "complete").exists() for p in entries)


def test_a_failed_checkpoint_write_leaves_the_good_one(tmp_path, monkeypatch):
    import errno

    import torch

    from asdbench.errors import AsdbenchError
    from asdbench.training import checkpoint

    identity = checkpoint.Identity({"epochs": 3}, "abc", "data")
    path = tmp_path / "fan.pt"
    checkpoint.save(path, {"epoch": 1}, identity)
    good = path.read_bytes()

    def full_disk(obj, fh):
        fh.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(AsdbenchError, match=f"cannot write checkpoint {path}: No space left on device"):
        checkpoint.save(path, {"epoch": 2}, identity)
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["fan.pt"]


def test_the_line_of_an_exception_that_one_line_errors_quote():
    from asdbench.errors import described, reason

    wrapped = RuntimeError("ray.exceptions.RayTaskError: task failed\n  File x.py, line 3\nValueError: bad lr")
    assert reason(wrapped) == "ray.exceptions.RayTaskError: task failed"
    assert reason(wrapped, last=True) == "ValueError: bad lr"
    assert reason(OSError("x" * 500)) == "x" * 200 and reason(OSError("x" * 500), limit=300) == "x" * 300
    assert reason(KeyError()) == "KeyError" and described(KeyError()) == "KeyError"
    assert described(TypeError("  got an unexpected keyword 'n_mel'\nmore")) == "TypeError: got an unexpected keyword 'n_mel'"


@pytest.mark.parametrize("folder", ["fan(1)", "pump+valve"])
def test_a_machine_type_mlflow_cannot_name_is_refused_before_training(known_cli, tmp_path, tracking_uri, folder):
    """Such a type used to crash the run at its first metric, the first model's training lost."""
    tree = known.write_tree(tmp_path / "data")
    for subset in ("dev_data", "eval_data"):
        if (tree / subset / "fan").exists():
            (tree / subset / "fan").rename(tree / subset / folder)
    result = _peak_run(tree, tracking_uri)
    assert result.exit_code == 1 and "Traceback" not in result.output and "Training" not in result.output
    assert f"its machine type '{folder}' cannot be part of an MLflow metric name" in " ".join(result.output.split())
    assert not _runs(tracking_uri)


def test_a_collapsed_models_run_finishes_with_its_figures_but_the_t_sne(known_cli, tmp_path, tracking_uri, monkeypatch):
    """Constant embeddings made t-SNE's compiled code segfault after training and scoring, the run left RUNNING."""
    monkeypatch.setenv("ASDBENCH_FIGURES", "1")
    tree = known.write_tree(tmp_path / "data")
    result = _peak_run(tree, tracking_uri, "--set", "backbone.collapsed=4", "--set", "scorer.source=reconstruction")
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())
    assert "no t-SNE figure of fan: its test clips' embeddings cannot be projected (they are all alike" in shown
    (run,) = _runs(tracking_uri)
    assert run.info.status == "FINISHED" and "auc/avg" in run.data.metrics
    drawn = {a.path for a in MlflowClient(tracking_uri).list_artifacts(run.info.run_id, "figures")}
    assert drawn == {f"figures/{kind}_{t}.png" for kind in ("roc", "scores") for t in ("fan", "pump")}


def test_a_scorer_that_raises_is_named_with_its_package_and_the_trained_weights_are_kept(known_cli, tmp_path,
                                                                                         tracking_uri):
    """A third-party scorer's bug used to end the run in a traceback, its trained models lost."""
    tree = known.write_tree(tmp_path / "data")
    result = _peak_run(tree, tracking_uri, "--set", "scorer.fail=true")
    assert result.exit_code == 1 and "Traceback" not in result.output
    (run,) = _runs(tracking_uri)
    assert result.output.strip().splitlines()[-1] == (
        f"Error: the scorer 'peak' of package {known.PACKAGE} failed on model 'fan': ZeroDivisionError: division by "
        f"zero in a plugin; the trained weights are logged with MLflow run {run.info.run_id} (model/)")
    assert run.info.status == "FAILED"
    logged = {a.path for a in MlflowClient(tracking_uri).list_artifacts(run.info.run_id, "model/weights")}
    assert logged == {"model/weights/fan.safetensors"}  # the model trained before the failure


def test_a_scorer_that_raises_during_checkpoint_selection_is_named_and_the_run_can_resume(known_cli, tmp_path,
                                                                                          tracking_uri):
    """select=oracle scores the test set every few epochs; a scorer raising there was a traceback."""
    tree = known.write_tree(tmp_path / "data")
    result = _peak_run(tree, tracking_uri, "--set", "scorer.fail=true", "--set", "select=oracle", "--set",
                       "select_every=1", "--set", "checkpoint_every_s=0")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1] == (
        f"Error: the scorer 'peak' of package {known.PACKAGE} failed while select=oracle scored model 'fan' for "
        "checkpoint selection: ZeroDivisionError: division by zero in a plugin; fix the scorer, then --resume the run "
        "from its last checkpoint")
    (run,) = _runs(tracking_uri)
    assert run.info.status == "FAILED"
