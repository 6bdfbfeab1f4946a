import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from asdbench.uncertainty import IdScores, auc_of, paired, replicate_aucs, resample, type_intervals


def _id(mtype, mid, labels, *runs):
    return IdScores(mtype, mid, np.asarray(labels), np.asarray(runs, dtype=float))


def test_auc_of_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    labels = np.array([0] * 30 + [1] * 20)
    scores = np.round(rng.normal(size=50) + labels, 1)
    full_n, full_a = np.flatnonzero(labels == 0)[None], np.flatnonzero(labels == 1)[None]
    assert auc_of(scores, full_n, full_a)[0] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_replicates_equal_a_direct_computation_on_the_same_draws():
    rng = np.random.default_rng(1)
    labels = np.array([0] * 12 + [1] * 8)
    runs = [rng.normal(size=20) + labels, rng.normal(size=20) + 0.5 * labels]
    reps = replicate_aucs([_id("fan", "00", labels, *runs)], n_boot=50, seed=7)[("fan", "00")]
    normal_idx, anomaly_idx = resample(labels, 50, np.random.default_rng(7))  # the same draws, by the same seed
    direct = [
        np.mean([roc_auc_score([0] * 12 + [1] * 8, np.concatenate([s[n], s[a]])) for s in runs])
        for n, a in zip(normal_idx, anomaly_idx)
    ]
    assert np.allclose(reps, direct)


def test_intervals_cover_the_point_estimate_and_shrink_with_data():
    rng = np.random.default_rng(2)

    def ids(n):
        out = []
        for mid in ("00", "02"):
            labels = np.array([0] * n + [1] * n)
            out.append(_id("fan", mid, labels, rng.normal(size=2 * n) + 0.8 * labels))
        return out

    small, large = ids(20), ids(400)
    for items in (small, large):
        point = np.mean([auc_of(i.scores[0], np.flatnonzero(i.labels == 0)[None], np.flatnonzero(i.labels == 1)[None])[0]
                         for i in items])
        lo, hi = type_intervals(replicate_aucs(items, n_boot=300))["fan"]["auc"]
        assert lo <= point <= hi
    width = {n: np.subtract(*type_intervals(replicate_aucs(x, n_boot=300))["fan"]["auc"][::-1]) for n, x in (("s", small), ("l", large))}
    assert width["l"] < width["s"] / 2


def test_paired_comparison_finds_the_better_system():
    rng = np.random.default_rng(3)
    labels = np.array([0] * 60 + [1] * 60)
    good = [_id("pump", "00", labels, rng.normal(size=120) + 2.0 * labels)]
    poor = [_id("pump", "00", labels, rng.normal(size=120) + 0.2 * labels)]
    (diff,) = paired(good, poor, n_boot=500)
    assert diff.difference > 0.2 and diff.low > 0 and diff.p_value < 0.01
    (reverse,) = paired(poor, good, n_boot=500)
    assert reverse.difference == pytest.approx(-diff.difference) and reverse.high < 0
