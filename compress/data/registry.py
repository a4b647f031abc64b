"""Name -> loader tables for built-in datasets (and other named corpora), filled by decorators.

Dataset modules (``sources``, ``spam_assassin`` ...) register into these tables; the table imports none
of them, so a new built-in dataset is one module that imports this one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Rows = list[tuple[str, Any]]
"""(text, label) rows; a label is a class name, a list of labels or a number (:mod:`compress.data.labels`)."""
BUILTIN_DATASETS: dict[str, Callable[[], Rows]] = {}


def name_registrar(table: dict[str, Callable]) -> Callable[[str], Callable[[Callable], Callable]]:
    """A ``@decorator(name)`` that files a loader under ``name`` in ``table`` (built-in datasets, corpora)."""

    def decorator(name: str) -> Callable[[Callable], Callable]:
        def register(loader: Callable) -> Callable:
            table[name] = loader
            return loader

        return register

    return decorator


builtin_dataset = name_registrar(BUILTIN_DATASETS)
