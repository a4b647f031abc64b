"""OpenVINO on the CPU: ``openvino`` (FP32 arithmetic) and ``openvino-bf16`` (OpenVINO's own default on CPUs with
bfloat16 instructions). Both open an ONNX file (OpenVINO reads it directly) or an OpenVINO IR (``model.xml`` plus
``model.bin``, what ``quantize`` with ``backend: openvino`` writes), and are opt-in: a recipe lists them in
``evaluate.runtimes``. Without the ``openvino`` package they raise :class:`RuntimeUnavailable`, which ``evaluate``
turns into a note.

Precision. OpenVINO's CPU plugin runs an FP32 model in bfloat16 wherever the CPU has AVX512-BF16 or AMX
(``INFERENCE_PRECISION_HINT`` defaults to ``bf16`` there), silently. On the 2-core AMD EPYC of the bundled reports
(AVX512-BF16, OpenVINO 2026.4, b1 s128, 2 threads, interleaved) the fine-tuned MiniLM teacher's FP32 ONNX took
9.72 ms on ONNX Runtime, 7.84 ms on OpenVINO pinned to f32 (1.24x; logits within 1e-7 of ONNX Runtime's) and
4.88 ms on OpenVINO's bf16 default (1.99x; logits 2.4e-3 away). So ``openvino`` pins f32, and a row it measures
means what the variant's precision says; ``openvino-bf16`` is the default, reported as ``bf16``, applies to FP32
variants only, and is refused on a CPU without bfloat16 (where OpenVINO would quietly run f32 instead).

Every OpenVINO model compress compiles (evaluation, the bundle, ``compress predict``) comes from
:func:`compile_config`: fixed threads, the latency hint (one stream), the precision above.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from compress.core.files import make_temp_dir
from compress.core.variant import OPENVINO
from compress.errors import CompressError
from compress.runtimes.base import ONNX_FILE, HostTimed, Inputs, Runtime, RuntimeUnavailable, register_runtime

if TYPE_CHECKING:
    from compress.core.variant import Variant

OPENVINO_IR = OPENVINO
"""Artifact format: an OpenVINO IR (``Variant.runtime == "openvino"``; ``path`` is the ``.xml``)."""
INSTALL_HINT = "pip install openvino (or: pip install -e '.[openvino]')"
FP32 = "f32"
BF16 = "bf16"


def import_openvino():
    """The ``openvino`` module, or :class:`RuntimeUnavailable` naming how to install it."""
    try:
        import openvino
    except ImportError as error:
        raise RuntimeUnavailable(f"OpenVINO is not installed ({error}); {INSTALL_HINT}") from None
    return openvino


@functools.cache
def openvino_core():
    """One ``openvino.Core`` per process (it holds the loaded device plugins)."""
    return import_openvino().Core()


def openvino_version() -> str:
    return import_openvino().__version__


def compile_config(threads: int | None, precision: str = FP32) -> dict[str, Any]:
    """The CPU plugin's settings for every compiled model: latency hint (one stream), fixed threads, precision."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


def has_bf16() -> bool:
    return "BF16" in openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def weights_path(xml: str | Path) -> Path:
    """Where an IR's weights are: the ``.bin`` beside its ``.xml``."""
    return Path(xml).with_suffix(".bin")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def read_model(path: str | Path, weights: str | Path | None = None):
    """An ``openvino.Model`` from an ONNX file or an IR (its ``.bin``: ``weights``, else beside the ``.xml``)."""
    core = openvino_core()
    try:
        return core.read_model(str(path), str(weights)) if weights else core.read_model(str(path))
    except RuntimeError as error:  # OpenVINO raises RuntimeError for unreadable or corrupt models
        raise CompressError(f"{path}: OpenVINO cannot read this model ({_first_line(error)})") from None


def save_ir(model: Any, target: Path, compress_to_fp16: bool) -> Path:
    """Write ``model`` (an ``openvino.Model``, or the path of an ONNX file or IR to read) as ``target`` (.xml)
    and its ``.bin``, atomically: both are written in a temporary folder and moved in, weights first.

    ``compress_to_fp16``: store the weights left in float as FP16 (OpenVINO's own default for IR; the CPU
    computes with them in f32); off, an FP32 model's IR computes exactly what its ONNX file does."""
    openvino = import_openvino()
    if isinstance(model, str | Path):
        model = read_model(model)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = make_temp_dir(target)
    try:
        openvino.save_model(model, str(staging / "model.xml"), compress_to_fp16=compress_to_fp16)
        (staging / "model.bin").replace(weights_path(target))
        (staging / "model.xml").replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class OpenVinoPredictor(HostTimed):
    """A model compiled for OpenVINO's CPU plugin, fed its own inputs by name; returns its first output
    (as :class:`~compress.runtimes.onnxruntime.OnnxPredictor` does)."""

    runtime = "openvino"

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        threads: int | None = None,
        precision: str = FP32,
        weights: str | Path | None = None,
    ) -> None:
        if device != "cpu":
            raise RuntimeUnavailable(f"compress runs OpenVINO on the CPU only, not {device!r}")
        import_openvino()
        self.device = device
        model = read_model(path, weights)
        try:
            self.compiled = openvino_core().compile_model(model, "CPU", compile_config(threads, precision))
        except RuntimeError as error:
            raise CompressError(f"{path}: OpenVINO cannot compile this model for the CPU ({_first_line(error)})") from None
        self.request = self.compiled.create_infer_request()
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]

    def run(self, inputs: Inputs) -> np.ndarray:
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise CompressError(f"the OpenVINO model needs inputs {missing}; given {sorted(inputs)}")
        self.request.infer({name: np.ascontiguousarray(inputs[name]) for name in self.input_names})
        return self.request.get_output_tensor(0).data.copy()  # the request reuses its output buffer

    def output_width(self) -> int | None:
        """The first output's last dimension, when the model fixes it."""
        last = self.compiled.outputs[0].get_partial_shape()[-1]
        return last.get_length() if last.is_static else None

    def synchronize(self) -> None:
        """``infer`` returns after the outputs are on the host."""


@register_runtime
class OpenVino(Runtime):
    name = "openvino"
    formats = frozenset({ONNX_FILE, OPENVINO_IR})
    devices = ("cpu",)
    library = "openvino"

    def open(self, variant: Variant, device: str, threads: int | None = None) -> OpenVinoPredictor:
        return OpenVinoPredictor(variant.path, device, threads)


@register_runtime
class OpenVinoBf16(Runtime):
    name = "openvino-bf16"
    formats = frozenset({ONNX_FILE, OPENVINO_IR})
    devices = ("cpu",)
    library = "openvino"
    precision = "bf16"

    def applies(self, variant: Variant, device: str) -> bool:
        """FP32 variants only: an INT8 model's row would be neither bf16 nor what the variant says."""
        return super().applies(variant, device) and variant.precision == "fp32"

    def open(self, variant: Variant, device: str, threads: int | None = None) -> OpenVinoPredictor:
        if not has_bf16():
            raise RuntimeUnavailable("this CPU has no bfloat16 instructions (AVX512-BF16 or AMX); OpenVINO would run f32")
        return OpenVinoPredictor(variant.path, device, threads, BF16)
