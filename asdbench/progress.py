"""Progress reporting the runner calls into; rich bars in the CLI, silence in library use."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class Step(Protocol):
    def advance(self, n: int = 1, **fields: str) -> None: ...


class Reporter:
    """Silent reporter: the base for library use and tests."""

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Step]:
        yield _NullStep()

    def info(self, message: str) -> None:
        pass


class _NullStep:
    def advance(self, n: int = 1, **fields: str) -> None:
        pass


class RichReporter(Reporter):
    """Rich progress bars and messages on ``console`` (stderr in the CLI)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Step]:
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
        )
        with Progress(*columns, console=self.console, transient=False) as progress:
            task_id = progress.add_task(description, total=total, status="")

            class _Step:
                def advance(self, n: int = 1, **fields: str) -> None:
                    progress.update(task_id, advance=n, status=fields.get("status", ""))

            yield _Step()

    def info(self, message: str) -> None:
        self.console.print(message, soft_wrap=True, highlight=False)


class PlainReporter(Reporter):
    """One plain line per phase and per epoch, for logs of batch jobs (output that is not a terminal): a phase says
    when it ends, with its items and seconds; a training task says each epoch with its status (loss, accuracy,
    seconds, clips/s), as the runner gives it."""

    def __init__(self, console: Console) -> None:
        self.console = console

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Step]:
        start = time.perf_counter()
        state = {"done": 0}
        console = self.console

        class _Step:
            def advance(self, n: int = 1, **fields: str) -> None:
                state["done"] += n
                if fields.get("status"):
                    console.print(f"{description}: {state['done']}/{total} {fields['status']}", highlight=False,
                                  soft_wrap=True)

        yield _Step()
        seconds = time.perf_counter() - start
        items = f"{state['done']}/{total}" if total else f"{state['done']}"
        console.print(f"{description}: done, {items} in {seconds:.1f} s", highlight=False, soft_wrap=True)

    def info(self, message: str) -> None:
        self.console.print(message, soft_wrap=True, highlight=False)


def reporter_for(console: Console, quiet: bool = False) -> Reporter:
    """Rich bars on a terminal; plain lines when the output goes to a file or a pipe; nothing with ``quiet``."""
    if quiet:
        return Reporter()
    return RichReporter(console) if console.is_terminal else PlainReporter(console)
