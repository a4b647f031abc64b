"""Helpers every stage uses to turn its output into a registered, saved variant."""

from __future__ import annotations

from typing import Any

from torch import nn

from compress.core.context import RunContext
from compress.core.stage import TORCH, Stage
from compress.core.variant import Variant
from compress.models.complexity import model_facts
from compress.models.persistence import save_model


def save_torch_variant(
    ctx: RunContext,
    stage: Stage,
    model: nn.Module,
    processor: Any,
    name: str,
    info: dict[str, Any] | None = None,
    factory: str | None = None,
) -> Variant:
    """Save ``model`` and the task's ``processor`` under the stage's directory; return an FP32 torch variant."""
    directory = ctx.stage_dir(stage.id) / "model"
    save_model(model, directory, factory=factory)
    ctx.task.save_processor(processor, directory)
    variant = Variant(
        name=name,
        runtime=TORCH,
        precision="fp32",
        path=directory,
        processor_dir=directory,
        stage=stage.id,
        info={**model_facts(model), **(info or {})},
    )
    variant._module = model.eval()
    return variant


def base_name(name: str) -> str:
    """``teacher-onnx`` -> ``teacher``: the model a variant was derived from, for naming successors."""
    for suffix in ("-onnx", "-int8", "-fp32"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def inherited_info(info: dict[str, Any]) -> dict[str, Any]:
    """Facts about the network that stay true across export and quantization (parameters, MACs)."""
    return {key: info[key] for key in ("parameters", "macs") if key in info}
