"""``quantize``: INT8 with ONNX Runtime."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compress.registry import ONNX, Stage, StageConfig, register_stage


class QuantizeConfig(StageConfig):
    mode: Literal["dynamic"] = Field("dynamic", description="'dynamic': weights INT8 offline, activations at run time.")
    weight_type: Literal["qint8", "quint8"] = "qint8"
    per_channel: bool = Field(False, description="One scale per output channel instead of per tensor.")
    reduce_range: bool = Field(False, description="7-bit weights, for CPUs without VNNI.")
    name: str | None = Field(None, description="Variant name; defaults to '<model>-int8'.")


@register_stage
class Quantize(Stage):
    kind = "quantize"
    summary = "INT8 quantization with ONNX Runtime (dynamic)."
    Config = QuantizeConfig
    accepts = frozenset({ONNX})
    produces = ONNX

    def run(self, current, ctx):
        from compress.outputs import base_name, inherited_info
        from compress.quantization import quantize_dynamic_int8
        from compress.variants import Variant

        target = ctx.stage_dir(self.id) / "model.onnx"
        cfg = self.config
        quantize_dynamic_int8(current.path, target, cfg.per_channel, cfg.reduce_range, cfg.weight_type)
        return Variant(
            name=cfg.name or f"{base_name(current.name)}-int8",
            runtime=ONNX,
            precision="int8",
            path=target,
            tokenizer_dir=current.tokenizer_dir,
            stage=self.id,
            info={**inherited_info(current.info), "quantization": cfg.model_dump(exclude={"name"})},
        )
