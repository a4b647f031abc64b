"""ONNX Runtime INT8 quantization helpers."""

from __future__ import annotations

from pathlib import Path

import onnx

from compress.errors import ModelLoadError
from compress.io_utils import atomic_path


def load_onnx(path: Path) -> onnx.ModelProto:
    """``onnx.load`` with a clear error for a missing, truncated or non-ONNX file."""
    try:
        return onnx.load(str(path))
    except Exception as error:  # protobuf DecodeError, OSError ...
        raise ModelLoadError(f"{path}: not a readable ONNX model ({type(error).__name__}: {error})") from None


def strip_value_info(source: Path, target: Path) -> Path:
    """Copy ``source`` without ``graph.value_info``: stale shape annotations break ORT's quantizer."""
    model = load_onnx(source)
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
