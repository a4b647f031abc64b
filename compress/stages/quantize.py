"""``quantize``: INT8 with ONNX Runtime (dynamic / static, accuracy-aware), Intel Neural Compressor, or NNCF for
OpenVINO."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from compress.core.stage import ONNX, OPENVINO, TORCH, Stage, register_stage
from compress.onnx.fusion import FusionOptions
from compress.quantization.settings import OrtQuantSettings


class QuantizeConfig(OrtQuantSettings, FusionOptions):
    backend: Literal["onnxruntime", "inc", "openvino"] = Field(
        "onnxruntime",
        description="'onnxruntime' quantizes the ONNX model (deployable bundle); 'inc' quantizes the PyTorch "
        "model with Intel Neural Compressor 3.x PT2E (put it before export); 'openvino' quantizes the ONNX model "
        "with NNCF into an OpenVINO IR (static, calibrated on train texts; run by the 'openvino' runtime).",
    )
    preset: Literal["performance", "mixed"] = Field(
        "performance",
        description="openvino: NNCF preset, 'performance' (symmetric activations) or 'mixed' (asymmetric).",
    )
    max_accuracy_drop: float | None = Field(
        None, ge=0, description="Accuracy-aware mode: largest allowed dev-accuracy drop vs FP32, in points."
    )
    max_excluded_groups: int | None = Field(None, ge=1, description="Cap on MatMul groups kept in FP32.")
    trial_latency_rounds: int = Field(10, ge=3, description="Interleaved b1 timing rounds per trial.")
    threads: int = Field(2, ge=1, description="Threads for trial accuracy and latency.")
    compile: bool = Field(
        False, description="inc: run the INT8 model through torch.compile with freezing (experimental, see README)."
    )
    name: str | None = Field(
        None, description="Variant name; defaults to '<model>-int8' ('<model>-inc-int8')."
    )

    @model_validator(mode="after")
    def _inc_options(self) -> QuantizeConfig:
        if self.backend == "inc":
            if self.mode != "static":
                raise ValueError("backend 'inc' does static W8A8 (PT2E) only; set mode: static")
            if self.optimize or self.exclude_nodes or self.format != "qdq":
                raise ValueError("optimize, exclude_nodes and format apply to backend 'onnxruntime' only")
        if self.backend == "openvino":
            if self.mode != "static":
                raise ValueError("backend 'openvino' does static INT8 (NNCF, calibrated on train texts) only; set mode: static")
            changed = [name for name in sorted(NOT_FOR_OPENVINO) if self._changed(name)]
            if changed:
                raise ValueError(f"{', '.join(changed)}: not options of backend 'openvino' (NNCF chooses these itself)")
        elif self._changed("preset"):
            raise ValueError("preset applies to backend 'openvino' only")
        return self

    def _changed(self, name: str) -> bool:
        return getattr(self, name) != type(self).model_fields[name].get_default(call_default_factory=True)


NOT_FOR_OPENVINO = {
    "optimize", "optimize_tolerance", "format", "calibration", "percentile", "calibration_batch_size",
    "weight_type", "per_channel", "reduce_range", "op_types", "exclude_nodes", "quantize_embeddings",
    "max_accuracy_drop", "max_excluded_groups", "trial_latency_rounds", "compile",
}
"""Options NNCF (backend 'openvino') does not take: changed from their defaults with it, they are refused."""


@register_stage
class Quantize(Stage):
    kind = "quantize"
    summary = "INT8 quantization: ONNX Runtime dynamic/static (accuracy-aware), Intel Neural Compressor or NNCF for OpenVINO."
    Config = QuantizeConfig
    accepts = frozenset({ONNX})
    produces = ONNX

    @classmethod
    def accepted_runtimes(cls, config):
        return frozenset({TORCH}) if config.backend == "inc" else cls.accepts

    @classmethod
    def produced_runtime(cls, config):
        return {"inc": TORCH, "openvino": OPENVINO}.get(config.backend, cls.produces)

    def check_environment(self) -> list[str]:
        notes = super().check_environment()
        if self.config.backend == "openvino":
            from compress.core.requirements import require_backends

            require_backends(f"stage {self.id!r} (backend: openvino)", {"openvino": "openvino", "nncf": "nncf"})
        return notes

    def run(self, current, ctx):
        from compress.quantization.orchestration import (
            QuantizeData,
            quantize_inc_variant,
            quantize_onnx_variant,
            quantize_openvino_variant,
        )

        data = QuantizeData(ctx.task, ctx.splits, ctx.max_length, ctx.seed, ctx.stage_dir(self.id), ctx.console.print)
        if self.config.backend == "inc":
            return quantize_inc_variant(self.id, self.config, current, data)
        if self.config.backend == "openvino":
            return quantize_openvino_variant(self.id, self.config, current, data)
        return quantize_onnx_variant(self.id, self.config, current, data)
