"""DCASE metrics: AUC and pAUC per machine ID, their means and mAUC per machine type.

pAUC is scikit-learn's ``roc_auc_score(y, s, max_fpr=0.1)``: the McClish-standardised
partial AUC over FPR in [0, 0.1] (0.5 for a random scorer, 1.0 for a perfect one). It
is exactly what the official DCASE 2020 baseline and evaluator compute, and so what the
literature (the STgram-MFN paper included) reports; the task text's un-standardised
area/p would give other numbers (0.05 for a random scorer).

mAUC is the minimum per-ID AUC within a machine type (Dohi et al. 2021, Liu et al.
2022): the worst machine, where the mean hides it. Averages over machine types are
arithmetic means of the per-type values, as the STgram-MFN paper's "Average" column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

MAX_FPR = 0.1


def auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """ROC AUC with anomalies (label 1) as the positive class; NaN if one class is missing."""
    y = np.asarray(labels)
    if np.unique(y).size < 2:
        return math.nan
    return float(roc_auc_score(y, np.asarray(scores, dtype=np.float64)))


def pauc(labels: Sequence[int], scores: Sequence[float], max_fpr: float = MAX_FPR) -> float:
    """McClish-standardised partial AUC over FPR in [0, ``max_fpr``], as the DCASE evaluators."""
    y = np.asarray(labels)
    if np.unique(y).size < 2:
        return math.nan
    return float(roc_auc_score(y, np.asarray(scores, dtype=np.float64), max_fpr=max_fpr))


@dataclass(frozen=True)
class IdMetrics:
    machine_type: str
    machine_id: str
    auc: float
    pauc: float
    n_normal: int
    n_anomaly: int


@dataclass(frozen=True)
class TypeMetrics:
    machine_type: str
    auc: float
    pauc: float
    mauc: float
    ids: tuple[IdMetrics, ...]


@dataclass(frozen=True)
class Report:
    types: tuple[TypeMetrics, ...]
    auc: float
    pauc: float
    mauc: float

    def flat(self) -> dict[str, float]:
        """MLflow metric names: ``auc/fan/id_00``, ``mauc/fan``, ``auc/avg``... NaNs left out."""
        out: dict[str, float] = {}
        for t in self.types:
            for i in t.ids:
                out[f"auc/{t.machine_type}/id_{i.machine_id}"] = i.auc
                out[f"pauc/{t.machine_type}/id_{i.machine_id}"] = i.pauc
            out[f"auc/{t.machine_type}"] = t.auc
            out[f"pauc/{t.machine_type}"] = t.pauc
            out[f"mauc/{t.machine_type}"] = t.mauc
        out.update({"auc/avg": self.auc, "pauc/avg": self.pauc, "mauc/avg": self.mauc})
        return {k: v for k, v in out.items() if not math.isnan(v)}


def _mean(values: Iterable[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


def _min(values: Iterable[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.min(vals)) if vals else math.nan


def id_metrics(machine_type: str, machine_id: str, labels: Sequence[int], scores: Sequence[float]) -> IdMetrics:
    y = np.asarray(labels)
    return IdMetrics(
        machine_type,
        machine_id,
        auc(y, scores),
        pauc(y, scores),
        int((y == 0).sum()),
        int((y == 1).sum()),
    )


def report(per_id: Iterable[IdMetrics]) -> Report:
    """Aggregate per-ID metrics into per-type means, mAUC and the average over types."""
    by_type: dict[str, list[IdMetrics]] = {}
    for m in per_id:
        by_type.setdefault(m.machine_type, []).append(m)
    types = tuple(
        TypeMetrics(
            t,
            _mean(i.auc for i in ids),
            _mean(i.pauc for i in ids),
            _min(i.auc for i in ids),
            tuple(sorted(ids, key=lambda i: i.machine_id)),
        )
        for t, ids in sorted(by_type.items())
    )
    return Report(
        types,
        _mean(t.auc for t in types),
        _mean(t.pauc for t in types),
        _mean(t.mauc for t in types),
    )
