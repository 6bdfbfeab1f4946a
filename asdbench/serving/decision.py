"""What scoring new recordings reads and yields: the WAV files named, and one decision per file.

Apart from :mod:`asdbench.serving.model` (which imports torch to rebuild the networks), so that ``asdbench score --help``
and scripts that only read decisions do not load it.
"""

from __future__ import annotations

from collections.abc import Iterable
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


def wav_files(files: Iterable[str | Path]) -> list[Path]:
    """The WAV files named, folders expanded to every ``*.wav`` below them in sorted order; a name that does not
    exist, or a folder without WAV files, is an error."""
    paths: list[Path] = []
    for item in files:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())
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
