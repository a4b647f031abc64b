"""The stage base and registry: recipe names -> stage classes.

A stage is one module under ``compress/stages`` that subclasses :class:`Stage` and decorates itself with
``@register_stage``; nothing else needs to change to add one. This module needs neither the recipe nor the
run context: a stage sees the run through :class:`StageContext`, which ``RunContext`` satisfies.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from rich.console import Console

from compress.core.options import Options
from compress.core.variant import ONNX, OPENVINO, TORCH, Variant

__all__ = ["ONNX", "OPENVINO", "TORCH", "Stage", "StageConfig", "StageContext", "get_stage", "register_stage", "stage_registry"]


class StageConfig(Options):
    """Base of every stage's options. Unknown fields are errors, so typos never pass silently.

    Each stage declares its own bounds (``Field(ge=..., le=...)``), so an out-of-range value is
    reported with the field's name before any work starts. Options of library code (training, pruning,
    quantization ...) are plain :class:`~compress.core.options.Options` that a stage config composes.
    """


@runtime_checkable
class StageContext(Protocol):
    """What a stage may use of the run it is part of (``compress.core.context.RunContext`` is one)."""

    recipe: Any
    """The validated recipe (``compress.core.recipe.Recipe``)."""
    run_dir: Path
    console: Console
    variants: dict[str, Variant]
    """Every variant made so far, in order."""
    current_name: str
    """Name of the variant the next stage works on."""

    @property
    def seed(self) -> int: ...

    @property
    def baseline(self) -> Variant: ...

    def stage_dir(self, stage_id: str) -> Path: ...

    def add_variant(self, variant: Variant) -> Variant: ...

    def variant(self, name: str) -> Variant: ...


class Stage:
    """One step of a recipe. It takes the current variant and returns a new one (or ``None``)."""

    kind: ClassVar[str]
    summary: ClassVar[str] = ""
    Config: ClassVar[type[Options]] = StageConfig
    """The stage's options: a :class:`StageConfig`, or library options (strict too) the stage uses as they are."""
    accepts: ClassVar[frozenset[str]] = frozenset({TORCH, ONNX, OPENVINO})
    """Runtimes of the current variant this stage can work on."""
    produces: ClassVar[str | None] = None
    """Runtime of the variant the stage returns; ``None`` when the current variant passes through."""
    requires: ClassVar[dict[str, str]] = {}
    """Backends the stage cannot run without, ``{import name: pip requirement}``; checked before a run starts."""

    @classmethod
    def accepted_runtimes(cls, config: Options) -> frozenset[str]:
        """Runtimes this stage accepts with these options (override when an option changes it)."""
        return cls.accepts

    @classmethod
    def produced_runtime(cls, config: Options) -> str | None:
        """Runtime of the variant this stage returns with these options (``None``: passes through)."""
        return cls.produces

    def __init__(self, config: Options, stage_id: str) -> None:
        self.config = config
        self.id = stage_id

    def run(self, current: Variant, ctx: StageContext) -> Variant | None:
        raise NotImplementedError

    def check_environment(self) -> list[str]:
        """Called before the run starts: raise ``SetupError`` for a missing requirement, return notes for
        optional things that will be skipped. Override to check more (a GPU ...)."""
        from compress.core.requirements import require_backends

        require_backends(f"stage {self.id!r}", self.requires)
        return []


_STAGES: dict[str, type[Stage]] = {}
_DISCOVERED = False


def register_stage(cls: type[Stage]) -> type[Stage]:
    if cls.kind in _STAGES and _STAGES[cls.kind] is not cls:
        raise RuntimeError(f"two stages registered under {cls.kind!r}")
    _STAGES[cls.kind] = cls
    return cls


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    import compress.stages as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    _DISCOVERED = True


def stage_registry() -> dict[str, type[Stage]]:
    _discover()
    return dict(_STAGES)


def get_stage(kind: str) -> type[Stage] | None:
    return stage_registry().get(kind)
