"""Predictors: run any variant (PyTorch module or ONNX file) on padded numpy batches.

A *runtime* names how a variant is executed (``torch`` eager, ``torch.compile``, ``torch-fp16`` on CUDA,
``onnxruntime`` with the CPU or CUDA execution provider, ``onnxruntime-trt``). :func:`open_runtime`
opens one, returns ``None`` when it does not apply (an ONNX file has no torch.compile), and raises
:class:`RuntimeUnavailable` when it applies but cannot run here, so callers skip it with a note.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from compress.core.requirements import cuda_available
from compress.core.variant import Variant
from compress.errors import CompressError


class Predictor(Protocol):
    runtime: str
    device: str

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...

    def synchronize(self) -> None: ...


class RuntimeUnavailable(CompressError):
    """A runtime that applies to a variant cannot run on this machine (missing library, device or provider)."""


class TorchPredictor:
    runtime = "torch"

    def __init__(self, module, device: str = "cpu", threads: int | None = None, half: bool = False) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = device
        if device != "cpu" or half:
            module = copy.deepcopy(module)  # never move or cast the variant's shared CPU module in place
        module = module.to(device).eval()
        self.module = module.half() if half else module

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        from compress.models.forward import classifier_logits

        torch = self.torch
        with torch.inference_mode():
            ids = torch.from_numpy(input_ids).to(self.device)
            mask = torch.from_numpy(attention_mask).to(self.device)
            return classifier_logits(self.module, ids, mask).float().cpu().numpy()

    def synchronize(self) -> None:
        if self.device.startswith("cuda"):
            self.torch.cuda.synchronize()

    def time_ms(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> float:
        """Time one call on CUDA (host-to-device copy, forward, copy back) with CUDA events."""
        start, end = (self.torch.cuda.Event(enable_timing=True) for _ in range(2))
        start.record()
        self.logits(input_ids, attention_mask)
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))

    def peak_memory_bytes(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> int | None:
        """This model's weights plus the peak CUDA memory one call allocates on top; None on CPU.

        ``evaluate`` keeps every variant of a device loaded while it measures each: the allocator's
        process-wide peak would count the other variants' weights too, so only the growth during the
        call is taken from it.
        """
        if not self.device.startswith("cuda"):
            return None
        cuda = self.torch.cuda
        cuda.synchronize()
        before = cuda.memory_allocated()
        cuda.reset_peak_memory_stats()
        self.logits(input_ids, attention_mask)
        cuda.synchronize()
        weights = sum(t.numel() * t.element_size() for t in (*self.module.parameters(), *self.module.buffers()))
        return int(weights + cuda.max_memory_allocated() - before)


class CompiledTorchPredictor(TorchPredictor):
    """``torch.compile`` of the module; compilation happens on the first call of each shape (warm-up)."""

    runtime = "torch.compile"

    def __init__(self, module, device: str = "cpu", threads: int | None = None) -> None:
        super().__init__(module, device, threads)
        self.module = self.torch.compile(self.module, dynamic=False)


class OnnxPredictor:
    runtime = "onnxruntime"

    def __init__(
        self, path: str | Path, device: str = "cpu", threads: int | None = None, provider: str | None = None
    ) -> None:
        self.device = device
        self.session = open_onnx_session(path, device, threads, provider)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        return self.session.run(None, {name: feeds[name] for name in self.input_names})[0]

    def synchronize(self) -> None:
        """ONNX Runtime's ``run`` returns after the outputs are on the host."""


CPU_DISABLED_FUSIONS = ("SkipLayerNormFusion",)
"""ONNX Runtime graph fusions left off on the CPU provider. ORT 1.31's CPU SkipLayerNormalization kernel
took 170-180 us per [128, 384] call in INT8 graphs here, against ~50 us for LayerNormalization plus two
Adds; without the fusion the edge student's INT8 graph ran 1.21x faster at b1 s128 (1.26x at s47) and the
teacher's 1.08x, with FP32 graphs unchanged (same process, interleaved). Measured on an AMD EPYC with
AVX512-VNNI and AVX512-BF16 (the CPU of every bundled report, 2 threads), and re-measured on an Intel Xeon
with AVX512-VNNI but no BF16: the teacher's INT8 graph took 12.36 ms without the fusion against 14.01 ms with
it, so it stays off on both. Not measured on AVX2-only or ARM CPUs; every report's environment block
and every bundle's manifest list the fusions left off."""


