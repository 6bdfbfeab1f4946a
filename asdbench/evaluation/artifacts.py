"""The files a set of scored test clips leaves, for a training run and ``asdbench eval`` alike."""

from __future__ import annotations

from pathlib import Path

from asdbench.data.groups import UNITS
from asdbench.evaluation import figures, results


def write_result_files(folder: Path, scores: list, report, thresholds: dict[tuple[str, str], float], rule: str,
                       embeddings: dict | None = None) -> None:
    """The files of a set of scored test clips, for a training run and ``asdbench eval`` alike: the official score
    and decision files of the data set's ``rule`` (``scores/``), every clip's score, and where labels exist the
    metrics and figures (unless switched off: :func:`asdbench.evaluation.figures.wanted`)."""
    results.write_official(folder / "scores", scores, thresholds, rule)
    results.write_clip_scores(folder / "clip_scores.csv", scores)
    saved = None
    if embeddings and len(embeddings) == len(scores):
        saved = results.write_embeddings(folder / "embeddings.npz", embeddings)
    if report is not None:
        if figures.wanted():
            figures.write_figures(folder / "figures", folder / "clip_scores.csv", saved, UNITS[rule])
        results.write_result_csv(folder / "result.csv", report)
        (folder / "metrics.md").write_text(results.metrics_markdown(report))
        (folder / "metrics.json").write_text(results.metrics_json(report))
