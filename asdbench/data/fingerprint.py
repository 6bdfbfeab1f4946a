"""What identifies a component's behaviour (cache keys: its name, resolved parameters and code) and the data a run read.

A cache entry is only as trustworthy as its key. Keys built from a component's name alone
serve stale data after an edit of the component or a change of its parameters; hashing the
source of the modules that define its class (and its bases) makes such a change a new entry.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import sys
from typing import Any

from asdbench.api import Clip


def code_fingerprint(component: object, name: str, params: dict[str, Any], *extra: object) -> str:
    """A short hash of ``name``, ``params``, ``extra`` values and the source of ``component``'s class hierarchy
    (modules of torch and the standard library left out: their versions go into ``extra`` where they matter)."""
    h = hashlib.sha256(json.dumps([name, params, *extra], sort_keys=True, default=repr).encode())
    for cls in type(component).__mro__:
        module = sys.modules.get(cls.__module__)
        if module is None or cls.__module__.split(".")[0] in ("torch", "builtins", "typing", "abc"):
            continue
        h.update(cls.__qualname__.encode())
        try:
            h.update(inspect.getsource(module).encode())
        except (OSError, TypeError):  # a class defined where no source is kept (an interactive session)
            h.update(cls.__module__.encode())
    return h.hexdigest()[:24]


# The bytes of a file the data fingerprint reads: its first, middle and last block. The first holds the WAV header
# and the first samples, so a file replaced by another recording of the same format and size differs there.
CONTENT_BLOCK = 4096


def content_digest(path: os.PathLike) -> str:
    """A hash of a file's size and three blocks of its bytes: cheap enough for every file of every run (three reads
    of 4 KiB), unlike a full hash of 50 GB of data sets; ``missing`` for a file that is not there."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            h = hashlib.blake2b(str(size).encode(), digest_size=12)
            for offset in sorted({0, max(0, (size - CONTENT_BLOCK) // 2), max(0, size - CONTENT_BLOCK)}):
                fh.seek(offset)
                h.update(fh.read(CONTENT_BLOCK))
    except OSError:
        return "missing"
    return h.hexdigest()


def data_fingerprint(dataset_name: str, train: list[Clip], test: list[Clip]) -> str:
    """A hash of the dataset's name and every clip a run uses (split, path under the data set's folder, type, ID,
    label, and the file's :func:`content_digest`): the same files in another folder match, whatever their
    modification times; another protocol, subset or size does not, nor a recording replaced by another of the
    same size."""
    clips = [*train, *test]
    base = os.path.commonpath([str(c.path.parent) for c in clips]) if clips else ""
    h = hashlib.sha256(dataset_name.encode())
    for c in sorted(clips, key=lambda c: (c.split, str(c.path))):
        h.update(f"{c.split}\0{os.path.relpath(c.path, base)}\0{c.machine_type}\0{c.machine_id}\0{c.label}\0"
                 f"{content_digest(c.path)}\n".encode())
    return h.hexdigest()[:16]
