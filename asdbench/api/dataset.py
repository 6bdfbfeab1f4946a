"""Dataset contract: a list of labelled clips and a way to read one as a float waveform."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

Split = Literal["train", "test", "supplemental"]  # supplemental: extra clips a release ships (DCASE 2025), never scored


@dataclass(frozen=True)
class Clip:
    """One audio file and what its name says about it.

    ``label`` is 0 (normal) or 1 (anomaly); ``None`` where the file name hides it
    (DCASE evaluation-set test clips), in which case scores are written but no metric.
    From DCASE 2021 on, ``machine_id`` holds the *section* (``"00"``), ``domain`` is
    ``"source"`` or ``"target"`` (``None`` where the name hides it: 2022+ evaluation test
    clips), and ``attributes`` the attribute string of the name (``"car_A2_spd_28V"``;
    ``"noAttribute"`` where the release conceals it; ``""`` without one).
    """

    path: Path
    machine_type: str
    machine_id: str
    split: Split
    label: int | None
    domain: str | None = None
    attributes: str = ""

    @property
    def name(self) -> str:
        return self.path.name


@runtime_checkable
class Dataset(Protocol):
    """What the runner needs from a data set.

    ``clips("train")`` must hold normal clips only; ``clips("test")`` normal and
    anomalous clips. Machine types and IDs are read from the clips themselves.

    Optional: ``evaluation``, the official rule the data set is scored by (``"dcase2020"``, the
    default: per machine ID; ``"dcase2021"``, ``"dcase2022"``: per section and domain, see
    :mod:`asdbench.evaluation.metrics`). It also names the unit: machine IDs in 2020, sections after.
    """

    name: str
    sample_rate: int
    clip_seconds: float

    def clips(self, split: Split) -> list[Clip]: ...

    def load(self, clip: Clip) -> np.ndarray:
        """Return the clip as a 1-D float32 waveform at ``sample_rate``.

        Optionally ``load(clip, max_samples=None)``: with a number, only the start of the clip that gives that many
        samples (or one more) need be returned; runs and ``score`` then ask for no more than the clip length, so a
        long recording is not decoded whole (:func:`asdbench.audio.read_wav` does this for WAV files)."""
        ...

    def describe(self) -> str:
        """One line saying where the data lives and what was found, for the run log."""
        ...
