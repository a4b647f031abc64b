"""PyTorch models stored as ``torch.export`` programs (INC's PT2E INT8 models): save, load, optional compile.

A PT2E-quantized model is an FX graph, not a ``transformers`` module, so it cannot go through
safetensors + shapes like other variants; ``torch.export.save`` is its native, loadable form.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress.errors import ModelLoadError
from compress.io_utils import write_json_atomic

EXPORTED_KIND = "torch.export"
PROGRAM_FILE = "model.pt2"


class ExportedClassifier(nn.Module):
    """``(input_ids, attention_mask) -> logits`` over an exported graph, optionally ``torch.compile``d.

    Exported graphs take positional inputs and refuse ``.train()/.eval()``; this adapter accepts the
    keyword call every predictor makes and keeps mode switches away from the graph. With ``compile``,
    inductor's freezing (constant-folds the dequantized weights into packed INT8 kernels) is enabled
    only around this module's calls.
    """

    def __init__(self, graph: nn.Module, compile: bool = False) -> None:
        super().__init__()
        self.graph = graph
        self.compiled = torch.compile(graph, dynamic=True) if compile else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.compiled is None:
            return self.graph(input_ids, attention_mask)
        from torch._inductor import config

        with config.patch(freezing=True):
            return self.compiled(input_ids, attention_mask)

    def train(self, mode: bool = True) -> ExportedClassifier:
        return self


def save_exported(program: torch.export.ExportedProgram, directory: Path, manifest: dict[str, Any]) -> Path:
    """Write the program and a ``compress_model.json`` that tells :func:`load_model` how to load it."""
    from compress.models.persistence import MANIFEST

    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f".partial.{PROGRAM_FILE}"  # torch.export wants a .pt2 suffix on what it writes
    try:
        torch.export.save(program, str(partial))
        os.replace(partial, directory / PROGRAM_FILE)
    finally:
        partial.unlink(missing_ok=True)
    write_json_atomic(
        directory / MANIFEST, {"format": 1, "kind": EXPORTED_KIND, "file": PROGRAM_FILE, **manifest}
    )
    return directory


def load_exported(directory: Path, manifest: dict[str, Any]) -> nn.Module:
    import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers the quantize/dequantize ops PT2E graphs use)

    path = directory / manifest.get("file", PROGRAM_FILE)
    try:
        program = torch.export.load(str(path))
    except Exception as error:  # torch raises RuntimeError/KeyError/zip errors for damaged archives
        raise ModelLoadError(f"{path}: cannot load exported program ({error})") from None
    return ExportedClassifier(program.module(), compile=bool(manifest.get("compile"))).eval()
