"""ONNX Runtime on an ONNX file: ``onnxruntime`` (CPU or CUDA provider) and ``onnxruntime-trt`` (TensorRT).

Every ONNX Runtime session compress opens (evaluation, export checks, quantization trials, the bundle)
comes from :func:`open_onnx_session`, so the session options below are set in this one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from compress.errors import CompressError
from compress.runtimes.base import ONNX_FILE, HostTimed, Inputs, Runtime, RuntimeUnavailable, register_runtime

if TYPE_CHECKING:
    from compress.core.variant import Variant

CPU_DISABLED_FUSIONS = ("SkipLayerNormFusion",)
"""ONNX Runtime graph fusions left off on the CPU provider. ORT 1.31's CPU SkipLayerNormalization kernel
took 170-180 us per [128, 384] call in INT8 graphs here, against ~50 us for LayerNormalization plus two
Adds; without the fusion the edge student's INT8 graph ran 1.21x faster at b1 s128 (1.26x at s47) and the
teacher's 1.08x, with FP32 graphs unchanged (same process, interleaved). Measured on an AMD EPYC with
AVX512-VNNI and AVX512-BF16 (the CPU of every bundled report, 2 threads), and re-measured on an Intel Xeon
with AVX512-VNNI but no BF16: the teacher's INT8 graph took 12.36 ms without the fusion against 14.01 ms with
it, so it stays off on both. Not measured on AVX2-only or ARM CPUs; every report's environment block
and every bundle's manifest list the fusions left off."""

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
TENSORRT_PROVIDER = "TensorrtExecutionProvider"


def session_options(threads: int | None = None, optimized_graph: str | Path | None = None):
    """The ``SessionOptions`` of every session: fixed threads, sequential execution, no spinning."""
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
    return options


def disabled_optimizers(provider: str) -> list[str] | None:
    """Graph fusions left off for ``provider`` (see :data:`CPU_DISABLED_FUSIONS`)."""
    return list(CPU_DISABLED_FUSIONS) if provider == CPU_PROVIDER else None


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

    options = session_options(threads, optimized_graph)
    on_cuda = device.startswith("cuda")
    provider = provider or (CUDA_PROVIDER if on_cuda else CPU_PROVIDER)
    if provider not in ort.get_available_providers():
        raise RuntimeUnavailable(f"ONNX Runtime has no {provider} here (install onnxruntime-gpu for CUDA/TensorRT)")
    providers = list(dict.fromkeys([provider, CUDA_PROVIDER if on_cuda else provider, CPU_PROVIDER]))
    try:
        session = ort.InferenceSession(
            str(path), options, providers=providers, disabled_optimizers=disabled_optimizers(provider)
        )
    except Exception as error:  # onnxruntime raises its own exception types for corrupt files
        raise CompressError(f"{path}: ONNX Runtime cannot load this model ({error})") from None
    if provider not in session.get_providers():
        raise RuntimeUnavailable(f"ONNX Runtime could not initialise {provider} (it fell back to {session.get_providers()[0]})")
    return session


class OnnxPredictor(HostTimed):
    """An ONNX Runtime session fed the graph's own inputs by name; returns its first output."""

    runtime = "onnxruntime"

    def __init__(
        self, path: str | Path, device: str = "cpu", threads: int | None = None, provider: str | None = None
    ) -> None:
        self.device = device
        self.session = open_onnx_session(path, device, threads, provider)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def run(self, inputs: Inputs) -> np.ndarray:
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise CompressError(f"the ONNX graph needs inputs {missing}; given {sorted(inputs)}")
        return self.session.run(None, {name: inputs[name] for name in self.input_names})[0]

    def output_width(self) -> int | None:
        """The first output's last dimension, when the graph fixes it."""
        width = self.session.get_outputs()[0].shape[-1]
        return width if isinstance(width, int) else None

    def synchronize(self) -> None:
        """ONNX Runtime's ``run`` returns after the outputs are on the host."""


@register_runtime
class OnnxRuntime(Runtime):
    name = "onnxruntime"
    formats = frozenset({ONNX_FILE})
    devices = ("cpu", "cuda")
    library = "onnxruntime"

    def open(self, variant: Variant, device: str, threads: int | None = None) -> OnnxPredictor:
        return OnnxPredictor(variant.path, device, threads)


@register_runtime
class OnnxRuntimeTensorRT(Runtime):
    name = "onnxruntime-trt"
    formats = frozenset({ONNX_FILE})
    devices = ("cuda",)
    library = "onnxruntime"

    def open(self, variant: Variant, device: str, threads: int | None = None) -> OnnxPredictor:
        return OnnxPredictor(variant.path, device, threads, TENSORRT_PROVIDER)
