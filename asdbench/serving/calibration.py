"""Thresholds set after training: a value the site chooses, a false-positive rate on normal scores, or a refit on
the site's own normal recordings.

The threshold a run calibrates (:mod:`asdbench.evaluation.thresholds`) comes from the training clips, which the model
has learned: their scores are lower than those of new normal recordings, and a microphone placed elsewhere on the
floor shifts every score. So a bundle keeps each machine's normal scores, ``score --fpr`` picks the threshold that
flags at most that share of them, and ``calibrate`` scores recordings the model has never seen, known to be normal,
and fits the threshold to them: no anomalous recording is needed, and nothing is retrained.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from asdbench.errors import AsdbenchError
from asdbench.evaluation.thresholds import threshold


def threshold_entry(value: float, normal_scores: Sequence[float]) -> dict[str, Any]:
    """A machine's threshold in a bundle's manifest, with the normal scores it was calibrated on: kept so that
    ``score --fpr`` and ``calibrate`` can set another threshold later without the training data."""
    return {"value": value, "n_train": len(normal_scores), "train_scores": [float(v) for v in normal_scores]}


def fpr_threshold(scores: Sequence[float], fpr: float, where: str = "") -> float:
    """The lowest of the normal ``scores`` above which (strictly, as decisions are made) at most ``fpr`` of them lie:
    with 100 scores and ``fpr=0.05``, the sixth highest, so that the five above it are flagged."""
    if not 0.0 <= fpr < 1.0:
        raise AsdbenchError(f"--fpr {fpr}: a false-positive rate lies in [0, 1)")
    values = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if len(values) == 0:
        raise AsdbenchError(f"{where}: the model keeps no normal scores to set a threshold from (a bundle written "
                            "before asdbench kept them); refit it with `asdbench calibrate` on normal recordings")
    allowed = math.floor(fpr * len(values) + 1e-9)  # 0.05 * 100 is 5.000000000000001 in floating point
    if allowed >= len(values):
        raise AsdbenchError(f"{where}: --fpr {fpr} of {len(values)} normal scores would flag them all")
    return float(values[allowed])


@dataclass(frozen=True)
class Override:
    """What replaces the bundle's thresholds in one ``score`` or ``monitor`` job: a value, or a false-positive rate."""

    value: float | None = None
    fpr: float | None = None

    def __post_init__(self) -> None:
        if self.value is not None and self.fpr is not None:
            raise AsdbenchError("--threshold and --fpr both set a threshold: give one")

    def apply(self, thresholds: dict[tuple[str, ...], float], normal_scores: dict[tuple[str, ...], list[float]],
              name: Callable[[tuple[str, ...]], str]) -> dict[tuple[str, ...], float]:
        if self.value is not None:
            if not math.isfinite(self.value):
                raise AsdbenchError(f"--threshold {self.value}: a threshold is a finite number")
            return {machine: float(self.value) for machine in thresholds}
        if self.fpr is not None:
            return {machine: fpr_threshold(normal_scores.get(machine, []), self.fpr, name(machine))
                    for machine in thresholds}
        return dict(thresholds)

    def describe(self) -> str:
        return (f"threshold {self.value:g} for every machine" if self.value is not None else
                f"thresholds at {self.fpr:g} false-positive rate on the model's normal scores" if self.fpr is not None
                else "the model's calibrated thresholds")


@dataclass(frozen=True)
class Rule:
    """How ``calibrate`` turns a machine's normal scores into its threshold: a false-positive rate, or one of the
    run rules (gamma, quantile, mad) at quantile ``q``."""

    rule: str
    q: float
    fpr: float | None = None

    def threshold(self, scores: Sequence[float], where: str) -> float:
        if self.fpr is not None:
            return fpr_threshold(scores, self.fpr, where)
        return threshold(np.asarray(scores), self.rule, self.q, where)

    def record(self) -> dict[str, Any]:
        return {"rule": "fpr", "fpr": self.fpr} if self.fpr is not None else {"rule": self.rule, "q": self.q}


def recalibrated(manifest: dict[str, Any], scores: dict[str, list[float]], rule: Rule, sources: Sequence[Path],
                 skipped: int = 0) -> dict[str, Any]:
    """The manifest with the thresholds of the machines in ``scores`` (by name, ``fan/id_00``) refitted on those
    normal scores by ``rule``, the others kept, and the calibration appended to its history: what data, which rule,
    when. The new normal scores replace the old ones, so a later ``--fpr`` refers to the site's recordings."""
    thresholds = dict(manifest["thresholds"])
    for name, values in sorted(scores.items()):
        thresholds[name] = {**threshold_entry(rule.threshold(values, name), values), "calibrated": True}
    entry = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), **rule.record(),
             "sources": [str(p) for p in sources], "files": sum(len(v) for v in scores.values()),
             "skipped_files": skipped, "machines": {name: len(v) for name, v in sorted(scores.items())},
             "kept": sorted(set(thresholds) - set(scores))}
    return {**manifest, "thresholds": thresholds, "calibrations": [*manifest.get("calibrations", []), entry]}
