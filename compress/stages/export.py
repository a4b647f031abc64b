"""``export``: PyTorch -> ONNX, checked against the PyTorch outputs on real texts."""

from __future__ import annotations

from pydantic import Field

from compress.core.stage import ONNX, TORCH, Stage, register_stage
from compress.onnx.fusion import FusionOptions


class ExportConfig(FusionOptions):
    opset: int = Field(17, ge=14, le=21, description="ONNX opset version.")
    tolerance: float = Field(1e-3, gt=0, description="Largest allowed |logit difference| vs PyTorch.")
    check_examples: int = Field(64, ge=1, description="Test texts used for the agreement check.")
    name: str | None = Field(None, description="Variant name; defaults to '<model>-onnx'.")


@register_stage
class Export(Stage):
    kind = "export"
    summary = "Export to ONNX (one file, dynamic batch/sequence axes), outputs checked against PyTorch."
    Config = ExportConfig
    accepts = frozenset({TORCH})
    produces = ONNX

    def run(self, current, ctx):
        from compress.core.outputs import base_name, inherited_info
        from compress.core.variant import Variant
        from compress.onnx.export import check_agreement, export_onnx, max_output_difference
        from compress.onnx.fusion import check_batches, fuse_checked

        model = current.module().eval()
        processor = ctx.processor_for(current)
        examples = ctx.task.encode(processor, ctx.splits.test.inputs[: self.config.check_examples])
        target = ctx.stage_dir(self.id) / "model.onnx"
        export_onnx(
            model, examples.collate(range(min(2, len(examples)))), target, self.config.opset, ctx.task.output_names
        )
        worst = max_output_difference(model, target, examples)
        check_agreement(worst, self.config.tolerance, f"export of {current.name!r}")
        ctx.console.print(f"    max |logit diff| vs PyTorch on {len(examples)} texts: {worst:.2e}")
        info = {**inherited_info(current.info), "max_abs_logit_diff_vs_torch": worst, "opset": self.config.opset}
        if self.config.optimize:
            batches = check_batches(ctx.task.encode(processor, ctx.splits.test.inputs[:48]))
            target, info["optimization"] = fuse_checked(
                target, ctx.stage_dir(self.id), batches, self.config.optimize_tolerance, ctx.console.print
            )
        return Variant(
            name=self.config.name or f"{base_name(current.name)}-onnx",
            runtime=ONNX,
            precision="fp32",
            path=target,
            processor_dir=current.processor_dir,
            stage=self.id,
            info=info,
        )

