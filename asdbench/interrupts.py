"""Ctrl-C and SIGTERM as KeyboardInterrupt, held back while a write (a store record, a checkpoint) completes."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_held = 0  # depth of uninterrupted() blocks on the main thread
_deferred: list[int] = []  # a signal that arrived inside one, raised when it ends


class SignalInterrupt(KeyboardInterrupt):
    """The interrupt a signal raised, with its number: a command exits 128 + it (130 for Ctrl-C, 143 for SIGTERM),
    as a shell reports a process the signal ended."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


@contextmanager
def uninterrupted() -> Iterator[None]:
    """A write that Ctrl-C or SIGTERM does not cut in half: the interrupt is raised when the write is done.

    A KeyboardInterrupt inside MLflow's SQLite write skips its rollback (it catches ``Exception``) and leaves the
    write transaction open, so the run could not even be marked KILLED afterwards ("database is locked"); inside
    ``torch.save`` it makes the zip writer fail on exit with a RuntimeError that hides the interrupt."""
    global _held
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if not _held and _deferred:
            raise SignalInterrupt(_deferred.pop())


@contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """Ctrl-C and a ``kill`` (SIGTERM, as schedulers and CI send) end the run as KILLED, not left RUNNING; one that
    arrives during a store write is raised when the write is done (:func:`uninterrupted`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        if _held:
            _deferred[:] = [signum]
            return
        raise SignalInterrupt(signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _deferred.clear()
