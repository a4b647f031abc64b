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
        encoder = ctx.encoder_for(teacher)
        task = ctx.task
        result = distill(
            teacher.module(),
            (encoder.encode(task.train.texts), task.train.labels),
            (encoder.encode(task.dev.texts), task.dev.labels),
            encoder.pad_id,
            encoder.special_ids,
            encoder.mask_id,
            self.config,
            ctx.seed,
            ctx.console,
            transfer=encoded_transfer(self.config.transfer, task, encoder, ctx.seed),
            work_dir=ctx.stage_dir(self.id),
        )
        ctx.console.print(f"    best dev accuracy {result.info['training']['best_dev_accuracy']:.4f}")
        info = {**result.info, "teacher": teacher.name}
        return save_torch_variant(ctx, self, result.student, encoder, name=self.config.name, info=info)
