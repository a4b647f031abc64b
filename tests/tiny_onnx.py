"""A tiny ONNX classifier file with its tokenizer next to it, exported from a tiny checkpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np


def export_tiny_onnx(checkpoint: Path, directory: Path) -> Path:
    from transformers import AutoModelForSequenceClassification

    from compress.onnx.export import export_onnx

    directory.mkdir(parents=True, exist_ok=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint)).eval()
    example = {"input_ids": np.ones((1, 8), dtype=np.int64), "attention_mask": np.ones((1, 8), dtype=np.int64)}
    target = export_onnx(model, example, directory / "tiny.onnx", opset=17)
    shutil.copy(checkpoint / "tokenizer.json", directory / "tokenizer.json")
    return target
