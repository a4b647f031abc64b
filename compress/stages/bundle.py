"""``bundle``: the deployable directory (INT8 ONNX, or an OpenVINO IR, + tokenizer + manifest with checksums)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from compress.core.files import check_plain_name
from compress.core.stage import ONNX, OPENVINO, Stage, StageConfig, register_stage
from compress.run.directory import OWNED_ENTRIES, STATE_FILE


class BundleConfig(StageConfig):
    variant: str | None = Field(None, description="Variant to ship (default: the current, i.e. last ONNX, variant).")
    directory: str = Field(
        "bundle", description="Folder name inside the run directory (one plain name: no '/', '..' or leading '.')."
    )
    runtime: Literal["onnxruntime", "openvino"] | None = Field(
        None,
        description="Runtime the bundle is for: 'onnxruntime' ships model.onnx, 'openvino' an OpenVINO IR "
        "(model.xml + model.bin; an ONNX variant is converted as it is). Default: the variant's own "
        "(openvino for an IR from quantize backend: openvino, else onnxruntime).",
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
    summary = (
        "Write the deployable bundle: model.onnx (or an OpenVINO IR), tokenizer.json and manifest.json "
        "(labels, metrics, sha256)."
    )
    Config = BundleConfig
    accepts = frozenset({ONNX, OPENVINO})

    def check_environment(self) -> list[str]:
        notes = super().check_environment()
        if self.config.runtime == "openvino":
            from compress.core.requirements import require_backends

            require_backends(f"stage {self.id!r} (runtime: openvino)", {"openvino": "openvino"})
        return notes

    def run(self, current, ctx):
        from compress.bundle.writer import write_bundle
        from compress.evaluation.suite import row_name
        from compress.reporting.build import model_summary

        variant = ctx.variant(self.config.variant) if self.config.variant else current
        runtime = _bundle_runtime(variant, self.config.runtime, ctx.task)
        evaluated = ctx.evaluation.get("variants", {})
        measured = evaluated.get(variant.name, {})
        timed = evaluated.get(row_name(variant, runtime), {})  # an ONNX variant bundled for OpenVINO: its [openvino] row
        metadata = {
            "variant": variant.name,
            "precision": variant.precision,
            "recipe": ctx.recipe.name,
            "recipe_overrides": list(ctx.recipe.overrides),
            "model_info": model_summary(ctx),
            **{name: measured.get(name) for name in ctx.task.metric_names if name != "agreement_with_baseline"},
            "accuracy_split": "test",
            **ctx.task.bundle_fields(ctx.baseline.module(), variant.path),
            "latency_ms": timed.get("latency_ms", {}),
            # how the latency above was measured; a deployment without compress should open it the same way
            **_runtime_settings(runtime),
        }
        metadata.update(_decision_fields(ctx, variant))
        target = ctx.run_dir / self.config.directory
        write_bundle(
            target, variant.path, ctx.processor_for(variant), ctx.splits.label_names, metadata, root=ctx.run_dir,
            task=ctx.task, runtime=runtime,
        )
        ctx.bundle_dir = target
        ctx.console.print(f"    bundle written to {target}" + (" (OpenVINO IR)" if runtime == "openvino" else ""))
        return None


def _bundle_runtime(variant, asked: str | None, task) -> str:
    """The runtime the bundle is for: the one asked, else the variant's own; refuses what cannot run."""
    from compress.errors import StageError

    if not (variant.is_onnx or variant.is_openvino):
        raise StageError(f"bundle: variant {variant.name!r} is not an ONNX model or OpenVINO IR; export it first")
    runtime = asked or ("openvino" if variant.is_openvino else "onnxruntime")
    if runtime == "onnxruntime" and variant.is_openvino:
        raise StageError(
            f"bundle: variant {variant.name!r} is an OpenVINO IR, which ONNX Runtime cannot run; bundle it with "
            "runtime: openvino, or bundle an ONNX variant"
        )
    if runtime == "openvino" and tuple(task.output_names) != ("logits",):
        raise StageError(f"bundle: OpenVINO bundles hold classifiers for 'compress predict'; a {task.name} bundle "
                         "is for ONNX Runtime (runtime: onnxruntime)")
    return runtime


def _runtime_settings(runtime: str) -> dict:
    """How the bundled model is opened (and its latency in the manifest was measured)."""
    if runtime == "openvino":
        from compress.runtimes.openvino import compile_config, openvino_version

        return {"openvino": {"version": openvino_version(), "cpu_config": compile_config(None)}}
    from compress.runtimes import CPU_DISABLED_FUSIONS

    return {"onnxruntime_session": {"cpu_disabled_optimizers": list(CPU_DISABLED_FUSIONS)}}


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
