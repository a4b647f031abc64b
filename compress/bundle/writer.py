"""Write a bundle directory atomically: build it under a temporary name, then rename.

The bundle may replace only a bundle folder: never a symbolic link (which would reach outside the run
directory), a file, or a folder of someone else's files.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from compress.core.files import make_temp_dir, sha256_file, temp_sibling, write_json_atomic
from compress.errors import StageError
from compress.tasks import Task, get_task

MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"

BUNDLE_FORMAT = 1


def write_bundle(
    target: Path,
    onnx_path: Path,
    processor: Any,
    label_names: tuple[str, ...],
    metadata: dict[str, Any],
    root: Path,
    task: Task | None = None,
) -> Path:
    """Create ``target`` (a folder strictly inside ``root``) holding the model, the task's processor (the
    tokenizer) and a manifest with every file's sha256; a previous bundle there is replaced."""
    task = task or get_task()
    _check_replaceable(target, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = make_temp_dir(target)
    previous = None
    try:
        shutil.copyfile(onnx_path, staging / MODEL_FILE)
        task.save_processor(processor, staging)
        files = sorted(p.name for p in staging.iterdir() if p.is_file())
        manifest = {
            "format": BUNDLE_FORMAT,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "model": MODEL_FILE,
            "labels": list(label_names),
            **task.manifest_fields(processor),
            "files": {name: {"sha256": sha256_file(staging / name), "bytes": (staging / name).stat().st_size} for name in files},
            **metadata,
        }
        write_json_atomic(staging / MANIFEST_FILE, manifest)
        if target.exists():
            previous = temp_sibling(target)
            target.rename(previous)
        staging.rename(target)
    finally:
        for leftover in (staging, previous):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover)
    return target


def _check_replaceable(target: Path, root: Path) -> None:
    where = f"bundle folder {target}"
    if target.name in ("", ".", "..") or root.resolve() not in (target.parent.resolve() / target.name).parents:
        raise StageError(f"{where}: is not inside the run directory {root}")
    if target.is_symlink():
        raise StageError(f"{where}: is a symbolic link; compress replaces only a bundle folder it wrote, never a link")
    if not target.exists():
        return
    if not target.is_dir():
        raise StageError(f"{where}: exists and is not a folder; remove it or choose another bundle.directory")
    if any(target.iterdir()) and not (target / MANIFEST_FILE).is_file():
        raise StageError(
            f"{where}: holds files that are not a compress bundle (no {MANIFEST_FILE}); "
            "move them away or choose another bundle.directory"
        )
