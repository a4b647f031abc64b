"""Measured latency of candidate students: built with random weights (latency does not depend on them),
exported, fused and quantized as the recipe would, then timed interleaved on the serving runtime.

Measurements are cached per machine (``$COMPRESS_CACHE_DIR/student-latency.json``), keyed by the machine
fingerprint (CPU model and flags, threads, torch version), the runtime and its version, the precision, the
input shape and the teacher's architecture, so a second search on the same machine times nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from compress.core.machine import MachineCache, busy_load, fingerprint, fingerprint_key
from compress.core.variant import ONNX, OPENVINO, Variant
from compress.errors import StageError
from compress.evaluation.environment import library_version
from compress.evaluation.latency import measure_interleaved
from compress.runtimes import Inputs, open_runtime
from compress.search.config import BudgetConfig
from compress.search.space import StudentShape

SWEEP_FORMAT = 1
"""Bumped when how a candidate is built or timed changes: older cache entries are not used."""
CACHE_NAME = "student-latency"
RUNTIME_LIBRARIES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


@dataclass
class MeasuredShape:
    shape: StudentShape
    p50_ms: float
    p90_ms: float
    size_mb: float
    reference_ms: float | None
    """The budget reference's p50 in the same sweep (None without a reference)."""
    cached: bool = False

    @property
    def reference_ratio(self) -> float | None:
        return self.p50_ms / self.reference_ms if self.reference_ms else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "p50_ms": round(self.p50_ms, 4),
            "p90_ms": round(self.p90_ms, 4),
            "size_mb": round(self.size_mb, 2),
            "vs_reference": round(self.reference_ratio, 3) if self.reference_ratio else None,
            "cached": self.cached,
        }


def _library_version(runtime: str) -> str:
    return library_version(RUNTIME_LIBRARIES.get(runtime, runtime)) or "absent"


def sweep_identity(teacher: nn.Module, budget: BudgetConfig) -> dict[str, Any]:
    """What a candidate's measured latency depends on, besides its shape."""
    config = teacher.config
    return {
        **fingerprint(threads=budget.threads),
        "format": SWEEP_FORMAT,
        "runtime": budget.runtime,
        "runtime_version": _library_version(budget.runtime),
        "precision": budget.precision,
        "optimize": budget.optimize,
        "setting": budget.setting,
        "model_type": config.model_type,
        "vocab_size": config.vocab_size,
        "max_position_embeddings": getattr(config, "max_position_embeddings", None),
    }


def build_candidate(
    teacher: nn.Module,
    shape: StudentShape,
    example: Inputs,
    directory: Path,
    budget: BudgetConfig,
    output_names: tuple[str, ...] | list[str],
) -> Path:
    """The ONNX file the serving runtime would run for ``shape``: random weights, exported, fused where the
    family fuses, quantized where the budget is INT8."""
    from compress.distillation.student import StudentSpec, build_student
    from compress.models.families.base import family_for
    from compress.onnx.export import export_onnx
    from compress.onnx.fusion import fuse_transformer

    directory.mkdir(parents=True, exist_ok=True)
    spec = StudentSpec(layers=shape.layers, heads=shape.heads, ffn=shape.ffn, hidden=shape.hidden, init="random")
    student, _ = build_student(teacher, spec)
    path = export_onnx(student, example, directory / "model.onnx", 17, output_names)
    fusion_type = family_for(teacher).fusion_type
    if budget.optimize and fusion_type:
        fused = fuse_transformer(path, directory / "fused.onnx", [example], 1e-3, fusion_type)
        if fused["used"]:
            path = directory / "fused.onnx"
    if budget.precision == "int8":
        path = quantize_for_runtime(budget.runtime, path, directory / "int8.onnx", example)
    return path


