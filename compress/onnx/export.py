"""PyTorch -> ONNX export (one file, dynamic batch and sequence axes) and the agreement check."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from compress.core.files import atomic_path
from compress.data.batching import pad_batch
from compress.errors import StageError
from compress.runtimes import OnnxPredictor, TorchPredictor
from compress.models.forward import LogitsOnly

INPUT_NAMES = ["input_ids", "attention_mask"]
DYNAMIC_AXES = {
    "input_ids": {0: "batch", 1: "sequence"},
    "attention_mask": {0: "batch", 1: "sequence"},
    "logits": {0: "batch"},
}


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


def export_onnx(model: nn.Module, example: tuple[np.ndarray, np.ndarray], target: Path, opset: int) -> Path:
    """Export ``model`` to a single ONNX file at ``target`` (written atomically)."""
    use_eager_attention(model)
    wrapper = LogitsOnly(model).eval()
    args = tuple(torch.from_numpy(a) for a in example)
    with atomic_path(target) as tmp, torch.inference_mode():
        torch.onnx.export(
            wrapper,
            args,
            str(tmp),
            input_names=INPUT_NAMES,
            output_names=["logits"],
            dynamic_axes=DYNAMIC_AXES,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
        onnx.checker.check_model(str(tmp))
    return target


def max_output_difference(
    model: nn.Module, onnx_path: Path, encoded: Sequence[Sequence[int]], pad_id: int, batch_size: int = 16
) -> float:
    """Largest absolute logit difference between torch and ONNX Runtime over the given texts."""
    torch_predictor, onnx_predictor = TorchPredictor(model), OnnxPredictor(onnx_path)
    worst = 0.0
    for start in range(0, len(encoded), batch_size):
        ids, mask = pad_batch(encoded[start : start + batch_size], pad_id)
        inputs = {"input_ids": ids, "attention_mask": mask}
        diff = np.abs(torch_predictor.run(inputs) - onnx_predictor.run(inputs)).max()
        worst = max(worst, float(diff))
    return worst


def check_agreement(worst: float, tolerance: float, what: str) -> None:
    if worst > tolerance:
        raise StageError(
            f"{what}: ONNX outputs differ from PyTorch by {worst:.2e} (tolerance {tolerance:.0e}); "
            "the export is not faithful"
        )
