"""DCASE 2021–2025 Task 2: the official metrics by hand, the names of every release, and each year end to end on
a generated tree in its exact layout, development and evaluation protocols."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner

from asdbench.api import Clip
from asdbench.cli import cli
from asdbench.errors import AsdbenchError
from asdbench.evaluation.metrics import EPS
from asdbench.evaluation.results import write_official
from asdbench.evaluation.summary import evaluate_scores as evaluate
from asdbench.serving.model import load_model
from asdbench_plugins.datasets.dcase_sections import RELEASES, TEST, SectionsDataset, _clip
from asdbench_plugins.datasets.synthetic import generate
from asdbench_plugins.datasets.synthetic_sections import generate_layout

# One section, four clips per domain: (domain, label, score)
CLIPS = [("source", 0, 0.1), ("source", 0, 0.4), ("source", 1, 0.35), ("source", 1, 0.9),
         ("target", 0, 0.5), ("target", 0, 0.85), ("target", 1, 0.3), ("target", 1, 0.8)]


def _scores(rows=CLIPS, machine_type="fan", section="00"):
    return [(Clip(Path(f"section_{section}_{d}_test_{'anomaly' if y else 'normal'}_{i:04d}.wav"), machine_type, section,
                  "test", y, d), s) for i, (d, y, s) in enumerate(rows)]


def _mcclish(area: float, p: float = 0.1) -> float:
    """sklearn's standardised partial AUC from the raw area under the ROC curve over FPR in [0, p]."""
    return 0.5 * (1 + (area - 0.5 * p * p) / (p - 0.5 * p * p))


def _hmean(values):
    return len(values) / sum(1 / max(v, EPS) for v in values)


@pytest.mark.parametrize("year", [2022, 2023, 2024, 2025])
def test_dcase2022_rule_by_hand(year):
    """2022–2025 (one evaluator logic): source/target AUC on that domain's normals with every anomaly of the
    section; pAUC over the section; official score the harmonic mean of the three; decisions per domain on that
    domain's clips."""
    report = evaluate(_scores(), RELEASES[year].evaluation, {("fan", "00"): 0.6})
    # source normals 0.1 0.4 against anomalies 0.35 0.9 0.3 0.8: 6 of 8 pairs ordered
    auc_source = 6 / 8
    # target normals 0.5 0.85 against the same anomalies: 0.9 > both, 0.8 > 0.5: 3 of 8
    auc_target = 3 / 8
    # all 8 clips by score: 0.9 (anomaly) first, then a normal: TPR 1/4 until FPR 1/4, so area 0.1 x 0.25 on [0, 0.1]
    pauc = _mcclish(0.1 * 0.25)
    assert pauc == pytest.approx(0.6052631578947368, abs=1e-12)
    flat = report.flat()
    assert flat["auc_source/fan/section_00"] == pytest.approx(auc_source, abs=1e-12)
    assert flat["auc_target/fan/section_00"] == pytest.approx(auc_target, abs=1e-12)
    assert flat["pauc/fan/section_00"] == pytest.approx(pauc, abs=1e-12)
    assert flat["hmean/avg"] == pytest.approx(3 / (1 / auc_source + 1 / auc_target + 1 / pauc), abs=1e-12)
    assert flat["hmean/fan"] == flat["hmean/avg"]
    # threshold 0.6: source decides 0 0 0 1 (tp 1, fn 1); target 0 1 0 1 (tp 1, fp 1, fn 1)
    assert (flat["precision_source/fan/section_00"], flat["recall_source/fan/section_00"]) == (1.0, 0.5)
    assert flat["f1_source/fan/section_00"] == pytest.approx(2 / 3, abs=1e-12)
    assert flat["f1_target/fan/section_00"] == pytest.approx(0.5, abs=1e-12)
    assert "auc/fan/id_00" not in flat and report.unit == "section"


