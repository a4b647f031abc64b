"""The options of one ONNX Runtime quantization: plain data, shared by the stage config and the trials."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from compress.core.options import Options

DEFAULT_OP_TYPES = ("MatMul", "Attention", "Gemm")
TRIAL_FIELDS = ("mode", "format", "calibration", "per_channel", "reduce_range", "exclude_nodes")
"""The fields an accuracy-aware search varies; a trial's ``config`` records exactly these."""


class OrtQuantSettings(Options):
    mode: Literal["dynamic", "static"] = Field(
        "dynamic",
        description="'dynamic': weights INT8 offline, activations per batch at run time. 'static': "
        "activation "
        "ranges calibrated offline on train texts.",
    )
    format: Literal["qdq", "qoperator"] = Field(
        "qdq", description="Static only: QuantizeLinear/DequantizeLinear pairs (qdq) or QLinear* operators."
    )
    calibration: Literal["minmax", "entropy", "percentile"] = Field(
        "minmax", description="Static only: how activation ranges are chosen from the calibration outputs."
    )
    calibration_samples: int = Field(256, ge=1, description="Train-split texts used for calibration.")
    calibration_batch_size: int = Field(16, ge=1, description="Texts per calibration batch.")
    percentile: float = Field(
        99.999, gt=50, le=100, description="Percentile kept by 'percentile' calibration."
    )
    weight_type: Literal["qint8", "quint8"] = "qint8"
    per_channel: bool = Field(False, description="One scale per output channel instead of per tensor.")
    reduce_range: bool = Field(False, description="7-bit weights, for CPUs without VNNI.")
    op_types: list[str] = Field(
        list(DEFAULT_OP_TYPES),
        min_length=1,
        description="ONNX operator types to quantize (absent ones are ignored).",
    )
    exclude_nodes: list[str] = Field(default_factory=list, description="ONNX node names left in FP32.")
    quantize_embeddings: bool = Field(
        True, description="Also quantize embedding lookups (Gather): ~4x smaller."
    )

    def operator_types(self) -> list[str]:
        return list(dict.fromkeys([*self.op_types, *(["Gather"] if self.quantize_embeddings else [])]))

    def trial_config(self) -> dict[str, Any]:
        return self.model_dump(include=set(TRIAL_FIELDS))
