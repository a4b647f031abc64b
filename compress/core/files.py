"""Small file helpers shared by every stage: atomic writes, hashing, sizes."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TEMP_PREFIX = ".compress-tmp."
"""Every temporary file or folder compress makes starts with this, so a cleaner never touches a user's file."""
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r".+\.[0-9a-f]{16}", re.DOTALL)
PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
"""A name a recipe may give to something compress writes: one folder name, no separators, not hidden."""


def temp_sibling(target: Path) -> Path:
    """A fresh, compress-unique name next to ``target`` (``.compress-tmp.<name>.<16 hex>``)."""
    return target.with_name(f"{TEMP_PREFIX}{target.name[:100]}.{secrets.token_hex(8)}")


def is_temp_name(name: str) -> bool:
    """Whether ``name`` has the shape :func:`temp_sibling` gives (and so was made by compress)."""
    return _TEMP_NAME.fullmatch(name) is not None


def check_plain_name(value: str) -> str:
    """Refuse names that could leave the folder they are joined to (``..``, ``/x``, ``a/b``, ``.``, NUL ...)."""
    if not PLAIN_NAME.fullmatch(value):
        raise ValueError(
            "must be a plain folder name (1-100 of A-Z a-z 0-9 . _ -, not starting with '.' or '-'), "
            "so that it stays inside the run directory"
        )
    return value


def _create_temp_sibling(target: Path, create: Callable[[Path], None]) -> Path:
    while True:
        path = temp_sibling(target)
        try:
            create(path)
        except FileExistsError:
            continue
        return path


def _create_file(path: Path) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))


def make_temp_dir(target: Path) -> Path:
    """Create an empty compress-unique folder next to ``target`` with the user's usual permissions (umask)."""
    return _create_temp_sibling(target, lambda path: path.mkdir(mode=0o777))


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` only if the block succeeds.

    A killed process therefore never leaves a half-written file under the final name. The temporary
    file is created like any file the user makes (mode 0666 less their umask), not 0600 as
    ``tempfile.mkstemp`` would, so what compress writes can be read by whoever may read the folder.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp_sibling(target, _create_file)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(target: str | Path, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_json_atomic(target: str | Path, data: Any) -> Path:
    return write_text_atomic(target, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def size_bytes(path: str | Path) -> int:
    """Size of a file, or the total size of the files under a directory."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
