"""This machine: its CPU as the kernel reports it, a fingerprint of what decides speed, a per-user cache.

Speed decisions measured here (``precision: auto``, later the latency-budget search) hold only for the
machine they were measured on, so they are cached under a fingerprint of it: CPU model, CPU flags, torch's
intra-op thread count and torch's version. A different CPU, a different thread count or a torch upgrade
gives a different key and the measurement is taken again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compress.core.files import read_json, write_json_atomic

CACHE_DIR_VARIABLE = "COMPRESS_CACHE_DIR"


@dataclass(frozen=True)
class CpuInfo:
    model: str
    flags: frozenset[str]
    """Every flag of the ``flags`` line of ``/proc/cpuinfo`` (empty where there is none: not Linux)."""
    source: str
    """``/proc/cpuinfo``, or ``platform`` where the kernel does not list CPU flags."""


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """The CPU's model name and flags (read once per process: they do not change while it runs)."""
    return parse_cpuinfo(Path("/proc/cpuinfo"))


def parse_cpuinfo(path: Path) -> CpuInfo:
    if not path.is_file():
        return CpuInfo(platform.processor() or platform.machine(), frozenset(), "platform")
    model, flags = platform.processor() or platform.machine(), frozenset()
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            model = value.strip()
        elif key.strip() == "flags":
            flags = frozenset(value.split())
            break  # the first processor's block names the model before its flags; the others repeat it
    return CpuInfo(model, flags, str(path))


def fingerprint(cpu: CpuInfo | None = None, threads: int | None = None) -> dict[str, Any]:
    """What a speed measurement depends on: CPU model and flags, torch threads, torch version."""
    import torch

    cpu = cpu or cpu_info()
    return {
        "cpu": cpu.model,
        "flags": sorted(cpu.flags),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "torch": torch.__version__,
    }


def fingerprint_key(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def busy_load() -> tuple[float, int] | None:
    """``(1-minute load, cores)`` while other work competes for the CPU (load above cores + 1, the
    threshold of the latency notes), else None: measurements taken then are not worth caching."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        return None
    cores = os.cpu_count() or 1
    return (round(load, 1), cores) if load > cores + 1 else None


def cache_dir() -> Path:
    """``$COMPRESS_CACHE_DIR``, else ``$XDG_CACHE_HOME/compress``, else ``~/.cache/compress``."""
    if os.environ.get(CACHE_DIR_VARIABLE):
        return Path(os.environ[CACHE_DIR_VARIABLE])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "compress"


class MachineCache:
    """One JSON file per kind of measurement (``precision.json`` ...), one entry per machine fingerprint.

    A cache that cannot be read or written costs a re-measurement, never a failed run.
    """

    def __init__(self, name: str, directory: Path | None = None) -> None:
        self.path = (directory or cache_dir()) / f"{name}.json"

    def _entries(self) -> dict[str, Any]:
        try:
            entries = read_json(self.path)
        except (OSError, ValueError):
            return {}
        return entries if isinstance(entries, dict) else {}

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self._entries().get(key)
        return entry.get("value") if isinstance(entry, dict) else None

    def put(self, key: str, identity: dict[str, Any], value: dict[str, Any]) -> None:
        entries = self._entries()
        entries[key] = {"fingerprint": identity, "value": value}
        try:
            write_json_atomic(self.path, entries)
        except OSError:
            pass
