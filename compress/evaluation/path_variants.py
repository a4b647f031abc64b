"""Turn a path given on the command line (HF checkpoint, compress model dir, ONNX file) into a Variant.

``compress bench`` measures models outside any recipe with the same code the ``evaluate`` stage uses;
this module is the only place that guesses what a path is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compress.core.stage import ONNX, TORCH
from compress.core.variant import Variant
from compress.errors import ModelLoadError

QUANTIZED_OPS = {"MatMulInteger", "QLinearMatMul", "DynamicQuantizeLinear", "QuantizeLinear", "ConvInteger"}


def load_torch_module(path: Path, trusted: bool = False, vouched: dict[str, Any] | None = None):
    """A compress model directory or a Hugging Face sequence-classification checkpoint, in eval mode.

    A compress directory that runs code on load needs ``trusted``, or ``vouched`` facts (see
    :func:`compress.models.persistence.vouched_facts`) recorded when it was loaded with trust.
    """
    from compress.models.persistence import is_compress_model_dir, load_model

    if is_compress_model_dir(path):
        vouched = vouched or {}
        return load_model(path, trusted, vouched.get("program_sha256"), vouched.get("factory"))
    from transformers import AutoModelForSequenceClassification

    try:
        return AutoModelForSequenceClassification.from_pretrained(str(path)).eval()
    except Exception as error:  # transformers raises many types for unreadable checkpoints
        raise ModelLoadError(
            f"{path}: cannot load as a sequence-classification checkpoint ({error})"
        ) from None


def onnx_facts(path: Path) -> dict[str, Any]:
    """Parameters (initializer elements) and precision of an ONNX file, read without running it."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # onnx raises DecodeError and friends for corrupt files
        raise ModelLoadError(f"{path}: not a readable ONNX file ({error})") from None
    parameters = 0
    for tensor in model.graph.initializer:
        count = 1
        for dim in tensor.dims:
            count *= dim
        parameters += count
    quantized = any(node.op_type in QUANTIZED_OPS for node in model.graph.node)
    return {"parameters": parameters, "precision": "int8" if quantized else "fp32"}


def _tokenizer_dir(path: Path, tokenizer: Path | None) -> Path:
    candidates = [tokenizer] if tokenizer else [path if path.is_dir() else path.parent]
    for candidate in candidates:
        if candidate and (Path(candidate) / "tokenizer.json").is_file():
            return Path(candidate)
    raise ModelLoadError(
        f"{path}: no tokenizer.json next to the model",
        hint="pass --tokenizer DIR (a directory holding tokenizer.json)",
    )


def variant_from_path(
    path: str | Path, name: str | None = None, tokenizer: str | Path | None = None, trusted: bool = False
) -> Variant:
    """A measurable Variant for ``path``; torch models are loaded now so a bad path fails early.

    ``trusted`` (``--trust-model-code``) allows a compress directory whose loading runs code (a
    torch.export program, a factory); what was trusted is recorded in the variant's info, so a measuring
    subprocess reloads exactly that and nothing else.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file or directory")
    tokenizer_dir = _tokenizer_dir(path, Path(tokenizer) if tokenizer else None)
    label = name or (path.stem if path.is_file() else path.name)
    if label == "model" and not name:  # runs save models as .../stages/03-quantize/model.onnx: name the stage
        label = path.parent.name
    if path.is_file():
        if path.suffix != ".onnx":
            raise ModelLoadError(f"{path}: expected an .onnx file or a model directory")
        facts = onnx_facts(path)
        return Variant(
            label, ONNX, facts["precision"], path, tokenizer_dir, "bench", {"parameters": facts["parameters"]}
        )
    from compress.models.persistence import is_compress_model_dir, vouched_facts

    compress_dir = is_compress_model_dir(path)
    if not compress_dir and not (path / "config.json").is_file():
        raise ModelLoadError(
            f"{path}: neither a compress model directory nor a Hugging Face checkpoint (no config.json)"
        )
    # Trusted code is pinned first (program digest, factory name) and then loaded by those facts, so
    # what runs here is exactly what the variant records for the measuring subprocess.
    vouched = vouched_facts(path) if compress_dir and trusted else {}
    module = load_torch_module(path, trusted=trusted and not vouched, vouched=vouched)
    variant = Variant(
        label,
        TORCH,
        "fp32",
        path,
        tokenizer_dir,
        "bench",
        {"parameters": sum(p.numel() for p in module.parameters()), **vouched},
    )
    variant._module = module
    return variant


def loadable(variant: Variant) -> Variant:
    """``variant`` with its module preloaded when it is a torch checkpoint that Variant.module() cannot read."""
    from compress.models.persistence import is_compress_model_dir

    if variant.is_torch and variant._module is None and not is_compress_model_dir(variant.path):
        variant._module = load_torch_module(variant.path)
    return variant
