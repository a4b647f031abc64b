"""Run-directory housekeeping: what compress owns in a run directory, restarting, stale temp files.

A run directory may hold files the user put there; compress only ever deletes the entries it made
itself (listed in :data:`OWNED_ENTRIES` plus the run's bundle folder), and never an input of the recipe.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from compress.core.files import TEMP_PREFIX, is_temp_name, write_json_atomic
from compress.core.recipe import Recipe
from compress.core.variant import PROCESSOR_KEY
from compress.errors import CompressError

STATE_FILE = "state.json"
STAGES_DIR = "stages"
OWNED_ENTRIES = (STAGES_DIR, "report.json", "report.md", "report.html")
COMPLETE_MARKER = "COMPLETE.json"
TEMP_PATTERN = f"{TEMP_PREFIX}*"
"""Names compress gives to files being written and folders being staged (checked with
:func:`compress.core.files.is_temp_name`, so a user's ``.notes.tmp1`` is never one of them)."""


def is_inside(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True


def owned_bundle(run_dir: Path, state: dict[str, Any]) -> Path | None:
    """The run's bundle folder when compress made it inside ``run_dir`` (never ``run_dir`` itself)."""
    bundle = state.get("bundle_dir")
    if bundle and is_inside(Path(bundle), run_dir) and Path(bundle).resolve() != run_dir.resolve():
        return Path(bundle)
    return None


def owned_paths(run_dir: Path, state: dict[str, Any]) -> list[Path]:
    """Everything a previous run made in ``run_dir`` (state.json last, so an interrupted restart can be redone)."""
    paths = [run_dir / name for name in OWNED_ENTRIES]
    bundle = owned_bundle(run_dir, state)
    if bundle:
        paths.append(bundle)
    paths += sorted(p for p in run_dir.glob(TEMP_PATTERN) if is_temp_name(p.name) and not p.is_symlink())
    return [p for p in paths if p.exists()] + [run_dir / STATE_FILE]


def recipe_inputs(recipe: Recipe) -> list[Path]:
    """Local files and directories the recipe reads (never to be deleted or written)."""
    candidates = [recipe.model.source, recipe.model.tokenizer, recipe.data.dataset]
    return [Path(c).expanduser() for c in candidates if c and Path(c).expanduser().exists()]


def clear_previous_run(run_dir: Path, state: dict[str, Any], recipe: Recipe) -> list[Path]:
    """Delete a previous run's outputs from ``run_dir`` for ``--restart``; returns what was removed.

    Refuses when one of the recipe's inputs lives inside those outputs (e.g. a model from this very run).
    """
    targets = owned_paths(run_dir, state)
    for source in recipe_inputs(recipe):
        for target in targets:
            if is_inside(source, target):
                raise CompressError(
                    f"--restart would delete {target}, which holds this recipe's input {source}; "
                    "copy the input elsewhere or choose a new --out directory"
                )
    for target in targets:
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    return targets


def remove_stale_temp_files(run_dir: Path) -> int:
    """Delete the half-written files and staging folders a killed run left behind (never valid artifacts).

    Only names compress itself gives (:func:`compress.core.files.temp_sibling`) are removed, and symbolic
    links are neither followed nor deleted.
    """
    removed = 0
    for folder, dirs, files in os.walk(run_dir):
        for name in [d for d in dirs if is_temp_name(d)]:
            dirs.remove(name)
            path = Path(folder) / name
            if not path.is_symlink():
                shutil.rmtree(path)
                removed += 1
        for name in files:
            path = Path(folder) / name
            if is_temp_name(name) and not path.is_symlink():
                path.unlink()
                removed += 1
    return removed


def mark_complete(stage_dir: Path, record: dict[str, Any]) -> None:
    """Write the stage's completion marker (its record) next to its artifacts."""
    write_json_atomic(stage_dir / COMPLETE_MARKER, record)


def check_outputs_exist(state: dict[str, Any], run_dir: Path) -> None:
    """A resumed run needs every saved variant's files; name the first missing one."""
    for record in state.get("variants", []):
        for key in ("path", PROCESSOR_KEY):
            if not Path(record[key]).exists():
                raise CompressError(
                    f"{run_dir}: cannot resume, {record[key]} (variant {record['name']!r}) is missing",
                    hint="pass --restart to start this run over",
                )
