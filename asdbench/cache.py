"""Where asdbench keeps generated data and caches: ``$ASDBENCH_CACHE``, else the XDG cache folder."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    explicit = os.environ.get("ASDBENCH_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "asdbench"


def checkpoint_dir(run_id: str) -> Path:
    """Where a run keeps its training checkpoints until it finishes (``asdbench run --resume`` reads them)."""
    return cache_dir() / "runs" / run_id / "checkpoints"
