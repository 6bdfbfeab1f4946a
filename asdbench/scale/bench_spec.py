"""What ``asdbench bench`` measures: the variants of the training step and the sizes of a measurement.

Plain data, apart from :mod:`asdbench.scale.bench` (which imports torch), so that the command's options and help can
show the defaults without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {"precision": "fp32", "channels_last": False, "compile": False, "cache": False},
    "eager": {"compile": False},
    "compiled": {"compile": True},
}


@dataclass(frozen=True)
class BenchSpec:
    clips: int = 128
    test_clips: int = 32
    seconds: float = 10.0
    batch_size: int | None = None  # None: 16 clips on CPU, 128 on GPU; frame-trained systems keep their own
    epochs: int | None = None  # end-to-end epochs, the first (warm-up, compilation) not timed; None: enough
    e2e_seconds: float = 10.0  # for the timed epochs to take about this long (at least 2 of them)
    steps: int = 5  # model-only timings: at least this many calls...
    min_seconds: float = 2.0  # ...and at least this long
    warmup: int = 2
    device: str = "auto"
    overrides: dict[str, Any] = field(default_factory=dict)
    paper_clips: int = 40_000
    paper_epochs: int = 200
