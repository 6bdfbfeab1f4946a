"""The DCASE 2020 Task 2 tree: ``<type>/train/normal_id_II_NNNNNNNN.wav``, ``<type>/test/...``.

One parser serves the real data set and the synthetic generator (which writes the same
names), so both are read by the same code. Names follow the official release:
development test clips carry ``normal_``/``anomaly_`` in their names; evaluation-set
test clips are ``id_II_NNNNNNNN.wav``, with labels only in the ground-truth list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asdbench.api import Clip, Split
from asdbench.audio import CHANNEL_RULES, WavFormat, microphones, read_wav, wav_format
from asdbench.errors import AsdbenchError

LABELLED = re.compile(r"^(normal|anomaly)_id_(\d{2})_(\d{8})\.wav$")
UNLABELLED = re.compile(r"^id_(\d{2})_(\d{8})\.wav$")
SPLITS: tuple[Split, ...] = ("train", "test")
LAYOUT = ("<type>/train/normal_id_II_NNNNNNNN.wav, <type>/test/{normal,anomaly}_id_II_NNNNNNNN.wav "
          "or id_II_NNNNNNNN.wav")


def clip_name(label: int, machine_id: str, index: int) -> str:
    return f"{'anomaly' if label else 'normal'}_id_{machine_id}_{index:08d}.wav"


def parse_clip(path: Path, machine_type: str, split: Split) -> Clip | None:
    """The clip a file name describes, or ``None`` if the name is not in the official layout."""
    m = LABELLED.match(path.name)
    if m:
        label = 1 if m.group(1) == "anomaly" else 0
        if split == "train" and label:
            return None  # training data is normal only
        return Clip(path, machine_type, m.group(2), split, label)
    m = UNLABELLED.match(path.name)
    if m and split == "test":
        return Clip(path, machine_type, m.group(1), split, None)
    return None


@dataclass
class Scan:
    """What a walk of one tree found: clips per split, and files that do not fit the layout."""

    clips: dict[str, list[Clip]] = field(default_factory=lambda: {s: [] for s in SPLITS})
    misfits: list[Path] = field(default_factory=list)

    def extend(self, other: Scan) -> None:
        for split in SPLITS:
            self.clips[split] += other.clips[split]
        self.misfits += other.misfits


def scan_tree(root: Path) -> Scan:
    """Read machine types from ``root/<type>/{train,test}`` and IDs and labels from file names."""
    if not root.is_dir():
        raise AsdbenchError(f"dataset folder {root} does not exist or is not a folder (expected the DCASE 2020 layout: "
                            f"{LAYOUT})")
    scan = Scan()
    for type_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for split in SPLITS:
            split_dir = type_dir / split
            if not split_dir.is_dir():
                continue
            for path in sorted(split_dir.iterdir()):
                if path.name.startswith("."):
                    continue
                clip = parse_clip(path, type_dir.name, split) if path.suffix.lower() == ".wav" else None
                if clip is None:
                    scan.misfits.append(path)
                else:
                    scan.clips[split].append(clip)
    return scan


def misfit_error(misfits: list[Path]) -> AsdbenchError:
    more = f" (and {len(misfits) - 1} more; `asdbench data check` lists them)" if len(misfits) > 1 else ""
    return AsdbenchError(
        f"{misfits[0]} does not follow the DCASE 2020 layout ({LAYOUT}){more}"
    )


class LayoutDataset:
    """Clips of DCASE-2020-layout trees, read as 16 kHz mono float32 (the official format).

    Files in other formats are converted as declared: another sample rate is resampled to 16 kHz,
    several channels give the first (``channel="first"``, as DCASE 2020 did), the second (``"second"``), their mean
    (``"mean"``) or the first two as a ``(2, samples)`` array (``"both"``: DCASE 2026's near and far microphones as
    data), 24-bit and float samples keep their precision. :meth:`check` reads each header
    before a run, so a bad file stops it before training.
    """

    name = "dcase-layout"
    sample_rate = 16_000

    def __init__(self, root: Path, clips: dict[str, list[Clip]], clip_seconds: float, channel: str = "first") -> None:
        if channel not in CHANNEL_RULES:
            raise AsdbenchError(f"dataset.channel={channel!r} is not one of: {', '.join(CHANNEL_RULES)}")
        self.root = root
        self.clip_seconds = clip_seconds
        self.channel = channel
        self.microphones = microphones(channel)  # channel=both: load gives (2, samples)
        self._clips = clips
        if not clips["train"]:
            raise AsdbenchError(f"no training clips (<type>/train/normal_id_II_NNNNNNNN.wav) under {root}")

    def clips(self, split: Split) -> list[Clip]:
        return list(self._clips[split])

    def load(self, clip: Clip, max_samples: int | None = None) -> np.ndarray:
        return read_wav(clip.path, self.sample_rate, self.channel, max_samples)

    def check(self, clip: Clip) -> WavFormat:
        return wav_format(clip.path)

    def describe(self) -> str:
        return f"{self.name} at {self.root}: {len(self._clips['train'])} train, {len(self._clips['test'])} test clips"
