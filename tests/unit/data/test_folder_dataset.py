"""The ``folder`` data set: a site's own recordings in train/ and test/ folders, any rate and channel count, long
files cut by the declared rule; recognised from --root alone; a run on it whose AUC is known (peak level: 1.0)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

import known_answer_plugins as known
from asdbench import plugins as plugin_mod
from asdbench.cli import cli
from asdbench.config import resolve
from asdbench.data.plan import make_plan
from asdbench.data.recognise import dataset_for
from asdbench.errors import AsdbenchError
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.runtime import resolve_runtime
from asdbench.training.runner import execute
from asdbench_plugins.datasets.folder import Excerpt, FolderDataset


def tone(path, seconds: float, peak: float, rate: int = 16000, channels: int = 1, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    wave = peak * np.sin(2 * np.pi * rng.uniform(200, 900) * t) * (1 - 0.01 * rng.random(t.shape))
    wave = wave / np.abs(wave).max() * peak
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.stack([wave] * channels, axis=1) if channels > 1 else wave, rate, subtype="PCM_16",
             format="WAV")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Two machines; training recordings of 1.1 s (cut into 0.25 s clips), test recordings of 0.25 s at other rates
    and channel counts: normal peaks 0.1-0.3, anomalous 0.4-0.6."""
    root = tmp_path_factory.mktemp("site")
    rng = np.random.default_rng(1)
    for machine in ("press", "pump-A"):
        for i in range(3):
            tone(root / "train" / machine / f"shift{i}.wav", 1.1, rng.uniform(0.1, 0.3), seed=i)
        for i in range(4):
            tone(root / "test" / machine / "normal" / f"n{i}.wav", 0.25, rng.uniform(0.1, 0.3), 44100, 2, seed=10 + i)
            tone(root / "test" / machine / ("abnormal" if i % 2 else "anomaly") / f"a{i}.wav", 0.25,
                 rng.uniform(0.4, 0.6), 48000, seed=20 + i)
    return root


def test_the_layout_machines_labels_and_windows(site, tmp_path):
    data = FolderDataset(str(site), clip_seconds=0.25, long_files="windows", hop_seconds=0.25)
    train = data.clips("train")
    assert sorted({c.machine_type for c in train}) == ["press", "pump-A"] and {c.machine_id for c in train} == {"00"}
    assert len(train) == 2 * 3 * 4  # 1.1 s: windows at 0, 0.25, 0.5, 0.75 (the last ends at 1.0)
    first = [c for c in train if c.machine_type == "press" and c.path.name == "shift0.wav"]
    assert [c.start for c in first] == [0, 0.25, 0.5, 0.75] and first[1].name == "shift0@0.25s.wav"
    assert isinstance(first[1], Excerpt)
    whole = sf.read(str(first[1].path), dtype="float32")[0]
    np.testing.assert_array_equal(data.load(first[1], 4000)[:4000], whole[4000:8000])
    test = data.clips("test")
    assert sorted((c.machine_type, c.label) for c in test).count(("press", 1)) == 4 and len(test) == 16
    assert data.load(test[0]).shape == (4000,)  # 0.25 s at 44.1 kHz, two channels: the first, resampled
    first_only = FolderDataset(str(site), clip_seconds=0.25)
    assert len(first_only.clips("train")) == 6 and not any(isinstance(c, Excerpt) for c in first_only.clips("train"))
    assert "2 machines (press, pump-A), 6 training files (24 clips), 16 test files" in data.describe()
    # one machine's files directly in train/, unlabelled test files, the machine named for the folder
    one = tmp_path / "compressor"
    tone(one / "train" / "a.wav", 0.5, 0.2)
    tone(one / "test" / "later.wav", 0.5, 0.2)
    single = FolderDataset(str(one), clip_seconds=0.25)
    assert [(c.machine_type, c.label) for c in single.clips("test")] == [("compressor", None)]
    assert FolderDataset(str(one), machine="line-4").clips("train")[0].machine_type == "line-4"
    # faults: one line each
    cases = {
        "no train": (lambda r: (r / "x").mkdir(parents=True), "has no train/ folder"),
        "mixed": (lambda r: (tone(r / "train" / "a.wav", 0.3, 0.2), tone(r / "train" / "m" / "b.wav", 0.3, 0.2)),
                  "holds both WAV files and sub-folders"),
        "stray": (lambda r: (tone(r / "train" / "m" / "a.wav", 0.3, 0.2), tone(r / "test" / "n" / "b.wav", 0.3, 0.2)),
                  "no machine of that name in train/"),
        "label": (lambda r: (tone(r / "train" / "m" / "a.wav", 0.3, 0.2),
                             tone(r / "test" / "m" / "broken" / "b.wav", 0.3, 0.2)), "are normal/ and anomaly/"),
        "empty": (lambda r: (r / "train").mkdir(parents=True), "no .wav files"),
    }
    for name, (make, message) in cases.items():
        root = tmp_path / name.replace(" ", "-")
        make(root)
        with pytest.raises(AsdbenchError, match=message):
            FolderDataset(str(root))
    with pytest.raises(AsdbenchError, match="long_files='all' is not one of: first, windows"):
        FolderDataset(str(site), long_files="all")


def test_root_alone_recognises_it_and_a_peak_level_run_scores_auc_one(site):
    plugins = build_plugins(extra={"known": (known.PACKAGE, known)})
    assert dataset_for(plugins, site) == "folder"
    cfg = resolve_runtime(resolve(plugins, "peak-level", set_values={
        "dataset": "folder", "dataset.root": str(site), "dataset.clip_seconds": 0.25, "dataset.long_files": "windows"}))
    result = execute(plugins, make_plan(plugins, cfg), Reporter())
    aucs = {name: v for name, v in result.report.flat().items() if name.startswith("auc/")}
    assert aucs == {"auc/press/id_00": 1.0, "auc/pump-A/id_00": 1.0, "auc/press": 1.0, "auc/pump-A": 1.0,
                    "auc/avg": 1.0}
    assert len(result.train_scores[("press", "00")]) == 12  # each machine's training files cut into 4 clips


def test_own_recordings_from_run_to_decision(site, tmp_path, tracking_uri, monkeypatch):
    """The README's walk-through, as typed: run on the folder, score a new recording of one machine by its folder."""
    monkeypatch.setattr(plugin_mod, "_loaded", build_plugins(extra={"known": (known.PACKAGE, known)}))
    result = CliRunner().invoke(cli, ["run", "peak-level", "--dataset", "folder", "--root", str(site),
                                      "--set", "dataset.clip_seconds=0.25",
                                      "--set", "dataset.long_files=windows", "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    assert "folder at" in result.output and "press" in result.output
    run_id = result.output.strip().split("MLflow run ")[-1].split()[0]
    new = tmp_path / "today" / "pump-A" / "09-00.wav"
    tone(new, 0.25, 0.55, 22050)
    out = tmp_path / "decisions.json"
    scored = CliRunner().invoke(cli, ["score", run_id, str(new), "-o", str(out), "--tracking-uri", tracking_uri])
    assert scored.exit_code == 0, scored.output
    (row,) = json.loads(out.read_text())
    assert (row["machine_type"], row["machine_id"], row["decision"]) == ("pump-A", "00", 1)
    assert row["score"] == pytest.approx(0.55, abs=2e-3)
