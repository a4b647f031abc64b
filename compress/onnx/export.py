"""PyTorch -> ONNX export (one file, dynamic batch and sequence axes) and the agreement check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
import torch
from torch import nn

from compress.core.files import atomic_path
from compress.errors import StageError
from compress.models.forward import LogitsOnly
from compress.runtimes import OnnxPredictor, TorchPredictor

if TYPE_CHECKING:
    from compress.tasks.base import Examples


def dynamic_axes(input_names: list[str], output_names: Sequence[str] = ("logits",)) -> dict[str, dict[int, str]]:
    """Batch and sequence axes of every input dynamic, the batch axis of every output."""
    return {**{name: {0: "batch", 1: "sequence"} for name in input_names}, **{o: {0: "batch"} for o in output_names}}


def use_eager_attention(model: nn.Module) -> None:
    """Eager attention exports to plain MatMul/Softmax, which ONNX Runtime's BERT fusion recognises."""
    if hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation("eager")
            return
        except (ValueError, AttributeError):
            pass
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "_attn_implementation"):
        config._attn_implementation = "eager"


def export_onnx(
    model: nn.Module,
    example: Mapping[str, np.ndarray],
    target: Path,
    opset: int,
    output_names: Sequence[str] = ("logits",),
) -> Path:
    """Export ``model`` to a single ONNX file at ``target`` (written atomically). ``example`` is a batch of
    the task's named inputs: the graph's inputs get their names, in their order; its one output is named by
    the task (``output_names``)."""
    use_eager_attention(model)
    names = list(example)
    wrapper = LogitsOnly(model, names).eval()
    args = tuple(torch.from_numpy(example[name]) for name in names)
    with atomic_path(target) as tmp, torch.inference_mode():
        torch.onnx.export(
            wrapper,
            args,
            str(tmp),
            input_names=names,
            output_names=list(output_names),
            dynamic_axes=dynamic_axes(names, output_names),
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
        onnx.checker.check_model(str(tmp))
    return target


def max_output_difference(model: nn.Module, onnx_path: Path, examples: Examples, batch_size: int = 16) -> float:
    """Largest absolute logit difference between torch and ONNX Runtime over the given examples."""
    torch_predictor, onnx_predictor = TorchPredictor(model), OnnxPredictor(onnx_path)
    worst = 0.0
    for start in range(0, len(examples), batch_size):
        inputs = examples.collate(range(start, min(start + batch_size, len(examples))))
        diff = np.abs(torch_predictor.run(inputs) - onnx_predictor.run(inputs)).max()
        worst = max(worst, float(diff))
    return worst


def check_agreement(worst: float, tolerance: float, what: str) -> None:
    if worst > tolerance:
        raise StageError(
            f"{what}: ONNX outputs differ from PyTorch by {worst:.2e} (tolerance {tolerance:.0e}); "
            "the export is not faithful"
        )
