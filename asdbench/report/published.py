"""Published numbers kept as data (``asdbench/report/*.json``), with their source, for side-by-side tables."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

SOURCES = {"paper": "stgram_mfn_paper.json", "newer": "newer_methods.json"}


@lru_cache(maxsize=None)
def tables(source: str = "paper") -> dict[str, Any]:
    """Published rows in percent, per machine type and averaged: ``paper``, the STgram-MFN paper's Tables 2-4;
    ``newer``, Noisy-ArcMix and OS-SCL (whose AUC and pAUC are pooled per type: ``metrics`` maps them)."""
    return json.loads(resources.files("asdbench.report").joinpath(SOURCES[source]).read_text())


def paper_tables() -> dict[str, Any]:
    return tables("paper")


def paper_row(system: str, source: str = "paper") -> dict[str, dict[str, float | None]] | None:
    """``{type: {"auc": .., "pauc": .., "mauc": ..}, "Average": {...}}`` for a published system, else ``None``."""
    data_set = tables(source)
    data = data_set["systems"].get(system)
    if data is None:
        return None
    row = {
        mtype: {k: (data[k][i] if data[k] is not None else None) for k in ("auc", "pauc", "mauc")}
        for i, mtype in enumerate(data_set["types"])
    }
    row["Average"] = data["average"]
    return row
