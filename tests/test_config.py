"""Recipe parsing: overrides, stage ids, and the hash that ties a run directory to its recipe."""

from __future__ import annotations

from compress.core.recipe import parse_recipe

RAW = {"name": "t", "stages": [{"finetune": {"epochs": 1}}, "export", {"export": {"from": "teacher", "opset": 17}}, "quantize"]}


def test_repeated_stages_get_numbered_ids_and_overrides_reach_them():
    recipe = parse_recipe(RAW, "t.yaml", overrides=["export2.opset=18", "finetune.epochs=3", "data.seed=7"])
    assert [s.id for s in recipe.stages] == ["finetune", "export", "export2", "quantize"]
    assert recipe.stages[2].config.opset == 18
    assert recipe.stages[0].config.epochs == 3
    assert recipe.data.seed == 7
    assert RAW["stages"][0] == {"finetune": {"epochs": 1}}  # the caller's mapping is left untouched


def test_hash_follows_what_the_user_wrote_not_filled_in_defaults():
    first, again = parse_recipe(RAW, "a.yaml"), parse_recipe(RAW, "b.yaml")
    assert first.hash == again.hash
    assert parse_recipe(RAW, "a.yaml", overrides=["finetune.epochs=2"]).hash != first.hash
    # Filled-in defaults are not part of the hash, so adding an option with a default to a stage
    # in a later version keeps old run directories resumable.
    assert "learning_rate" not in first.written["stages"][0]["finetune"]
    assert first.stages[0].config.learning_rate == 5e-5
