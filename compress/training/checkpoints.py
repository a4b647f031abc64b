"""Per-epoch training checkpoints, so an interrupted training stage resumes mid-stage.

A checkpoint holds only tensors and plain Python values, saved with ``torch.save`` and read back with
``torch.load(weights_only=True)``: loading one never runs code. It is written atomically, and a
checkpoint whose fingerprint (what was being trained, and how) differs from the current call is ignored.

A stage directory may also hold a teacher cache (``distill``: the teacher's outputs, minutes to compute on
real data). Both are resume aids only: the pipeline discards them once their stage is complete.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compress.core.files import atomic_path

CHECKPOINT_FILE = "training-checkpoint.pt"
TEACHER_CACHE_FILE = "teacher-cache.safetensors"
RESUME_FILES = (CHECKPOINT_FILE, TEACHER_CACHE_FILE)


def checkpoint_path(directory: str | Path) -> Path:
    return Path(directory) / CHECKPOINT_FILE


def save_checkpoint(directory: str | Path, payload: dict[str, Any]) -> Path:
    import torch

    target = checkpoint_path(directory)
    with atomic_path(target) as tmp:
        torch.save(payload, tmp)
    return target


def load_checkpoint(directory: str | Path, fingerprint: str) -> dict[str, Any] | None:
    """The saved payload when it exists, is readable and belongs to this training call; else ``None``."""
    import torch

    path = checkpoint_path(directory)
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a checkpoint we cannot read is not worth failing the run for: train from scratch
        return None
    if not isinstance(payload, dict) or payload.get("fingerprint") != fingerprint:
        return None
    return payload


def checkpoint_exists(directory: str | Path | None) -> bool:
    return directory is not None and checkpoint_path(directory).is_file()


def discard_checkpoint(directory: str | Path) -> None:
    """Remove the checkpoint and teacher cache once their stage is complete (the checkpoint is as large as
    the model and optimizer, a teacher cache hundreds of MB on real data)."""
    for name in RESUME_FILES:
        (Path(directory) / name).unlink(missing_ok=True)


def state_digest(module: Any) -> str:
    """SHA-256 of a module's state dict: names, dtypes, shapes and bytes of every tensor (plus the repr of any
    extra state). About 1 s per 400 MB of weights."""
    import torch

    digest = hashlib.sha256()
    for name, value in module.state_dict().items():
        digest.update(name.encode())
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{tensor.dtype}{list(value.shape)}".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes())
        else:
            digest.update(repr(value).encode())
    return digest.hexdigest()


def examples_digest(encoded: Sequence[Sequence[int]], labels: Sequence[int] | None = None) -> str:
    """SHA-256 of token-id sequences (and their labels): what a training run or a teacher cache was made from."""
    digest = hashlib.sha256()
    digest.update(np.fromiter((len(ids) for ids in encoded), dtype=np.int64, count=len(encoded)).tobytes())
    digest.update(np.fromiter(itertools.chain.from_iterable(encoded), dtype=np.int64).tobytes())
    if labels is not None:
        digest.update(np.asarray(labels, dtype=np.int64).tobytes())
    return digest.hexdigest()
