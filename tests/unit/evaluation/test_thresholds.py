"""Decision thresholds: the rules against hand values, and through a run against the training clips themselves."""

import json

import numpy as np
import pytest
import soundfile as sf
from scipy import stats

import known_answer_plugins as known
from asdbench.config import resolve
from asdbench.data.plan import make_plan
from asdbench.errors import AsdbenchError
from asdbench.evaluation.thresholds import threshold
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.runtime import resolve_runtime
from asdbench.serving.bundle import manifest, write_bundle
from asdbench.training.runner import execute


def test_quantile_and_mad_rules_by_hand():
    assert threshold(np.arange(1, 11), "quantile", 0.9) == pytest.approx(9.1)  # position 0.9 x 9 = 8.1: 9 + 0.1
    # median 3, absolute deviations 2 1 0 1 97 -> MAD 1; 3 + z_0.9 (1.2815516) x 1.4826 x 1
    assert threshold(np.array([1, 2, 3, 4, 100]), "mad", 0.9) == pytest.approx(3 + 1.2815516 * 1.4826, abs=1e-6)


def test_the_gamma_rule_recovers_the_quantile_of_gamma_distributed_scores():
    scores = np.random.default_rng(0).gamma(4.0, 2.0, 20_000) + 5.0  # shape 4, scale 2, shifted by 5
    truth = 5.0 + stats.gamma.ppf(0.9, 4.0, scale=2.0)  # 18.36: the distribution's, not a fit's
    assert threshold(scores, "gamma", 0.9) == pytest.approx(truth, rel=0.01)
    assert threshold(scores, "gamma", 0.5) < threshold(scores, "gamma", 0.9) < threshold(scores, "gamma", 0.99)


def test_degenerate_or_invalid_calibrations():
    assert threshold(np.full(5, 2.5), "gamma", 0.9) == 2.5  # no spread: the value itself
    with pytest.raises(AsdbenchError, match="threshold.rule='median' is not one of: gamma, quantile, mad"):
        threshold(np.arange(3), "median", 0.9)
    with pytest.raises(AsdbenchError, match="threshold.q=1.0 must lie strictly between 0 and 1"):
        threshold(np.arange(3), "gamma", 1.0)
    with pytest.raises(AsdbenchError, match="no finite training scores .* fan/id_00"):
        threshold(np.array([1.0, np.nan]), "gamma", 0.9, "fan/id_00")


@pytest.mark.parametrize("model_per", ["type", "id-vs-others"])
def test_a_runs_thresholds_come_from_its_own_ids_training_clips(tmp_path, model_per):
    """Score = peak level: each ID's threshold is the quantile of its training WAVs' peaks, read here directly."""
    tree = known.write_tree(tmp_path / "data")
    plugins = build_plugins(extra={"known": (known.PACKAGE, known)})
    cfg = resolve_runtime(resolve(plugins, "peak-level", set_values={
        "dataset.root": str(tree), "model_per": model_per, "threshold.rule": "quantile", "threshold.q": 0.75}))
    result = execute(plugins, make_plan(plugins, cfg), Reporter())
    expected = {}
    for path in sorted(tree.rglob("train/*.wav")):
        mtype, mid = path.parts[-3], path.name.split("_")[2]
        expected.setdefault((mtype, mid), []).append(float(np.abs(sf.read(str(path), dtype="float32")[0]).max()))
    if model_per == "id-vs-others":  # fan id_01 has no test clips, so no model of its own: no threshold
        del expected[("fan", "01")]
    assert set(result.thresholds) == set(expected)  # per type, id_01 too: the fan model decides for it
    for key, peaks in expected.items():  # each from its own clips only, not its outliers'
        assert result.thresholds[key] == pytest.approx(np.quantile(peaks, 0.75), abs=1e-6)
    data = manifest(cfg, plugins, result, 16000, result.num_samples)
    assert data["thresholds"]["fan/id_00"]["n_train"] == 8 and data["threshold"] == {"rule": "quantile", "q": 0.75}
    folder = write_bundle(tmp_path / "bundle", data, result.models)
    assert json.loads((folder / "manifest.json").read_text())["thresholds"] == data["thresholds"]
