"""The model-family seam on tiny random models of every registered family: structure views, head
bookkeeping, dropping layers, the student config, and the recipe check that refuses unsupported stages."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from tiny import make_checkpoint, padded_ids, registered_families, tiny_family_model
from typer.testing import CliRunner

from compress import validate_recipe
from compress.cli import app
from compress.core.recipe import parse_recipe
from compress.distillation.student import StudentSpec, build_student
from compress.errors import StageError
from compress.models.families import base
from compress.models.families.base import AttentionLayout, FamilyAdapter, family_for, require
from compress.models.families.check import check_recipe_families

FAMILIES = registered_families()
STRUCTURAL = [f for f in FAMILIES if family_for(f).operations]
"""Families whose adapter describes their structure (the others are refused by name for every operation)."""
DISTILLABLE = [f for f in FAMILIES if family_for(f).supports("distill")]


def logits(model, ids, mask):
    with torch.inference_mode():
        return model(input_ids=ids, attention_mask=mask).logits


def test_registry_holds_the_shipped_families_and_names_unknown_ones():
    assert {"bert", "roberta", "distilbert", "xlm-roberta", "camembert", "electra", "mpnet"} <= set(STRUCTURAL)
    assert {"albert", "deberta-v2"} <= set(FAMILIES) - set(STRUCTURAL)
    assert all(set(family_for(f).operations) <= set(base.OPERATIONS) for f in FAMILIES)
    with pytest.raises(StageError, match=f"model family 'gpt2' is not supported here; supported: {', '.join(STRUCTURAL)}"):
        family_for("gpt2")


@pytest.mark.parametrize("family", STRUCTURAL)
def test_views_are_the_modules_the_forward_pass_runs(family):
    model = tiny_family_model(family, layers=3)
    adapter = family_for(model)
    layers = adapter.encoder_layers(model)
    assert len(layers) == model.config.num_hidden_layers == 3
    assert adapter.word_embeddings(model) is model.get_input_embeddings()
    seen: dict[str, tuple[int, ...]] = {}
    hooks = []
    for index, layer in enumerate(layers):
        q, k, v = adapter.attention_projections(layer)
        named = {"q": q, "k": k, "v": v, "out": adapter.attention_output(layer)}
        named.update(zip(("ffn_in", "ffn_out"), adapter.ffn_projections(layer), strict=True))
        for name, module in named.items():
            assert isinstance(module, torch.nn.Linear)
            hooks.append(module.register_forward_hook(
                lambda _m, _i, out, key=f"{index}.{name}": seen.__setitem__(key, tuple(out.shape))
            ))
        assert adapter.read_layout(adapter.self_attention(layer)) == AttentionLayout(4, 8, 8**-0.5)
    ids, mask = padded_ids()
    logits(model, ids, mask)
    for hook in hooks:
        hook.remove()
    # every view ran in the model's own forward pass, with the widths the config gives (hidden 32, ffn 64)
    for index in range(3):
        for name in ("q", "k", "v", "out", "ffn_out"):
            assert seen[f"{index}.{name}"] == (3, 9, 32), name
        assert seen[f"{index}.ffn_in"] == (3, 9, 64)


@pytest.mark.parametrize("family", STRUCTURAL)
def test_head_bookkeeping_is_written_where_the_attention_reads_it(family):
    """Halving each head's width by hand: the forward pass is right only when the adapter's layout says so."""
    model = tiny_family_model(family)
    adapter = family_for(model)
    for layer in adapter.encoder_layers(model):
        for linear in adapter.attention_projections(layer):  # keep dims 0-3 of each of the 4 heads
            keep = torch.tensor([h * 8 + d for h in range(4) for d in range(4)])
            linear.weight = torch.nn.Parameter(linear.weight[keep].clone())
            linear.bias = torch.nn.Parameter(linear.bias[keep].clone())
            linear.out_features = 16
        out = adapter.attention_output(layer)
        out.weight = torch.nn.Parameter(out.weight[:, keep].clone())
        out.in_features = 16
    scale = 4**-0.5 if adapter.scaling_follows_head_size else 8**-0.5  # MPNet: 1/sqrt(head size) always
    adapter.set_attention_layout(model, [AttentionLayout(4, 4, scale)] * 2)
    assert adapter.attention_layout(model) == [AttentionLayout(4, 4, scale)] * 2
    hidden = torch.randn(2, 5, 32, generator=torch.Generator().manual_seed(0))
    layer = adapter.encoder_layers(model)[0]
    q, k, v = (linear(hidden).view(2, 5, 4, 4).transpose(1, 2) for linear in adapter.attention_projections(layer))
    expected = (torch.softmax(q @ k.transpose(-1, -2) * scale, -1) @ v).transpose(1, 2).reshape(2, 5, 16)
    attention = adapter.self_attention(layer)
    with torch.inference_mode():
        actual = attention(hidden, attention_mask=torch.zeros(2, 1, 1, 5))[0]
    if actual.shape[-1] != expected.shape[-1]:  # this family's attention module applies its output too
        expected = adapter.attention_output(layer)(expected)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(StageError, match="attention layout has 1 layers, the model has 2"):
        adapter.set_attention_layout(model, [AttentionLayout(4, 4, 1.0)])


@pytest.mark.parametrize("family", STRUCTURAL)
def test_dropping_layers_keeps_a_runnable_model_that_round_trips(family, tmp_path):
    model = tiny_family_model(family, layers=4)
    adapter = family_for(model)
    original = [{k: t.clone() for k, t in layer.state_dict().items()} for layer in adapter.encoder_layers(model)]
    adapter.keep_layers(model, [0, 3])
    kept = adapter.encoder_layers(model)
    assert len(kept) == model.config.num_hidden_layers == 2
    for layer, index in zip(kept, [0, 3], strict=True):
        for name, tensor in layer.state_dict().items():
            assert torch.equal(tensor, original[index][name])
    ids, mask = padded_ids()
    expected = logits(model, ids, mask)
    assert torch.isfinite(expected).all()
    model.save_pretrained(tmp_path / "m")
    loaded = type(model).from_pretrained(tmp_path / "m").eval()
    assert len(family_for(loaded).encoder_layers(loaded)) == 2
    torch.testing.assert_close(logits(loaded, ids, mask), expected, rtol=0, atol=0)


@pytest.mark.parametrize("family", DISTILLABLE)
def test_student_config_is_a_stock_config_of_the_family_and_round_trips(family, tmp_path):
    teacher = tiny_family_model(family, layers=4)
    adapter = family_for(teacher)
    config = adapter.student_config(teacher.config, layers=2, heads=1, hidden=None, ffn=24, dropout=0.0)
    assert type(config) is type(teacher.config)
    assert (config.num_hidden_layers, config.num_attention_heads, adapter.ffn_width(config)) == (2, 1, 24)
    assert teacher.config.num_hidden_layers == 4  # the teacher's config is untouched
    student, init = build_student(teacher, StudentSpec(layers=2, heads=1, ffn=24))
    assert type(student) is type(teacher) and init.teacher_layers == [1, 3]
    assert torch.equal(adapter.word_embeddings(student).weight, adapter.word_embeddings(teacher).weight)
    ffn_in = adapter.ffn_projections(adapter.encoder_layers(student)[0])[0]
    assert ffn_in.out_features == 24
    ids, mask = padded_ids()
    expected = logits(student, ids, mask)
    student.save_pretrained(tmp_path / "student")
    loaded = type(teacher).from_pretrained(tmp_path / "student").eval()
    torch.testing.assert_close(logits(loaded, ids, mask), expected, rtol=0, atol=0)


@pytest.mark.parametrize("family", [f for f in FAMILIES if family_for(f).supports("fuse")])
def test_fusion_type_is_one_ort_knows(family):
    from onnxruntime.transformers.optimizer import MODEL_TYPES

    assert family_for(family).fusion_type in MODEL_TYPES


@pytest.mark.parametrize("family", [f for f in FAMILIES if not family_for(f).supports("distill")])
def test_distilling_an_unsupported_family_names_it_and_the_alternatives(family):
    teacher = tiny_family_model(family)
    others = ", ".join(DISTILLABLE)
    with pytest.raises(StageError) as caught:
        build_student(teacher, StudentSpec(layers=1))
    message = str(caught.value)
    assert message.startswith(f"model family '{family}' does not support 'distill' (")  # then what is missing
    assert message.endswith(f"; families that do: {others}")
    assert family_for(family).missing in message


# --- the recipe check (compress validate, and the pipeline before any work) ------------------------------


class NothingFamily(FamilyAdapter):
    model_types = ("toy",)


@pytest.fixture
def toy_family(monkeypatch, tmp_path):
    """A throwaway family that supports nothing, and a checkpoint directory whose config names it."""
    registered = registered_families()
    monkeypatch.setitem(base._REGISTRY, "toy", NothingFamily())
    directory = tmp_path / "toy-model"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": "toy"}))
    return directory, registered


def _recipe(tmp_path, source: str, stages: list) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "model": {"source": source}, "stages": stages}))
    return str(path)


def test_validate_refuses_a_stage_the_family_does_not_support(toy_family, tmp_path):
    directory, registered = toy_family
    path = _recipe(tmp_path, str(directory), [{"finetune": {}}, {"prune": {"heads": 0.5}}])
    with pytest.raises(StageError) as caught:
        validate_recipe(path)
    message = str(caught.value)
    assert "stage 'prune' needs 'prune', which model family 'toy' does not support" in message
    assert f"families that do: {', '.join(f for f in registered if family_for(f).supports('prune'))}" in message
    result = CliRunner().invoke(app, ["validate", path])
    assert result.exit_code == 2 and "model family 'toy' does not support" in result.output
    assert "Traceback" not in result.output
    # a recipe of stages that need nothing from the family passes
    assert validate_recipe(_recipe(tmp_path, str(directory), [{"finetune": {}}, {"export": {}}])).name == "x"


def test_validate_names_the_family_of_a_real_checkpoint_and_refuses_distilling_albert(tiny_checkpoints, tmp_path):
    for family in ("roberta", "distilbert"):
        ok = CliRunner().invoke(app, ["validate", _recipe(tmp_path, str(tiny_checkpoints[family]), [{"distill": {}}])])
        assert ok.exit_code == 0, ok.output
        assert f"model family {family} supports" in ok.output and "checked stages distill (distill)" in ok.output
    albert = make_checkpoint(tmp_path / "albert", "albert")
    refused = CliRunner().invoke(app, ["validate", _recipe(tmp_path, str(albert), [{"distill": {}}])])
    assert refused.exit_code == 2
    assert "stage 'distill' needs 'distill', which model family 'albert' does not support" in refused.output


def test_unknown_family_is_refused_only_when_a_stage_needs_it(tmp_path):
    directory = tmp_path / "gpt"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    recipe = parse_recipe({"name": "x", "model": {"source": str(directory)}, "stages": [{"export": {}}]}, "r.yaml")
    assert check_recipe_families(recipe).family == "gpt2"
    recipe = parse_recipe({"name": "x", "model": {"source": str(directory)}, "stages": [{"vocab_prune": {}}]}, "r.yaml")
    with pytest.raises(StageError, match=r"'gpt2' does not support \(registered families: albert, bert, roberta"):
        check_recipe_families(recipe)


def test_hub_ids_and_factories_are_skipped_with_a_note():
    for source, why in (("someone/some-model", "hub id"), ("mypackage.models:build", "factory")):
        recipe = parse_recipe({"name": "x", "model": {"source": source}, "stages": [{"prune": {"heads": 1}}]}, "r")
        check = check_recipe_families(recipe)
        assert check.family is None and why in check.line and check.operations == {"prune": ["prune"]}


def test_require_names_family_operation_and_alternatives(toy_family):
    with pytest.raises(StageError, match="model family 'toy' does not support 'fuse'; families that do: bert"):
        require("toy", "fuse")


# --- stages that do not change the architecture need no family code (issue 19) ---------------------------


@pytest.mark.parametrize("family", [*[f for f in FAMILIES if f not in STRUCTURAL], "ernie"])
def test_a_model_without_a_structural_adapter_saves_and_loads(family, tmp_path):
    """ALBERT and DeBERTa-v2 (refused for structural stages) and ERNIE (no adapter at all) save and load
    through compress's own format: no attention layout is asked of a family that cannot be pruned."""
    from compress.models.persistence import load_model, save_model

    model = tiny_family_model(family)
    save_model(model, tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "compress_model.json").read_text())
    assert manifest["config"]["model_type"] == family and "attention" not in manifest
    loaded = load_model(tmp_path / "m")
    ids, mask = padded_ids()
    torch.testing.assert_close(logits(loaded, ids, mask), logits(model, ids, mask), rtol=0, atol=0)