def test_dcase2021_rule_by_hand():
    """2021: each domain's AUC and pAUC on that domain's clips only; the official score their harmonic mean."""
    flat = evaluate(_scores(), RELEASES[2021].evaluation).flat()
    values = {
        "auc_source": 3 / 4,  # normals 0.1 0.4, anomalies 0.35 0.9: 3 of 4 pairs
        "pauc_source": _mcclish(0.1 * 0.5),  # 0.9 first: TPR 1/2 until FPR 1/2
        "auc_target": 1 / 4,  # normals 0.5 0.85, anomalies 0.3 0.8: only 0.8 > 0.5
        "pauc_target": _mcclish(0.0),  # a normal (0.85) first: no area on [0, 0.1]
    }
    assert values["pauc_source"] == pytest.approx(0.7368421052631579) and values["pauc_target"] == pytest.approx(0.4736842105263158)
    for name, value in values.items():
        assert flat[f"{name}/fan/section_00"] == pytest.approx(value, abs=1e-12), name
    assert flat["hmean/avg"] == pytest.approx(_hmean(list(values.values())), abs=1e-12)
    assert "precision_source/fan/section_00" not in flat  # no thresholds, no decisions


def test_official_score_over_types_and_the_epsilon_floor():
    """The official score pools every section of every type, and a zero AUC counts as machine epsilon (not a
    division by zero, not a skipped value)."""
    perfect = [("source", 0, 0.1), ("source", 1, 0.9), ("target", 0, 0.2), ("target", 1, 0.8)]
    inverted = [("source", 0, 0.9), ("source", 1, 0.1), ("target", 0, 0.8), ("target", 1, 0.2)]
    flat = evaluate(_scores(perfect, "fan") + _scores(inverted, "pump", "01"), "dcase2022").flat()
    assert (flat["hmean/fan"], flat["auc_source/fan"], flat["pauc/fan"]) == (1.0, 1.0, 1.0)
    # pump: every normal above every anomaly: both domain AUCs 0, pAUC the McClish value of no area
    assert (flat["auc_source/pump/section_01"], flat["auc_target/pump/section_01"]) == (0.0, 0.0)
    assert flat["pauc/pump/section_01"] == pytest.approx(_mcclish(0.0), abs=1e-12)
    assert flat["hmean/avg"] == pytest.approx(6 / (3 + 2 / EPS + 1 / _mcclish(0.0)), rel=1e-12)
    assert flat["auc_source/avg"] == 0.5  # arithmetic means pool the sections of every type
    one_domain_wrong = evaluate(_scores([("source", 0, 0.9), ("source", 1, 0.1), ("target", 0, 0.2), ("target", 1, 0.8)]),
                                "dcase2021").flat()
    assert one_domain_wrong["auc_source/fan/section_00"] == 0.0 and one_domain_wrong["pauc_target/fan/section_00"] == 1.0
    assert one_domain_wrong["hmean/avg"] == pytest.approx(4 / (1 / EPS + 1 / _mcclish(0.0) + 1 + 1), rel=1e-12)


def test_official_file_names_per_year(tmp_path):
    scores = _scores()
    write_official(tmp_path / "2021", scores, {("fan", "00"): 0.6}, "dcase2021")
    write_official(tmp_path / "2022", scores, {("fan", "00"): 0.6}, "dcase2022")
    assert sorted(p.name for p in (tmp_path / "2021").iterdir()) == [
        "anomaly_score_fan_section_00_source_test.csv", "anomaly_score_fan_section_00_target_test.csv",
        "decision_result_fan_section_00_source_test.csv", "decision_result_fan_section_00_target_test.csv"]
    assert sorted(p.name for p in (tmp_path / "2022").iterdir()) == [
        "anomaly_score_fan_section_00_test.csv", "decision_result_fan_section_00_test.csv"]
    rows = (tmp_path / "2022" / "decision_result_fan_section_00_test.csv").read_text().splitlines()
    assert len(rows) == 8 and rows == sorted(rows) and rows[-1] == "section_00_target_test_normal_0005.wav,1"


@pytest.mark.parametrize("folder, name, expected", [
    ("train", "section_00_source_train_normal_0001_car_A2_spd_28V_mic_1_noise_1.wav",
     ("00", "source", 0, "car_A2_spd_28V_mic_1_noise_1")),
    ("train", "section_02_target_train_normal_0009_noAttribute.wav", ("02", "target", 0, "noAttribute")),
    ("train", "section_00_source_train_normal_0000_.wav", ("00", "source", 0, "")),
    ("test", "section_01_target_test_anomaly_0049_vel_21.wav", ("01", "target", 1, "vel_21")),
    ("source_test", "section_03_source_test_normal_0007.wav", ("03", "source", 0, "")),
    ("target_test", "section_04_target_test_0199.wav", ("04", "target", None, "")),
    ("test", "section_00_0012.wav", ("00", None, None, "")),
    ("test", "section_03_test_0012.wav", ("03", None, None, "")),
])
def test_names_of_every_release(folder, name, expected):
    clip = _clip(Path("ToyCar") / folder / name, "ToyCar", folder)
    assert (clip.machine_id, clip.domain, clip.label, clip.attributes) == expected


