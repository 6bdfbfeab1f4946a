"""Published numbers kept as data (``asdbench/report/*.json``), with their source, for side-by-side tables."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

# A source is one or more files, each of one data set and protocol (its label_note says which).
SOURCES = {"paper": ("stgram_mfn_paper.json",), "newer": ("newer_methods.json", "encoder_methods.json")}


@lru_cache(maxsize=None)
def tables(source: str = "paper") -> dict[str, Any]:
    """Published rows in percent, per machine type and averaged: ``paper``, the STgram-MFN paper's Tables 2-4;
    ``newer``, Noisy-ArcMix and OS-SCL (whose AUC and pAUC are pooled per type: ``metrics`` maps them), and GenRep
    and BEATs + LoRA (the DCASE 2023 evaluation set's official score only)."""
    return json.loads(resources.files("asdbench.report").joinpath(SOURCES[source][0]).read_text())


@lru_cache(maxsize=None)
def data_sets(source: str) -> tuple[dict[str, Any], ...]:
    """Every file of ``source``, each a data set's published rows."""
    return tuple(json.loads(resources.files("asdbench.report").joinpath(name).read_text()) for name in SOURCES[source])


def paper_tables() -> dict[str, Any]:
    return tables("paper")


def paper_row(system: str, source: str = "paper") -> dict[str, dict[str, float | None]] | None:
    """``{type: {"auc": .., "pauc": .., "mauc": ..}, "Average": {...}}`` for a published system, else ``None``."""
    data_set = next((d for d in data_sets(source) if system in d["systems"]), None)
    if data_set is None:
        return None
    data = data_set["systems"][system]
    row = {
        mtype: {k: (data[k][i] if data.get(k) is not None else None) for k in ("auc", "pauc", "mauc")}
        for i, mtype in enumerate(data_set["types"])
    }
    row["Average"] = data["average"]
    return row
