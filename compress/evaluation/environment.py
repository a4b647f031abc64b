"""What machine and libraries produced the numbers in a report."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from compress.core.machine import cpu_info

LIBRARIES = (
    "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "transformers", "torch-pruning", "neural-compressor",
    "openvino", "nncf", "tokenizers",
)
FLAG_NAMES = {
    "avx2": "AVX2",
    "avx512f": "AVX512",
    "avx512_vnni": "AVX512-VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX512-BF16",
    "amx_tile": "AMX",
    "amx_bf16": "AMX-BF16",
}
"""The CPU flags a report names: the ones the speed of INT8 (VNNI) and bf16 (AVX512-BF16, AMX) depends on."""


def cpu_description() -> tuple[str, list[str]]:
    cpu = cpu_info()
    return cpu.model, [label for flag, label in FLAG_NAMES.items() if flag in cpu.flags]


def library_version(name: str) -> str | None:
    """The installed version of the distribution ``name``; None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    return {"python": platform.python_version(), **{name: library_version(name) for name in LIBRARIES}}


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def gpu_description() -> dict[str, Any] | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {
        "name": props.name,
        "memory_gib": round(props.total_memory / 2**30, 1),
        "cuda": torch.version.cuda,
        "driver": _nvidia_driver(),
    }


def _nvidia_driver() -> str | None:
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def onnxruntime_providers() -> list[str]:
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())


def load_average() -> list[float] | None:
    """1/5/15-minute load averages when the report was written: a busy machine explains noisy latency."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def environment(threads: int, precision: dict[str, Any] | None = None) -> dict[str, Any]:
    """``precision``: how a training stage chose its precision (:class:`compress.training.precision.PrecisionDecision`)."""
    from compress.runtimes import CPU_DISABLED_FUSIONS

    model, flags = cpu_description()
    return {
        "load_average": load_average(),
        "onnxruntime_providers": onnxruntime_providers(),
        "onnxruntime_cpu_disabled_optimizers": list(CPU_DISABLED_FUSIONS),
        "cpu": model,
        "cpu_flags": flags,
        "cores": os.cpu_count(),
        "threads": threads,
        "precision": precision,
        "platform": platform.platform(),
        "gpu": gpu_description(),
        "libraries": library_versions(),
        "git_commit": git_commit(),
    }