@pytest.mark.parametrize("folder, name", [
    ("source_test", "section_00_target_test_normal_0000.wav"),  # a target clip in the source folder
    ("train", "section_00_source_test_normal_0000.wav"),
    ("test", "normal_id_00_00000000.wav"),
    ("test", "section_0_source_test_normal_0000.wav"),
])
def test_names_that_do_not_fit(folder, name):
    assert _clip(Path(name), "fan", folder) is None


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("layouts")
    return {year: generate_layout(root / str(year), f"dcase{year}t2", "tiny", seed=year) for year in RELEASES}


@pytest.mark.parametrize("year", sorted(RELEASES))
def test_each_year_end_to_end_dev_and_eval_with_ground_truth(trees, year, tracking_uri, tmp_path):
    release = RELEASES[year]
    tree = trees[year]
    dev = SectionsDataset(release, str(tree), "dev")
    eval_set = SectionsDataset(release, str(tree), "eval", eval_labels=str(tree))
    dev_types, eval_types = list(release.dev_types[:2]), list(release.eval_types[:2])
    assert sorted({c.machine_type for c in dev.clips("test")}) == sorted(dev_types)
    assert sorted({c.machine_type for c in eval_set.clips("test")}) == sorted(eval_types)
    assert all(c.label is not None and c.domain in ("source", "target") for c in eval_set.clips("test"))
    assert len(eval_set.clips("test")) == 2 * 12 and sum(c.label for c in eval_set.clips("test")) == 12
    assert {c.attributes for c in dev.clips("train")} == {"spd_A", "spd_B"}
    if release.first_shot:
        assert not {c.machine_type for c in eval_set.clips("train")} & set(release.dev_types)
    assert len(dev.clips("supplemental")) == (8 if release.supplemental else 0)
    assert not {c.path for c in dev.clips("supplemental")} & {c.path for c in dev.clips("test") + dev.clips("train")}
    assert dev.clip_seconds == (1.2 if year == 2026 else 1.0)  # 2026's ToyCar clips are longer than the others
    assert dev.evaluation == ("dcase2021" if year == 2021 else "dcase2022")

    for protocol, types in (("dev", dev_types), ("eval", eval_types)):
        args = ["run", "dcase-ae", "--dataset", release.name, "--root", str(tree), "--set", "epochs=1",
                "--set", f"dataset.protocol={protocol}", "--tracking-uri", tracking_uri]
        if protocol == "eval":
            args += ["--eval-labels", str(tree)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "h-mean" in result.output and "AUC source" in result.output  # the year's table
        run_id = result.output.strip().split("MLflow run ")[-1].split()[0]
        client = mlflow.MlflowClient(tracking_uri)
        metrics = client.get_run(run_id).data.metrics
        section = release.eval_sections[0] if protocol == "eval" else "00"
        for t in types:
            assert f"auc_source/{t}/section_{section}" in metrics and f"auc_target/{t}/section_{section}" in metrics
            assert f"f1_target/{t}/section_{section}" in metrics and f"hmean/{t}" in metrics
        assert 0 < metrics["hmean/avg"] < 1
        files = Path(client.download_artifacts(run_id, "scores", str(tmp_path / protocol)))
        suffixes = ("_source_test.csv", "_target_test.csv") if year == 2021 else ("_test.csv",)
        expected = {f"{kind}_{t}_section_{section}{s}" for kind in ("anomaly_score", "decision_result") for t in types
                    for s in suffixes}
        assert {p.name for p in files.iterdir()} == expected


def test_a_tree_of_another_year_names_its_plugin(trees, tmp_path):
    cases = [(2022, trees[2021], "use --dataset dcase2021t2"), (2023, trees[2022], "use --dataset dcase2022t2"),
             (2021, trees[2023], "use --dataset dcase2023t2"), (2024, trees[2023], "use --dataset dcase2023t2")]
    for year, tree, message in cases:
        with pytest.raises(AsdbenchError, match=message):
            SectionsDataset(RELEASES[year], str(tree), "dev")
    from asdbench_plugins.datasets.dcase2020t2 import DCASE2020T2

    with pytest.raises(AsdbenchError, match="holds a DCASE 2021 Task 2 layout .*use --dataset dcase2021t2"):
        DCASE2020T2(str(trees[2021]))
    old = generate(tmp_path / "2020", "tiny")
    with pytest.raises(AsdbenchError, match="file names are DCASE 2020's.*use --dataset dcase2020t2"):
        SectionsDataset(RELEASES[2023], str(old), "dev")
    result = CliRunner().invoke(cli, ["run", "dcase-ae", "--dataset", "dcase2025t2", "--root", str(trees[2024])])
    assert result.exit_code == 1 and "machine types" in result.output and "dcase2024t2" in result.output


def test_ground_truth_errors_name_the_file(trees, tmp_path):
    tree = trees[2023]
    truth = tmp_path / "eval_data_list_2023.csv"
    lines = (tree / "eval_data_list_2023.csv").read_bytes().decode().split("\r\n")  # as shipped: CRLF
    truth.write_text("\r\n".join(line for line in lines if "section_00_0003.wav" not in line), newline="")
    with pytest.raises(AsdbenchError, match=r"section_00_0003.wav is not in the evaluation ground truth"):
        SectionsDataset(RELEASES[2023], str(tree), "eval", eval_labels=str(truth))
    truth.write_text("bandsaw\nsection_00_0000.wav,normal_id_00_00000000.wav\n")
    with pytest.raises(AsdbenchError, match=r"eval_data_list_2023.csv:2: expected a machine type"):
        SectionsDataset(RELEASES[2023], str(tree), "eval", eval_labels=str(truth))
    with pytest.raises(AsdbenchError, match="needs the data set: pass --root DIR"):
        SectionsDataset(RELEASES[2024])


@pytest.mark.parametrize("system", ["stgram-mfn", "mobilenetv2", "idnn", "glow-aff"])
def test_self_supervised_and_flow_systems_run_on_a_sections_year(trees, system, tracking_uri):
    result = CliRunner().invoke(cli, ["run", system, "--dataset", "dcase2023t2", "--root", str(trees[2023]),
                                      "--set", "epochs=1", "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    assert "h-mean" in result.output


def test_a_clip_of_unknown_attribute_is_scored_against_each_class_of_its_section():
    """classes=attribute: a test clip (attribute unknown) gets the lowest score over its section's classes, never a
    class of another section; -log softmax by hand."""
    import math

    import torch

    from asdbench.api import Loss, ModelOutput
    from asdbench.data.examples import Examples, target_matrix
    from asdbench.data.groups import Group
    from asdbench.evaluation.scoring import score_examples as score
    from asdbench_plugins.scorers.neg_log_prob import NegativeLogProbability

    class FixedLogits(torch.nn.Module):
        features = None
        loss = Loss()

        def forward(self, x, features_ready, frame_axis=False):
            return ModelOutput(logits=x)

    classes = (("fan", "00", "spd_A"), ("fan", "00", "spd_B"), ("fan", "01", "spd_A"))
    group = Group("all", (), (), classes, mode="attribute")
    clips = [Clip(Path("a.wav"), "fan", "00", "test", None), Clip(Path("b.wav"), "fan", "01", "test", None)]
    targets = target_matrix([group.alternatives(c) for c in clips])
    assert targets.tolist() == [[0, 1], [2, -1]]
    logits = torch.tensor([[0.0, 1.0, 3.0], [0.0, 1.0, 3.0]])
    values, _ = score(FixedLogits(), NegativeLogProbability(), Examples(logits, targets, True), torch.device("cpu"), 8)
    log_z = math.log(1 + math.e + math.e ** 3)
    assert values.tolist() == pytest.approx([log_z - 1.0, log_z - 3.0])  # section 00: the spd_B class, the likelier


def test_attribute_classes_train_score_and_reproduce_from_the_bundle(trees, tracking_uri, tmp_path):
    result = CliRunner().invoke(cli, ["run", "stgram-mfn", "--dataset", "dcase2022t2", "--root", str(trees[2022]),
                                      "--set", "epochs=1", "--set", "dataset.classes=attribute",
                                      "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    assert "0=bearing/section_00/spd_A, 1=bearing/section_00/spd_B" in result.output
    run_id = result.output.strip().split("MLflow run ")[-1].split()[0]
    evaluated = CliRunner().invoke(cli, ["eval", run_id, "--out", str(tmp_path / "out"), "--tracking-uri", tracking_uri])
    assert evaluated.exit_code == 0, evaluated.output
    eval_id = evaluated.output.strip().split("MLflow run ")[-1].split(";")[0].strip()
    client = mlflow.MlflowClient(tracking_uri)
    trained, again = client.get_run(run_id).data.metrics, client.get_run(eval_id).data.metrics
    official = {k: v for k, v in trained.items() if k.startswith(("auc", "pauc", "hmean", "f1", "precision", "recall"))}
    assert "hmean/avg" in official and {k: again[k] for k in official} == official
    assert sorted(p.name for p in (tmp_path / "out").iterdir())[0] == "anomaly_score_bearing_section_00_test.csv"
    wrong = CliRunner().invoke(cli, ["run", "dcase-ae", "--dataset", "dcase2022t2", "--root", str(trees[2022]),
                                     "--set", "dataset.classes=machine", "--tracking-uri", tracking_uri])
    assert wrong.exit_code == 1 and "dataset.classes='machine' is not one of: section, attribute" in wrong.output


def test_a_root_without_dataset_is_read_by_the_plugin_that_recognises_it(trees, tmp_path):
    from asdbench.cli.options import resolve_from_options
    from asdbench.data.recognise import dataset_for
    from asdbench.plugins import get_plugins

    plugins = get_plugins()
    for year, tree in trees.items():
        assert dataset_for(plugins, tree) == f"dcase{year}t2"
    synthetic = generate(tmp_path / "2020", "tiny")
    assert dataset_for(plugins, synthetic) == "synthetic"  # the generator's own tree, in DCASE 2020's names
    (synthetic / "MANIFEST.json").unlink()
    assert dataset_for(plugins, synthetic) == "dcase2020t2"
    config = resolve_from_options(None, None, trees[2022], None, None, ())
    assert config["dataset"] == "dcase2022t2" and config["dataset.root"] == str(trees[2022])
    explicit = resolve_from_options(None, "dcase2023t2", trees[2022], None, None, ())  # --dataset wins, and checks
    assert explicit["dataset"] == "dcase2023t2"

    only_dev = tmp_path / "dev-only" / "fan" / "train"  # one section 00 of fan: 2022's, and any first-shot year's
    only_dev.mkdir(parents=True)
    (only_dev / "section_00_source_train_normal_0000_a.wav").touch()
    with pytest.raises(AsdbenchError, match=r"fits the layouts of dcase2022t2, dcase2023t2, dcase2024t2, dcase2025t2, "
                                            r"dcase2026t2; pass --dataset NAME, one of dcase2022t2, dcase2023t2"):
        dataset_for(plugins, tmp_path / "dev-only")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AsdbenchError, match=r"empty holds no layout a data set plugin recognises .* one of "
                                            r"dcase2020t2, .*, synthetic"):
        dataset_for(plugins, tmp_path / "empty")
    result = CliRunner().invoke(cli, ["data", "check", "--root", str(tmp_path / "missing")])
    assert result.exit_code == 1 and result.output == f"Error: --root {tmp_path / 'missing'}: no such folder\n"


def test_2026_is_told_from_earlier_years_by_its_two_channels(tmp_path):
    """ToyDrone was an evaluation type of 2023 too: a tree holding only ToyDrone is 2026 when its clips have two
    channels, 2023 when they have one."""
    import numpy as np
    import soundfile as sf

    from asdbench.data.recognise import dataset_for
    from asdbench.plugins import get_plugins

    for channels, year in ((2, 2026), (1, 2023)):
        folder = tmp_path / str(channels) / "eval_data" / "ToyDrone" / "train"
        folder.mkdir(parents=True)
        sf.write(str(folder / "section_00_source_train_normal_0000_noAttribute.wav"),
                 np.zeros((1600, channels) if channels > 1 else 1600, dtype=np.float32), 16000, subtype="PCM_16")
        assert dataset_for(get_plugins(), tmp_path / str(channels)) == f"dcase{year}t2"


def test_2026_reads_the_near_microphone_and_the_evaluators_ground_truth(trees, tmp_path):
    """The near microphone is channel 0 (the signal of earlier years); the ground truth comes as the evaluator's three
    files per type, rows unsorted, paired by name, the same labels as the list."""
    import shutil

    import soundfile as sf

    release, tree = RELEASES[2026], trees[2026]
    with_list = SectionsDataset(release, str(tree), "eval", eval_labels=str(tree))
    folder = tmp_path / "truth"
    for name in ("ground_truth_data", "ground_truth_domain", "ground_truth_attributes"):
        shutil.copytree(tree / name, folder / name)
    evaluator = SectionsDataset(release, str(tree), "eval", eval_labels=str(folder))
    assert [(c.path, c.label, c.domain, c.attributes) for c in evaluator.clips("test")] == [
        (c.path, c.label, c.domain, c.attributes) for c in with_list.clips("test")]
    clip = evaluator.clips("train")[0]
    stereo, rate = sf.read(str(clip.path), dtype="float32")
    assert stereo.shape[1] == 2 and (stereo[:, 1] != stereo[:, 0]).any()
    assert (evaluator.load(clip) == stereo[:, 0]).all()
    far = SectionsDataset(release, str(tree), "eval", eval_labels=str(folder), channel="second")
    assert (far.load(clip) == stereo[:, 1]).all()  # the far microphone
    mono = SectionsDataset(RELEASES[2025], str(trees[2025]), "dev", channel="second")
    with pytest.raises(AsdbenchError, match="channel=second asks for a second channel, but the file has one"):
        mono.load(mono.clips("train")[0])
    dev = SectionsDataset(release, str(tree), "dev").clips("test")
    for machine_type, indices in (("ToyCar", list(range(12))), ("ToyCarEmu", list(range(12)))):
        numbers = sorted(int(TEST.match(c.path.name).group(4)) for c in dev if c.machine_type == machine_type)
        assert numbers == indices  # one running index over all test clips, as the release names them
    rows = (folder / "ground_truth_data" / "ground_truth_ToyDrone_section_00_test.csv").read_text().splitlines()
    (folder / "ground_truth_data" / "ground_truth_ToyDrone_section_00_test.csv").write_text("\n".join(rows[1:]) + "\n")
    with pytest.raises(AsdbenchError, match=r"is not in the evaluation ground truth"):
        SectionsDataset(release, str(tree), "eval", eval_labels=str(folder))


def test_each_model_trains_and_scores_on_its_own_types_clip_length(trees, tracking_uri, tmp_path):
    """2026's evaluation types have clips of 6, 10 and 16 s: a model per type keeps its own length (here 0.6 and
    1 s), none padded or cut to another type's, and the bundle scores a recording as the run did."""
    import json

    import mlflow

    tree = trees[2026]
    result = CliRunner().invoke(cli, ["run", "dcase-ae", "--root", str(tree), "--set", "epochs=1", "--set",
                                      "dataset.protocol=eval", "--eval-labels", str(tree), "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    run_id = result.output.strip().split("MLflow run ")[-1].split()[0]
    client = mlflow.MlflowClient(tracking_uri)
    params = client.get_run(run_id).data.params
    assert params["data.padded_clips"] == "0" and params["data.cut_clips"] == "0"
    folder = Path(client.download_artifacts(run_id, "model/artifacts/bundle", str(tmp_path)))
    models = json.loads((folder / "manifest.json").read_text())["models"]
    assert {slug: m["num_samples"] for slug, m in models.items()} == {"ToyDrone": 16000, "ToothBrush": 9600}
    clip = sorted((tree / "eval_data" / "ToothBrush" / "test").glob("*.wav"))[0]
    logged = Path(client.download_artifacts(run_id, "clip_scores.csv", str(tmp_path / "scores"))).read_text()
    row = next(line for line in logged.splitlines() if line.startswith(f"ToothBrush,00,{clip.name},"))
    (decision,) = load_model(folder).score([clip])
    assert decision.score == float(row.split(",")[-1])  # the run's own score, at the model's own clip length
