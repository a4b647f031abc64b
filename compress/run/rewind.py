"""``compress run --redo STAGE``: take a finished (or interrupted) run back to just before one stage.

Everything the earlier stages made is kept (trained models, exports); the outputs of STAGE and the
stages after it are deleted and redone. The recipe may differ from the run's from STAGE on (other
latency settings, another quantization mode, a new report), but not before it: those outputs would
no longer match the recipe.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from compress.core.recipe import Recipe
from compress.core.sections import TaskConfig
from compress.errors import CompressError
from compress.run.directory import STAGES_DIR, owned_bundle

SHARED_FIELDS = ("seed", "model", "data", "task")
"""Recipe fields every stage depends on: a redo needs them unchanged."""
SHARED_DEFAULTS = {"task": lambda: TaskConfig().model_dump()}
"""Shared fields a run may predate (saved before compress had them): missing means their default."""


def _comparable(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _same_stage(saved: dict[str, Any], current: dict[str, Any], config: BaseModel) -> bool:
    """Whether a stage as the run saved it (``{kind: options}``) is the recipe's stage now. An option the
    run predates (added to compress since) counts as the same when the recipe leaves it at its default,
    at any depth (``loss_options.neighbour_temperature`` inside ``distill``)."""
    if list(saved) != list(current):
        return False
    (kind,) = current
    return _same_options(saved[kind], current[kind], config)


def _same_options(before: dict[str, Any], now: dict[str, Any], config: BaseModel) -> bool:
    for name in now.keys() - before.keys():
        field = type(config).model_fields.get(name)
        default = field.get_default(call_default_factory=True) if field else None
        if isinstance(default, BaseModel):
            default = default.model_dump()
        if _comparable(now[name]) != _comparable(default):
            return False
    for name in before:
        nested = getattr(config, name, None)
        if isinstance(nested, BaseModel) and isinstance(before[name], dict) and isinstance(now.get(name), dict):
            if not _same_options(before[name], now[name], nested):
                return False
        elif _comparable(before[name]) != _comparable(now.get(name)):
            return False
    return True


def check_redo_prefix(saved: dict[str, Any], recipe: Recipe, redo: str) -> int:
    """Index of stage ``redo`` in ``recipe``, once the stages before it (and seed, model, data) are
    shown to be the ones the run in ``saved`` (its state's ``recipe``) ran; otherwise a clear error."""
    ids = [spec.id for spec in recipe.stages]
    if redo not in ids:
        raise CompressError(f"--redo {redo}: the recipe has no stage {redo!r}; its stages are: {', '.join(ids)}")
    index = ids.index(redo)
    current = json.loads(_comparable(recipe.to_dict()))
    for field in SHARED_FIELDS:
        before = saved[field] if field in saved or field not in SHARED_DEFAULTS else SHARED_DEFAULTS[field]()
        if _comparable(before) != _comparable(current[field]):
            raise CompressError(
                f"--redo {redo}: the recipe's {field!r} differs from the run's, so every stage would change; "
                "use a new --out directory (or --restart)"
            )
    saved_stages = saved.get("stages", [])
    for position in range(index):
        if position >= len(saved_stages) or not _same_stage(
            saved_stages[position], current["stages"][position], recipe.stages[position].config
        ):
            raise CompressError(
                f"--redo {redo}: stage {ids[position]!r} comes earlier and differs from the run's "
                f"(or the run never had it); redo from there: --redo {ids[position]}"
            )
    return index


def rewind_state(state: dict[str, Any], recipe: Recipe, redo: str, run_dir: Path) -> tuple[dict[str, Any], list[Path]]:
    """The run's state as it was before stage ``redo``, now belonging to ``recipe`` (so a plain rerun
    resumes it), and the outputs of that stage and every later one to delete (stage folders, and the
    bundle when it is redone). Save the state before deleting them: an interrupted redo then resumes."""
    index = check_redo_prefix(state.get("recipe", {}), recipe, redo)
    kept_ids = {"input", *(spec.id for spec in recipe.stages[:index])}
    records = state.get("stage_records", [])
    kept = [r for r in records if r["id"] in kept_ids]
    dropped = [r for r in records if r["id"] not in kept_ids]
    removed_variants = {r["produced"] for r in dropped if r.get("produced")}
    produced = [r["produced"] for r in kept if r.get("produced")]
    rewound = {
        **state,
        "recipe_hash": recipe.hash,
        "recipe": recipe.to_dict(),
        "completed": [stage for stage in state.get("completed", []) if stage in kept_ids],
        "stage_records": kept,
        "variants": [v for v in state.get("variants", []) if v["name"] not in removed_variants],
        "current": produced[-1] if produced else state.get("current"),
    }
    stale = [folder for folder in (run_dir / STAGES_DIR).glob("[0-9][0-9]-*") if int(folder.name[:2]) > index]
    kinds = {r["kind"] for r in dropped}
    if "evaluate" in kinds:
        rewound["evaluation"] = {}
    if "bundle" in kinds:
        bundle = owned_bundle(run_dir, state)
        stale += [bundle] if bundle else []
        rewound["bundle_dir"] = None
    return rewound, stale  # stage folders are numbered from 01 in recipe order: later ones go


def delete_outputs(paths: list[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
