"""PyTorch models stored as ``torch.export`` programs (INC's PT2E INT8 models): save, load, optional compile.

A PT2E-quantized model is an FX graph, not a ``transformers`` module, so it cannot go through
safetensors + shapes like other variants; ``torch.export.save`` is its native, loadable form.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress.core.files import sha256_file, temp_sibling, write_json_atomic
from compress.errors import ModelLoadError
from compress.models.manifest import MANIFEST
from compress.models.safety import TRUST_HINT

EXPORTED_KIND = "torch.export"
PROGRAM_FILE = "model.pt2"


class ExportedClassifier(nn.Module):
    """Named inputs -> logits over an exported graph, optionally ``torch.compile``d.

    Exported graphs take positional inputs and refuse ``.train()/.eval()``; this adapter accepts the
    keyword call every predictor makes and keeps mode switches away from the graph. With ``compile``,
    inductor's freezing (constant-folds the dequantized weights into packed INT8 kernels) is enabled
    only around this module's calls.
    """

    def __init__(self, graph: nn.Module, compile: bool = False) -> None:
        super().__init__()
        self.graph = graph
        self.compiled = torch.compile(graph, dynamic=True) if compile else None

    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        """Named inputs (in the task's order, as collated) passed on positionally, as the graph takes them."""
        args = tuple(inputs.values())
        if self.compiled is None:
            return self.graph(*args)
        from torch._inductor import config

        with config.patch(freezing=True):
            return self.compiled(*args)

    def train(self, mode: bool = True) -> ExportedClassifier:
        return self


def save_exported(program: torch.export.ExportedProgram, directory: Path, manifest: dict[str, Any]) -> str:
    """Write the program and a ``compress_model.json`` that tells :func:`load_model` how to load it.

    Returns the program file's sha256, also kept in the manifest: the caller records it with the variant,
    so a later run can load its own program without ``--trust-model-code`` as long as the bytes match.
    """
    directory.mkdir(parents=True, exist_ok=True)
    # torch.export wants a .pt2 suffix on what it writes: write it inside a compress temp folder (which
    # resume and --restart clean if a kill leaves it), then move it into place.
    staging = temp_sibling(directory / PROGRAM_FILE)
    staging.mkdir()
    try:
        partial = staging / PROGRAM_FILE
        torch.export.save(program, str(partial))
        digest = sha256_file(partial)
        os.replace(partial, directory / PROGRAM_FILE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_json_atomic(
        directory / MANIFEST,
        {"format": 1, "kind": EXPORTED_KIND, "file": PROGRAM_FILE, "sha256": digest, **manifest},
    )
    return digest


def program_path(directory: Path, manifest: dict[str, Any]) -> Path:
    """The program file a manifest names; only a plain file name inside ``directory`` is accepted."""
    name = manifest.get("file", PROGRAM_FILE)
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise ModelLoadError(f"{directory / MANIFEST}: 'file' must name a file inside the model directory, got {name!r}")
    return directory / name


def load_exported(
    directory: Path, manifest: dict[str, Any], trusted: bool, expected_sha256: str | None
) -> nn.Module:
    """Unpickle the program (which can run code) only when ``trusted``, or when its bytes are the ones
    whose sha256 compress recorded as it wrote them (``expected_sha256``). The bytes are read once, so
    the digest checked is that of the bytes unpickled."""
    import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers the quantize/dequantize ops PT2E graphs use)

    path = program_path(directory, manifest)
    if not trusted and expected_sha256 is None:
        raise ModelLoadError(
            f"{path}: a torch.export program is unpickled on load, which can run any code it holds; "
            "refusing for a model directory given as input",
            hint=TRUST_HINT,
        )
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelLoadError(f"{path}: cannot read the exported program ({error.strerror or error})") from None
    if not trusted and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ModelLoadError(
            f"{path}: not the program compress wrote here (its sha256 differs from the one recorded when it "
            "was saved); refusing to unpickle it",
            hint=f"redo the stage that made it (--redo STAGE), or {TRUST_HINT}",
        )
    try:
        program = torch.export.load(io.BytesIO(data))
    except Exception as error:  # torch raises RuntimeError/KeyError/zip errors for damaged archives
        raise ModelLoadError(f"{path}: cannot load exported program ({error})") from None
    return ExportedClassifier(program.module(), compile=bool(manifest.get("compile"))).eval()
