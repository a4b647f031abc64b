"""Before any work: can the recipe's model family go through the recipe's stages?

Read from the model's config alone (no weights): a Hugging Face checkpoint directory's ``config.json``, a
compress model directory's manifest, the embedded MiniLM's packaged directory. Hub ids and Python
factories are not read (that would download or run code); the check is skipped for them with a note and
the stages find out when they run, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from compress.errors import StageError
from compress.models.families.base import families_supporting, family_for, family_names

if TYPE_CHECKING:
    from compress.core.recipe import Recipe

STAGE_OPERATIONS = {"prune": "prune", "distill": "distill", "vocab_prune": "vocab_prune"}
"""Recipe stage kind -> the family operation it needs; any stage with ``optimize: true`` also needs
``fuse``."""


@dataclass
class FamilyCheck:
    """What :func:`check_recipe_families` found: the family (None when not read) and one line to print."""

    family: str | None
    line: str
    operations: dict[str, list[str]] = field(default_factory=dict)
    """Stage id -> the family operations it needs."""


def stage_operations(kind: str, config: Any) -> list[str]:
    """The family operations a stage of ``kind`` with ``config`` needs."""
    needed = [STAGE_OPERATIONS[kind]] if kind in STAGE_OPERATIONS else []
    if getattr(config, "optimize", False) is True:
        needed.append("fuse")
    return needed


def recipe_model_type(source: str) -> tuple[str | None, str]:
    """``(model_type, "")`` read from the model's config alone, or ``(None, why it was not read)``."""
    from compress.models.declared import declared_config

    data, why_not = declared_config(source)
    if data is None:
        return None, why_not
    model_type = data.get("model_type")
    if isinstance(model_type, str) and model_type:
        return model_type, ""
    return None, f"the config of model.source {source!r} has no model_type"


def check_recipe_families(recipe: Recipe) -> FamilyCheck:
    """Refuse (StageError) a recipe whose model family lacks an operation one of its stages needs, naming
    the family, the stage and the families that would work; else say what was checked."""
    needed = {
        spec.id: ops for spec in recipe.stages if (ops := stage_operations(spec.kind, spec.config))
    }
    model_type, why_not = recipe_model_type(recipe.model.source)
    if model_type is None:
        return FamilyCheck(None, f"model family not checked: {why_not}", needed)
    where = f"{recipe.source}: model.source {recipe.model.source!r} is a {model_type!r} model"
    try:
        adapter = family_for(model_type)
    except StageError:
        adapter = None
    for stage_id, operations in needed.items():
        for operation in operations:
            if adapter is None or not adapter.supports(operation):
                others = families_supporting(operation)
                known = f" ({adapter.missing})" if adapter and adapter.missing else ""
                known = known if adapter else f" (registered families: {', '.join(family_names())})"
                raise StageError(
                    f"{where}; stage {stage_id!r} needs {operation!r}, which model family {model_type!r} does "
                    f"not support{known}; families that do: {', '.join(others) or 'none'}"
                )
    if adapter is None:
        return FamilyCheck(model_type, f"model family {model_type}: no stage needs a family adapter", needed)
    for spec in recipe.stages:
        if spec.kind == "prune" and (refused := adapter.refused_prune(spec.config)):
            raise StageError(f"{where}; stage {spec.id!r}: {refused}")
    checked = ", ".join(f"{stage_id} ({'+'.join(ops)})" for stage_id, ops in needed.items())
    supported = ", ".join(sorted(adapter.operations))
    return FamilyCheck(
        model_type,
        f"model family {model_type} supports {supported}"
        + (f"; checked stages {checked}" if checked else "; no stage needs a family operation"),
        needed,
    )
