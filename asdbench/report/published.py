"""Published numbers kept as data (``asdbench/report/*.json``), with their source, for side-by-side tables."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

# A source is one or more files, each of one data set and protocol (its label_note says which).
SOURCES = {"paper": ("stgram_mfn_paper.json",), "newer": ("newer_methods.json", "encoder_methods.json")}


@lru_cache(maxsize=None)
def data_sets(source: str) -> tuple[dict[str, Any], ...]:
    """Every file of ``source``, each one data set's published rows in percent, per machine type and averaged:
    ``paper``, the STgram-MFN paper's Tables 2-4; ``newer``, Noisy-ArcMix and OS-SCL (whose AUC and pAUC are pooled
    per type: ``metrics`` maps them), and GenRep and BEATs + LoRA (the DCASE 2023 evaluation set's official score
    only)."""
    return tuple(json.loads(resources.files("asdbench.report").joinpath(name).read_text()) for name in SOURCES[source])


def paper_row(system: str, source: str = "paper") -> dict[str, dict[str, float | None]] | None:
    """``{type: {"auc": .., "pauc": .., "mauc": ..}, "Average": {...}}`` for a published system, else ``None``."""
    data_set = next((d for d in data_sets(source) if system in d["systems"]), None)
    return None if data_set is None else row_of(data_set, system)


def row_of(data_set: dict[str, Any], system: str) -> dict[str, dict[str, float | None]]:
    """:func:`paper_row` of a system of ``data_set``."""
    data = data_set["systems"][system]
    row = {
        mtype: {k: (data[k][i] if data.get(k) is not None else None) for k in ("auc", "pauc", "mauc")}
        for i, mtype in enumerate(data_set["types"])
    }
    row["Average"] = data["average"]
    return row
