"""Runtimes that execute a variant's artifact: one module per backend, registered by name.

Adding a runtime is one module defining a :class:`Runtime` subclass decorated with
:func:`register_runtime`, plus its import below.
"""

from compress.runtimes import onnxruntime, openvino, torch, torch_compile  # noqa: F401  (registers the runtimes)
from compress.runtimes.base import (
    ONNX_FILE,
    TORCH_MODEL,
    Inputs,
    Predictor,
    Runtime,
    RuntimeUnavailable,
    batch_size,
    get_runtime,
    open_predictor,
    open_runtime,
    register_runtime,
    runtime_names,
)
from compress.runtimes.onnxruntime import CPU_DISABLED_FUSIONS, OnnxPredictor, open_onnx_session
from compress.runtimes.torch import TorchPredictor

DEFAULT_RUNTIMES = ("torch", "onnxruntime", "torch-fp16", "onnxruntime-trt")
"""Runtimes ``evaluate`` and ``compress bench`` time by default; torch.compile is opt-in (compiling each
shape costs tens of seconds on a small CPU), and so are ``openvino`` and ``openvino-bf16`` (an optional
package: ``runtimes: [torch, onnxruntime, openvino]``)."""

__all__ = [
    "CPU_DISABLED_FUSIONS",
    "DEFAULT_RUNTIMES",
    "ONNX_FILE",
    "TORCH_MODEL",
    "Inputs",
    "OnnxPredictor",
    "Predictor",
    "Runtime",
    "RuntimeUnavailable",
    "TorchPredictor",
    "batch_size",
    "get_runtime",
    "open_onnx_session",
    "open_predictor",
    "open_runtime",
    "register_runtime",
    "runtime_names",
]
