"""Save and load PyTorch models as safetensors weights plus a description of every shape.

``save_pretrained``/``from_pretrained`` cannot describe a pruned model (attention width != hidden size,
different head counts per layer), so compress stores the shapes itself and rebuilds the modules on load.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors.torch import load_file, save_file
from torch import nn

from compress.core.files import atomic_path, sha256_file, write_json_atomic
from compress.errors import ModelLoadError
from compress.models import architectures
from compress.models.factory import call_factory
from compress.models.manifest import MANIFEST, is_compress_model_dir, read_manifest
from compress.models.safety import TRUST_HINT
from compress.models.torch_export import load_exported, program_path

if TYPE_CHECKING:
    import torch

WEIGHTS = "model.safetensors"
FORMAT_VERSION = 1
ARCHITECTURES: dict[str, type[nn.Module]] = {}
"""Model classes outside ``transformers`` that a manifest may name (built from the saved config alone)."""


def register_architecture(cls: type[nn.Module]) -> type[nn.Module]:
    """Let :func:`load_model` rebuild ``cls(config)`` for a manifest whose architecture is ``cls.__name__``."""
    ARCHITECTURES[cls.__name__] = cls
    return cls


def save_model(model: nn.Module, directory: str | Path, factory: str | None = None) -> Path:
    """Write ``model`` to ``directory`` (weights atomically, manifest last so a partial save is not loadable)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS) as tmp:
        save_file(state, str(tmp))
    config = getattr(model, "config", None)
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "architecture": type(model).__name__,
        "factory": factory,
        "shapes": {name: list(tensor.shape) for name, tensor in state.items()},
    }
    if config is not None and factory is None:
        manifest["config"] = config.to_dict()
        # Only a family with an adapter can be pruned, so only its attention layout can differ from what
        # the config says; any other Hugging Face model saves and loads from its config alone.
        if architectures.has_family(model):
            manifest["attention"] = [layout.to_dict() for layout in architectures.attention_layout(model)]
    write_json_atomic(directory / MANIFEST, manifest)
    return directory


def load_model(
    directory: str | Path,
    trusted: bool = False,
    expected_sha256: str | None = None,
    expected_factory: str | None = None,
) -> nn.Module:
    """Rebuild a model saved by :func:`save_model` (or ``save_exported``), in eval mode.

    Every path that loads a compress model directory comes here, so one rule decides when loading may run
    code. Two kinds of directory do: a ``torch.export`` program (unpickled) and a manifest naming a Python
    factory (imported and called). They load only when the caller vouches for them: ``trusted`` (the
    user's ``--trust-model-code``), or, for a run's own outputs, what the run recorded as it wrote them:
    the program's sha256 (``expected_sha256``, checked against the bytes before unpickling) or the factory
    the recipe named (``expected_factory``). Plain safetensors directories never run code.
    """
    directory = Path(directory)
    if not is_compress_model_dir(directory):
        raise ModelLoadError(f"{directory}: not a model saved by compress (no {MANIFEST})")
    manifest = read_manifest(directory)
    if manifest.get("kind") == "torch.export":
        return load_exported(directory, manifest, trusted, expected_sha256)
    factory = manifest.get("factory")
    if factory and not trusted and factory != expected_factory:
        raise ModelLoadError(
            f"{directory / MANIFEST}: this model is built by the Python factory {factory!r}, which would be "
            "imported and run; refusing for a model directory given as input",
            hint=TRUST_HINT,
        )
    try:
        state = load_file(str(directory / WEIGHTS))
    except Exception as error:  # safetensors raises several types for truncated or corrupt files
        raise ModelLoadError(f"{directory / WEIGHTS}: cannot read weights ({error})") from None
    try:
        model = _instantiate(manifest)
        resize_to_state(model, state)
        if manifest.get("attention"):
            layouts = [architectures.AttentionLayout(**item) for item in manifest["attention"]]
            architectures.set_attention_layout(model, layouts)
        model.load_state_dict(state, strict=True)
    except ModelLoadError:
        raise
    except Exception as error:  # RuntimeError (shapes), StageError (layout), KeyError/TypeError (manifest)
        message = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
        raise ModelLoadError(f"{directory}: weights do not match the model description ({message})") from None
    return model.eval()


def vouched_facts(directory: Path) -> dict[str, Any]:
    """What a caller that trusted ``directory`` records with its variant (``program_sha256``, ``factory``),
    so that reloading it elsewhere (a measuring subprocess, a resumed run) needs no trust flag but loads
    only these same bytes and this same factory."""
    manifest = read_manifest(directory)
    if manifest.get("kind") == "torch.export":
        return {"program_sha256": sha256_file(program_path(directory, manifest))}
    return {"factory": manifest["factory"]} if manifest.get("factory") else {}


def _instantiate(manifest: dict[str, Any]) -> nn.Module:
    if manifest.get("factory"):
        return call_factory(manifest["factory"])
    import transformers

    config_dict = dict(manifest["config"])
    config_class = transformers.AutoConfig.for_model(config_dict.pop("model_type"))
    config = config_class.from_dict(config_dict) if hasattr(config_class, "from_dict") else config_class
    architecture = ARCHITECTURES.get(manifest["architecture"]) or getattr(transformers, manifest["architecture"], None)
    if architecture is None:
        raise ModelLoadError(f"unknown architecture {manifest['architecture']!r} in {MANIFEST}")
    # Built on the CPU, not the meta device: non-persistent buffers (position ids) are not in the
    # state dict and must be initialised by the constructor.
    return architecture(config)


def resize_to_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Replace Linear / LayerNorm / Embedding modules whose saved shapes differ from the fresh model's."""
    for name, module in list(model.named_modules()):
        weight = state.get(f"{name}.weight")
        if weight is None or not hasattr(module, "weight") or module.weight.shape == weight.shape:
            continue
        replacement = _resized(module, weight.shape, has_bias=f"{name}.bias" in state)
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, replacement)


def _resized(module: nn.Module, shape: torch.Size, has_bias: bool) -> nn.Module:
    if isinstance(module, nn.Linear):
        return nn.Linear(shape[1], shape[0], bias=has_bias)
    if isinstance(module, nn.LayerNorm):
        return nn.LayerNorm(shape[0], eps=module.eps, elementwise_affine=True)
    if isinstance(module, nn.Embedding):
        return nn.Embedding(shape[0], shape[1], padding_idx=module.padding_idx)
    raise ModelLoadError(f"cannot resize module {type(module).__name__} to {tuple(shape)}")
