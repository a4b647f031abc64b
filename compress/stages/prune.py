"""``prune``: structured pruning (heads, head widths, FFN channels, layers), then recovery fine-tuning."""

from __future__ import annotations

from pydantic import Field

from compress.core.stage import TORCH, Stage, register_stage
from compress.pruning.spec import PruningSpec, RecoverConfig


class PruneConfig(PruningSpec):
    recover: RecoverConfig = Field(default_factory=RecoverConfig)
    name: str = Field("pruned", description="Variant name of the pruned model.")


@register_stage
class Prune(Stage):
    kind = "prune"
    summary = (
        "Structured pruning with torch-pruning (heads, head dims, FFN, layers), then recovery fine-tuning."
    )
    Config = PruneConfig
    accepts = frozenset({TORCH})
    produces = TORCH

    def run(self, current, ctx):
        import copy

        import torch

        from compress.core.outputs import save_torch_variant
        from compress.pruning.recovery import calibration_batches, example_inputs, recover
        from compress.pruning.structured import prune_model

        cfg = self.config
        unpruned = current.module().eval()
        model = copy.deepcopy(unpruned)
        processor = ctx.processor_for(current)
        train = ctx.encoded(processor, "train")
        calibration = []
        if cfg.importance == "taylor":
            calibration = calibration_batches(*train, cfg.recover.batch_size, cfg.calibration_batches, ctx.task)
        # Seeded here, not only before the stage: loading the input from disk on resume draws random numbers
        # (a model's init), and random importance must prune the same channels again for recovery to resume.
        torch.manual_seed(ctx.seed)
        shapes = prune_model(model, cfg, example_inputs(train[0]), calibration, loss=ctx.task.loss)
        after = shapes["after"]
        ctx.console.print(
            f"    {after['layers']} layers, heads {after['heads']}, "
            f"head size {after['head_size']}, ffn {after['ffn']}"
        )
        dev = ctx.encoded(processor, "dev") if cfg.recover.epochs else None
        if dev is not None:  # an embedder's dev scores against the unpruned model's vectors
            from compress.runtimes import TorchPredictor
            from compress.training.kd import dev_against_reference

            dev = dev_against_reference(ctx.task, dev, TorchPredictor(unpruned))
        training = recover(
            model, unpruned, cfg.recover, train, dev, ctx.seed, ctx.console,
            checkpoint_dir=ctx.stage_dir(self.id), task=ctx.task,
        )
        info = {"pruning": {**shapes, "importance": cfg.importance, "scope": cfg.scope}}
        if training is not None:
            info["training"] = training.to_dict()
        return save_torch_variant(ctx, self, model, processor, name=cfg.name, info=info)
