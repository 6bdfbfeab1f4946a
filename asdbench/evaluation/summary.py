"""From scored clips to numbers: a run's metrics :class:`~asdbench.evaluation.metrics.Report` under its data set's
evaluation rule, what is wrong when scores are not finite, and the mean and spread of several runs' metrics (and how
tables print them)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from asdbench.api import Clip
from asdbench.data.groups import UNITS, id_name
from asdbench.evaluation.metrics import Report, id_metrics, pooled, report


def evaluate_scores(scores: list[tuple[Clip, float]], rule: str = "dcase2020",
                    thresholds: dict[tuple[str, str], float] | None = None) -> Report | None:
    """Per-unit metrics from labelled test clips under the data set's evaluation ``rule``, with detection metrics
    where ``thresholds`` decide; ``None`` if no clip carries a label."""
    by_id: dict[tuple[str, str], list[tuple[Clip, float]]] = {}
    for clip, value in scores:
        if clip.label is not None:
            by_id.setdefault((clip.machine_type, clip.machine_id), []).append((clip, value))
    if not by_id:
        return None
    per_id = []
    for (mtype, mid), rows in sorted(by_id.items()):
        decisions = [int(v > thresholds[(mtype, mid)]) for _, v in rows] if thresholds else None
        per_id.append(id_metrics(mtype, mid, [c.label for c, _ in rows], [v for _, v in rows], rule,
                                  [c.domain for c, _ in rows], decisions))
    by_type: dict[str, list[tuple[Clip, float]]] = {}
    for (mtype, _), rows in by_id.items():
        by_type.setdefault(mtype, []).extend(rows)
    pooled_auc = {t: pooled([c.label for c, _ in rows], [v for _, v in rows]) for t, rows in by_type.items()}
    return report(per_id, UNITS[rule], rule, pooled_auc)


def nonfinite(scores: list[tuple[Clip, float]], unit: str = "id") -> str | None:
    """What is wrong when some scores are NaN or infinite (how many clips of which IDs), else ``None``."""
    def name(clip: Clip) -> str:
        return id_name(clip.machine_type, clip.machine_id, unit)

    bad = Counter(name(c) for c, v in scores if not math.isfinite(v))
    if not bad:
        return None
    total = Counter(name(c) for c, _ in scores)
    where = ", ".join(f"{n} ({count} of {total[n]})" for n, count in sorted(bad.items()))
    return f"{sum(bad.values())} test clips have a non-finite score (NaN or infinite): {where}; no metric can be computed"


def aggregate(reports: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and sample standard deviation (ddof 1; 0 for one run) of every metric the runs share."""
    keys = set.intersection(*(set(r) for r in reports)) if reports else set()
    mean = {k: float(np.mean([r[k] for r in reports])) for k in sorted(keys)}
    std = {k: float(np.std([r[k] for r in reports], ddof=1)) if len(reports) > 1 else 0.0 for k in sorted(keys)}
    return mean, std


def mean_std_text(mean: float, std: float, n: int) -> str:
    """A metric in % as every table prints it: the mean, and ± the standard deviation where ``n`` runs (> 1) give one."""
    return f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if n > 1 else "")
