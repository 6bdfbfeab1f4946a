import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from asdbench.evaluation import metrics


def test_auc_and_pauc_hand_computed():
    # Scores in order: anomaly 0.8, normal 0.4, anomaly 0.35, normal 0.1.
    # Pairs (anomaly > normal): 0.8>0.4, 0.8>0.1, 0.35>0.1 -> 3 of 4 -> AUC 0.75.
    y, s = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert metrics.auc(y, s) == pytest.approx(0.75)
    # ROC: (0, 0.5) then (0.5, 0.5): at FPR 0.1 the TPR is 0.5, so the area on [0, 0.1] is 0.05.
    # McClish: 0.5 * (1 + (A - p^2/2) / (p - p^2/2)) with p = 0.1.
    mcclish = 0.5 * (1 + (0.05 - 0.005) / (0.1 - 0.005))
    assert metrics.pauc(y, s) == pytest.approx(mcclish)
    assert mcclish == pytest.approx(0.7368421, abs=1e-7)


def test_perfect_and_inverted_scorers():
    y = [0, 0, 0, 1, 1]
    assert metrics.auc(y, [1, 2, 3, 4, 5]) == 1.0
    assert metrics.pauc(y, [1, 2, 3, 4, 5]) == 1.0
    assert metrics.auc(y, [5, 4, 3, 2, 1]) == 0.0


def test_ties_count_half():
    assert metrics.auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(6))
def test_matches_sklearn_on_random_data_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    y[:2] = [0, 1]
    s = np.round(rng.normal(size=200) + 0.7 * y, 1)  # rounding makes ties
    assert metrics.auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert metrics.pauc(y, s) == pytest.approx(roc_auc_score(y, s, max_fpr=0.1), abs=1e-12)


def test_single_class_is_nan_not_a_crash():
    assert math.isnan(metrics.auc([0, 0, 0], [1, 2, 3]))
    assert math.isnan(metrics.pauc([1, 1], [1, 2]))


def test_report_means_min_and_average():
    ids = [
        metrics.IdMetrics("fan", "00", 0.9, 0.8, 10, 10),
        metrics.IdMetrics("fan", "02", 0.7, 0.6, 10, 10),
        metrics.IdMetrics("pump", "00", 0.6, 0.5, 10, 10),
    ]
    rep = metrics.report(ids)
    fan, pump = rep.types
    assert (fan.auc, fan.pauc, fan.mauc) == pytest.approx((0.8, 0.7, 0.7))
    assert (pump.auc, pump.mauc) == pytest.approx((0.6, 0.6))
    assert rep.auc == pytest.approx(0.7)
    assert rep.mauc == pytest.approx(0.65)
    flat = rep.flat()
    assert flat["auc/fan/id_00"] == 0.9 and flat["mauc/fan"] == pytest.approx(0.7)
    assert flat["auc/avg"] == pytest.approx(0.7) and flat["pauc/avg"] == pytest.approx(0.6)


def test_report_orders_types_as_the_dcase_baseline():
    ids = [metrics.IdMetrics(t, "01", 0.5, 0.5, 1, 1) for t in ("fan", "ToyCar", "valve")]
    assert [t.machine_type for t in metrics.report(ids).types] == ["ToyCar", "fan", "valve"]


def test_id_metrics_counts():
    m = metrics.id_metrics("fan", "00", [0, 0, 1], [0.1, 0.2, 0.9])
    assert (m.n_normal, m.n_anomaly, m.auc) == (2, 1, 1.0)


def test_pooled_auc_pools_a_types_ids_and_stays_apart_from_the_official_mean():
    from pathlib import Path

    from asdbench.api import Clip
    from asdbench.evaluation.summary import evaluate_scores as evaluate

    def clip(mid: str, label: int) -> Clip:
        return Clip(Path(f"{mid}-{label}.wav"), "fan", mid, "test", label)

    # Each ID alone separates perfectly (AUC 1), but id_02's normal clip outscores id_00's anomaly: pooled,
    # 3 of the 4 (anomaly, normal) pairs are ordered, AUC 0.75.
    report = evaluate([(clip("00", 0), 0.1), (clip("00", 1), 0.2), (clip("02", 0), 0.5), (clip("02", 1), 0.6)])
    flat = report.flat()
    assert flat["auc/fan"] == 1.0 and flat["auc/avg"] == 1.0
    assert flat["auc_pooled/fan"] == 0.75 and flat["auc_pooled/avg"] == 0.75
    assert flat["pauc_pooled/fan"] == pytest.approx(roc_auc_score([0, 1, 0, 1], [0.1, 0.2, 0.5, 0.6], max_fpr=0.1))
