"""Dataset contract: a list of labelled clips and a way to read one as a float waveform."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

Split = Literal["train", "test"]


@dataclass(frozen=True)
class Clip:
    """One audio file and what its name says about it.

    ``label`` is 0 (normal) or 1 (anomaly); ``None`` where the file name hides it
    (DCASE evaluation-set test clips), in which case scores are written but no metric.
    """

    path: Path
    machine_type: str
    machine_id: str
    split: Split
    label: int | None

    @property
    def name(self) -> str:
        return self.path.name


@runtime_checkable
class Dataset(Protocol):
    """What the runner needs from a data set.

    ``clips("train")`` must hold normal clips only; ``clips("test")`` normal and
    anomalous clips. Machine types and IDs are read from the clips themselves.
    """

    name: str
    sample_rate: int
    clip_seconds: float

    def clips(self, split: Split) -> list[Clip]: ...

    def load(self, clip: Clip) -> np.ndarray:
        """Return the clip as a 1-D float32 waveform at ``sample_rate``."""
        ...

    def describe(self) -> str:
        """One line saying where the data lives and what was found, for the run log."""
        ...
