"""Published numbers kept as data (``asdbench/data/*.json``), with their source, for side-by-side tables."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any


@lru_cache(maxsize=None)
def paper_tables() -> dict[str, Any]:
    """The STgram-MFN paper's Tables 2-4, in percent, per machine type and averaged."""
    return json.loads(resources.files("asdbench.data").joinpath("stgram_mfn_paper.json").read_text())


def paper_row(system: str) -> dict[str, dict[str, float | None]] | None:
    """``{type: {"auc": .., "pauc": .., "mauc": ..}, "Average": {...}}`` for a system of the paper, else ``None``."""
    tables = paper_tables()
    data = tables["systems"].get(system)
    if data is None:
        return None
    row = {
        mtype: {k: (data[k][i] if data[k] is not None else None) for k in ("auc", "pauc", "mauc")}
        for i, mtype in enumerate(tables["types"])
    }
    row["Average"] = data["average"]
    return row
