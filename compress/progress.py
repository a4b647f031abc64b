"""Progress bars for long steps (training epochs, evaluation, latency rounds)."""

from __future__ import annotations

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


@contextmanager
def progress_bar(console: Console, description: str, total: int) -> Iterator[Progress]:
    """A rich progress bar with one task; call ``bar.advance(bar.task_ids[0])`` or use :func:`step`."""
    bar = Progress(
        TextColumn("  {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=console.quiet,
    )
    with bar:
        bar.add_task(description, total=total, status="")
        yield bar


def step(bar: Progress, status: str | None = None) -> None:
    task = bar.task_ids[0]
    if status is None:
        bar.advance(task)
    else:
        bar.update(task, advance=1, status=status)
