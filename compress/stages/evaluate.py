"""``evaluate``: test accuracy and interleaved latency for every variant made so far."""

from __future__ import annotations

from pydantic import Field

from compress.evaluation.suite import LatencySettings
from compress.registry import Stage, register_stage


class EvaluateConfig(LatencySettings):
    variants: list[str] | None = Field(None, description="Variant names to measure (default: all).")


@register_stage
class Evaluate(Stage):
    kind = "evaluate"
    summary = (
        "Accuracy on the test split; latency percentiles, speed-ups and peak memory for every variant "
        "and runtime, measured interleaved."
    )
    Config = EvaluateConfig

    def run(self, current, ctx):
        from compress.evaluation.suite import evaluate_variants

        names = self.config.variants or list(ctx.variants)
        ordered = [ctx.baseline] + [ctx.variant(n) for n in names if n != ctx.baseline.name]
        settings = LatencySettings(**self.config.model_dump(exclude={"variants"}))
        ctx.evaluation = evaluate_variants(
            ordered, settings, ctx.task.test, ctx.max_length, ctx.console, ctx.task.test.texts
        )
        for name, result in ctx.evaluation["variants"].items():
            if result.get("accuracy") is not None:
                ctx.console.print(f"    {name}: accuracy {result['accuracy']:.4f}", markup=False)
        return None
