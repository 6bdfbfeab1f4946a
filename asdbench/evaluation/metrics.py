"""DCASE metrics: AUC and pAUC per machine ID, their means and mAUC per machine type.

pAUC is scikit-learn's ``roc_auc_score(y, s, max_fpr=0.1)``: the McClish-standardised
partial AUC over FPR in [0, 0.1] (0.5 for a random scorer, 1.0 for a perfect one). It
is exactly what the official DCASE 2020 baseline and evaluator compute, and so what the
literature (the STgram-MFN paper included) reports; the task text's un-standardised
area/p would give other numbers (0.05 for a random scorer).

mAUC is the minimum per-ID AUC within a machine type (Dohi et al. 2021, Liu et al.
2022): the worst machine, where the mean hides it. Averages over machine types are
arithmetic means of the per-type values, as the STgram-MFN paper's "Average" column.

From 2021 a *section* plays the role of the machine ID (the ``unit``: one axis for grouping,
metrics and tables) and test clips carry a domain. The data set names its year's evaluation
rule, and each unit gets, beside AUC and pAUC over all its clips, the domain metrics of the
official evaluator of that year:

- ``dcase2021``: AUC and pAUC of each domain on that domain's clips only (``auc_source``,
  ``pauc_source``, ``auc_target``, ``pauc_target``); the official score is the harmonic mean of
  all of them, over every unit.
- ``dcase2022`` (2022–2025): ``auc_source`` on the source normals with *all* anomalies of the
  section, ``auc_target`` likewise, and pAUC over the whole section; the official score is the
  harmonic mean of every unit's ``auc_source``, ``auc_target`` and ``pauc``.

Harmonic means floor each value at machine epsilon, as the evaluators do. With decisions
(scores against the calibrated thresholds), precision, recall and F1 of each domain on that
domain's clips, with the evaluators' epsilon guards.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

from asdbench.data.groups import RULES

MAX_FPR = 0.1
EPS = sys.float_info.epsilon
DOMAINS = ("source", "target")
# The values whose harmonic mean is the official score, per rule (none in 2020: its evaluator computed none).
OFFICIAL: dict[str, tuple[str, ...]] = {
    "dcase2020": (),
    "dcase2021": ("auc_source", "auc_target", "pauc_source", "pauc_target"),
    "dcase2022": ("auc_source", "auc_target", "pauc"),
}


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
    """Metrics of one unit (a machine ID, or from 2021 a section); ``extra``: its rule's domain metrics."""

    machine_type: str
    machine_id: str
    auc: float
    pauc: float
    n_normal: int
    n_anomaly: int
    extra: dict[str, float] = field(default_factory=dict)

    def official(self, rule: str) -> list[float]:
        return [self.pauc if name == "pauc" else self.extra[name] for name in OFFICIAL[rule]]


@dataclass(frozen=True)
class TypeMetrics:
    machine_type: str
    auc: float
    pauc: float
    mauc: float
    ids: tuple[IdMetrics, ...]
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    types: tuple[TypeMetrics, ...]
    auc: float
    pauc: float
    mauc: float
    unit: str = "id"
    rule: str = "dcase2020"
    extra: dict[str, float] = field(default_factory=dict)

    def flat(self) -> dict[str, float]:
        """MLflow metric names: ``auc/fan/id_00``, ``mauc/fan``, ``auc/avg``; from 2021 ``auc_source/fan/section_00``,
        ``hmean/fan``, ``hmean/avg`` (the official score)... NaNs left out."""
        out: dict[str, float] = {}
        for t in self.types:
            for i in t.ids:
                unit = f"{t.machine_type}/{self.unit}_{i.machine_id}"
                out[f"auc/{unit}"] = i.auc
                out[f"pauc/{unit}"] = i.pauc
                out.update({f"{name}/{unit}": value for name, value in i.extra.items()})
            out[f"auc/{t.machine_type}"] = t.auc
            out[f"pauc/{t.machine_type}"] = t.pauc
            out[f"mauc/{t.machine_type}"] = t.mauc
            out.update({f"{name}/{t.machine_type}": value for name, value in t.extra.items()})
        out.update({"auc/avg": self.auc, "pauc/avg": self.pauc, "mauc/avg": self.mauc})
        out.update({f"{name}/avg": value for name, value in self.extra.items()})
        return {k: v for k, v in out.items() if not math.isnan(v)}



def hmean(values: Iterable[float]) -> float:
    """The evaluators' harmonic mean: each value floored at machine epsilon; NaN if a value is missing."""
    vals = np.asarray(list(values), dtype=np.float64)
    if not len(vals) or np.isnan(vals).any():
        return math.nan
    return float(stats.hmean(np.maximum(vals, EPS)))


