"""``bundle``: the deployable directory (INT8 ONNX + tokenizer + manifest with checksums)."""

from __future__ import annotations

from pydantic import Field, field_validator

from compress.core.files import check_plain_name
from compress.core.stage import ONNX, Stage, StageConfig, register_stage
from compress.run.directory import OWNED_ENTRIES, STATE_FILE


class BundleConfig(StageConfig):
    variant: str | None = Field(None, description="Variant to ship (default: the current, i.e. last ONNX, variant).")
    directory: str = Field(
        "bundle", description="Folder name inside the run directory (one plain name: no '/', '..' or leading '.')."
    )

    @field_validator("directory")
    @classmethod
    def _inside_run_directory(cls, value: str) -> str:
        check_plain_name(value)
        if value.lower() in (*OWNED_ENTRIES, STATE_FILE):
            raise ValueError(f"{value!r} is a name compress uses for its own outputs; choose another folder name")
        return value


@register_stage
class Bundle(Stage):
    kind = "bundle"
    summary = "Write the deployable bundle: model.onnx, tokenizer.json and manifest.json (labels, metrics, sha256)."
    Config = BundleConfig
    accepts = frozenset({ONNX})

    def run(self, current, ctx):
        from compress.bundle.writer import write_bundle
        from compress.reporting.build import model_summary
        from compress.runtimes import CPU_DISABLED_FUSIONS

        variant = ctx.variant(self.config.variant) if self.config.variant else current
        if not variant.is_onnx:
            from compress.errors import StageError

            raise StageError(f"bundle: variant {variant.name!r} is not an ONNX model; export it first")
        measured = ctx.evaluation.get("variants", {}).get(variant.name, {})
        metadata = {
            "variant": variant.name,
            "precision": variant.precision,
            "recipe": ctx.recipe.name,
            "recipe_overrides": list(ctx.recipe.overrides),
            "model_info": model_summary(ctx),
            **{name: measured.get(name) for name in ctx.task.metric_names if name != "agreement_with_baseline"},
            "accuracy_split": "test",
            **ctx.task.bundle_fields(ctx.baseline.module(), variant.path),
            "latency_ms": measured.get("latency_ms", {}),
            # how the latency above was measured; a deployment without compress should open it the same way
            "onnxruntime_session": {"cpu_disabled_optimizers": list(CPU_DISABLED_FUSIONS)},
        }
        metadata.update(_decision_fields(ctx, variant))
        target = ctx.run_dir / self.config.directory
        write_bundle(
            target, variant.path, ctx.processor_for(variant), ctx.splits.label_names, metadata, root=ctx.run_dir,
            task=ctx.task,
        )
        ctx.bundle_dir = target
        ctx.console.print(f"    bundle written to {target}")
        return None


def _decision_fields(ctx, variant) -> dict:
    """The task's manifest fields that turn outputs into predictions (multi-label: the threshold, chosen on
    dev with the bundled model itself); none for single-label classification."""
    task = ctx.task
    if task.label_kind == "single":
        return {}
    from compress.runtimes import open_predictor
    from compress.runtimes.batched import predict_logits

    examples, labels = ctx.encoded(ctx.processor_for(variant), "dev")
    outputs = predict_logits(open_predictor(variant, "cpu", None), examples, 64)
    fields = task.decision_fields(outputs, labels)
    if "threshold" in fields:
        ctx.console.print(f"    decision threshold {fields['threshold']:.2f} (best dev {task.primary_metric})")
    return fields
