"""Run a recipe: validate it, make (or resume) the run directory, run each stage, write the report.

State is saved after every stage (atomically), so a rerun on the same directory resumes from the
first unfinished stage; ``restart=True`` deletes the previous run's own outputs and starts over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from compress import distributed
from compress.checkpoints import discard_checkpoint
from compress.config import RUNTIME_WORDS, Recipe, StageSpec, load_recipe
from compress.context import RunContext, seed_everything
from compress.errors import CompressError, StageError
from compress.io_utils import read_json, write_json_atomic
from compress.registry import TORCH, Stage
from compress.rewind import delete_outputs, rewind_state
from compress.run_dir import (
    STATE_FILE,
    check_outputs_exist,
    clear_previous_run,
    mark_complete,
    remove_stale_temp_files,
)
from compress.variants import Variant

INPUT_STAGE = "input"


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    report_path: Path | None
    bundle_dir: Path | None
    report: dict[str, Any] | None


def default_run_dir(recipe: Recipe, root: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = root / f"{recipe.name}-{stamp}"
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = root / f"{recipe.name}-{stamp}-{suffix}"
    return candidate


def _rewind(run_dir: Path, state: dict[str, Any], recipe: Recipe, redo: str, console: Console) -> dict[str, Any]:
    """Take the run back to before stage ``redo``: only the kept stages' outputs must exist; the rewound
    state is saved before the redone stages' outputs are deleted, so an interrupted redo resumes."""
    state, stale = rewind_state(state, recipe, redo, run_dir)
    check_outputs_exist(state, run_dir)
    write_json_atomic(run_dir / STATE_FILE, state)
    delete_outputs(stale)
    console.print(f"[bold]Redoing[/] {run_dir} from stage {redo}; earlier stages' outputs kept")
    return state


