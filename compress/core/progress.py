"""Progress for long steps (training epochs, evaluation, latency rounds).

In a terminal: a live rich progress bar. Elsewhere (CI logs, ``make demo > log``) rich draws nothing
until a bar ends, so a plain line is printed every tenth of the way instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class LineProgress:
    """The subset of ``rich.progress.Progress`` the toolkit uses, printing a line per 10% done."""

    def __init__(self, console: Console, description: str, total: int) -> None:
        self.console, self.description, self.total = console, description, max(total, 1)
        self.task_ids = [0]
        self.completed, self.status, self.started = 0, "", time.perf_counter()
        self._next_report = 0.1

    def update(self, task_id: int, advance: int = 0, status: str | None = None) -> None:
        self.completed += advance
        if status is not None:
            self.status = status
        if self.completed / self.total >= self._next_report - 1e-9:
            while self.completed / self.total >= self._next_report - 1e-9:
                self._next_report += 0.1
            elapsed = time.perf_counter() - self.started
            status = f" {self.status}" if self.status else ""
            self.console.print(
                f"  {self.description}: {self.completed}/{self.total}{status} ({elapsed:.0f} s)", highlight=False
            )

    def advance(self, task_id: int, advance: int = 1) -> None:
        self.update(task_id, advance=advance)


@contextmanager
def progress_bar(console: Console, description: str, total: int) -> Iterator[Progress | LineProgress]:
    """A progress display with one task; advance it with :func:`step` or ``bar.update(task, advance=1)``."""
    if console.quiet:
        silent = Progress(console=console, disable=True)
        silent.add_task(description, total=total, status="")
        yield silent
        return
    if not console.is_terminal:
        yield LineProgress(console, description, total)
        return
    bar = Progress(
        TextColumn("  {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with bar:
        bar.add_task(description, total=total, status="")
        yield bar


def step(bar: Progress | LineProgress, status: str | None = None) -> None:
    task = bar.task_ids[0]
    if status is None:
        bar.advance(task)
    else:
        bar.update(task, advance=1, status=status)
