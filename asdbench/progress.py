"""Progress reporting the runner calls into; rich bars in the CLI, silence in library use."""

from __future__ import annotations

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
