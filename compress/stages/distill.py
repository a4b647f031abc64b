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
        train, dev = ctx.encoded(processor, "train"), ctx.encoded(processor, "dev")
        transfer = encoded_transfer(self.config.transfer, ctx.splits, ctx.task, processor, ctx.seed)
        common = dict(transfer=transfer, task=ctx.task)
        arguments = (teacher.module(), train, dev, processor.special_ids, processor.mask_id, self.config, ctx.seed, ctx.console)
        if self.config.search is not None:
            from compress.evaluation.setting import Setting
            from compress.search.run import search_student

            setting = Setting.parse(self.config.search.budget.setting)
            texts = ctx.splits.train.inputs
            result = search_student(
                *arguments,
                example=train[0].collate(range(min(2, len(train[0])))),
                timed_inputs=ctx.task.dummy_inputs(teacher.processor_dir, setting.batch, setting.seq, texts),
                output_names=ctx.task.output_names,
                work_dir=ctx.stage_dir(self.id),
                **common,
            )
        else:
            result = distill(*arguments, work_dir=ctx.stage_dir(self.id), **common)
        metric = f"{ctx.task.primary_metric} vs the teacher" if ctx.task.dev_against_teacher else ctx.task.primary_metric
        ctx.console.print(f"    best dev {metric} {result.info['training']['best_dev_accuracy']:.4f}")
        info = {**result.info, "teacher": teacher.name}
        return save_torch_variant(ctx, self, result.student, processor, name=self.config.name, info=info)
