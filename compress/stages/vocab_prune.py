"""``vocab_prune``: keep only the token embeddings the task's training texts use; remap the tokenizer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compress.core.stage import TORCH, Stage, StageConfig, register_stage


class VocabPruneConfig(StageConfig):
    fallback: Literal["none", "characters"] = Field(
        "characters",
        description="Extra pieces kept so unseen words still segment: 'characters' keeps every "
        "single-character piece (and its '##' continuation), 'none' only train tokens and specials.",
    )
    keep_first: int = Field(
        0, ge=0, description="Also keep the N lowest original ids (BERT vocabs put frequent words first)."
    )
    min_count: int = Field(1, ge=1, description="Keep a train token only if it occurs at least this often.")
    name: str | None = Field(None, description="Variant name; defaults to '<model>-vocab'.")


@register_stage
class VocabPrune(Stage):
    kind = "vocab_prune"
    summary = "Keep only the embeddings of tokens seen in the train split (+ specials, fallback); remap ids."
    Config = VocabPruneConfig
    accepts = frozenset({TORCH})
    produces = TORCH

    def run(self, current, ctx):
        import copy

        from compress.core.outputs import save_torch_variant
        from compress.vocabulary.check import compare_on_texts
        from compress.vocabulary.pruning import plan_vocabulary, prune_tokenizer, slice_embeddings

        cfg = self.config
        original = current.module().eval()
        encoder = ctx.processor_for(current)
        train = ctx.splits.train.inputs
        plan = plan_vocabulary(encoder.tokenizer, train, cfg.fallback, cfg.keep_first, cfg.min_count)
        model = copy.deepcopy(original)
        removed = slice_embeddings(model, plan)
        pruned = encoder.with_tokenizer(prune_tokenizer(encoder.tokenizer, plan))
        check = compare_on_texts(
            original, encoder, model, pruned, plan, ctx.splits.test.inputs, ctx.task.predictions
        )
        info = {
            "vocabulary": {
                "original_size": plan.original_size,
                "kept_size": len(plan.keep),
                "embedding_parameters_removed": removed,
                "fallback": cfg.fallback,
                "keep_first": cfg.keep_first,
                "min_count": cfg.min_count,
                "test": check.to_dict(),
            }
        }
        ctx.console.print(
            f"    vocabulary {plan.original_size} -> {len(plan.keep)} tokens ({removed:,} embedding "
            f"parameters removed); test: {check.identical_tokenization:.2%} identical ids, "
            f"{check.prediction_agreement:.2%} identical predictions"
        )
        name = cfg.name or f"{current.name}-vocab"
        return save_torch_variant(ctx, self, model, pruned, name=name, info=info)
