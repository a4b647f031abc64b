"""Name -> loader tables for built-in datasets (and other named corpora), filled by decorators.

Dataset modules (``sources``, ``spam_assassin`` ...) register into these tables; the table imports none
of them, so a new built-in dataset is one module that imports this one.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compress.errors import DataError

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


def package_file(package: str, relative: str, install_hint: str) -> Path:
    """Locate a data file shipped inside an installed package without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"package {package!r} is not installed", hint=install_hint)
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DataError(f"{path}: expected data file is missing from package {package!r}", hint=install_hint)
    return path
