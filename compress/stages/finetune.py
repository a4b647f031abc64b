"""``finetune``: train encoder and classification head on the task's train split."""

from __future__ import annotations

from pydantic import Field

from compress.core.stage import TORCH, Stage, register_stage
from compress.training.loop import TrainingConfig


class FinetuneConfig(TrainingConfig):
    name: str | None = Field(None, description="Variant name; defaults to the input's (the fine-tuned model replaces it).")


@register_stage
class Finetune(Stage):
    kind = "finetune"
    summary = "Fine-tune encoder + classification head (AdamW, linear schedule, early stop on dev accuracy)."
    Config = FinetuneConfig
    accepts = frozenset({TORCH})
    produces = TORCH

    def run(self, current, ctx):
        from compress.core.outputs import save_torch_variant
        from compress.training.loop import train_classifier

        model = current.module()
        processor = ctx.processor_for(current)
        train, dev = ctx.encoded(processor, "train"), ctx.encoded(processor, "dev")
        result = train_classifier(
            model, train, dev, self.config, ctx.seed, ctx.console, description="fine-tune",
            checkpoint_dir=ctx.stage_dir(self.id), task=ctx.task,
        )
        ctx.console.print(f"    best dev {ctx.task.primary_metric} {result.best_dev_accuracy:.4f} (epoch {result.best_epoch})")
        return save_torch_variant(
            ctx, self, model, processor, name=self.config.name or current.name, info={"training": result.to_dict()}
        )
