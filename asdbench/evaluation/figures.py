"""Figures of a run, from what it logged: ROC curves and score histograms per machine type, and the
t-SNE picture of the STgram-MFN paper's Fig. 2 (test-clip embeddings of one type, colour = ID,
marker = normal/anomaly) for systems with embeddings. matplotlib and scikit-learn's TSNE."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402
from sklearn.metrics import roc_auc_score, roc_curve  # noqa: E402

from asdbench.evaluation.results import read_clip_scores  # noqa: E402

ClipRows = list[dict[str, str]]


def _by_type(rows: ClipRows) -> dict[str, dict[str, ClipRows]]:
    out: dict[str, dict[str, ClipRows]] = {}
    for r in rows:
        out.setdefault(r["machine_type"], {}).setdefault(r["machine_id"], []).append(r)
    return out


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def roc_figures(rows: ClipRows, folder: Path, unit: str = "id") -> list[Path]:
    """``roc_<type>.png``: one ROC curve per machine ID (``unit`` "section" from DCASE 2021 on), its AUC in the
    legend, FPR = 0.1 marked (pAUC's range)."""
    paths = []
    for mtype, ids in sorted(_by_type(rows).items()):
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        for mid, items in sorted(ids.items()):
            y = [int(r["label"]) for r in items]
            s = [float(r["score"]) for r in items]
            if len(set(y)) < 2:
                continue
            fpr, tpr, _ = roc_curve(y, s)
            ax.plot(fpr, tpr, label=f"{unit}_{mid} (AUC {100 * roc_auc_score(y, s):.1f})")
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.axvline(0.1, color="grey", lw=0.8, ls="--")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC, {mtype}")
        if ax.get_legend_handles_labels()[0]:  # IDs with one class have no curve
            ax.legend(loc="lower right", fontsize=8)
        else:
            ax.text(0.5, 0.5, "no ID with both normal and anomalous clips", ha="center", fontsize=8)
        paths.append(_save(fig, folder / f"roc_{mtype}.png"))
    return paths


def histogram_figures(rows: ClipRows, folder: Path, unit: str = "id") -> list[Path]:
    """``scores_<type>.png``: per machine ID, histograms of the anomaly scores of normal and anomalous clips."""
    paths = []
    for mtype, ids in sorted(_by_type(rows).items()):
        fig, axes = plt.subplots(1, len(ids), figsize=(3.2 * len(ids), 3), squeeze=False)
        for ax, (mid, items) in zip(axes[0], sorted(ids.items())):
            scores = np.array([float(r["score"]) for r in items])
            labels = np.array([int(r["label"]) for r in items])
            bins = np.histogram_bin_edges(scores, bins=20)
            ax.hist(scores[labels == 0], bins=bins, alpha=0.6, label="normal")
            ax.hist(scores[labels == 1], bins=bins, alpha=0.6, label="anomaly")
            ax.set(title=f"{mtype} {unit}_{mid}", xlabel="anomaly score")
        axes[0][0].legend(fontsize=8)
        paths.append(_save(fig, folder / f"scores_{mtype}.png"))
    return paths


def timeline_figure(times: np.ndarray, scores: np.ndarray, threshold: float, events: list[tuple[float, float]],
                    path: Path, title: str, frames: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """A monitored recording: the score of each window at its centre, the threshold, the events shaded; with
    ``frames`` (times, scores) the per-frame scores beneath, where a frame-based model has them."""
    fig, axes = plt.subplots(2 if frames else 1, 1, figsize=(9, 5 if frames else 3), sharex=True, squeeze=False)
    ax = axes[0, 0]
    ax.plot(times, scores, lw=1, color="C0", label="window score")
    ax.axhline(threshold, color="C3", lw=0.9, ls="--", label=f"threshold {threshold:.4g}")
    for start, end in events:
        ax.axvspan(start, end, color="C3", alpha=0.15, lw=0)
    ax.set(ylabel="anomaly score", title=title)
    ax.legend(loc="upper right", fontsize=8)
    if frames:
        axes[1, 0].scatter(frames[0], frames[1], s=2, color="C1")
        axes[1, 0].set(ylabel="frame score")
    axes[-1, 0].set(xlabel="time (s)")
    return _save(fig, path)


def _unprojectable(points: np.ndarray) -> str | None:
    """Why t-SNE cannot project these embeddings, or None: non-finite values, or all alike (a collapsed model). Its
    PCA start divides by their variance, and the NaNs that gives crashed t-SNE's compiled code (a segfault that
    took a finished run down with it)."""
    if not np.isfinite(points).all():
        return "some are not finite"
    if float(points.std(axis=0).max()) <= 1e-12 * max(1.0, float(np.abs(points).max())):
        return "they are all alike (a collapsed model)"
    return None


def tsne_figures(embeddings: np.ndarray, rows: ClipRows, folder: Path, seed: int = 0, unit: str = "id",
                 note=lambda message: None) -> list[Path]:
    """``tsne_<type>.png``: t-SNE of the test clips' embeddings of each type (rows aligned with ``embeddings``).
    None for embeddings of one dimension: there is nothing to project, and TSNE's PCA start needs two. A type whose
    embeddings cannot be projected (:func:`_unprojectable`) gets no figure and a ``note``."""
    paths = []
    if embeddings.ndim < 2 or embeddings.shape[1] < 2:
        return paths
    types = np.array([r["machine_type"] for r in rows])
    for mtype in sorted(set(types)):
        mask = types == mtype
        if mask.sum() < 5:
            continue
        problem = _unprojectable(embeddings[mask].astype(np.float64))
        if problem is not None:
            note(f"no t-SNE figure of {mtype}: its test clips' embeddings cannot be projected ({problem})")
            continue
        points = TSNE(2, perplexity=min(30.0, (mask.sum() - 1) / 3), random_state=seed, init="pca").fit_transform(
            embeddings[mask].astype(np.float64))
        subset = [r for r, m in zip(rows, mask) if m]
        fig, ax = plt.subplots(figsize=(5, 4.5))
        for k, mid in enumerate(sorted({r["machine_id"] for r in subset})):
            for label, marker in (("0", "o"), ("1", "x")):
                sel = np.array([r["machine_id"] == mid and r["label"] == label for r in subset])
                if sel.any():
                    ax.scatter(points[sel, 0], points[sel, 1], s=12, marker=marker, color=f"C{k}",
                               label=f"{unit}_{mid} {'normal' if label == '0' else 'anomaly'}")
        ax.set(title=f"t-SNE of embeddings, {mtype} (o normal, x anomaly)", xticks=[], yticks=[])
        ax.legend(fontsize=7, loc="best")
        paths.append(_save(fig, folder / f"tsne_{mtype}.png"))
    return paths


def wanted() -> bool:
    """Whether runs draw their figures: yes unless ``ASDBENCH_FIGURES`` is 0 (or false, no, off), for batches of
    many runs whose figures nobody looks at (a sweep, a test suite); ``asdbench plot`` draws them later."""
    return os.environ.get("ASDBENCH_FIGURES", "1").strip().lower() not in ("0", "false", "no", "off")


def write_figures(folder: Path, clip_scores: Path, embeddings: Path | None, unit: str = "id",
                  note=lambda message: None) -> list[Path]:
    """Every figure of a run's scores; ``unit`` names what ``machine_id`` is: ``id`` (2020) or ``section``; ``note``
    hears of figures left out."""
    rows = read_clip_scores(clip_scores)
    paths = roc_figures(rows, folder, unit) + histogram_figures(rows, folder, unit)
    if embeddings is not None and embeddings.exists():
        data = np.load(embeddings)
        labelled = data["label"] >= 0
        paths += tsne_figures(data["embedding"][labelled], rows, folder, unit=unit, note=note)
    return paths