def test_albert_goes_through_every_non_structural_stage_and_is_refused_for_prune_and_distill(tmp_path, synthetic_csv):
    """The non-structural promise end to end on a tiny ALBERT: finetune -> export -> quantize -> evaluate ->
    bundle, then validate refuses prune and distill naming the family, the stage, what is missing and the
    families that work."""
    from tiny import make_checkpoint

    from compress.core.recipe import parse_recipe
    from compress.run.pipeline import run_recipe

    checkpoint = make_checkpoint(tmp_path / "albert", "albert")
    raw = {
        "name": "albert",
        "model": {"source": str(checkpoint), "max_length": 32},
        "data": {"dataset": str(synthetic_csv), "test_size": 100, "dev_size": 100, "limit": 400},
        "stages": [
            {"finetune": {"epochs": 2, "learning_rate": 3e-3, "batch_size": 16, "patience": 0}},
            {"export": {}},
            {"quantize": {}},
            {"evaluate": {"batch_sizes": [1], "seq_lengths": [32], "rounds": 3, "warmup": 1}},
            {"bundle": {}},
            {"report": {}},
        ],
    }
    result = run_recipe(parse_recipe(raw, "albert.yaml"), out=tmp_path / "run")
    variants = {v["name"]: v for v in result.report["variants"]}
    assert {"teacher", "teacher-onnx", "teacher-int8"} <= set(variants)
    assert variants["teacher-onnx"]["info"]["max_abs_logit_diff_vs_torch"] < 1e-4
    assert (result.bundle_dir / "model.onnx").is_file()

    for stage, operation in (({"prune": {"ffn": 0.5}}, "prune"), ({"distill": {}}, "distill")):
        refused = CliRunner().invoke(app, ["validate", _recipe(tmp_path, str(checkpoint), [{"finetune": {}}, stage])])
        assert refused.exit_code == 2 and "Traceback" not in refused.output
        message = " ".join(refused.output.split())
        assert f"stage '{operation}' needs '{operation}', which model family 'albert' does not support" in message
        assert "shares one set of layer weights" in message
        assert f"families that do: {', '.join(base.families_supporting(operation))}" in message


