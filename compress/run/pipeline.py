"""Run a recipe: validate it, make (or resume) the run directory, run each stage, write the report.

State is saved after every stage (atomically), so a rerun on the same directory resumes from the
first unfinished stage; ``restart=True`` deletes the previous run's own outputs and starts over.
One process at a time works in a run directory (:mod:`compress.run.lock`); a full disk or an
unwritable directory ends the run with one message, and what finished stays resumable.
"""

from __future__ import annotations

import errno
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from compress.core.context import RunContext, seed_everything
from compress.core.files import read_json
from compress.core.recipe import RUNTIME_WORDS, Recipe, StageSpec, load_recipe
from compress.core.stage import TORCH, Stage
from compress.core.variant import Variant
from compress.errors import CompressError, StageError
from compress.run.directory import (
    STATE_FILE,
    check_outputs_exist,
    clear_previous_run,
    is_inside,
    mark_complete,
    remove_stale_temp_files,
)
from compress.run.lock import LOCK_FILE, run_lock
from compress.run.rewind import delete_outputs, rewind_state
from compress.run.state import MARKER_FILE, read_marker, read_state, write_marker, write_state
from compress.training import distributed
from compress.training.checkpoints import discard_checkpoint

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


OWN_FILES = (LOCK_FILE, MARKER_FILE)
"""What compress puts in a run directory before anything else: they do not make it someone else's."""
SPACE_ERRORS = (errno.ENOSPC, errno.EDQUOT)
WRITE_ERRORS = (errno.EROFS, errno.EACCES, errno.EPERM)


def _rewind(run_dir: Path, state: dict[str, Any], recipe: Recipe, redo: str, console: Console) -> dict[str, Any]:
    """Take the run back to before stage ``redo``: only the kept stages' outputs must exist; the rewound
    state is saved before the redone stages' outputs are deleted, so an interrupted redo resumes."""
    state, stale = rewind_state(state, recipe, redo, run_dir)
    check_outputs_exist(state, run_dir)
    write_state(run_dir, state)
    delete_outputs(stale)
    console.print(f"[bold]Redoing[/] {run_dir} from stage {redo}; earlier stages' outputs kept")
    return state


def _check_out(run_dir: Path, restart: bool, redo: str | None) -> None:
    """Before anything is written: ``--out`` must be (or become) a directory that is empty or a compress run."""
    blocking = next((p for p in (run_dir, *run_dir.parents) if p.exists() and not p.is_dir()), None)
    if blocking == run_dir:
        raise CompressError(f"{run_dir}: exists and is a file; --out must be a directory")
    if blocking is not None:
        raise CompressError(f"{run_dir}: cannot be created, {blocking} is a file; --out must name a directory")
    if redo and not (run_dir / STATE_FILE).is_file():
        raise CompressError(f"--redo {redo}: {run_dir} holds no run to redo (no {STATE_FILE})")
    if not run_dir.is_dir() or (run_dir / STATE_FILE).exists() or (run_dir / MARKER_FILE).exists():
        return
    if any(entry.name not in OWN_FILES for entry in run_dir.iterdir()):
        raise CompressError(
            f"{run_dir}: directory exists and is not a compress run (no {STATE_FILE}); refusing to write into it"
            + (" or delete anything in it" if restart else ""),
            hint="choose a new --out directory (or leave --out out for a fresh timestamped one)",
        )


def _prepare_run_dir(
    run_dir: Path, recipe: Recipe, restart: bool, console: Console, redo: str | None = None
) -> dict[str, Any] | None:
    """Return the saved state when resuming (rewound to before stage ``redo`` when given); ``None`` for a
    fresh start, once the directory is marked as this recipe's run. Called holding the run's lock."""
    if (run_dir / STATE_FILE).is_file():
        if restart:
            try:
                state = read_state(run_dir)
            except CompressError:
                state = {}  # a damaged state is what --restart is for
            removed = clear_previous_run(run_dir, state, recipe)
            write_marker(run_dir, recipe.hash)
            console.print(f"[bold]Restarting[/] {run_dir}: removed {', '.join(p.name for p in removed)}")
            return None
        state = read_state(run_dir)
        if not redo and state["recipe_hash"] != recipe.hash:
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
    marker = read_marker(run_dir)
    if marker is not None:  # a run that stopped before its first stage (the input) was saved
        if marker.get("recipe_hash") != recipe.hash and not restart:
            raise CompressError(
                f"{run_dir}: holds the start of a run of a different recipe (or different settings) that "
                "stopped before saving its input; choose a new --out directory, or pass --restart to start it over"
            )
        clear_previous_run(run_dir, {}, recipe)
        console.print(f"[bold]Starting over[/] {run_dir}: the previous attempt stopped before saving its input")
    write_marker(run_dir, recipe.hash)
    return None


