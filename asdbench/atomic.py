"""Files written whole or not at all: a result file is renamed into place only once complete, so an
interrupted or failing write never leaves half a file where a reader expects a whole one."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from asdbench.errors import AsdbenchError


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it; a one-line error if the folder refuses."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")  # one writer per process; the umask applies
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):  # the folder may be what failed
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise AsdbenchError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
