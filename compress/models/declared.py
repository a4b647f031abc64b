"""A model's config as its source declares it, read without loading weights or running code.

A Hugging Face checkpoint directory's ``config.json``, a compress model directory's manifest (its
``config`` section), the embedded MiniLM's packaged directory. Hub ids and Python factories are not read
(that would download or run code): for them, and for unreadable files, the reason is returned instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compress.core.files import read_json
from compress.errors import CompressError


def declared_config(source: str) -> tuple[dict[str, Any] | None, str]:
    """``(config, "")`` from ``source``'s files alone, with ``"compress_model": True`` for a compress
    model directory, or ``(None, why it was not read)``."""
    from compress.models.persistence import MANIFEST
    from compress.models.sources import EMBEDDED_ALIASES, _is_factory, embedded_model_dir

    if source.lower() in EMBEDDED_ALIASES:
        try:
            directory = embedded_model_dir()
        except CompressError:
            return None, "the embedded model is not installed"
    elif _is_factory(source):
        return None, f"model.source {source!r} is a Python factory (not run to validate)"
    else:
        directory = Path(source).expanduser()
        if not directory.is_dir():
            return None, f"model.source {source!r} is not a local directory (a hub id is not downloaded to validate)"
    for name, section in ((MANIFEST, "config"), ("config.json", None)):
        path = directory / name
        if not path.is_file():
            continue
        try:
            data = read_json(path)
        except (OSError, ValueError):
            return None, f"{path} cannot be read"
        if section and isinstance(data, dict):
            if data.get("factory"):
                return None, f"{path} names a Python factory (not run to validate)"
            data = data.get(section)
            data = {**data, "compress_model": True} if isinstance(data, dict) else data
        if not isinstance(data, dict):
            return None, f"{path} is not a JSON object"
        return data, ""
    return None, f"{directory} has no config.json or {MANIFEST}"
