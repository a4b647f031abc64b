"""ONNX Runtime INT8 quantization helpers."""

from __future__ import annotations

from pathlib import Path

import onnx

from compress.io_utils import atomic_path


def strip_value_info(source: Path, target: Path) -> Path:
    """Copy ``source`` without ``graph.value_info``: stale shape annotations break ORT's quantizer."""
    model = onnx.load(str(source))
    del model.graph.value_info[:]
    onnx.save(model, str(target))
    return target


def quantize_dynamic_int8(
    source: Path, target: Path, per_channel: bool, reduce_range: bool, weight_type: str
) -> Path:
    """Dynamic INT8: weights quantized offline, activations quantized per batch at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    types = {"qint8": QuantType.QInt8, "quint8": QuantType.QUInt8}
    with atomic_path(target) as tmp:
        clean = tmp.with_name(tmp.name + ".clean.onnx")
        try:
            strip_value_info(source, clean)
            quantize_dynamic(
                str(clean),
                str(tmp),
                per_channel=per_channel,
                reduce_range=reduce_range,
                weight_type=types[weight_type],
            )
        finally:
            clean.unlink(missing_ok=True)
    return target
