"""Bootstrap uncertainty from per-clip scores: intervals per machine type and paired system comparisons.

Clips are resampled with replacement within each machine ID, normal and anomalous clips
separately (so every replicate has both classes), with a fixed seed. With one run per
system, that is all a replicate varies: the interval measures test-set noise (which clips
happened to be recorded), not training noise (which a second seed would show). With
several runs (seeds) the bootstrap is hierarchical: each replicate also draws the runs
with replacement, one draw shared by every machine ID (a run is good or bad on all of them
at once), and averages the drawn runs' AUCs, so the spread of training is inside the
interval. A paired comparison resamples the same clips for both systems (what makes small
gains detectable) and each system's runs independently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BOOT = 1000
SEED = 0


@dataclass(frozen=True)
class IdScores:
    """One machine ID's labelled test clips: scores[r] holds run r's scores in clip order."""

    machine_type: str
    machine_id: str
    labels: np.ndarray
    scores: np.ndarray  # (runs, clips)


def resample(labels: np.ndarray, n_boot: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap indices of the normal and the anomalous clips: ``(n_boot, n_normal)``, ``(n_boot, n_anomaly)``."""
    normal, anomaly = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    return (normal[rng.integers(0, len(normal), (n_boot, len(normal)))],
            anomaly[rng.integers(0, len(anomaly), (n_boot, len(anomaly)))])


def auc_of(scores: np.ndarray, normal_idx: np.ndarray, anomaly_idx: np.ndarray, chunk: int = 64) -> np.ndarray:
    """AUC of every replicate (row of the index matrices): P(anomaly > normal) + ½ P(tie), as sklearn's AUC."""
    out = np.empty(normal_idx.shape[0])
    for start in range(0, normal_idx.shape[0], chunk):
        s0 = scores[normal_idx[start : start + chunk]][:, None, :]  # (c, 1, n0)
        s1 = scores[anomaly_idx[start : start + chunk]][:, :, None]  # (c, n1, 1)
        out[start : start + chunk] = ((s1 > s0).mean(axis=(1, 2)) + 0.5 * (s1 == s0).mean(axis=(1, 2)))
    return out


def _run_draws(n_runs: int, n_boot: int, rng: np.random.Generator) -> np.ndarray | None:
    """``(n_boot, n_runs)`` run indices drawn with replacement for each replicate; ``None`` for a single run."""
    return rng.integers(0, n_runs, (n_boot, n_runs)) if n_runs > 1 else None


def _replicates(item: IdScores, normal_idx: np.ndarray, anomaly_idx: np.ndarray, runs: np.ndarray | None) -> np.ndarray:
    """The run-averaged AUC of each replicate, over the runs ``runs`` draws (all runs when ``None``)."""
    per_run = np.stack([auc_of(s, normal_idx, anomaly_idx) for s in item.scores])  # (runs, n_boot)
    if runs is None:
        return per_run.mean(axis=0)
    return np.take_along_axis(per_run, runs.T, axis=0).mean(axis=0)


def _point(item: IdScores) -> float:
    full_n, full_a = np.flatnonzero(item.labels == 0)[None], np.flatnonzero(item.labels == 1)[None]
    return float(np.mean([auc_of(s, full_n, full_a)[0] for s in item.scores]))


def replicate_aucs(ids: list[IdScores], n_boot: int = N_BOOT, seed: int = SEED) -> dict[tuple[str, str], np.ndarray]:
    """Per ID, the run-averaged AUC of each bootstrap replicate. The same ``seed`` draws the same clips and runs."""
    rng = np.random.default_rng(seed)
    runs = _run_draws(ids[0].scores.shape[0] if ids else 1, n_boot, np.random.default_rng([seed, 1]))
    out = {}
    for item in sorted(ids, key=lambda i: (i.machine_type, i.machine_id)):
        normal_idx, anomaly_idx = resample(item.labels, n_boot, rng)
        out[(item.machine_type, item.machine_id)] = _replicates(item, normal_idx, anomaly_idx, runs)
    return out