def _save_state(ctx: RunContext, completed: list[str]) -> None:
    write_state(
        ctx.run_dir,
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


def _missing_bundles(ctx: RunContext, completed: list[str]) -> set[str]:
    """Finished bundle stages whose bundle is gone (deleted by hand): a rerun writes them again."""
    missing = set()
    for spec in ctx.recipe.stages:
        if spec.kind == "bundle" and spec.id in completed:
            target = ctx.run_dir / spec.config.directory
            if not (target / "manifest.json").is_file():
                ctx.console.print(f"[yellow]note[/]: bundle {target} is missing; writing it again")
                missing.add(spec.id)
    return missing


def _current_before(ctx: RunContext, stage_id: str) -> str:
    """The variant that was current when stage ``stage_id`` ran (the last one made before it)."""
    current = ctx.current_name
    for record in ctx.stage_records:
        if record["id"] == stage_id:
            break
        current = record.get("produced") or current
    return current


def _put_record(ctx: RunContext, record: dict[str, Any]) -> None:
    """Add a stage's record, in place of an earlier one for the same stage (a rebuilt bundle)."""
    ids = [r["id"] for r in ctx.stage_records]
    if record["id"] in ids:
        ctx.stage_records[ids.index(record["id"])] = record
    else:
        ctx.stage_records.append(record)


def _free_space(path: Path) -> str:
    existing = next((p for p in (path, *path.parents) if p.exists()), Path.cwd())
    try:
        free = shutil.disk_usage(existing).free
    except OSError:
        return "an unknown amount of space"
    return f"{free / 1e6:.1f} MB" if free < 1e9 else f"{free / 1e9:.2f} GB"


@contextmanager
def _os_errors(run_dir: Path, where: dict[str, str]) -> Iterator[None]:
    """A full disk or a directory that cannot be written, anywhere in a run, as one clear message.

    What finished is saved (state.json is written atomically after each stage), so the same command
    resumes once there is room.
    """
    try:
        yield
    except OSError as error:
        target = Path(error.filename) if error.filename else run_dir
        if error.errno in SPACE_ERRORS:
            raise CompressError(
                f"no space left on the device while writing {target} (stage {where['stage']}): "
                f"{_free_space(target)} free on that filesystem",
                hint="free some space (or choose another --out), then rerun the same command to resume",
            ) from error
        if error.errno in WRITE_ERRORS:
            reason = "read-only filesystem" if error.errno == errno.EROFS else "permission denied"
            inside = is_inside(target, run_dir)
            raise CompressError(
                f"{target}: {reason} (stage {where['stage']})",
                hint="choose an --out directory you can write to" if inside else "check that file's permissions",
            ) from error
        raise


def _print_label_counts(console: Console, task, splits) -> None:
    """What the run trains on, before it trains: the label kind, normalisations and the train label counts."""
    counts = ", ".join(f"{name} {count:g}" for name, count in splits.label_counts("train").items())
    normalised = ", ".join(f"{count} {what.replace('_', ' ')}" for what, count in splits.normalised.items())
    note = f"; normalised: {normalised}" if normalised else ""
    console.print(f"    {task.label_kind} labels ({task.name}), train: {counts}{note}")


def _load_input(ctx: RunContext) -> Variant:
    from compress.data.checks import truncation_check
    from compress.models.complexity import model_facts
    from compress.models.persistence import save_model
    from compress.tasks.base import check_task_stages

    task, splits = ctx.task, ctx.splits
    check_task_stages(task, [stage.kind for stage in ctx.recipe.stages])
    _print_label_counts(ctx.console, task, splits)
    loaded = task.load_model(ctx.recipe.model, splits, ctx.recipe.task)
    processor = task.processor(loaded.processor_dir, ctx.max_length)
    check_inputs = task.encode(processor, ["a short check text"]).collate([0])
    task.check_model(loaded.module, check_inputs, splits, ctx.recipe.model.source)
    ctx.data_checks = truncation_check(processor, splits, ctx.console)
    directory = ctx.run_dir / "stages" / "00-input" / "model"
    save_model(loaded.module, directory, factory=loaded.factory)
    task.save_processor(processor, directory)
    variant = Variant(
        name=ctx.recipe.model.name,
        runtime=TORCH,
        precision="fp32",
        path=directory,
        processor_dir=directory,
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
    where = {"stage": "preparing the run directory"}
    with _os_errors(run_dir, where):
        _check_out(run_dir, restart, redo)
        run_dir.mkdir(parents=True, exist_ok=True)
        with run_lock(run_dir):
            state = _prepare_run_dir(run_dir, recipe, restart, console, redo)
            return _run_stages(RunContext(recipe=recipe, run_dir=run_dir, console=console), state, stages,
                               follower_dir is None, where)


def _run_stages(
    ctx: RunContext, state: dict[str, Any] | None, stages: tuple[StageSpec, ...], main: bool, where: dict[str, str]
) -> RunResult:
    """The input and every unfinished stage, saving the state after each; then the report (main process)."""
    recipe, console, run_dir = ctx.recipe, ctx.console, ctx.run_dir
    completed = _restore(ctx, state) if state else []
    if completed:
        console.print(f"[bold]Resuming[/] {run_dir}: {', '.join(completed)} already done")
    rebuild = _missing_bundles(ctx, completed)
    completed = [stage for stage in completed if stage not in rebuild]
    seed_everything(recipe.seed)
    where["stage"] = "loading the data"
    console.print(
        f"[bold]Recipe[/] {recipe.name}: {len(recipe.stages)} stages -> {run_dir}\n"
        f"  data: {ctx.splits.name}, train {len(ctx.splits.train)} / dev {len(ctx.splits.dev)} / test {len(ctx.splits.test)}"
    )
    if INPUT_STAGE not in completed:
        where["stage"] = INPUT_STAGE
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
        where["stage"] = spec.id
        stage = spec.build()
        console.print(f"[bold cyan]{spec.id}[/]: {type(stage).summary}")
        started = time.perf_counter()
        seed_everything(recipe.seed)
        current = ctx.current_name
        if spec.id in rebuild:  # as it was when the stage first ran
            ctx.current_name = _current_before(ctx, spec.id)
        produced = stage.run(_stage_input(spec, stage, ctx), ctx)
        ctx.current_name = current
        if produced is not None:
            ctx.add_variant(produced)
            ctx.current_name = produced.name
        record = _record(spec.id, spec.kind, started, produced.name if produced else None, spec.config.model_dump())
        _put_record(ctx, record)
        mark_complete(ctx.stage_dir(spec.id), record)
        completed.append(spec.id)
        _save_state(ctx, completed)
        discard_checkpoint(ctx.stage_dir(spec.id))
    report_path, report = None, None
    if main and any(spec.kind == "report" for spec in recipe.stages):
        from compress.reporting.write import write_reports

        where["stage"] = "report"
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
    from compress.models.declared import declared_config
    from compress.models.families.check import check_recipe_families
    from compress.tasks import get_task

    check_recipe_families(recipe)  # the model's family supports every stage (read from its config alone)
    get_task(recipe.task.kind).check_recipe(recipe.stages, declared_config(recipe.model.source)[0])
    notes: list[str] = []
    for spec in recipe.stages:
        notes += spec.build().check_environment()
    return notes


def _up_to_last_training_stage(stages: tuple[StageSpec, ...]) -> tuple[StageSpec, ...]:
    from compress.training.loop import TrainingConfig

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
