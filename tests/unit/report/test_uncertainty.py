import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from asdbench.report.uncertainty import IdScores, auc_of, holm, paired, replicate_aucs, resample, type_intervals


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
    drawn_runs = np.random.default_rng([7, 1]).integers(0, 2, (50, 2))  # two runs: each replicate draws runs too
    direct = [
        np.mean([roc_auc_score([0] * 12 + [1] * 8, np.concatenate([runs[r][n], runs[r][a]])) for r in rs])
        for n, a, rs in zip(normal_idx, anomaly_idx, drawn_runs)
    ]
    assert np.allclose(reps, direct)
    assert any(len(set(rs)) == 1 for rs in drawn_runs)  # some replicates hold one run twice: seeds are resampled


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
    diff, average = paired(good, poor, n_boot=500)
    assert diff.difference > 0.2 and diff.low > 0 and diff.p_value < 0.01
    assert diff.p_holm == diff.p_value  # one ID: nothing to adjust
    assert (average.machine_type, average.p_holm) == ("Average", None)  # one ID: its average is itself
    assert (average.difference, average.low, average.high) == (diff.difference, diff.low, diff.high)
    reverse, _ = paired(poor, good, n_boot=500)
    assert reverse.difference == pytest.approx(-diff.difference) and reverse.high < 0


def test_holm_adjustment_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01 = 0.03; 2 x 0.03 = 0.06; 1 x 0.04 = 0.04, raised to the running max 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.2]) == [0.2]


def test_paired_rows_are_holm_adjusted_and_averaged_over_types():
    rng = np.random.default_rng(5)
    labels = np.array([0] * 40 + [1] * 40)
    ids_a, ids_b = [], []
    for mtype, mid, gain in (("fan", "00", 1.5), ("fan", "02", 0.3), ("pump", "00", 0.0)):
        noise = rng.normal(size=80)
        ids_a.append(_id(mtype, mid, labels, noise + gain * labels))
        ids_b.append(_id(mtype, mid, labels, noise))
    rows = paired(ids_a, ids_b, n_boot=400)
    per_id, average = rows[:-1], rows[-1]
    assert [(r.machine_type, r.machine_id) for r in per_id] == [("fan", "00"), ("fan", "02"), ("pump", "00")]
    assert [r.p_holm for r in per_id] == pytest.approx(holm([r.p_value for r in per_id]))
    assert per_id[2].difference == 0.0  # identical scores: no difference
    # The average over types weights fan's two IDs as one type: ((d00 + d02) / 2 + d_pump) / 2.
    assert average.difference == pytest.approx((per_id[0].difference + per_id[1].difference) / 4)


def test_seeds_put_training_noise_inside_the_interval():
    """Three runs that disagree (training noise) on the same clips: resampling runs widens the interval,
    which with clips alone would claim a precision the seeds do not have."""
    rng = np.random.default_rng(6)
    labels = np.array([0] * 100 + [1] * 100)
    base = rng.normal(size=200)
    runs = [base + shift * labels for shift in (0.2, 1.0, 1.8)]
    spread = _id("fan", "00", labels, *runs)
    lo, hi = type_intervals(replicate_aucs([spread], n_boot=500))["fan"]["auc"]
    middle_lo, middle_hi = type_intervals(replicate_aucs([_id("fan", "00", labels, runs[1])], n_boot=500))["fan"]["auc"]
    assert hi - lo > 2 * (middle_hi - middle_lo)  # the clip-only interval of one run is far narrower
    run_aucs = [roc_auc_score(labels, r) for r in runs]
    assert lo < run_aucs[1] < hi and lo < np.mean(run_aucs) < hi
