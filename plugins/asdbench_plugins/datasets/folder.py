"""``folder``: your own recordings, in folders named for what they hold, without reshaping them into a DCASE layout.

    site/train/*.wav                       normal recordings of one machine (named for the folder, or --set
                                           dataset.machine=NAME), or
    site/train/<machine>/*.wav             one sub-folder per machine;
    site/test/normal/*.wav, test/anomaly/*.wav    optional labelled test recordings ("abnormal" is read as
                                           "anomaly"), or test/*.wav unlabelled (scored, no metric); with machine
                                           sub-folders: test/<machine>/normal/, test/<machine>/anomaly/, test/<machine>/

Any WAV sample rate and channel count is read as the declared ``sample_rate`` (resampled) and ``channel`` rule.
Recordings of any length become clips by a declared rule: ``long_files=first`` (each file's first ``clip_seconds``,
as DCASE cuts its clips) or ``long_files=windows`` (each file cut into clips of ``clip_seconds`` every
``hop_seconds``: an hour of normal running is an hour of training data). A shorter file is one clip, padded by the
run's ``pad`` rule. Each machine is a machine type with the one ID ``00``: ``model_per=type`` trains a model per
machine, ``all`` one model that tells them apart (the classification systems' way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asdbench import hookimpl
from asdbench.api import Clip, Split
from asdbench.audio import CHANNEL_RULES, WavFormat, microphones, read_wav, wav_format
from asdbench.errors import AsdbenchError

MACHINE_ID = "00"
LABELS = {"normal": 0, "anomaly": 1, "abnormal": 1}
LONG_FILE_RULES = ("first", "windows")
LAYOUT = "train/*.wav or train/<machine>/*.wav; optional test/{normal,anomaly}/*.wav (per machine: test/<machine>/...)"


@dataclass(frozen=True)
class Excerpt(Clip):
    """A clip cut from a longer recording at ``start`` seconds: named ``<file stem>@<start>s.wav`` in results, so the
    clips of one file stay apart."""

    start: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.path.stem}@{self.start:g}s{self.path.suffix}"


def _wavs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".wav" and not p.name.startswith("."))


def _folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


class FolderDataset:
    """Your own recordings: train/ (normal; per machine, or one machine), optional test/ (normal/, anomaly/)."""

    name = "folder"
    evaluation = "dcase2020"

    def __init__(self, root: str = "", sample_rate: int = 16_000, clip_seconds: float = 10.0,
                 long_files: str = "first", hop_seconds: float = 0.0, channel: str = "first",
                 machine: str = "") -> None:
        if not root:
            raise AsdbenchError(f"folder needs --root DIR holding your recordings ({LAYOUT})")
        if long_files not in LONG_FILE_RULES:
            raise AsdbenchError(f"dataset.long_files={long_files!r} is not one of: {', '.join(LONG_FILE_RULES)}")
        if channel not in CHANNEL_RULES:
            raise AsdbenchError(f"dataset.channel={channel!r} is not one of: {', '.join(CHANNEL_RULES)}")
        if clip_seconds <= 0 or hop_seconds < 0 or sample_rate <= 0:
            raise AsdbenchError("dataset.clip_seconds and dataset.sample_rate must be positive, dataset.hop_seconds "
                                "zero (= clip_seconds) or positive")
        self.root = Path(root).expanduser()
        self.sample_rate, self.clip_seconds, self.channel = int(sample_rate), float(clip_seconds), channel
        self.long_files, self.hop_seconds = long_files, float(hop_seconds) or float(clip_seconds)
        self.microphones = microphones(channel)
        train = self.root / "train"
        if not train.is_dir():
            raise AsdbenchError(f"{self.root} has no train/ folder of normal recordings ({LAYOUT})")
        machines = _folders(train)
        direct = _wavs(train)
        if direct and machines:
            raise AsdbenchError(f"{train} holds both WAV files and sub-folders ({machines[0].name}/): put the files "
                                "of each machine in its own sub-folder, or keep one machine's files directly in train/")
        self._files: dict[Split, list[Clip]] = {"train": [], "test": []}
        if direct:
            name = machine or self.root.resolve().name
            self._add(direct, name, "train", None)
            self._add_test(self.root / "test", name, top=True)
        else:
            for folder in machines:
                self._add(_wavs(folder), folder.name, "train", None)
                self._add_test(self.root / "test" / folder.name, folder.name, top=False)
            strays = [p for p in _folders(self.root / "test") if p.name not in {m.name for m in machines}] if (
                self.root / "test").is_dir() else []
            if strays:
                raise AsdbenchError(f"{strays[0]}: no machine of that name in train/ ({', '.join(m.name for m in machines)})")
        if not self._files["train"]:
            raise AsdbenchError(f"{train}: no .wav files ({LAYOUT})")
        self._clips = {split: [c for f in files for c in self._cut(f)] for split, files in self._files.items()}

    def _add(self, paths: list[Path], machine: str, split: Split, label: int | None) -> None:
        self._files[split] += [Clip(p, machine, MACHINE_ID, split, label) for p in paths]

    def _add_test(self, folder: Path, machine: str, top: bool) -> None:
        if not folder.is_dir():
            return
        self._add(_wavs(folder), machine, "test", None)
        for sub in _folders(folder):
            if sub.name.lower() in LABELS:
                self._add(_wavs(sub), machine, "test", LABELS[sub.name.lower()])
            elif not top:
                raise AsdbenchError(f"{sub}: test folders of a machine are normal/ and anomaly/ ({LAYOUT})")

    def _cut(self, clip: Clip) -> list[Clip]:
        """``long_files=windows``: a clip per window of a file (its length from the header); else the file."""
        if self.long_files == "first":
            return [clip]
        header = wav_format(clip.path, scan=False)
        seconds = header.frames / header.sample_rate
        count = max(1, math.floor((seconds - self.clip_seconds) / self.hop_seconds + 1e-9) + 1)
        return [Excerpt(clip.path, clip.machine_type, clip.machine_id, clip.split, clip.label,
                        start=round(i * self.hop_seconds, 6)) for i in range(count)]

    @staticmethod
    def recognises(root: Path) -> bool:
        """A ``train/`` folder with WAV files in it or in its sub-folders (``asdbench run --root DIR``)."""
        train = root / "train"
        return train.is_dir() and (bool(_wavs(train)) or any(_wavs(f) for f in _folders(train)))

    def clips(self, split: Split) -> list[Clip]:
        return list(self._clips.get(split, []))

    def load(self, clip: Clip, max_samples: int | None = None) -> np.ndarray:
        """The clip's samples at ``sample_rate`` by the ``channel`` rule, from ``start`` for an excerpt (no more than
        a clip of it: the rest of the file is other clips), else from the file's start."""
        if isinstance(clip, Excerpt):
            wanted = round(self.clip_seconds * self.sample_rate)
            return read_wav(clip.path, self.sample_rate, self.channel, min(max_samples or wanted, wanted), clip.start)
        return read_wav(clip.path, self.sample_rate, self.channel, max_samples)

    def check(self, clip: Clip) -> WavFormat:
        return wav_format(clip.path)

    def describe(self) -> str:
        machines = sorted({c.machine_type for c in self._clips["train"]})
        cut = (f"cut into {self.clip_seconds:g} s clips every {self.hop_seconds:g} s" if self.long_files == "windows"
               else f"the first {self.clip_seconds:g} s of each file")
        return (f"folder at {self.root}: {len(machines)} machines ({', '.join(machines)}), "
                f"{len(self._files['train'])} training files ({len(self._clips['train'])} clips), "
                f"{len(self._files['test'])} test files ({len(self._clips['test'])} clips); {cut}")


@hookimpl
def register_datasets(register):
    register("folder", FolderDataset)

