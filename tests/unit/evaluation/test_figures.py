"""Figures never take a finished run down: embeddings t-SNE cannot project are left out with a note, and a figure
step that crashes ends its own process, not the run."""

from __future__ import annotations

import numpy as np
import pytest

from asdbench.evaluation import artifacts, figures
from support import crashing_draw


def _rows(n: int) -> list[dict[str, str]]:
    return [{"machine_type": "fan", "machine_id": f"0{i % 2}", "label": "1" if i % 3 == 0 else "0", "score": "0.5", "file": f"{i}.wav"}
            for i in range(n)]


@pytest.mark.parametrize("embeddings, why", [
    (np.ones((12, 8)), "they are all alike (a collapsed model)"),
    (np.where(np.arange(96).reshape(12, 8) == 5, np.nan, np.arange(96.0).reshape(12, 8)), "some are not finite"),
])
def test_embeddings_tsne_cannot_project_get_a_note_not_a_crash(embeddings, why, tmp_path):
    notes: list[str] = []
    assert figures.tsne_figures(embeddings, _rows(12), tmp_path, note=notes.append) == []
    assert notes == [f"no t-SNE figure of fan: its test clips' embeddings cannot be projected ({why})"]
    varied = np.random.default_rng(0).normal(size=(12, 8))
    assert [p.name for p in figures.tsne_figures(varied, _rows(12), tmp_path, note=notes.append)] == ["tsne_fan.png"]
    assert len(notes) == 1


def test_a_figure_step_that_crashes_leaves_a_note_and_nothing_half_drawn(tmp_path, monkeypatch):
    monkeypatch.setenv("ASDBENCH_FIGURES", "1")
    (tmp_path / "metrics.json").write_text("{}")  # a labelled result: its figures are wanted
    logged, notes = [], []
    artifacts.draw_figures(tmp_path, "dcase2020", logged.append, notes.append, draw=crashing_draw)
    assert logged == [] and len(notes) == 1
    assert notes[0].startswith("the figures were not drawn: the drawing process died (a crash in compiled code)")
