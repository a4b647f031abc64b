"""ONNX Runtime INT8: dynamic, or static (QDQ / QOperator) with calibration on real texts."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from onnx import TensorProto

from compress.core.files import atomic_path
from compress.errors import StageError
from compress.quantization.calibration import CalibrationReader, as_ort_reader, check_calibration_ranges
from compress.quantization.graph import check_node_names, check_scales, strip_value_info
from compress.quantization.settings import OrtQuantSettings

FLOAT = TensorProto.FLOAT
"""Type assumed for tensors shape inference cannot type (outputs of fused com.microsoft operators)."""


def quantize_dynamic_int8(
    source: Path, target: Path, per_channel: bool, reduce_range: bool, weight_type: str
) -> Path:
    """Dynamic INT8 with default operator types (kept for callers of the original helper)."""
    settings = OrtQuantSettings(per_channel=per_channel, reduce_range=reduce_range, weight_type=weight_type)
    return quantize_onnx(source, target, settings)


def calibration_cache(cache_dir: Path, source: Path, settings: OrtQuantSettings) -> Path:
    """One ranges file per (model file, calibration choice): trials that only change exclusions reuse it."""
    stat = source.stat()
    key = json.dumps(
        [
            str(source.resolve()),
            stat.st_size,
            stat.st_mtime_ns,
            settings.calibration,
            settings.percentile,
            settings.calibration_samples,
            settings.operator_types(),
        ]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache_dir / f"calibration-{settings.calibration}-{digest}.json"


def quantize_onnx(
    source: Path,
    target: Path,
    settings: OrtQuantSettings,
    reader: CalibrationReader | None = None,
    cache_dir: Path | None = None,
) -> Path:
    """Quantize ``source`` into ``target`` (atomically); static mode needs ``reader``."""
    from onnxruntime.quantization import QuantType

    types = {"qint8": QuantType.QInt8, "quint8": QuantType.QUInt8}
    if settings.mode == "static" and reader is None:
        raise StageError("quantize: static mode needs calibration texts (a calibration reader)")
    with atomic_path(target) as tmp:
        clean = tmp.with_name(tmp.name + ".clean.onnx")
        try:
            strip_value_info(source, clean)
            check_node_names(settings.exclude_nodes, clean)
            common = {
                "op_types_to_quantize": settings.operator_types(),
                "per_channel": settings.per_channel,
                "reduce_range": settings.reduce_range,
                "weight_type": types[settings.weight_type],
                "nodes_to_exclude": list(settings.exclude_nodes),
            }
            if settings.mode == "dynamic":
                from onnxruntime.quantization import quantize_dynamic

                options = {"MatMulConstBOnly": True, "DefaultTensorType": FLOAT}
                _ort_call(
                    lambda: quantize_dynamic(str(clean), str(tmp), extra_options=options, **common), None
                )
            else:
                cache = calibration_cache(cache_dir or target.parent, source, settings)
                _quantize_static(clean, tmp, settings, reader, cache, common)
            check_scales(tmp)
        finally:
            clean.unlink(missing_ok=True)
    return target


def _quantize_static(
    clean: Path, tmp: Path, settings: OrtQuantSettings, reader, cache: Path, common: dict
) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    formats = {"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}
    _ort_call(
        lambda: quantize_static(
            str(clean),
            str(tmp),
            as_ort_reader(reader),
            quant_format=formats[settings.format],
            activation_type=QuantType.QUInt8,
            calibrate_method=methods[settings.calibration],
            calibration_cache_path=str(cache),
            extra_options={
                "ActivationSymmetric": False,
                "WeightSymmetric": True,
                "CalibPercentile": settings.percentile,
                "MatMulConstBOnly": False,
                "DefaultTensorType": FLOAT,
            },
            **common,
        ),
        cache,
    )
    if cache.is_file():
        check_calibration_ranges(cache)


def _ort_call(call: Callable[[], object], cache: Path | None) -> None:
    """Run an ORT quantizer; its bare ValueError/RuntimeError become one clear StageError."""
    try:
        call()
    except StageError:
        raise
    except Exception as error:  # ORT raises bare ValueError/AssertionError/RuntimeError
        if cache is not None and cache.is_file():
            check_calibration_ranges(cache)  # degenerate ranges are the usual cause: name them
        raise StageError(
            f"quantize: ONNX Runtime quantization failed ({type(error).__name__}: {error})"
        ) from None
