"""What a recipe needs from the machine: optional Python backends and a GPU.

A stage lists the backends it cannot run without in ``Stage.requires``; the pipeline checks them
before any work starts, so a missing backend fails in a second instead of after a long training stage.
Optional extras (a GPU for latency, a second runtime) are skipped with a note instead.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping

from compress.errors import SetupError


def module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def require_backends(what: str, requires: Mapping[str, str]) -> None:
    """Raise :class:`SetupError` naming every missing ``{import name: pip requirement}`` of ``what``."""
    missing = [pip for module, pip in requires.items() if not module_available(module)]
    if missing:
        raise SetupError(
            f"{what} needs {', '.join(missing)}, which is not installed",
            hint=f"pip install {' '.join(repr(m) for m in missing)}, or remove the stage from the recipe",
        )


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def require_cuda(what: str) -> None:
    if not cuda_available():
        raise SetupError(
            f"{what} requires a CUDA GPU and none is present",
            hint="drop the GPU requirement from the recipe to skip GPU work with a note instead",
        )