def detection(labels: np.ndarray, decisions: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F1 of decisions (1: anomalous), with the DCASE evaluators' epsilon guards."""
    tp = float(((decisions == 1) & (labels == 1)).sum())
    fp = float(((decisions == 1) & (labels == 0)).sum())
    fn = float(((decisions == 0) & (labels == 1)).sum())
    precision = tp / max(tp + fp, EPS)
    recall = tp / max(tp + fn, EPS)
    return precision, recall, 2.0 * precision * recall / max(precision + recall, EPS)


def domain_metrics(rule: str, labels: Sequence[int], scores: Sequence[float], domains: Sequence[str | None],
                   decisions: Sequence[int] | None = None) -> dict[str, float]:
    """One unit's domain metrics under ``rule`` (see the module docstring); empty for ``dcase2020``."""
    if rule not in RULES:
        raise ValueError(f"unknown evaluation rule {rule!r}; one of {', '.join(RULES)}")
    if rule == "dcase2020":
        return {}
    y, s, d = np.asarray(labels), np.asarray(scores, dtype=np.float64), np.asarray(domains, dtype=object)
    out: dict[str, float] = {}
    for domain in DOMAINS:
        own = d == domain
        if rule == "dcase2021":
            out[f"auc_{domain}"] = auc(y[own], s[own])
            out[f"pauc_{domain}"] = pauc(y[own], s[own])
        else:
            with_anomalies = own | (y == 1)
            out[f"auc_{domain}"] = auc(y[with_anomalies], s[with_anomalies])
        if decisions is not None:
            if own.any():
                p, r, f1 = detection(y[own], np.asarray(decisions)[own])
            else:
                p = r = f1 = math.nan
            out.update({f"precision_{domain}": p, f"recall_{domain}": r, f"f1_{domain}": f1})
    return out


def _mean(values: Iterable[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


def _min(values: Iterable[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.min(vals)) if vals else math.nan


def id_metrics(machine_type: str, machine_id: str, labels: Sequence[int], scores: Sequence[float],
               rule: str = "dcase2020", domains: Sequence[str | None] = (), decisions: Sequence[int] | None = None,
               ) -> IdMetrics:
    y = np.asarray(labels)
    return IdMetrics(
        machine_type,
        machine_id,
        auc(y, scores),
        pauc(y, scores),
        int((y == 0).sum()),
        int((y == 1).sum()),
        domain_metrics(rule, labels, scores, domains, decisions),
    )


def _rule_summary(ids: Sequence[IdMetrics], rule: str) -> dict[str, float]:
    """Over some units: the arithmetic mean of each domain metric, and the harmonic mean of the official values
    (``hmean``: per type, the type's score; over all units, the official score)."""
    if rule == "dcase2020" or not ids:
        return {}
    out = {name: _mean(i.extra.get(name, math.nan) for i in ids) for name in ids[0].extra}
    out["hmean"] = hmean(v for i in ids for v in i.official(rule))
    return out


POOLED = ("auc_pooled", "pauc_pooled")


def pooled(labels: Sequence[int], scores: Sequence[float]) -> dict[str, float]:
    """AUC and pAUC over every test clip of a machine type at once, all its units pooled: how Noisy-ArcMix and
    OS-SCL report (their eval.py), not the official metric (the mean of per-unit values). Kept under names of their
    own (``auc_pooled/<type>``) so that the two are never mixed."""
    return dict(zip(POOLED, (auc(labels, scores), pauc(labels, scores))))


def report(per_id: Iterable[IdMetrics], unit: str = "id", rule: str = "dcase2020",
           pooled_by_type: dict[str, dict[str, float]] | None = None) -> Report:
    """Aggregate per-unit metrics into per-type means, mAUC and the average over types; under a 2021+ rule also
    the domain metrics' means and harmonic means per type and over every unit (the official score).
    ``pooled_by_type``: each type's :func:`pooled` metrics, kept beside the official ones (and averaged over types)."""
    pooled_by_type = pooled_by_type or {}
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
            {**_rule_summary(ids, rule), **pooled_by_type.get(t, {})},
        )
        for t, ids in sorted(by_type.items())
    )
    pooled_avg = {name: _mean(t.extra[name] for t in types) for name in POOLED if all(name in t.extra for t in types)}
    return Report(
        types,
        _mean(t.auc for t in types),
        _mean(t.pauc for t in types),
        _mean(t.mauc for t in types),
        unit,
        rule,
        {**_rule_summary([i for t in types for i in t.ids], rule), **pooled_avg},
    )
