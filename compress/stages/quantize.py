"""``quantize``: INT8 with ONNX Runtime (dynamic / static, accuracy-aware) or Intel Neural Compressor."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from compress.core.stage import ONNX, TORCH, Stage, register_stage
from compress.onnx.fusion import FusionOptions
from compress.quantization.settings import OrtQuantSettings


class QuantizeConfig(OrtQuantSettings, FusionOptions):
    backend: Literal["onnxruntime", "inc"] = Field(
        "onnxruntime",
        description="'onnxruntime' quantizes the ONNX model (deployable bundle); 'inc' quantizes the PyTorch "
        "model with Intel Neural Compressor 3.x PT2E (put it before export).",
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
        return self


@register_stage
class Quantize(Stage):
    kind = "quantize"
    summary = "INT8 quantization: ONNX Runtime dynamic/static (accuracy-aware) or Intel Neural Compressor."
    Config = QuantizeConfig
    accepts = frozenset({ONNX})
    produces = ONNX

    @classmethod
    def accepted_runtimes(cls, config):
        return frozenset({TORCH}) if config.backend == "inc" else cls.accepts

    @classmethod
    def produced_runtime(cls, config):
        return TORCH if config.backend == "inc" else cls.produces

    def run(self, current, ctx):
        from compress.quantization.orchestration import QuantizeData, quantize_inc_variant, quantize_onnx_variant

        data = QuantizeData(ctx.task, ctx.splits, ctx.max_length, ctx.seed, ctx.stage_dir(self.id), ctx.console.print)
        if self.config.backend == "inc":
            return quantize_inc_variant(self.id, self.config, current, data)
        return quantize_onnx_variant(self.id, self.config, current, data)
