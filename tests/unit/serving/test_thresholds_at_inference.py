"""Thresholds a site controls: a fixed value, a false-positive rate on the bundle's normal scores, and a refit on the
site's own normal recordings (``calibrate``), each checked on known scores."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from asdbench.cli import cli
from asdbench.errors import AsdbenchError
from asdbench.serving.calibration import Override, Rule, fpr_threshold, recalibrated
from asdbench.serving.model import load_model
from support import tiny_data_root


def test_the_fpr_threshold_flags_at_most_that_share_of_the_normal_scores():
    scores = list(range(100, 0, -1))  # 1..100, in any order
    assert fpr_threshold(scores, 0.05) == 95  # 96..100 lie above it: 5 of 100
    assert fpr_threshold(scores, 0.01) == 99
    assert fpr_threshold(scores, 0.0) == 100  # nothing flagged
    assert fpr_threshold(scores, 0.999) == 1
    assert fpr_threshold([1, 2, 2, 2, 3], 0.2) == 2  # ties: only the 3 lies above, 1 of 5
    assert fpr_threshold([1, 2, 2, 2, 3], 0.5) == 2  # 0.5 x 5 = 2.5 allowed: the three 2s cannot be split
    with pytest.raises(AsdbenchError, match="keeps no normal scores"):
        fpr_threshold([], 0.1, "fan/id_00")
    with pytest.raises(AsdbenchError, match="a false-positive rate lies in"):
        fpr_threshold(scores, 1.0)
    with pytest.raises(AsdbenchError, match="--threshold and --fpr both"):
        Override(1.0, 0.1)


def test_an_override_replaces_every_threshold_and_a_recalibration_is_recorded():
    thresholds = {("fan", "00"): 5.0, ("pump", "02"): 7.0}
    normal = {("fan", "00"): [1.0, 2.0, 3.0, 4.0], ("pump", "02"): [10.0, 20.0]}
    name = "/".join
    assert Override(2.5).apply(thresholds, normal, name) == {("fan", "00"): 2.5, ("pump", "02"): 2.5}
    assert Override(fpr=0.25).apply(thresholds, normal, name) == {("fan", "00"): 3.0, ("pump", "02"): 20.0}
    assert Override().apply(thresholds, normal, name) == thresholds
    manifest = {"thresholds": {"fan/id_00": {"value": 5.0, "n_train": 4, "train_scores": [1.0, 2.0, 3.0, 4.0]},
                               "pump/id_02": {"value": 7.0, "n_train": 2, "train_scores": [10.0, 20.0]}}}
    new = recalibrated(manifest, {"fan/id_00": [1.0, 2.0, 3.0, 4.0, 5.0]}, Rule("quantile", 0.5), ["site/"], skipped=1)
    assert new["thresholds"]["fan/id_00"] == {"value": 3.0, "n_train": 5, "train_scores": [1.0, 2.0, 3.0, 4.0, 5.0],
                                              "calibrated": True}
    assert new["thresholds"]["pump/id_02"] == manifest["thresholds"]["pump/id_02"]
    (entry,) = new["calibrations"]
    assert {k: v for k, v in entry.items() if k != "when"} == {
        "rule": "quantile", "q": 0.5, "sources": ["site/"], "files": 5, "skipped_files": 1,
        "machines": {"fan/id_00": 5}, "kept": ["pump/id_02"]}
    again = recalibrated(new, {"pump/id_02": [1.0, 2.0, 3.0]}, Rule("gamma", 0.9, fpr=0.0), ["b/"])
    assert again["thresholds"]["pump/id_02"]["value"] == 3.0 and len(again["calibrations"]) == 2
    assert again["calibrations"][1]["rule"] == "fpr" and again["calibrations"][1]["fpr"] == 0.0


def _flagged(output_json) -> dict[str, int]:
    rows = json.loads(output_json.read_text())
    return {r["file"]: r["decision"] for r in rows}


def test_score_with_a_threshold_or_an_fpr_and_calibrate_on_a_sites_normal_recordings(tmp_path, dcase_ae_run):
    run_id, tracking_uri = dcase_ae_run
    bundle = tmp_path / "bundle"
    assert CliRunner().invoke(cli, ["export", run_id, str(bundle), "--tracking-uri", tracking_uri]).exit_code == 0
    model = load_model(bundle)
    training = sorted((tiny_data_root() / "fan" / "train").glob("*id_00*.wav"))
    stored = model.normal_scores[("fan", "00")]
    assert len(stored) == len(training) == 10
    # the bundle's normal scores are those of its training clips, so --fpr 0.3 flags exactly 3 of the 10
    out = tmp_path / "train.json"
    result = CliRunner().invoke(cli, ["score", str(bundle), *map(str, training), "--fpr", "0.3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sum(_flagged(out).values()) == 3
    assert "thresholds at 0.3 false-positive rate on the model's normal scores" in " ".join(result.output.split())
    # a fixed threshold between two known scores splits the files there
    scores = sorted(d.score for d in model.score(training))
    middle = (scores[4] + scores[5]) / 2
    result = CliRunner().invoke(cli, ["score", str(bundle), *map(str, training), "--threshold", str(middle), "-o", str(out)])
    assert result.exit_code == 0 and sum(_flagged(out).values()) == len(training) - 5
    both = CliRunner().invoke(cli, ["score", str(bundle), str(training[0]), "--threshold", "1", "--fpr", "0.1"])
    assert both.exit_code == 1 and "--threshold and --fpr both set a threshold" in both.output

    # calibrate on the normal test clips of fan id_00 (never trained on): a new bundle, the old one untouched
    site = sorted((tiny_data_root() / "fan" / "test").glob("normal_id_00_*.wav"))
    new = tmp_path / "calibrated"
    before = (bundle / "manifest.json").read_text()
    result = CliRunner().invoke(cli, ["calibrate", str(bundle), *map(str, site), "--out", str(new), "--fpr", "0.25"])
    assert result.exit_code == 0, result.output
    assert (bundle / "manifest.json").read_text() == before
    assert "no recordings of fan/id_02, valve/id_00, valve/id_02: their thresholds are kept" in " ".join(
        result.output.split())
    manifest = json.loads((new / "manifest.json").read_text())
    (entry,) = manifest["calibrations"]
    assert entry["rule"] == "fpr" and entry["fpr"] == 0.25 and entry["files"] == len(site)
    assert entry["machines"] == {"fan/id_00": len(site)} and entry["kept"] == ["fan/id_02", "valve/id_00", "valve/id_02"]
    old = json.loads(before)["thresholds"]
    assert manifest["thresholds"]["valve/id_02"] == old["valve/id_02"]
    assert manifest["thresholds"]["fan/id_00"]["n_train"] == len(site)
    result = CliRunner().invoke(cli, ["score", str(new), *map(str, site), "-o", str(out)])
    assert result.exit_code == 0 and sum(_flagged(out).values()) == math.floor(0.25 * len(site)) == 1
    # a rule refit: quantile 0.5 of the site's scores is their median
    median_bundle = tmp_path / "median"
    result = CliRunner().invoke(cli, ["calibrate", str(bundle), *map(str, site), "--out", str(median_bundle),
                                      "--rule", "quantile", "--q", "0.5"])
    assert result.exit_code == 0, result.output
    site_scores = sorted(d.score for d in model.score(site))
    n = len(site_scores)
    median = (site_scores[(n - 1) // 2] + site_scores[n // 2]) / 2
    assert load_model(median_bundle).thresholds[("fan", "00")] == pytest.approx(median, rel=1e-12)
    # nothing half-written where the output exists, and --fpr with a rule is refused
    taken = CliRunner().invoke(cli, ["calibrate", str(bundle), str(site[0]), "--out", str(new)])
    assert taken.exit_code == 1 and "exists and is not empty" in taken.output
    mixed = CliRunner().invoke(cli, ["calibrate", str(bundle), str(site[0]), "--out", str(tmp_path / "x"),
                                     "--fpr", "0.1", "--rule", "mad"])
    assert mixed.exit_code == 1 and "--fpr sets the threshold itself" in mixed.output
    assert not (tmp_path / "x").exists()
