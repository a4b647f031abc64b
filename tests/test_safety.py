"""Untrusted files are not executed: pickled weights, model manifests naming code, recipe strings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny import LegacyStateDict, RunsCode, make_checkpoint

from compress.core.recipe import ModelConfig, load_recipe, parse_recipe
from compress.errors import ModelLoadError, RecipeError
from compress.models.sources import load_input_model

LABELS = ("neg", "pos")


def _pickled_checkpoint(directory: Path, payload_of) -> Path:
    """A Hugging Face checkpoint whose weights are a pickle (``pytorch_model.bin``) instead of safetensors."""
    from safetensors.torch import load_file

    make_checkpoint(directory, "bert")
    state = load_file(str(directory / "model.safetensors"))
    (directory / "model.safetensors").unlink()
    torch.save(payload_of(state), directory / "pytorch_model.bin")
    return directory


def _load(directory: Path, trust: bool = False):
    return load_input_model(ModelConfig(source=str(directory), trust_model_code=trust), LABELS)


def test_plain_pickled_state_dict_loads_with_weights_only(tmp_path):
    directory = _pickled_checkpoint(tmp_path / "plain", dict)
    loaded = _load(directory)
    expected = torch.load(directory / "pytorch_model.bin", weights_only=True)
    name = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(loaded.module.state_dict()[name], expected[name])


def test_pickle_that_runs_code_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    directory = _pickled_checkpoint(tmp_path / "evil", lambda state: {**state, "x": RunsCode(str(marker))})
    with pytest.raises(ModelLoadError, match="pytorch_model.bin: refusing to load") as caught:
        _load(directory)
    assert "trust_model_code" in str(caught.value)
    assert not marker.exists()


def test_custom_class_pickle_needs_explicit_trust(tmp_path):
    directory = _pickled_checkpoint(tmp_path / "legacy", LegacyStateDict)
    with pytest.raises(ModelLoadError, match="refusing to load"):
        _load(directory)
    loaded = _load(directory, trust=True)
    assert loaded.module.config.num_labels == 2


def test_model_dir_naming_a_factory_needs_trust(tmp_path, tiny_checkpoints):
    import json

    from transformers import AutoModelForSequenceClassification

    from compress.models.persistence import MANIFEST, save_model

    directory = save_model(AutoModelForSequenceClassification.from_pretrained(tiny_checkpoints["bert"]), tmp_path / "m")
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["factory"] = "os:getcwd"
    (directory / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="factory 'os:getcwd', which would be imported and run"):
        _load(directory)


def test_recipes_are_plain_data(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f'name: !!python/object/apply:os.system ["touch {marker}"]\nstages: [export]\n')
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(evil)
    code = f"__import__('os').system('touch {marker}')"
    with pytest.raises(RecipeError, match="learning_rate"):
        parse_recipe({"name": "x", "stages": [{"finetune": {"learning_rate": code}}]}, "code.yaml")
    parsed = parse_recipe({"name": "x", "description": code, "stages": ["export"]}, "code.yaml")
    assert parsed.description == code  # kept as text, never evaluated (a name must now be a plain folder name)
    assert not marker.exists()


def test_only_the_explicit_factory_form_imports_code(tmp_path, monkeypatch, tiny_checkpoints):
    (tmp_path / "my_models.py").write_text(
        "from transformers import AutoModelForSequenceClassification\n"
        "CALLS = []\n"
        f"def build(num_labels):\n    CALLS.append(num_labels)\n"
        f"    return AutoModelForSequenceClassification.from_pretrained({str(tiny_checkpoints['bert'])!r})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = load_input_model(ModelConfig(source="my_models:build", tokenizer=str(tiny_checkpoints["bert"])), LABELS)
    import my_models

    assert my_models.CALLS == [2] and loaded.factory == "my_models:build"


def test_training_checkpoints_load_with_weights_only(tmp_path):
    from compress.training.checkpoints import CHECKPOINT_FILE, load_checkpoint, save_checkpoint

    save_checkpoint(tmp_path, {"fingerprint": "f", "model": {"w": torch.ones(2)}, "history": [{"epoch": 1}]})
    assert torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)["history"] == [{"epoch": 1}]
    assert load_checkpoint(tmp_path, "f")["model"]["w"].sum() == 2
    assert load_checkpoint(tmp_path, "other") is None  # another training call's checkpoint is ignored
    torch.save({"fingerprint": "f", "x": RunsCode(str(tmp_path / "pwned"))}, tmp_path / CHECKPOINT_FILE)
    assert load_checkpoint(tmp_path, "f") is None and not (tmp_path / "pwned").exists()
