"""``evaluate``: test accuracy and interleaved latency for every variant made so far."""

from __future__ import annotations

from pydantic import Field

from compress.core.stage import Stage, register_stage
from compress.evaluation.suite import LatencySettings


class EvaluateConfig(LatencySettings):
    variants: list[str] | None = Field(None, description="Variant names to measure (default: all).")
    require_gpu: bool = Field(
        False, description="Fail when 'cuda' is in devices and no GPU is present (default: skip GPU timing with a note)."
    )


@register_stage
class Evaluate(Stage):
    kind = "evaluate"
    summary = (
        "Accuracy on the test split; latency percentiles, speed-ups and peak memory for every variant "
        "and runtime, measured interleaved."
    )
    Config = EvaluateConfig

    def check_environment(self) -> list[str]:
        from compress.core.requirements import cuda_available, require_cuda

        notes = super().check_environment()
        if "cuda" in self.config.devices and not cuda_available():
            if self.config.require_gpu:
                require_cuda(f"stage {self.id!r} (devices: cuda, require_gpu: true)")
            notes.append(f"{self.id}: no CUDA GPU present; GPU latency will be skipped")
        return notes

    def run(self, current, ctx):
        from compress.evaluation.suite import evaluate_variants

        names = self.config.variants or list(ctx.variants)
        ordered = [ctx.baseline] + [ctx.variant(n) for n in names if n != ctx.baseline.name]
        settings = LatencySettings(**self.config.model_dump(exclude={"variants", "require_gpu"}))
        ctx.evaluation = evaluate_variants(
            ordered, settings, ctx.splits.test, ctx.max_length, ctx.console, ctx.splits.test.inputs, ctx.task
        )
        metric = ctx.task.metric_names[0]
        for name, result in ctx.evaluation["variants"].items():
            if result.get(metric) is not None:
                ctx.console.print(f"    {name}: {metric} {result[metric]:.4f}", markup=False)
        return None
