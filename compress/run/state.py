"""``state.json`` and the start marker: what a run directory remembers, with paths relative to it.

Paths inside the run are stored relative to the run directory, so a run resumes from any working
directory and after being moved or copied (a copy then uses its own files, never the original's).
States written before this (``state_format`` absent) hold absolute or working-directory-relative paths: a
path under ``stages/NN-...`` is taken relative to the run directory it was written in, wherever that is now.

The start marker (:data:`MARKER_FILE`) is the first thing a new run writes, so a run that dies before
its first ``state.json`` (a full disk while saving the input, a kill) is still recognised as this
recipe's run: the same command resumes it, ``--restart`` cleans it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from compress.core.files import read_json, write_json_atomic
from compress.core.variant import LEGACY_PROCESSOR_KEY, PROCESSOR_KEY
from compress.errors import CompressError
from compress.run.directory import STATE_FILE, is_inside

MARKER_FILE = ".compress-run.json"
STATE_FORMAT = 2
"""``state.json`` layout: 2 stores paths relative to the run directory; older states have no ``state_format``."""
VARIANT_PATH_KEYS = ("path", PROCESSOR_KEY)
REQUIRED_KEYS = {"recipe_hash": str, "completed": list, "variants": list, "current": str}
VARIANT_KEYS = ("name", "runtime", "precision", "path", PROCESSOR_KEY, "stage")
STAGE_FOLDER = re.compile(r"\d\d-.+")


def stored_path(path: str | Path, run_dir: Path) -> str:
    """``path`` as state.json keeps it: relative to ``run_dir`` when inside it, else absolute."""
    path = Path(path)
    try:
        return path.relative_to(run_dir).as_posix()
    except ValueError:
        pass
    if is_inside(path, run_dir):
        return path.resolve().relative_to(run_dir.resolve()).as_posix()
    return str(path.resolve())


def _legacy_root(path: Path) -> Path | None:
    """The run directory an old state's path was written in: what comes before ``stages/NN-<id>``."""
    parts = path.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "stages" and STAGE_FOLDER.fullmatch(parts[i + 1]):
            return Path(*parts[:i]) if i else Path()
    return None


def _legacy_path(stored: str, run_dir: Path, old_root: Path | None) -> Path:
    """Where an old state's path is now: the same place relative to this run directory (wherever the
    run was written, moved or copied from), else (a file outside any run) itself."""
    path = Path(stored)
    root = _legacy_root(path) or old_root
    if root is not None:
        try:
            return run_dir / path.relative_to(root)
        except ValueError:
            pass
    return path


def _local_path(stored: str, run_dir: Path) -> Path:
    path = Path(stored)
    return path if path.is_absolute() else run_dir / path


def _check(state: Any, path: Path) -> dict[str, Any]:
    """The state when it has the shape compress writes; otherwise one clear error naming the file."""
    restart = "pass --restart to start this run over"
    if not isinstance(state, dict):
        raise CompressError(f"{path}: not a compress run state (a JSON {type(state).__name__}, not an object); {restart}")
    for key, kind in REQUIRED_KEYS.items():
        if not isinstance(state.get(key), kind):
            problem = "lacks" if key not in state else f"has a malformed (not a {kind.__name__})"
            raise CompressError(f"{path}: {problem} {key!r}; the run state is damaged, {restart}")
    state["variants"] = [_current_keys(record) for record in state["variants"]]
    for record in state["variants"]:
        if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in VARIANT_KEYS):
            raise CompressError(
                f"{path}: a variant lacks one of {', '.join(VARIANT_KEYS)}; the run state is damaged, {restart}"
            )
    if not all(isinstance(stage, str) for stage in state["completed"]):
        raise CompressError(f"{path}: 'completed' must list stage ids; the run state is damaged, {restart}")
    return state


def _current_keys(record: Any) -> Any:
    """A variant record as written now: states from before tasks name the processor ``tokenizer_dir``."""
    if isinstance(record, dict) and PROCESSOR_KEY not in record and LEGACY_PROCESSOR_KEY in record:
        record = {(PROCESSOR_KEY if key == LEGACY_PROCESSOR_KEY else key): value for key, value in record.items()}
    return record


def read_state(run_dir: Path) -> dict[str, Any]:
    """The run's saved state with every path made usable from here (``run_dir``-based, as strings).

    Raises :class:`CompressError` naming the file when it is not valid JSON or lacks what a run saves.
    """
    path = run_dir / STATE_FILE
    try:
        state = _check(read_json(path), path)
    except ValueError:
        raise CompressError(f"{path}: not valid JSON; pass --restart to start this run over") from None
    variants = [dict(record) for record in state["variants"]]
    bundle = state.get("bundle_dir")
    if state.get("state_format") == STATE_FORMAT:
        for record in variants:
            for key in VARIANT_PATH_KEYS:
                record[key] = str(_local_path(record[key], run_dir))
        bundle = str(_local_path(bundle, run_dir)) if bundle else None
    else:
        roots = [_legacy_root(Path(record["path"])) for record in variants]
        old_root = next((root for root in roots if root is not None), None)
        for record in variants:
            for key in VARIANT_PATH_KEYS:
                record[key] = str(_legacy_path(record[key], run_dir, old_root))
        bundle = str(_legacy_path(bundle, run_dir, old_root)) if isinstance(bundle, str) and bundle else None
    return {**state, "variants": variants, "bundle_dir": bundle}


def write_state(run_dir: Path, state: dict[str, Any]) -> Path:
    """Save ``state`` (paths as :func:`read_state` gives them) atomically, paths relative to ``run_dir``."""
    variants = [
        {**record, **{key: stored_path(record[key], run_dir) for key in VARIANT_PATH_KEYS}}
        for record in state["variants"]
    ]
    bundle = state.get("bundle_dir")
    stored = {
        **state,
        "state_format": STATE_FORMAT,
        "variants": variants,
        "bundle_dir": stored_path(bundle, run_dir) if bundle else None,
    }
    return write_json_atomic(run_dir / STATE_FILE, stored)


def read_marker(run_dir: Path) -> dict[str, Any] | None:
    """The start marker's facts (``recipe_hash``), ``{}`` when unreadable, ``None`` when there is none."""
    path = run_dir / MARKER_FILE
    if not path.is_file():
        return None
    try:
        marker = read_json(path)
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def write_marker(run_dir: Path, recipe_hash: str) -> None:
    write_json_atomic(run_dir / MARKER_FILE, {"recipe_hash": recipe_hash})
