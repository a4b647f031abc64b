"""OpenVINO's own INT8: NNCF post-training quantization of an ONNX file, written as an OpenVINO IR.

OpenVINO needs its own INT8 path. Reading ONNX Runtime's dynamic-INT8 graph (MatMulInteger with
DynamicQuantizeLinear) it is slower than on the FP32 graph; NNCF's static INT8 (FakeQuantize nodes that the
CPU plugin folds into INT8 kernels, activation ranges calibrated on train texts, SmoothQuant and bias correction
for transformers) is what its CPU plugin runs fast. Measured on the fine-tuned MiniLM teacher (AMD EPYC,
2 threads, b1 s128, interleaved, OpenVINO 2026.4, NNCF 3.4): ONNX Runtime FP32 9.72 ms, ONNX Runtime dynamic
INT8 5.00 ms; OpenVINO on that dynamic-INT8 graph 11.24 ms, on NNCF's INT8 3.19 ms (1.57x faster than ONNX
Runtime's INT8), logits 0.11 from FP32 against ONNX Runtime INT8's 0.32.

NNCF quantizes either the ``openvino.Model`` read from the ONNX file or the ONNX ModelProto itself. Both gave
OpenVINO the same speed (3.19 ms either way, same run); the ModelProto route writes a QDQ ONNX file that ONNX
Runtime runs slowly (12.13 ms, slower than its FP32) and took longer to quantize (7.1 s vs 4.5 s), so this module
takes the OpenVINO route and writes an IR: a variant only OpenVINO runs, and says so (``Variant.runtime ==
"openvino"``).
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from compress.errors import StageError
from compress.runtimes.openvino import import_openvino, read_model, save_ir

Preset = Literal["performance", "mixed"]


def ir_path(target: Path) -> Path:
    """The ``.xml`` an IR for ``target`` is written to (its ``.bin`` goes beside it)."""
    target = Path(target)
    return target if target.suffix == ".xml" else target.with_suffix(".xml")


def quantize_for_openvino(
    source: Path,
    target: Path,
    calibration: Sequence[dict[str, np.ndarray]],
    *,
    preset: Preset = "performance",
) -> Path:
    """NNCF INT8 of the ONNX file ``source``, calibrated on ``calibration`` (named input batches, each fed
    as it is; one example per batch keeps padding out of the ranges), written as an IR; returns its ``.xml``
    (``target``, with ``.xml`` for any other suffix; the ``.bin`` beside it).

    ``preset``: ``performance`` (symmetric activations and weights: the fastest kernels) or ``mixed``
    (asymmetric activations, for ranges far from zero)."""
    import_openvino()
    try:
        import nncf
    except ImportError as error:
        raise StageError(f"quantize (openvino): NNCF is not installed ({error}); pip install nncf") from None
    if not calibration:
        raise StageError("quantize (openvino): no calibration batches")
    presets = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
    model = read_model(source)
    names = [port.get_any_name() for port in model.inputs]
    missing = [name for name in names if name not in calibration[0]]
    if missing:
        raise StageError(f"quantize (openvino): the model needs inputs {missing}; calibration gives {sorted(calibration[0])}")
    batches = [{name: batch[name] for name in names} for batch in calibration]
    try:
        with _quiet_nncf():
            quantized = nncf.quantize(
                model,
                nncf.Dataset(batches),
                preset=presets[preset],
                target_device=nncf.TargetDevice.CPU,
                model_type=nncf.ModelType.TRANSFORMER,
                subset_size=len(batches),
            )
    except Exception as error:  # NNCF raises its own and bare errors for graphs it cannot handle
        raise StageError(f"quantize (openvino): NNCF failed ({type(error).__name__}: {str(error)[:300]})") from None
    return save_ir(quantized, ir_path(target), compress_to_fp16=True)


@contextlib.contextmanager
def _quiet_nncf() -> Iterator[None]:
    """NNCF draws progress bars on stdout and logs advice at INFO/WARNING; the stage prints its own summary."""
    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)
