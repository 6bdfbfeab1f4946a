"""Arrays cached on disk as memory maps: the store behind the wave and feature caches.

An entry is a folder named by its key. It is written under a temporary name and renamed
into place once complete, so an interrupted write never leaves an entry that looks whole,
and two processes filling the same entry do not corrupt it. Reading is lazy
(``np.memmap``, copy-on-write), so an array larger than memory streams from disk.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from asdbench.errors import AsdbenchError

ARRAY = "array.bin"
COMPLETE = "complete"  # written last: its presence marks a whole entry
ABOUT = "about.json"  # what an entry holds, for `asdbench cache info`: {"dataset": name}


def write_about(entry: Path, dataset: str) -> None:
    (entry / ABOUT).write_text(json.dumps({"dataset": dataset}) + "\n")


def dataset_of(entry: Path) -> str:
    """The data set an entry was made for ("unknown" for entries written before entries said so)."""
    try:
        return str(json.loads((entry / ABOUT).read_text())["dataset"])
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown"


def _open(folder: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    rows = max(shape[0], 1)  # np.memmap cannot map zero bytes
    return np.memmap(folder / ARRAY, dtype=dtype, mode="c", shape=(rows, *shape[1:]))[: shape[0]]


def _allocate(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """A zeroed array file, its blocks reserved on disk before it is mapped: a full disk (or a file-size limit)
    is an ``OSError`` here, not a SIGBUS when a page of a sparse map is first written."""
    shape = (max(shape[0], 1), *shape[1:])
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    with open(path, "wb") as fh:
        os.posix_fallocate(fh.fileno(), 0, nbytes)
    return np.memmap(path, dtype=dtype, mode="r+", shape=shape)


def load_or_fill(folder: Path, dtype: np.dtype, shape: tuple[int, ...],
                 fill: Callable[[np.ndarray, Path], None]) -> np.ndarray:
    """The cached array in ``folder``; when it is missing, ``fill(array, entry_folder)`` writes it first
    (into a zeroed array of ``shape``; side files it needs go into ``entry_folder``). A cache that cannot be
    written (a full disk, a read-only folder) is an :class:`AsdbenchError` naming it, and leaves no entry."""
    if (folder / COMPLETE).exists():
        return _open(folder, dtype, shape)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    except OSError as exc:
        raise _unwritable(folder, exc) from None
    try:
        try:
            array = _allocate(tmp / ARRAY, dtype, shape)
        except OSError as exc:
            raise _unwritable(folder, exc) from None
        try:
            fill(array[: shape[0]], tmp)
            array.flush()
            del array
            (tmp / COMPLETE).touch()
        except OSError as exc:
            raise _unwritable(folder, exc) from None
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished the same entry first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _open(folder, dtype, shape)


def _unwritable(folder: Path, exc: OSError) -> AsdbenchError:
    return AsdbenchError(f"cannot write the cache entry {folder}: {exc.strerror or exc}; free space there, point "
                         "ASDBENCH_CACHE at another disk, or run with --set cache=false")
