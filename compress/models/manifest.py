"""The ``compress_model.json`` manifest that marks a model directory written by compress and says how to load it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compress.core.files import read_json
from compress.errors import ModelLoadError

MANIFEST = "compress_model.json"


def is_compress_model_dir(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_manifest(directory: Path) -> dict[str, Any]:
    """The directory's ``compress_model.json`` as a mapping, or a ModelLoadError naming it."""
    path = directory / MANIFEST
    try:
        manifest = read_json(path)
    except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ModelLoadError(f"{path}: not a valid model description ({type(error).__name__})") from None
    if not isinstance(manifest, dict):
        raise ModelLoadError(f"{path}: not a valid model description (expected a JSON object)")
    return manifest
