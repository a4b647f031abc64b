"""Write a bundle directory atomically: build it under a temporary name, then rename.

A bundle holds the model for one runtime, named by the manifest's ``runtime``: ONNX Runtime's ``model.onnx``, or
OpenVINO's IR (``model.xml`` with its weights ``model.bin``, both hashed like every file).

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
IR_FILE = "model.xml"
IR_WEIGHTS_FILE = "model.bin"
MANIFEST_FILE = "manifest.json"
ONNXRUNTIME = "onnxruntime"
OPENVINO = "openvino"
BUNDLE_RUNTIMES = (ONNXRUNTIME, OPENVINO)

BUNDLE_FORMAT = 1


def write_bundle(
    target: Path,
    model_path: Path,
    processor: Any,
    label_names: tuple[str, ...],
    metadata: dict[str, Any],
    root: Path,
    task: Task | None = None,
    runtime: str = ONNXRUNTIME,
) -> Path:
    """Create ``target`` (a folder strictly inside ``root``) holding the model, the task's processor (the
    tokenizer) and a manifest with every file's sha256; a previous bundle there is replaced.

    ``model_path``: an ONNX file, or (``runtime="openvino"`` only) an IR's ``.xml``. For OpenVINO an ONNX file
    is converted to an IR with its weights as they are (FP32 stays FP32)."""
    task = task or get_task()
    _check_replaceable(target, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = make_temp_dir(target)
    previous = None
    try:
        model_fields = _write_model(Path(model_path), staging, runtime)
        task.save_processor(processor, staging)
        files = sorted(p.name for p in staging.iterdir() if p.is_file())
        manifest = {
            "format": BUNDLE_FORMAT,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **model_fields,
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


def _write_model(model_path: Path, staging: Path, runtime: str) -> dict[str, str]:
    """The model file(s) for ``runtime`` in ``staging``; returns the manifest fields naming them."""
    if runtime == ONNXRUNTIME:
        if model_path.suffix == ".xml":
            raise StageError(f"{model_path}: an OpenVINO IR; ONNX Runtime cannot run it (bundle it for runtime openvino)")
        shutil.copyfile(model_path, staging / MODEL_FILE)
        return {"runtime": ONNXRUNTIME, "model": MODEL_FILE}
    if runtime != OPENVINO:
        raise StageError(f"bundle runtime {runtime!r}: expected one of {', '.join(BUNDLE_RUNTIMES)}")
    from compress.runtimes.openvino import save_ir, weights_path

    if model_path.suffix == ".xml":
        shutil.copyfile(weights_path(model_path), staging / IR_WEIGHTS_FILE)
        shutil.copyfile(model_path, staging / IR_FILE)
    else:
        save_ir(model_path, staging / IR_FILE, compress_to_fp16=False)
    return {"runtime": OPENVINO, "model": IR_FILE, "weights": IR_WEIGHTS_FILE}


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
