"""``distill``: train a shallow (single-head by default) student from the current model as teacher."""

from __future__ import annotations

from compress.core.stage import TORCH, Stage, register_stage
from compress.distillation.config import DistillConfig


@register_stage
class Distill(Stage):
    kind = "distill"
    summary = (
        "Distil a shallow single-head student from the teacher (logits / hidden / attention-relation losses)."
    )
    Config = DistillConfig
    accepts = frozenset({TORCH})
    """The teacher is the stage's input model: after exporting it, start from it with ``from: teacher``."""
    produces = TORCH

    def run(self, current, ctx):
        from compress.core.outputs import save_torch_variant
        from compress.distillation.run import distill, encoded_transfer

        teacher = current
        processor = ctx.processor_for(teacher)
        result = distill(
            teacher.module(),
            ctx.encoded(processor, "train"),
            ctx.encoded(processor, "dev"),
            processor.special_ids,
            processor.mask_id,
            self.config,
            ctx.seed,
            ctx.console,
            transfer=encoded_transfer(self.config.transfer, ctx.splits, ctx.task, processor, ctx.seed),
            work_dir=ctx.stage_dir(self.id),
            task=ctx.task,
        )
        metric = f"{ctx.task.primary_metric} vs the teacher" if ctx.task.dev_against_teacher else "accuracy"
        ctx.console.print(f"    best dev {metric} {result.info['training']['best_dev_accuracy']:.4f}")
        info = {**result.info, "teacher": teacher.name}
        return save_torch_variant(ctx, self, result.student, processor, name=self.config.name, info=info)
