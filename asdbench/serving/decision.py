"""What scoring new recordings reads and yields: the WAV files named, and one decision per file.

Apart from :mod:`asdbench.serving.model` (which imports torch to rebuild the networks), so that ``asdbench score --help``
and scripts that only read decisions do not load it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from asdbench.data.groups import id_name
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


def machine_of(path: Path, owned: Collection[tuple[str, str]], unit: str, machine_type: str | None = None,
               machine_id: str | None = None) -> tuple[str, str]:
    """The machine (of ``owned``, a model's) a recording is of: as given, else read from a DCASE-style path
    (``<type>/test/..._id_II_...``: the ID from the name, ``unit`` naming it; the type from the nearest folder named
    like one of the model's machine types, or the model's only type); a type of one machine needs no ID in the name."""
    types = sorted({t for t, _ in owned})
    if machine_type is None:
        machine_type = next((p.name for p in path.parents if p.name in types), types[0] if len(types) == 1 else None)
    if machine_id is None:
        found = re.search(rf"(?:^|_){unit}_(\d+)(?=[_.])", path.name)
        ids = [i for t, i in owned if t == machine_type]
        if found is None and len(ids) != 1:
            raise AsdbenchError(f"{path}: the file name holds no machine ID (DCASE names hold {unit}_NN); "
                                "pass --machine-id")
        machine_id = found.group(1) if found else ids[0]
    if machine_type is None:
        raise AsdbenchError(f"{path}: no folder on its path names a machine type of this model "
                            f"({', '.join(types)}); pass --machine-type")
    if (machine_type, machine_id) not in owned:
        raise AsdbenchError(f"{path}: this model has no {id_name(machine_type, machine_id, unit)}; it decides for "
                            + ", ".join(id_name(t, i, unit) for t, i in sorted(owned)))
    return machine_type, machine_id


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