def _prepare_run_dir(
    run_dir: Path, recipe: Recipe, restart: bool, console: Console, redo: str | None = None
) -> dict[str, Any] | None:
    """Return the saved state when resuming (rewound to before stage ``redo`` when given); refuse to
    write into anything that is not this recipe's run."""
    state_path = run_dir / STATE_FILE
    if state_path.is_file():
        try:
            state = read_json(state_path)
        except ValueError:
            raise CompressError(f"{state_path}: not valid JSON; pass --restart to start this run over") from None
        if restart:
            removed = clear_previous_run(run_dir, state, recipe)
            console.print(f"[bold]Restarting[/] {run_dir}: removed {', '.join(p.name for p in removed)}")
            return None
        if not redo and state.get("recipe_hash") != recipe.hash:
            raise CompressError(
                f"{run_dir}: holds a run of a different recipe (or different settings); "
                "choose a new --out directory, or pass --restart to start this one over"
            )
        if redo:
            state = _rewind(run_dir, state, recipe, redo, console)
        else:
            check_outputs_exist(state, run_dir)
        remove_stale_temp_files(run_dir)
        return state
    if redo:
        raise CompressError(f"--redo {redo}: {run_dir} holds no run to redo (no {STATE_FILE})")
    if run_dir.exists() and not run_dir.is_dir():
        raise CompressError(f"{run_dir}: exists and is a file; --out must be a directory")
    if run_dir.exists() and any(run_dir.iterdir()):
        raise CompressError(
            f"{run_dir}: directory exists and is not a compress run (no {STATE_FILE}); refusing to write into it"
            + (" or delete anything in it" if restart else ""),
            hint="choose a new --out directory (or leave --out out for a fresh timestamped one)",
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    return None


def _save_state(ctx: RunContext, completed: list[str]) -> None:
    write_json_atomic(
        ctx.run_dir / STATE_FILE,
        {
            "recipe_hash": ctx.recipe.hash,
            "recipe": ctx.recipe.to_dict(),
            "completed": completed,
            "variants": [v.to_record() for v in ctx.variants.values()],
            "current": ctx.current_name,
            "evaluation": ctx.evaluation,
            "stage_records": ctx.stage_records,
            "bundle_dir": str(ctx.bundle_dir) if ctx.bundle_dir else None,
            "started": ctx.started,
            "data_checks": ctx.data_checks,
        },
    )


def _restore(ctx: RunContext, state: dict[str, Any]) -> list[str]:
    ctx.variants = {r["name"]: Variant.from_record(r) for r in state["variants"]}
    ctx.current_name = state["current"]
    ctx.evaluation = state.get("evaluation", {})
    ctx.stage_records = state.get("stage_records", [])
    ctx.bundle_dir = Path(state["bundle_dir"]) if state.get("bundle_dir") else None
    ctx.started = state.get("started", ctx.started)
    ctx.data_checks = state.get("data_checks", {})
    return list(state["completed"])


def _load_input(ctx: RunContext) -> Variant:
    from compress.data.checks import truncation_check
    from compress.data.tokenization import TextEncoder
    from compress.models.complexity import model_facts
    from compress.models.persistence import save_model
    from compress.models.sources import check_model_output, load_input_model

    loaded = load_input_model(ctx.recipe.model, ctx.task.label_names)
    encoder = TextEncoder.from_dir(loaded.tokenizer_dir, ctx.max_length)
    check_model_output(loaded.module, encoder, ctx.task.label_names, ctx.recipe.model.source)
    ctx.data_checks = truncation_check(encoder, ctx.task, ctx.console)
    directory = ctx.run_dir / "stages" / "00-input" / "model"
    save_model(loaded.module, directory, factory=loaded.factory)
    encoder.save(directory)
    variant = Variant(
        name=ctx.recipe.model.name,
        runtime=TORCH,
        precision="fp32",
        path=directory,
        tokenizer_dir=directory,
        stage=INPUT_STAGE,
        info={**model_facts(loaded.module), "source": ctx.recipe.model.source},
    )
    variant._module = loaded.module
    return variant


def run_recipe(
    recipe: Recipe | str | Path,
    out: str | Path | None = None,
    overrides: list[str] | None = None,
    console: Console | None = None,
    restart: bool = False,
    redo: str | None = None,
) -> RunResult:
    """Run a recipe end to end (or resume it in ``out``) and return where its outputs are.

    ``restart`` starts an existing run directory over, deleting only the outputs compress made there;
    ``redo`` redoes one stage and every later one, keeping what the earlier stages made.
    """
    if restart and redo:
        raise CompressError("--restart and --redo exclude each other: --restart starts the whole run over")
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, overrides)
    console = console or Console()
    run_dir = Path(out) if out else default_run_dir(recipe)
    for note in _check_environment(recipe):
        console.print(f"[yellow]note[/]: {note}")
    stages = recipe.stages
    follower_dir = distributed.follower_run_dir(run_dir)
    if follower_dir is not None:
        run_dir, console, stages = follower_dir, Console(quiet=True), _up_to_last_training_stage(stages)
    state = _prepare_run_dir(run_dir, recipe, restart, console, redo)
    ctx = RunContext(recipe=recipe, run_dir=run_dir, console=console)
    completed = _restore(ctx, state) if state else []
    if completed:
        console.print(f"[bold]Resuming[/] {run_dir}: {', '.join(completed)} already done")
    seed_everything(recipe.seed)
    console.print(
        f"[bold]Recipe[/] {recipe.name}: {len(recipe.stages)} stages -> {run_dir}\n"
        f"  data: {ctx.task.name}, train {len(ctx.task.train)} / dev {len(ctx.task.dev)} / test {len(ctx.task.test)}"
    )
    if INPUT_STAGE not in completed:
        started = time.perf_counter()
        console.print(f"[bold cyan]input[/]: loading {recipe.model.source}")
        ctx.add_variant(_load_input(ctx))
        ctx.current_name = recipe.model.name
        ctx.stage_records.append(_record(INPUT_STAGE, "input", started, ctx.current_name, {}))
        completed.append(INPUT_STAGE)
        _save_state(ctx, completed)
    for spec in stages:
        if spec.id in completed:
            continue
        stage = spec.build()
        console.print(f"[bold cyan]{spec.id}[/]: {type(stage).summary}")
        started = time.perf_counter()
        seed_everything(recipe.seed)
        produced = stage.run(_stage_input(spec, stage, ctx), ctx)
        if produced is not None:
            ctx.add_variant(produced)
            ctx.current_name = produced.name
        ctx.stage_records.append(
            _record(spec.id, spec.kind, started, produced.name if produced else None, spec.config.model_dump())
        )
        mark_complete(ctx.stage_dir(spec.id), ctx.stage_records[-1])
        completed.append(spec.id)
        _save_state(ctx, completed)
        discard_checkpoint(ctx.stage_dir(spec.id))
    report_path, report = None, None
    if follower_dir is None and any(spec.kind == "report" for spec in recipe.stages):
        from compress.reporting.write import write_reports

        report_path = write_reports(ctx)
        report = read_json(report_path)
    return RunResult(run_dir, report_path, ctx.bundle_dir, report)


def _stage_input(spec: StageSpec, stage: Stage, ctx: RunContext) -> Variant:
    """The variant a stage works on: the one named by its ``from:`` option, else the current one."""
    if spec.start_from is None:
        return ctx.variant(ctx.current_name)
    variant = ctx.variant(spec.start_from)
    accepts = stage.accepted_runtimes(spec.config)
    if variant.runtime not in accepts:
        needed = " or ".join(RUNTIME_WORDS[r] for r in sorted(accepts))
        raise StageError(
            f"stage {spec.id!r} ({spec.kind}) cannot start from variant {spec.start_from!r}: it is "
            f"{RUNTIME_WORDS[variant.runtime]}, the stage needs {needed}"
        )
    return variant


def _check_environment(recipe: Recipe) -> list[str]:
    """Every stage's requirements, checked before any work: a missing one fails now, not an hour in."""
    notes: list[str] = []
    for spec in recipe.stages:
        notes += spec.build().check_environment()
    return notes


def _up_to_last_training_stage(stages: tuple[StageSpec, ...]) -> tuple[StageSpec, ...]:
    from compress.training import TrainingConfig

    trains = [i for i, spec in enumerate(stages) if isinstance(spec.config, TrainingConfig)]
    return stages[: trains[-1] + 1] if trains else ()


def _record(stage_id: str, kind: str, started: float, produced: str | None, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": stage_id,
        "kind": kind,
        "seconds": round(time.perf_counter() - started, 2),
        "produced": produced,
        "config": config,
    }