def open_onnx_session(
    path: str | Path,
    device: str = "cpu",
    threads: int | None = None,
    provider: str | None = None,
    optimized_graph: str | Path | None = None,
):
    """An ONNX Runtime session on ``provider`` (default: CUDA on ``cuda``, CPU otherwise).

    ``optimized_graph``: also write the graph ONNX Runtime actually runs (after its fusions) there.

    ONNX Runtime silently falls back to the CPU provider when the requested one fails to initialise;
    that would make a "GPU" number a CPU number, so a missing provider raises :class:`RuntimeUnavailable`.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning worker threads keep burning CPU after each run; when variants are timed interleaved on
    # a 2-core machine, that steals time from whichever variant runs next. Chosen on the 2-core AMD EPYC
    # VM of the bundled reports, not re-timed on other CPUs; the thread count is fixed and recorded.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    if optimized_graph:
        options.optimized_model_filepath = str(optimized_graph)
    provider = provider or ("CUDAExecutionProvider" if device.startswith("cuda") else "CPUExecutionProvider")
    if provider not in ort.get_available_providers():
        raise RuntimeUnavailable(f"ONNX Runtime has no {provider} here (install onnxruntime-gpu for CUDA/TensorRT)")
    providers = list(dict.fromkeys([provider, "CUDAExecutionProvider" if device.startswith("cuda") else provider,
                                    "CPUExecutionProvider"]))
    try:
        disabled = list(CPU_DISABLED_FUSIONS) if provider == "CPUExecutionProvider" else None
        session = ort.InferenceSession(str(path), options, providers=providers, disabled_optimizers=disabled)
    except Exception as error:  # onnxruntime raises its own exception types for corrupt files
        raise CompressError(f"{path}: ONNX Runtime cannot load this model ({error})") from None
    if provider not in session.get_providers():
        raise RuntimeUnavailable(f"ONNX Runtime could not initialise {provider} (it fell back to {session.get_providers()[0]})")
    return session


def open_predictor(variant: Variant, device: str = "cpu", threads: int | None = None) -> Predictor:
    if variant.is_torch:
        return TorchPredictor(variant.module(), device, threads)
    return OnnxPredictor(variant.path, device, threads)


@dataclass(frozen=True)
class Runtime:
    name: str
    variant_runtime: str
    """Which variants it runs: ``torch`` (modules) or ``onnxruntime`` (ONNX files)."""
    devices: tuple[str, ...]
    precision: str | None = None
    """Overrides the variant's precision in reports (``fp16``), else the variant's own."""


RUNTIMES = {
    r.name: r
    for r in (
        Runtime("torch", "torch", ("cpu", "cuda")),
        Runtime("torch.compile", "torch", ("cpu", "cuda")),
        Runtime("torch-fp16", "torch", ("cuda",), precision="fp16"),
        Runtime("onnxruntime", "onnxruntime", ("cpu", "cuda")),
        Runtime("onnxruntime-trt", "onnxruntime", ("cuda",)),
    )
}
DEFAULT_RUNTIMES = ("torch", "onnxruntime", "torch-fp16", "onnxruntime-trt")
"""torch.compile is opt-in: compiling each shape costs tens of seconds on a small CPU."""


def native_runtime(variant: Variant) -> str:
    return variant.runtime


def open_runtime(variant: Variant, runtime: str, device: str, threads: int | None = None) -> Predictor | None:
    """Open ``variant`` on ``runtime`` and ``device``; ``None`` when that combination does not apply."""
    spec = RUNTIMES.get(runtime)
    if spec is None:
        raise CompressError(f"unknown runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
    if spec.variant_runtime != variant.runtime or device not in spec.devices:
        return None
    if device == "cuda" and not cuda_available():
        raise RuntimeUnavailable("no CUDA device present")
    if spec.name == "torch":
        return TorchPredictor(variant.module(), device, threads)
    if spec.name == "torch-fp16":
        return TorchPredictor(variant.module(), device, threads, half=True)
    if spec.name == "torch.compile":
        return CompiledTorchPredictor(variant.module(), device, threads)
    provider = "TensorrtExecutionProvider" if spec.name == "onnxruntime-trt" else None
    return OnnxPredictor(variant.path, device, threads, provider)
