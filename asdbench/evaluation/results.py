"""Result files in the official DCASE formats, plus a metrics table and JSON.

``anomaly_score_<type>_id_<II>.csv``: ``<file name>,<score>`` rows, no header, sorted
by file name (the official evaluator pairs rows by sorted name); ``decision_result_<type>_id_<II>.csv``
beside them: ``<file name>,<0|1>`` from the calibrated thresholds. From 2021 one file per section
and, in 2021, per domain: ``anomaly_score_<type>_section_<SS>_source_test.csv`` (2021),
``anomaly_score_<type>_section_<SS>_test.csv`` (2022–2025), as each year's evaluator reads them.
``result.csv``: per machine type ``<type>`` / ``id,AUC,pAUC`` / one row per ID /
``Average,<auc>,<pauc>`` / an empty line, as the DCASE 2020 baseline's ``save_csv``.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: reading tables (compare) does not load scikit-learn and SciPy
    from asdbench.api import Clip
    from asdbench.evaluation.metrics import Report


def official_stem(clip: Clip, rule: str) -> str:
    """What follows ``anomaly_score_`` / ``decision_result_`` in the name of the official file ``clip`` belongs to."""
    if rule == "dcase2020":
        return f"{clip.machine_type}_id_{clip.machine_id}"
    if rule == "dcase2021":
        return f"{clip.machine_type}_section_{clip.machine_id}_{clip.domain}_test"
    return f"{clip.machine_type}_section_{clip.machine_id}_test"


def write_official(folder: Path, scores: list[tuple[Clip, float]], thresholds: dict[tuple[str, str], float] | None,
                   rule: str = "dcase2020") -> list[Path]:
    """The official files: ``anomaly_score_*`` and, with thresholds, ``decision_result_*`` (1 where the score
    exceeds the unit's calibrated threshold, as the DCASE baselines decide)."""
    paths = _write_per_file(folder, "anomaly_score", [(c, repr(float(v))) for c, v in scores], rule)
    if thresholds is not None:
        paths += _write_per_file(folder, "decision_result", [
            (c, str(int(v > thresholds[(c.machine_type, c.machine_id)]))) for c, v in scores], rule)
    return paths


def _write_per_file(folder: Path, prefix: str, rows: list[tuple[Clip, str]], rule: str) -> list[Path]:
    """One ``<prefix>_<stem>.csv`` per official file: ``<file name>,<value>`` rows, no header, sorted by name."""
    by_file: dict[str, list[tuple[str, str]]] = {}
    for clip, value in rows:
        by_file.setdefault(official_stem(clip, rule), []).append((clip.name, value))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, file_rows in sorted(by_file.items()):
        path = folder / f"{prefix}_{stem}.csv"
        with open(path, "w", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerows(sorted(file_rows))
        paths.append(path)
    return paths


def write_clip_scores(path: Path, scores: list[tuple[Clip, float]]) -> None:
    """Every scored clip with its type, ID and label (empty if unknown): what bootstrap intervals resample."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["machine_type", "machine_id", "file", "label", "score"])
        for clip, value in sorted(scores, key=lambda cs: _clip_order(cs[0])):
            writer.writerow([clip.machine_type, clip.machine_id, clip.name, "" if clip.label is None else clip.label,
                             repr(float(value))])


def read_clip_scores(path: Path) -> list[dict[str, str]]:
    """The labelled rows of a ``clip_scores.csv``, in file order."""
    with open(path, newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["label"] != ""]


def _clip_order(clip: Clip) -> tuple[str, str, str]:
    return clip.machine_type, clip.machine_id, clip.name


def write_embeddings(path: Path, embeddings: dict[Clip, np.ndarray]) -> Path:
    """The test clips' embeddings in ``clip_scores.csv`` order, with their labels (-1 unknown), for t-SNE plots."""
    clips = sorted(embeddings, key=_clip_order)
    np.savez_compressed(
        path,
        embedding=np.stack([embeddings[c] for c in clips]).astype(np.float32),
        label=np.array([-1 if c.label is None else c.label for c in clips]),
        machine_type=np.array([c.machine_type for c in clips]),
        machine_id=np.array([c.machine_id for c in clips]),
    )
    return path


def write_bad_files(path: Path, bad: list[tuple[str, str]]) -> None:
    """The files a run left out (``skip_bad_files``), with the reason each could not be read."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["file", "reason"])
        writer.writerows(bad)


def write_clip_summary(path: Path, summary: dict[tuple[str, str], dict[str, int]]) -> None:
    """Clips per machine type and ID, as the run found them: the data behind every number of the run."""
    columns = ("train", "test_normal", "test_anomaly", "test_unlabelled")
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["machine_type", "machine_id", *columns])
        writer.writerows([mtype, mid, *(row[c] for c in columns)] for (mtype, mid), row in summary.items())


def write_result_csv(path: Path, report: Report) -> None:
    """Per machine type: a row per unit, then its average, as the 2020 baseline's ``result.csv``; under a 2021+
    rule with the domain metrics as further columns, and the official score (harmonic mean) last."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        for t in report.types:
            extra = list(t.ids[0].extra) if t.ids else []
            writer.writerow([t.machine_type])
            writer.writerow([report.unit, "AUC", "pAUC", *extra])
            for i in t.ids:
                writer.writerow([i.machine_id, repr(i.auc), repr(i.pauc), *(repr(i.extra[k]) for k in extra)])
            writer.writerow(["Average", repr(t.auc), repr(t.pauc), *(repr(t.extra[k]) for k in extra)])
            if "hmean" in t.extra:
                writer.writerow(["harmonic mean", repr(t.extra["hmean"])])
            writer.writerow([])
        if "hmean" in report.extra:
            writer.writerow(["official score", repr(report.extra["hmean"])])


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.2f}"


TABLE_KEYS = {  # per rule: the columns of a report's table (Report fields, or keys of the rule's extra metrics)
    "dcase2020": ("auc", "pauc", "mauc"),
    "dcase2021": ("auc_source", "auc_target", "pauc_source", "pauc_target", "hmean"),
    "dcase2022": ("auc_source", "auc_target", "pauc", "hmean"),
}
COLUMN_NAMES = {"auc": "AUC", "pauc": "pAUC", "mauc": "mAUC", "auc_source": "AUC source", "auc_target": "AUC target",
                "pauc_source": "pAUC source", "pauc_target": "pAUC target", "hmean": "h-mean",
                "auc_pooled": "AUC pooled", "pauc_pooled": "pAUC pooled"}


def table_columns(report: Report) -> list[str]:
    """The column titles of :func:`table_rows` after the machine type: ``AUC (%)``... (the official score, the
    harmonic mean over every unit, is the ``h-mean`` of the average row from 2021 on)."""
    return [f"{COLUMN_NAMES[k]} (%)" for k in TABLE_KEYS[report.rule]]


def table_rows(report: Report) -> list[tuple[str, ...]]:
    """(machine type, values in %...) rows, the average last: one source for every table."""
    keys = TABLE_KEYS[report.rule]

    def values(holder) -> tuple[str, ...]:  # a TypeMetrics or the Report: its own fields, then its rule's metrics
        return tuple(_pct(getattr(holder, k) if k in ("auc", "pauc", "mauc") else holder.extra.get(k, math.nan))
                     for k in keys)

    return [(t.machine_type, *values(t)) for t in report.types] + [("Average", *values(report))]


def metrics_markdown(report: Report) -> str:
    columns = table_columns(report)
    lines = ["| machine type | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(report)]
    lines += ["", f"| machine type | {report.unit} | AUC (%) | pAUC (%) | normal | anomaly |", "|---|---|---:|---:|---:|---:|"]
    for t in report.types:
        lines += [
            f"| {t.machine_type} | {i.machine_id} | {_pct(i.auc)} | {_pct(i.pauc)} | {i.n_normal} | {i.n_anomaly} |"
            for i in t.ids
        ]
    return "\n".join(lines) + "\n"


def metrics_json(report: Report) -> str:
    def clean(v: float) -> float | None:
        return None if math.isnan(v) else v

    data = {
        "average": {"auc": clean(report.auc), "pauc": clean(report.pauc), "mauc": clean(report.mauc)},
        "types": {
            t.machine_type: {
                "auc": clean(t.auc),
                "pauc": clean(t.pauc),
                "mauc": clean(t.mauc),
                "ids": {
                    i.machine_id: {"auc": clean(i.auc), "pauc": clean(i.pauc), "n_normal": i.n_normal, "n_anomaly": i.n_anomaly}
                    for i in t.ids
                },
            }
            for t in report.types
        },
    }
    return json.dumps(data, indent=2) + "\n"