def test_validate_refuses_a_pruning_dimension_the_family_refuses(tmp_path):
    from tiny import make_checkpoint

    checkpoint = make_checkpoint(tmp_path / "mpnet", "mpnet")
    refused = CliRunner().invoke(app, ["validate", _recipe(tmp_path, str(checkpoint), [{"prune": {"heads": 0.5}}])])
    assert refused.exit_code == 2
    message = " ".join(refused.output.split())
    assert "model family 'mpnet' cannot prune heads (one relative-position bias table" in message
    assert "it can prune ffn, hidden, layers" in message
    ok = CliRunner().invoke(app, ["validate", _recipe(tmp_path, str(checkpoint), [{"prune": {"ffn": 0.5}}])])
    assert ok.exit_code == 0, ok.output


@pytest.mark.integration
def test_the_real_mpnet_base_loads_and_builds_a_one_head_student():
    """``make data-mpnet`` fetches it; skipped where it is absent."""
    from pathlib import Path

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    directory = Path(__file__).resolve().parents[1] / ".data" / "all-mpnet-base-v2"
    if not (directory / "config.json").is_file():
        pytest.skip("run `make data-mpnet` for the real MPNet-base")
    teacher = AutoModelForSequenceClassification.from_pretrained(directory, num_labels=2).eval()
    adapter = family_for(teacher)
    assert adapter.name == "mpnet" and len(adapter.encoder_layers(teacher)) == 12
    assert adapter.attention_layout(teacher)[0] == AttentionLayout(12, 64, 0.125)
    encoded = AutoTokenizer.from_pretrained(directory)(["a great film", "a dull, flat plot"], padding=True, return_tensors="pt")
    inputs = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
    student, init = build_student(teacher, StudentSpec(layers=2, heads=1), sample=inputs)
    assert student.config.num_attention_heads == 1 and init.teacher_layers == [5, 11]
    bias = student.mpnet.encoder.relative_attention_bias.weight
    torch.testing.assert_close(bias[:, 0], teacher.mpnet.encoder.relative_attention_bias.weight.mean(1))
    with torch.inference_mode():
        assert torch.isfinite(student(**inputs).logits).all()
