"""Checks on task data that warn rather than fail, with counts that go into the report."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from compress.data.dataset import TaskData
from compress.data.tokenization import TextEncoder

SPLITS = ("train", "dev", "test")


def truncation_check(encoder: TextEncoder, task: TaskData, console: Console) -> dict[str, Any]:
    """Count texts longer than ``max_length`` per split (they are truncated) and warn when there are any."""
    counts = {name: encoder.count_truncated(getattr(task, name).texts) for name in SPLITS}
    total = sum(counts.values())
    if total:
        console.print(
            f"[yellow]warning[/]: {total} texts are longer than max_length={encoder.max_length} tokens and are "
            f"truncated (train {counts['train']}, dev {counts['dev']}, test {counts['test']}); "
            "raise model.max_length to keep them whole"
        )
    return {"truncated_texts": counts}
