"""Run a recipe: validate it, make (or resume) the run directory, run each stage, write the report.

State is saved after every stage (atomically), so a rerun on the same directory resumes from the
first unfinished stage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from compress import distributed
from compress.config import Recipe, StageSpec, load_recipe
from compress.context import RunContext, seed_everything
from compress.errors import CompressError
from compress.io_utils import read_json, write_json_atomic
from compress.variants import Variant

STATE_FILE = "state.json"
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


def _prepare_run_dir(run_dir: Path, recipe: Recipe) -> dict[str, Any] | None:
    """Return the saved state when resuming; refuse to write into anything that is not this recipe's run."""
    state_path = run_dir / STATE_FILE
    if state_path.is_file():
        state = read_json(state_path)
        if state.get("recipe_hash") != recipe.hash:
            raise CompressError(
                f"{run_dir}: holds a run of a different recipe (or different settings); "
                "choose a new --out directory, or pass --restart to start this one over"
            )
        return state
    if run_dir.exists() and any(run_dir.iterdir()):
        raise CompressError(f"{run_dir}: directory exists and is not a compress run; refusing to write into it")
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
        },
    )


def _restore(ctx: RunContext, state: dict[str, Any]) -> list[str]:
    ctx.variants = {r["name"]: Variant.from_record(r) for r in state["variants"]}
    ctx.current_name = state["current"]
    ctx.evaluation = state.get("evaluation", {})
    ctx.stage_records = state.get("stage_records", [])
    ctx.bundle_dir = Path(state["bundle_dir"]) if state.get("bundle_dir") else None
    ctx.started = state.get("started", ctx.started)
    return list(state["completed"])


def _load_input(ctx: RunContext) -> Variant:
    from compress.data.tokenization import TextEncoder
    from compress.models.sources import load_input_model
    from compress.outputs import count_parameters
    from compress.registry import TORCH
    from compress.models.persistence import save_model

    loaded = load_input_model(ctx.recipe.model, ctx.task.label_names)
    encoder = TextEncoder.from_dir(loaded.tokenizer_dir, ctx.max_length)
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
        info={"parameters": count_parameters(loaded.module), "source": ctx.recipe.model.source},
    )
    variant._module = loaded.module
    return variant


def run_recipe(
    recipe: Recipe | str | Path,
    out: str | Path | None = None,
    overrides: list[str] | None = None,
    console: Console | None = None,
) -> RunResult:
    """Run a recipe end to end (or resume it in ``out``) and return where its outputs are."""
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, overrides)
    console = console or Console()
    run_dir = Path(out) if out else default_run_dir(recipe)
    stages = recipe.stages
    follower_dir = distributed.follower_run_dir(run_dir)
    if follower_dir is not None:
        run_dir, console, stages = follower_dir, Console(quiet=True), _up_to_last_training_stage(stages)
    state = _prepare_run_dir(run_dir, recipe)
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
        produced = stage.run(ctx.variant(ctx.current_name), ctx)
        if produced is not None:
            ctx.add_variant(produced)
            ctx.current_name = produced.name
        ctx.stage_records.append(
            _record(spec.id, spec.kind, started, produced.name if produced else None, spec.config.model_dump())
        )
        completed.append(spec.id)
        _save_state(ctx, completed)
    report_path, report = None, None
    if follower_dir is None and any(spec.kind == "report" for spec in recipe.stages):
        from compress.reporting.write import write_reports

        report_path = write_reports(ctx)
        report = read_json(report_path)
    return RunResult(run_dir, report_path, ctx.bundle_dir, report)


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
