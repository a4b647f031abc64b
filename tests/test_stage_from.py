"""The common ``from:`` stage option: a stage can start from a named earlier variant, not only the last."""

from __future__ import annotations

import pytest

from compress.core.recipe import parse_recipe
from compress.errors import RecipeError, StageError
from compress.run.pipeline import run_recipe


def test_a_torch_stage_can_start_from_the_teacher_after_quantization(tiny_recipe, tmp_path):
    raw = tiny_recipe(
        [
            {"export": {}},
            {"quantize": {}},
            {"export": {"from": "teacher", "id": "export_again", "name": "again-onnx", "check_examples": 4}},
        ]
    )
    recipe = parse_recipe(raw, "tiny.yaml")
    assert [s.start_from for s in recipe.stages] == [None, None, "teacher"]
    assert recipe.to_dict()["stages"][2]["export"]["from"] == "teacher"
    run_recipe(recipe, out=tmp_path / "run")
    from compress.core.files import read_json

    state = read_json(tmp_path / "run" / "state.json")
    names = [v["name"] for v in state["variants"]]
    assert names == ["teacher", "teacher-onnx", "teacher-int8", "again-onnx"]
    assert state["current"] == "again-onnx"


def test_without_from_a_torch_stage_after_onnx_is_refused(tiny_recipe):
    with pytest.raises(RecipeError, match="needs a PyTorch model"):
        parse_recipe(tiny_recipe([{"export": {}}, {"export": {"id": "again"}}]), "tiny.yaml")


def test_from_a_named_onnx_variant_is_refused_before_running(tiny_recipe):
    raw = tiny_recipe([{"export": {"name": "t-onnx"}}, {"finetune": {"from": "t-onnx"}}])
    with pytest.raises(RecipeError, match="after variant 't-onnx' the model is an ONNX model"):
        parse_recipe(raw, "tiny.yaml")


def test_from_must_be_a_name(tiny_recipe):
    with pytest.raises(RecipeError, match=r"stages\[0\] \(export\).from"):
        parse_recipe(tiny_recipe([{"export": {"from": ["teacher"]}}]), "tiny.yaml")


def test_from_an_unknown_variant_fails_naming_it(tiny_recipe, tmp_path):
    recipe = parse_recipe(tiny_recipe([{"export": {"from": "student", "check_examples": 4}}]), "tiny.yaml")
    with pytest.raises(StageError, match="no variant named 'student'"):
        run_recipe(recipe, out=tmp_path / "run")


def test_from_a_variant_made_at_run_time_with_the_wrong_runtime_fails_naming_it(tiny_recipe, tmp_path):
    stages = [{"export": {"check_examples": 4}}, {"export": {"id": "again", "from": "teacher-onnx"}}]
    raw = tiny_recipe(stages)
    recipe = parse_recipe(raw, "tiny.yaml")
    with pytest.raises(StageError, match="cannot start from variant 'teacher-onnx'"):
        run_recipe(recipe, out=tmp_path / "run")