def quantize_for_runtime(runtime: str, source: Path, target: Path, example: Inputs) -> Path:
    """The runtime's own INT8 path: ONNX Runtime's dynamic quantization (what the edge recipe bundles), or
    OpenVINO's NNCF post-training quantization."""
    if runtime.startswith("onnxruntime"):
        from compress.quantization.ort import quantize_onnx
        from compress.quantization.settings import OrtQuantSettings

        return quantize_onnx(source, target, OrtQuantSettings())
    if runtime == "openvino":
        from compress.quantization.openvino import quantize_for_openvino

        return quantize_for_openvino(source, target, [dict(example)])
    raise StageError(f"distill search: runtime {runtime!r} has no INT8 path here; use budget.precision: fp32")


def measure_shapes(
    teacher: nn.Module,
    shapes: list[StudentShape],
    reference: StudentShape | None,
    example: Inputs,
    timed_inputs: Inputs,
    budget: BudgetConfig,
    output_names: tuple[str, ...] | list[str],
    work_dir: Path,
    rounds: int,
    remeasure: bool = False,
    cache: MachineCache | None = None,
    log: Callable[[str], object] = print,
) -> dict[StudentShape, MeasuredShape]:
    """Every shape's latency at ``timed_inputs`` (the budget's setting) on the budget's runtime; the
    reference (when given) is timed in the same interleaved rounds, so ratios to it hold whatever the load."""
    cache = cache or MachineCache(CACHE_NAME)
    identity = sweep_identity(teacher, budget)
    wanted = list(dict.fromkeys([*shapes, *([reference] if reference else [])]))
    entries = {shape: {**identity, "shape": shape.to_dict()} for shape in wanted}
    keys = {shape: fingerprint_key(entry) for shape, entry in entries.items()}
    measured: dict[StudentShape, MeasuredShape] = {}
    if not remeasure:
        for shape in wanted:
            value = cache.get(keys[shape])
            if value and (reference is None or value.get("reference_ms")):
                measured[shape] = MeasuredShape(
                    shape, value["p50_ms"], value["p90_ms"], value["size_mb"], value.get("reference_ms"), cached=True
                )
    missing = [shape for shape in wanted if shape not in measured]
    if not missing:
        log(f"    latency of {len(wanted)} candidates read from this machine's cache ({cache.path})")
        return measured
    if reference is not None and reference not in missing:
        missing.append(reference)  # new candidates are timed against a fresh measurement of the reference
    started = time.perf_counter()
    predictors = {}
    for index, shape in enumerate(missing, 1):
        name = shape.name()
        path = build_candidate(teacher, shape, example, work_dir / name, budget, output_names)
        variant = Variant(name, OPENVINO if path.suffix == ".xml" else ONNX, budget.precision, path, Path("."), "search")
        predictor = open_runtime(variant, budget.runtime, "cpu", budget.threads)
        if predictor is None:
            raise StageError(f"distill search: runtime {budget.runtime!r} cannot run an ONNX file on the CPU")
        predictors[shape] = (predictor, variant.size_bytes() / 1e6)  # an OpenVINO IR counts its .bin too
        log(f"    built candidate {index}/{len(missing)} {name} ({predictors[shape][1]:.1f} MB, "
            f"{time.perf_counter() - started:.0f} s)")
    named = {shape.name(): predictor for shape, (predictor, _) in predictors.items()}
    log(f"    timing {len(named)} candidates on {budget.runtime} ({budget.precision}, {budget.setting}), "
        f"{rounds} interleaved rounds")
    stats = measure_interleaved(named, {n: timed_inputs for n in named}, 3, rounds, prime_ms=10.0)
    reference_ms = stats[reference.name()].p50 if reference is not None else None
    busy = busy_load()
    for shape, (_, size_mb) in predictors.items():
        timing = stats[shape.name()]
        result = MeasuredShape(shape, timing.p50, timing.p90, size_mb, reference_ms)
        measured[shape] = result
        if busy is None:
            cache.put(keys[shape], entries[shape], {
                "p50_ms": result.p50_ms, "p90_ms": result.p90_ms, "size_mb": size_mb, "reference_ms": reference_ms,
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            })
    if busy is not None:
        log(f"    machine busy (load {busy[0]} on {busy[1]} cores): these timings are not cached")
    log(f"    latency sweep: {len(named)} candidates in {time.perf_counter() - started:.0f} s")
    return measured
