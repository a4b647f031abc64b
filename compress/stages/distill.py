"""``distill``: train a shallow (single-head by default) student from the current model as teacher."""

from __future__ import annotations

from compress.distillation.config import DistillConfig
from compress.registry import ONNX, TORCH, Stage, register_stage


@register_stage
class Distill(Stage):
    kind = "distill"
    summary = (
        "Distil a shallow single-head student from the teacher (logits / hidden / attention-relation losses)."
    )
    Config = DistillConfig
    accepts = frozenset({TORCH, ONNX})
    """ONNX is accepted so a recipe can export the teacher first; the teacher is then its PyTorch source."""
    produces = TORCH

    def run(self, current, ctx):
        from compress.distillation.run import distill
        from compress.outputs import save_torch_variant

        teacher = self._teacher(current, ctx)
        encoder = ctx.encoder_for(teacher)
        task = ctx.task
        tokenizer = encoder.tokenizer
        special = {tokenizer.token_to_id(t) for t in tokenizer.get_vocab() if t.startswith(("[", "<"))}
        result = distill(
            teacher.module(),
            (encoder.encode(task.train.texts), task.train.labels),
            (encoder.encode(task.dev.texts), task.dev.labels),
            encoder.pad_id,
            {i for i in special if i is not None} | {encoder.pad_id},
            tokenizer.token_to_id("[MASK]") or tokenizer.token_to_id("<mask>"),
            self.config,
            ctx.seed,
            ctx.console,
        )
        ctx.console.print(f"    best dev accuracy {result.info['training']['best_dev_accuracy']:.4f}")
        info = {**result.info, "teacher": teacher.name}
        return save_torch_variant(ctx, self, result.student, encoder, name=self.config.name, info=info)

    def _teacher(self, current, ctx):
        from compress.errors import StageError
        from compress.outputs import base_name

        if self.config.teacher:
            teacher = ctx.variant(self.config.teacher)
        elif current.is_torch:
            teacher = current
        else:
            teacher = ctx.variants.get(base_name(current.name))
            if teacher is None:
                raise StageError(
                    f"distill: the current model {current.name!r} is ONNX; set 'teacher' to a PyTorch variant"
                )
        if not teacher.is_torch:
            raise StageError(f"distill: teacher {teacher.name!r} is not a PyTorch model")
        return teacher
