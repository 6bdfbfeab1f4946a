"""No processes left behind by a sweep driver that is killed outright.

Ray ties most of a local instance's processes to the driver that started it, but not all: after a
``kill -9`` of ``asdbench sweep`` its dashboard and runtime-env agents (children of the raylet)
lived on, holding ports and memory, until the machine restarted. A small watcher process, started
before Ray, remembers every descendant of the driver while the driver lives; once the driver is
gone it ends those still running (SIGTERM, then SIGKILL). Each is remembered with its start time,
so a process id the system has since given to another program is never signalled.

Linux only (it reads ``/proc``); elsewhere :func:`watch` starts nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PROC = Path("/proc")
POLL_S = 0.5
GRACE_S = 3.0


def _stat(pid: int) -> tuple[int, int] | None:
    """``(parent pid, start time)`` of a process, None when it is gone (or a zombie: ended, not yet reaped)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after the command name, which may hold spaces
    return None if fields[0] == "Z" else (int(fields[1]), int(fields[19]))


def descendants(pid: int) -> dict[int, int]:
    """Every process below ``pid`` now: pid -> start time."""
    children: dict[int, list[int]] = {}
    started: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found is not None:
                children.setdefault(found[0], []).append(int(entry.name))
                started[int(entry.name)] = found[1]
    out: dict[int, int] = {}
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        if child in started and child not in out:
            out[child] = started[child]
            todo += children.get(child, [])
    return out


def _alive(pid: int, start: int) -> bool:
    found = _stat(pid)
    return found is not None and found[1] == start


def _end(processes: dict[int, int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, start in processes.items():
            if _alive(pid, start):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline and any(_alive(p, s) for p, s in processes.items()):
            time.sleep(0.1)


def _watch(driver: int) -> None:
    start = _stat(driver)
    if start is None:
        return
    seen: dict[int, int] = {}
    while _alive(driver, start[1]):
        seen.update(descendants(driver))
        seen.pop(os.getpid(), None)  # the watcher is the driver's child too
        time.sleep(POLL_S)
    _end(seen)


def watch() -> subprocess.Popen | None:
    """Start the watcher of this process (in a session of its own: a Ctrl-C to the terminal does not reach it);
    the caller terminates it once it has shut down what it started."""
    if not PROC.is_dir():
        return None
    return subprocess.Popen([sys.executable, "-m", "asdbench.scale.orphans", str(os.getpid())],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


if __name__ == "__main__":
    _watch(int(sys.argv[1]))
