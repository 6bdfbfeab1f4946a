"""``asdbench plot``: a logged run's figures (ROC, score histograms, t-SNE), written where the user asks."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from asdbench.cli.output import console, err_console
from asdbench.errors import AsdbenchError


@click.command("plot")
@click.argument("run_id")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("figures"), show_default=True)
@click.option("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
def plot_command(run_id: str, out: Path, tracking_uri: str | None) -> None:
    """Draw RUN_ID's ROC curves and score histograms per machine type, and t-SNE of its embeddings."""
    from asdbench.evaluation import figures
    from asdbench.tracking.store import Store  # matplotlib and MLflow load here: `plot --help` does not wait for them

    store = Store(tracking_uri, create=False)
    with tempfile.TemporaryDirectory() as tmp:
        sections = any("/section_" in key for key in store.run(run_id).data.metrics)
        scores = store.download(run_id, "clip_scores.csv", tmp, f"run {run_id} has no clip_scores.csv in {store.uri}")
        names = {a.path for a in store.client.list_artifacts(run_id)}
        embeddings = store.download(run_id, "embeddings.npz", tmp, "") if "embeddings.npz" in names else None
        paths = figures.write_figures(out, scores, embeddings, "section" if sections else "id",
                                      lambda message: err_console.print(f"[yellow]Note:[/yellow] {message}", highlight=False))
    if not paths:
        raise AsdbenchError(f"run {run_id} has no labelled test clips to draw")
    for path in paths:
        console.print(str(path), highlight=False)
