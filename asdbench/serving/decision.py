"""What scoring new recordings reads and yields: the WAV files named, and one decision per file.

Apart from :mod:`asdbench.serving.model` (which imports torch to rebuild the networks), so that ``asdbench score --help``
and scripts that only read decisions do not load it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from asdbench.errors import AsdbenchError

DEFAULT_BATCH = 64  # the batch a run scores its test clips in


@dataclass(frozen=True)
class Decision:
    """One scored recording: its anomaly score, the threshold of its machine ID, and the decision."""

    path: Path
    machine_type: str
    machine_id: str
    score: float
    threshold: float

    @property
    def anomalous(self) -> bool:
        """As the DCASE baselines decide: anomalous when the score exceeds the threshold."""
        return self.score > self.threshold


@dataclass(frozen=True)
class Scored:
    """The decisions on the files that could be scored, and the files left out with the reason of each."""

    decisions: list[Decision]
    skipped: list[tuple[Path, str]]


def _wavs_below(folder: Path, on_outside: Callable[[Path], None]) -> list[Path]:
    """Every ``*.wav`` below ``folder``, sorted; links that lead out of it (a file or a folder elsewhere) are not
    followed but passed to ``on_outside``: scoring a folder scores what is in it."""
    root = folder.resolve()
    found = []
    for parent, dirs, names in os.walk(folder, followlinks=False):
        for name in dirs:
            link = Path(parent, name)
            if link.is_symlink() and not link.resolve().is_relative_to(root):
                on_outside(link)
        for name in names:
            path = Path(parent, name)
            if path.suffix.lower() != ".wav":
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                on_outside(path)
            elif path.is_file():
                found.append(path)
    return sorted(found)


def wav_files(files: Iterable[str | Path], on_outside: Callable[[Path], None] = lambda path: None) -> list[Path]:
    """The WAV files named, folders expanded to every ``*.wav`` below them in sorted order (links out of a folder
    not followed, see :func:`_wavs_below`); a name that does not exist, or a folder without WAV files, is an error."""
    paths: list[Path] = []
    for item in files:
        path = Path(item).expanduser()
        if path.is_dir():
            found = _wavs_below(path, on_outside)
            if not found:
                raise AsdbenchError(f"{path}: no .wav files in this folder")
            paths += found
        elif path.is_file():
            paths.append(path)
        else:
            raise AsdbenchError(f"{path}: no such file or folder")
    if not paths:
        raise AsdbenchError("no files to score")
    return paths
