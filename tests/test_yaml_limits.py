"""Recipes are bounded and unambiguous: alias bombs, recursive aliases, huge or deeply nested files and
repeated keys are refused with one RecipeError; bad values and ``--set`` paths too (never a traceback)."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from compress.core.recipe import MAX_RECIPE_BYTES, MAX_RECIPE_NODES, load_recipe, parse_recipe
from compress.errors import RecipeError

ROOT = Path(__file__).resolve().parent.parent

# Nine levels of nine aliases: 9**9 (387 million) strings once expanded, from 500 bytes of YAML.
BILLION_LAUGHS = "name: bomb\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)
) + "stages: [export, {evaluate: {seq_lengths: *l8}}]\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path):
    assert len(BILLION_LAUGHS) < 600
    with pytest.raises(RecipeError, match=f"expands to more than {MAX_RECIPE_NODES:,} YAML values"):
        load_recipe(_write(tmp_path, BILLION_LAUGHS))


def test_the_same_bomb_in_a_set_override_is_refused(tmp_path):
    bomb = "&a0 [x, x, x, x, x, x, x, x, x, x]"
    for level in range(1, 6):  # each level holds the previous one ten times: 10**6 values
        bomb = f"&a{level} [{bomb}, " + ", ".join([f"*a{level - 1}"] * 9) + "]"
    with pytest.raises(RecipeError, match="--set 'data.seed=.*expands to more than"):
        parse_recipe({"name": "t", "stages": ["export"]}, "t.yaml", overrides=[f"data.seed={bomb}"])


def test_aliases_within_the_bound_still_work(tmp_path):
    text = "name: shared\nstages: [export, {evaluate: {batch_sizes: &sizes [1, 16], seq_lengths: *sizes}}]\n"
    assert load_recipe(_write(tmp_path, text)).stages[1].config.seq_lengths == [1, 16]


def test_a_recursive_alias_is_refused(tmp_path):
    with pytest.raises(RecipeError, match="line 2 contains an alias of itself"):
        load_recipe(_write(tmp_path, "name: loop\nstages: &s [export, *s]\n"))


def test_a_recipe_above_the_size_limit_is_refused_unread(tmp_path):
    path = _write(tmp_path, "name: big\nstages: [export]\ndescription: " + "x" * MAX_RECIPE_BYTES + "\n")
    with pytest.raises(RecipeError, match=r"bytes; a recipe may be at most 1,048,576 bytes"):
        load_recipe(path)


def test_deep_nesting_is_refused(tmp_path):
    with pytest.raises(RecipeError, match="nested too deeply"):
        load_recipe(_write(tmp_path, "name: deep\nstages: " + "[" * 5000 + "]" * 5000 + "\n"))


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("name: t\nstages:\n  - finetune:\n      epochs: 1\n      batch_size: 8\n      epochs: 50\n", "4 and 6"),
        ("name: t\nstages: [{finetune: {epochs: 1, epochs: 50}}]\n", "2 and 2"),
        ("name: t\nseed: 1\nstages: [export]\nseed: 2\n", "2 and 4"),
    ],
)
def test_duplicate_keys_are_an_error_naming_the_key_and_both_lines(tmp_path, text, lines):
    key = "epochs" if "epochs" in text else "seed"
    with pytest.raises(RecipeError, match=f"duplicate key '{key}' at lines {lines}"):
        load_recipe(_write(tmp_path, text))


def test_merge_keys_may_still_override_what_they_merge(tmp_path):
    text = "name: t\nstages: [{finetune: {<<: {epochs: 1, batch_size: 8}, epochs: 3}}]\n"
    recipe = load_recipe(_write(tmp_path, text))
    assert (recipe.stages[0].config.epochs, recipe.stages[0].config.batch_size) == (3, 8)


@pytest.mark.parametrize("stage_id", [5, 1.5, True, ["a"], {"a": 1}, ""])
def test_a_stage_id_must_be_a_plain_string(stage_id):
    with pytest.raises(RecipeError, match=r"stages\[0\] \(finetune\)\.id: "):
        parse_recipe({"name": "t", "stages": [{"finetune": {"id": stage_id}}]}, "t.yaml")


@pytest.mark.parametrize("stage_id", ["input", "model", "data"])
def test_a_stage_id_may_not_take_a_reserved_name(stage_id):
    with pytest.raises(RecipeError, match=f"'{stage_id}' is reserved"):
        parse_recipe({"name": "t", "stages": [{"finetune": {"id": stage_id}}]}, "t.yaml")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"data": {"test_size": float("inf")}}, r"data.test_size: Input should be a finite number \(got inf\)"),
        ({"data": {"dev_size": float("nan")}}, r"data.dev_size: Input should be a finite number \(got nan\)"),
        ({"stages": [{"evaluate": {"seq_lengths": [128, -4]}}]},
         r"\(evaluate\).seq_lengths: each length must be a whole number >= 1 or 'p95'"),
        ({"stages": [{"evaluate": {"batch_sizes": [0]}}]}, r"\(evaluate\).batch_sizes.0: Input should be greater"),
        ({"stages": [{"evaluate": {"prime_ms": float("inf")}}]}, r"\(evaluate\).prime_ms: Input should be a finite"),
        ({"stages": [{"finetune": {"learning_rate": float("nan")}}]}, r"\(finetune\).learning_rate: Input should be a finite"),
    ],
)
def test_bad_numbers_name_the_field(raw, expected):
    with pytest.raises(RecipeError, match=expected):
        parse_recipe({"name": "t", "stages": ["export"], **raw}, "t.yaml")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.source.x=1", r"model.source is not a section \(it holds 'minilm'\)"),
        ("finetune.epochs.x=1", r"finetune.epochs is not a section \(it holds 2\)"),
        ("model.max_length.a.b=1", r"model.max_length is not a section"),
        ("name.x=1", "'name' is not a section"),
        ("stages.x=1", "no stage or section named 'stages'"),
    ],
)
def test_set_into_a_scalar_is_a_recipe_error(override, expected):
    raw = {"name": "t", "model": {"source": "minilm", "max_length": 32}, "stages": [{"finetune": {"epochs": 2}}]}
    with pytest.raises(RecipeError, match=expected):
        parse_recipe(raw, "t.yaml", overrides=[override])


def test_set_works_on_recipes_holding_dates_and_odd_stage_lists():
    raw = {"name": "t", "description": datetime.date(2026, 1, 2), "stages": [{"finetune": {"epochs": 2}}]}
    # the overrides' copy of the mapping went through json, which raised TypeError on a date
    assert parse_recipe(raw, "t.yaml", overrides=["finetune.epochs=1"]).stages[0].config.epochs == 1
    with pytest.raises(RecipeError, match="stages: Input should be a valid list"):
        parse_recipe({"name": "t", "stages": "export"}, "t.yaml", overrides=["data.seed=1"])


def test_the_cli_refuses_a_bomb_with_exit_2(tmp_path):
    path = _write(tmp_path, BILLION_LAUGHS)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "250"}
    result = subprocess.run(
        [sys.executable, "-m", "compress", "validate", str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 2 and "expands to more than" in result.stderr and "Traceback" not in result.stderr


def test_yaml_itself_is_unchanged_for_valid_recipes():
    for path in sorted((ROOT / "recipes").glob("*.yaml")):
        assert load_recipe(path).to_dict()["name"] == yaml.safe_load(path.read_text())["name"]
