"""Per-epoch training checkpoints, so an interrupted training stage resumes mid-stage.

A checkpoint holds only tensors and plain Python values, saved with ``torch.save`` and read back with
``torch.load(weights_only=True)``: loading one never runs code. It is written atomically, and a
checkpoint whose fingerprint (what was being trained, and how) differs from the current call is ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compress.io_utils import atomic_path

CHECKPOINT_FILE = "training-checkpoint.pt"


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


def discard_checkpoint(directory: str | Path) -> None:
    """Remove the checkpoint once its stage is complete (it is as large as the model and optimizer)."""
    checkpoint_path(directory).unlink(missing_ok=True)
