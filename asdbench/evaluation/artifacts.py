"""The files a set of scored test clips leaves, for a training run and ``asdbench eval`` alike: the results first,
the figures after them and apart from them."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

from asdbench.data.groups import UNITS
from asdbench.evaluation import figures, results


def write_result_files(folder: Path, scores: list, report, thresholds: dict[tuple[str, str], float], rule: str,
                       embeddings: dict | None = None) -> None:
    """The files of a set of scored test clips: the official score and decision files of the data set's ``rule``
    (``scores/``), every clip's score, its embedding where the model has them, and where labels exist the metrics.
    The figures are drawn apart (:func:`draw_figures`), once these are safe."""
    results.write_official(folder / "scores", scores, thresholds, rule)
    results.write_clip_scores(folder / "clip_scores.csv", scores)
    if embeddings and len(embeddings) == len(scores):
        results.write_embeddings(folder / "embeddings.npz", embeddings)
    if report is not None:
        results.write_result_csv(folder / "result.csv", report)
        (folder / "metrics.md").write_text(results.metrics_markdown(report))
        (folder / "metrics.json").write_text(results.metrics_json(report))


def _draw(results_folder: Path, figures_folder: Path, unit: str) -> list[str]:
    """In the drawing process: the figures, and the notes on what was left out."""
    notes: list[str] = []
    embeddings = results_folder / "embeddings.npz"
    figures.write_figures(figures_folder, results_folder / "clip_scores.csv", embeddings if embeddings.exists() else None,
                          unit, notes.append)
    return notes


def draw_figures(results_folder: Path, rule: str, log: Callable[[Path], None], note: Callable[[str], None],
                 draw: Callable[[Path, Path, str], list[str]] = _draw) -> None:
    """The figures of the result files in ``results_folder`` (labelled ones only, unless switched off:
    :func:`asdbench.evaluation.figures.wanted`), handed to ``log`` as a folder holding ``figures/``. They are drawn in
    a process of their own: a crash in compiled code (t-SNE once segfaulted on a collapsed model's embeddings) ends
    that process, not the run whose results are already logged; what went wrong is one ``note``."""
    if not figures.wanted() or not (results_folder / "metrics.json").exists():
        return
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                notes = pool.submit(draw, results_folder, Path(tmp) / "figures", UNITS[rule]).result()
        except BrokenProcessPool:
            note("the figures were not drawn: the drawing process died (a crash in compiled code); the results are "
                 "logged, and `asdbench plot RUN_ID` draws the figures again")
            return
        except Exception as exc:  # noqa: BLE001 - a figure never fails a run whose results are logged
            note(f"the figures were not drawn: {type(exc).__name__}: {exc}; the results are logged")
            return
        for message in notes:
            note(message)
        if (Path(tmp) / "figures").is_dir():
            log(Path(tmp))

