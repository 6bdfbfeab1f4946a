"""The dcase2020t2 loader on small trees with the official names, as the zips unpack."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from asdbench.cli import cli
from asdbench.errors import AsdbenchError
from asdbench_plugins.datasets.dcase2020t2 import DCASE2020T2, read_eval_labels

SR = 16000


def _wav(path: Path, freq: float, seconds: float = 0.5, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    noise = np.random.default_rng(seed).normal(0, 0.05, t.shape)
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * freq * t) + noise, SR, subtype="PCM_16")


def make_tree(root: Path, merged: bool = False) -> Path:
    """dev_data: fan ids 00, 02 and ToyCar 01; eval_data: fan id 01 (train + unlabelled test)."""
    dev = root if merged else root / "dev_data"
    ev = root if merged else root / "eval_data"
    for mtype, mid, f0 in (("fan", "00", 300), ("fan", "02", 520), ("ToyCar", "01", 700)):
        for i in range(6):
            _wav(dev / mtype / "train" / f"normal_id_{mid}_{i:08d}.wav", f0, seed=i)
        for i in range(3):
            _wav(dev / mtype / "test" / f"normal_id_{mid}_{i:08d}.wav", f0, seed=100 + i)
        for i in range(2):  # uneven counts, as in the real set
            _wav(dev / mtype / "test" / f"anomaly_id_{mid}_{i:08d}.wav", f0 * 1.7, seed=200 + i)
    for i in range(4):
        _wav(ev / "fan" / "train" / f"normal_id_01_{i:08d}.wav", 410, seed=i)
    for i in range(3):
        _wav(ev / "fan" / "test" / f"id_01_{i:08d}.wav", 410 if i < 2 else 800, seed=300 + i)
    return root


def write_ground_truth(path: Path) -> Path:
    path.write_text(
        "fan\n"
        "id_01_00000000.wav,normal_id_01_00000098.wav,0\n"
        "id_01_00000001.wav,normal_id_01_00000012.wav,0\n"
        "id_01_00000002.wav,anomaly_id_01_00000064.wav,1\n"
        "ToyCar\n"
        "id_05_00000000.wav,normal_id_05_00000001.wav,0\n"
    )
    return path


def test_paper_protocol_trains_on_dev_and_additional_and_tests_on_dev(tmp_path):
    ds = DCASE2020T2(root=str(make_tree(tmp_path)))
    train, test = ds.clips("train"), ds.clips("test")
    assert {(c.machine_type, c.machine_id) for c in train} == {("fan", "00"), ("fan", "01"), ("fan", "02"), ("ToyCar", "01")}
    assert len(train) == 3 * 6 + 4
    assert {(c.machine_type, c.machine_id) for c in test} == {("fan", "00"), ("fan", "02"), ("ToyCar", "01")}
    assert sorted(c.label for c in test if c.machine_id == "00") == [0, 0, 0, 1, 1]
    text = ds.describe()
    assert "development set: 33 clips" in text and "additional training set: 4 clips" in text
    assert "evaluation set (test): 3 clips" in text and "protocol paper" in text
    assert ds.load(train[0]).shape == (8000,)


def test_dev_protocol_uses_development_ids_only(tmp_path):
    ds = DCASE2020T2(root=str(make_tree(tmp_path)), protocol="dev")
    assert ("fan", "01") not in {(c.machine_type, c.machine_id) for c in ds.clips("train")}


def test_eval_protocol_scores_unlabelled_clips_unless_ground_truth_is_given(tmp_path):
    root = make_tree(tmp_path / "data")
    ds = DCASE2020T2(root=str(root), protocol="eval")
    assert [(c.name, c.label) for c in ds.clips("test")] == [(f"id_01_0000000{i}.wav", None) for i in range(3)]
    truth = write_ground_truth(tmp_path / "eval_data_list.csv")
    labelled = DCASE2020T2(root=str(root), protocol="eval", eval_labels=str(tmp_path))
    assert [c.label for c in labelled.clips("test")] == [0, 0, 1]
    assert read_eval_labels(truth)[("ToyCar", "id_05_00000000.wav")] == 0


def test_clip_missing_from_ground_truth_is_named(tmp_path):
    root = make_tree(tmp_path / "data")
    truth = tmp_path / "eval_data_list.csv"
    truth.write_text("fan\nid_01_00000000.wav,normal_id_01_00000098.wav,0\n")
    with pytest.raises(AsdbenchError, match="id_01_00000001.wav is not in the evaluation ground truth"):
        DCASE2020T2(root=str(root), protocol="eval", eval_labels=str(truth))


def test_everything_unpacked_into_one_folder_works(tmp_path):
    ds = DCASE2020T2(root=str(make_tree(tmp_path, merged=True)))
    assert len(ds.clips("train")) == 22 and len(ds.clips("test")) == 15


def test_a_misnamed_file_is_an_error_naming_it(tmp_path):
    root = make_tree(tmp_path)
    _wav(root / "dev_data" / "fan" / "train" / "normal_00_00000000.wav", 300)
    with pytest.raises(AsdbenchError, match="normal_00_00000000.wav does not follow the DCASE 2020 layout"):
        DCASE2020T2(root=str(root))
    assert [p.name for p in DCASE2020T2(root=str(root), strict=False).misfits] == ["normal_00_00000000.wav"]


def test_missing_root_says_what_to_download(monkeypatch, tmp_path):
    monkeypatch.delenv("ASDBENCH_DCASE2020T2_ROOT", raising=False)
    with pytest.raises(AsdbenchError) as err:
        DCASE2020T2()
    for fact in ("--root", "3678171", "3727685", "3841772", "3951620", "dev_data", "--dataset synthetic"):
        assert fact in str(err.value)
    monkeypatch.setenv("ASDBENCH_DCASE2020T2_ROOT", str(make_tree(tmp_path)))
    assert len(DCASE2020T2().clips("train")) == 22


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(AsdbenchError, match="no DCASE 2020 Task 2 clips under"):
        DCASE2020T2(root=str(tmp_path))


def test_data_check_lists_counts_and_misfits(tmp_path):
    root = make_tree(tmp_path)
    ok = CliRunner().invoke(cli, ["data", "check", "--dataset", "dcase2020t2", "--root", str(root)])
    assert ok.exit_code == 0, ok.output
    assert "ToyCar" in ok.output and "additional training set" in ok.output and "All files fit" in ok.output
    (root / "dev_data" / "fan" / "test" / "notes.txt").write_text("x")
    bad = CliRunner().invoke(cli, ["data", "check", "--dataset", "dcase2020t2", "--root", str(root)])
    assert bad.exit_code == 1 and "notes.txt" in bad.output


@pytest.mark.slow
def test_stgram_mfn_runs_end_to_end_on_a_dcase_tree(tmp_path, tracking_uri):
    root = make_tree(tmp_path / "data")
    result = CliRunner().invoke(cli, [
        "run", "stgram-mfn", "--dataset", "dcase2020t2", "--root", str(root), "--tracking-uri", tracking_uri,
        "--set", "epochs=2", "--set", "batch_size=8", "--set", "clip_seconds=0.5",
        "--set", "select=oracle", "--set", "select_every=1",
    ])
    assert result.exit_code == 0, result.output
    assert "select=oracle" in result.output
    client = MlflowClient(tracking_uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED" and run.data.tags["asdbench.select"] == "oracle"
    assert run.data.params["n_classes"] == "4"  # dev + additional IDs
    for key in ("auc/fan/id_00", "pauc/ToyCar/id_01", "mauc/fan", "auc/avg", "train/accuracy", "selected_epoch/all"):
        assert key in run.data.metrics
    assert "auc/fan/id_01" not in run.data.metrics  # the evaluation set is not scored in the paper protocol


@pytest.mark.slow
def test_eval_protocol_writes_scores_and_metrics_only_with_ground_truth(tmp_path, tracking_uri):
    root = make_tree(tmp_path / "data")
    truth = write_ground_truth(tmp_path / "eval_data_list.csv")
    args = ["run", "dcase-ae", "--dataset", "dcase2020t2", "--root", str(root), "--tracking-uri", tracking_uri,
            "--set", "epochs=1", "--set", "dataset.protocol=eval"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert CliRunner().invoke(cli, [*args, "--eval-labels", str(truth)]).exit_code == 0
    client = MlflowClient(tracking_uri)
    unlabelled, labelled = sorted(client.search_runs([e.experiment_id for e in client.search_experiments()]),
                                  key=lambda r: r.info.start_time)
    assert "auc/avg" not in unlabelled.data.metrics and "auc/fan/id_01" in labelled.data.metrics
    out = Path(client.download_artifacts(unlabelled.info.run_id, "scores", str(tmp_path / "a")))
    rows = (out / "anomaly_score_fan_id_01.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == [f"id_01_0000000{i}.wav" for i in range(3)]


def test_one_file_name_in_two_folders_is_a_note_of_the_plan(tmp_path):
    """The development set unpacked a second time into the evaluation folder: every training clip counted twice, and
    result files (which name clips by file name) ambiguous. The run says so once, with an example."""
    from asdbench.config import resolve
    from asdbench.data.plan import make_plan
    from asdbench.plugins import build_plugins

    root = make_tree(tmp_path)
    plugins = build_plugins()
    config = resolve(plugins, "dcase-ae", set_values={"dataset": "dcase2020t2", "dataset.root": str(root)})
    assert not any("more than one folder" in n for n in make_plan(plugins, config).notes)
    copied = root / "eval_data" / "fan" / "train" / "normal_id_00_00000000.wav"
    copied.write_bytes((root / "dev_data" / "fan" / "train" / "normal_id_00_00000000.wav").read_bytes())
    (note,) = [n for n in make_plan(plugins, config).notes if "more than one folder" in n]
    assert note.startswith("1 file names occur in more than one folder of the data set, e.g. normal_id_00_00000000.wav "
                           f"(fan, train) in {root / 'dev_data' / 'fan' / 'train'} and {copied.parent}")
