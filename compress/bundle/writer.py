"""Write a bundle directory atomically: build it under a temporary name, then rename."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from compress.data.tokenization import TextEncoder
from compress.io_utils import sha256_file, write_json_atomic

MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
BUNDLE_FORMAT = 1


def write_bundle(
    target: Path,
    onnx_path: Path,
    encoder: TextEncoder,
    label_names: tuple[str, ...],
    metadata: dict[str, Any],
) -> Path:
    """Create ``target`` holding the model, the tokenizer and a manifest with every file's sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        shutil.copyfile(onnx_path, staging / MODEL_FILE)
        encoder.save(staging)
        files = sorted(p.name for p in staging.iterdir() if p.is_file())
        manifest = {
            "format": BUNDLE_FORMAT,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "model": MODEL_FILE,
            "inputs": ["input_ids", "attention_mask"],
            "labels": list(label_names),
            "max_length": encoder.max_length,
            "pad_id": encoder.pad_id,
            "files": {name: {"sha256": sha256_file(staging / name), "bytes": (staging / name).stat().st_size} for name in files},
            **metadata,
        }
        write_json_atomic(staging / MANIFEST_FILE, manifest)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target
