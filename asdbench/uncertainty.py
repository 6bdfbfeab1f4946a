"""Bootstrap uncertainty from per-clip scores: intervals per machine type and paired system comparisons.

Clips are resampled with replacement within each machine ID, normal and anomalous clips
separately (so every replicate has both classes), with a fixed seed. Runs of one system
(seeds) share their test clips, so each replicate uses the same clips for every run and
averages their AUCs: the interval is that of the seed-averaged AUC. A paired comparison
resamples the same clips for both systems, which is what makes small gains detectable.
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


def replicate_aucs(ids: list[IdScores], n_boot: int = N_BOOT, seed: int = SEED) -> dict[tuple[str, str], np.ndarray]:
    """Per ID, the seed-averaged AUC of each bootstrap replicate. The same ``seed`` draws the same clips."""
    rng = np.random.default_rng(seed)
    out = {}
    for item in sorted(ids, key=lambda i: (i.machine_type, i.machine_id)):
        normal_idx, anomaly_idx = resample(item.labels, n_boot, rng)
        out[(item.machine_type, item.machine_id)] = np.mean([auc_of(s, normal_idx, anomaly_idx) for s in item.scores], axis=0)
    return out


def type_intervals(replicates: dict[tuple[str, str], np.ndarray], level: float = 0.95) -> dict[str, dict[str, tuple[float, float]]]:
    """95 % percentile intervals of each type's mean AUC and mAUC (worst ID), and of their averages over types."""
    by_type: dict[str, list[np.ndarray]] = {}
    for (mtype, _), values in replicates.items():
        by_type.setdefault(mtype, []).append(values)
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    stats = {t: {"auc": np.mean(v, axis=0), "mauc": np.min(v, axis=0)} for t, v in by_type.items()}
    stats["avg"] = {m: np.mean([s[m] for s in stats.values()], axis=0) for m in ("auc", "mauc")}
    return {t: {m: (float(np.percentile(v, lo)), float(np.percentile(v, hi))) for m, v in s.items()} for t, s in stats.items()}


@dataclass(frozen=True)
class PairedDifference:
    machine_type: str
    machine_id: str
    difference: float  # AUC(A) − AUC(B) on the original clips
    low: float
    high: float
    p_value: float  # two-sided, from the bootstrap distribution of the difference


def paired(a: list[IdScores], b: list[IdScores], n_boot: int = N_BOOT, seed: int = SEED, level: float = 0.95) -> list[PairedDifference]:
    """Per ID, A's AUC minus B's on the same resampled clips, with its interval and p-value."""
    b_by_id = {(i.machine_type, i.machine_id): i for i in b}
    rng = np.random.default_rng(seed)
    out = []
    for ia in sorted(a, key=lambda i: (i.machine_type, i.machine_id)):
        ib = b_by_id.get((ia.machine_type, ia.machine_id))
        if ib is None or not np.array_equal(ia.labels, ib.labels):
            continue
        normal_idx, anomaly_idx = resample(ia.labels, n_boot, rng)
        full_n, full_a = np.flatnonzero(ia.labels == 0)[None], np.flatnonzero(ia.labels == 1)[None]
        point = np.mean([auc_of(s, full_n, full_a)[0] for s in ia.scores]) - np.mean([auc_of(s, full_n, full_a)[0] for s in ib.scores])
        diffs = (np.mean([auc_of(s, normal_idx, anomaly_idx) for s in ia.scores], axis=0)
                 - np.mean([auc_of(s, normal_idx, anomaly_idx) for s in ib.scores], axis=0))
        p = min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0)))
        lo, hi = np.percentile(diffs, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
        out.append(PairedDifference(ia.machine_type, ia.machine_id, float(point), float(lo), float(hi), float(p)))
    return out