def _average(values: dict[tuple[str, str], np.ndarray | float]) -> np.ndarray | float:
    """The mean over machine types of the mean over each type's IDs: how ``auc/avg`` averages."""
    by_type: dict[str, list] = {}
    for (mtype, _), v in values.items():
        by_type.setdefault(mtype, []).append(v)
    return np.mean([np.mean(v, axis=0) for v in by_type.values()], axis=0)


def type_intervals(replicates: dict[tuple[str, str], np.ndarray], level: float = 0.95) -> dict[str, dict[str, tuple[float, float]]]:
    """95 % percentile intervals of each type's mean AUC and mAUC (worst ID), and of their averages over types."""
    by_type: dict[str, list[np.ndarray]] = {}
    for (mtype, _), values in replicates.items():
        by_type.setdefault(mtype, []).append(values)
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    stats = {t: {"auc": np.mean(v, axis=0), "mauc": np.min(v, axis=0)} for t, v in by_type.items()}
    stats["avg"] = {m: np.mean([s[m] for s in stats.values()], axis=0) for m in ("auc", "mauc")}
    return {t: {m: (float(np.percentile(v, lo)), float(np.percentile(v, hi))) for m, v in s.items()} for t, s in stats.items()}


AVERAGE = "Average"  # the machine type of the paired row for the average AUC over types


@dataclass(frozen=True)
class PairedDifference:
    machine_type: str  # AVERAGE for the row of the average over types
    machine_id: str  # empty for the average row
    difference: float  # AUC(A) − AUC(B) on the original clips, averaged over each system's runs
    low: float
    high: float
    p_value: float  # two-sided, from the bootstrap distribution of the difference
    p_holm: float | None  # Holm-adjusted over the IDs of the comparison; None for the average row


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment: the family-wise error rate over several IDs held at the nominal level."""
    m = len(p_values)
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _difference(diffs: np.ndarray, point: float, level: float) -> tuple[float, float, float, float]:
    p = min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0)))
    lo, hi = np.percentile(diffs, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return point, float(lo), float(hi), float(p)


def paired(a: list[IdScores], b: list[IdScores], n_boot: int = N_BOOT, seed: int = SEED, level: float = 0.95) -> list[PairedDifference]:
    """Per ID, A's AUC minus B's on the same resampled clips, with its interval, p-value and Holm-adjusted
    p-value; then a row for the average AUC over machine types (``auc/avg``)."""
    b_by_id = {(i.machine_type, i.machine_id): i for i in b}
    rng = np.random.default_rng(seed)
    runs_a = _run_draws(a[0].scores.shape[0] if a else 1, n_boot, np.random.default_rng([seed, 1]))
    runs_b = _run_draws(b[0].scores.shape[0] if b else 1, n_boot, np.random.default_rng([seed, 2]))
    rows, reps, points = [], {}, {}
    for ia in sorted(a, key=lambda i: (i.machine_type, i.machine_id)):
        key = (ia.machine_type, ia.machine_id)
        ib = b_by_id.get(key)
        if ib is None or not np.array_equal(ia.labels, ib.labels):
            continue
        normal_idx, anomaly_idx = resample(ia.labels, n_boot, rng)
        reps[key] = (_replicates(ia, normal_idx, anomaly_idx, runs_a), _replicates(ib, normal_idx, anomaly_idx, runs_b))
        points[key] = (_point(ia), _point(ib))
        rows.append((key, _difference(reps[key][0] - reps[key][1], points[key][0] - points[key][1], level)))
    if not rows:
        return []
    adjusted = holm([r[1][3] for r in rows])
    out = [PairedDifference(*key, *diff, p_holm=p) for (key, diff), p in zip(rows, adjusted)]
    avg_diffs = _average({k: v[0] for k, v in reps.items()}) - _average({k: v[1] for k, v in reps.items()})
    avg_point = float(_average({k: v[0] for k, v in points.items()}) - _average({k: v[1] for k, v in points.items()}))
    out.append(PairedDifference(AVERAGE, "", *_difference(avg_diffs, avg_point, level), p_holm=None))
    return out
