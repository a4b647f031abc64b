"""``compress run --redo STAGE``: later stages redone with new settings, earlier outputs kept as they were."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from tiny import quiet_console, synthetic_rows, write_csv

from compress.errors import CompressError
from compress.run.pipeline import run_recipe
from compress.run.state import read_state


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, tiny_checkpoints) -> dict:
    root = tmp_path_factory.mktemp("redo")
    csv_path = write_csv(root / "reviews.csv", synthetic_rows(300, seed=2))
    return {
        "name": "redo",
        "seed": 1,
        "model": {"source": str(tiny_checkpoints["bert"]), "max_length": 12},
        "data": {"dataset": str(csv_path), "test_size": 60, "dev_size": 60},
        "stages": [
            {"finetune": {"epochs": 1, "learning_rate": 3e-3, "batch_size": 16}},
            {"export": {}},
            {"quantize": {"mode": "dynamic"}},
            {"evaluate": {"batch_sizes": [1], "seq_lengths": [8, 16], "rounds": 3, "warmup": 0, "memory": False}},
            {"bundle": {}},
            {"report": {}},
        ],
    }


def _write(recipe: dict, path: Path, **evaluate) -> Path:
    raw = json.loads(json.dumps(recipe))
    raw["stages"][3]["evaluate"].update(evaluate)
    path.write_text(yaml.safe_dump(raw))
    return path


def _own_recipe(result) -> dict:
    """The recipe the run now belongs to (the tests before change it), as a recipe file would hold it."""
    raw = json.loads((result.run_dir / "state.json").read_text())["recipe"]
    raw["stages"] = [{kind: {k: v for k, v in options.items() if k != "id"}} for stage in raw["stages"]
                     for kind, options in stage.items()]
    return raw


@pytest.fixture(scope="module")
def finished(recipe, tmp_path_factory):
    root = tmp_path_factory.mktemp("redo-run")
    result = run_recipe(_write(recipe, root / "recipe.yaml"), out=root / "run", console=quiet_console()[0])
    return result, root


def test_redo_evaluate_keeps_earlier_outputs_and_measures_with_new_settings(recipe, finished):
    result, root = finished
    weights = result.run_dir / "stages" / "01-finetune" / "model" / "model.safetensors"
    onnx_file = result.run_dir / "stages" / "02-export" / "model.onnx"
    stamps = (weights.stat().st_mtime_ns, onnx_file.stat().st_mtime_ns)
    accuracies = {v["name"]: v["accuracy"] for v in result.report["variants"]}
    changed = _write(recipe, root / "more-rounds.yaml", rounds=6, blocks=2)
    console, log = quiet_console()
    again = run_recipe(changed, out=result.run_dir, console=console, redo="evaluate")
    assert "Redoing" in log.getvalue() and "fine-tune epoch" not in log.getvalue()
    assert (weights.stat().st_mtime_ns, onnx_file.stat().st_mtime_ns) == stamps  # untouched
    variants = again.report["variants"]
    assert [v["name"] for v in variants] == [v["name"] for v in result.report["variants"]]  # no duplicates
    assert {v["name"]: v["accuracy"] for v in variants} == accuracies  # same models, same test split
    for variant in variants:
        for key in ("b1_s8", "b1_s16"):
            assert variant["latency_ms"]["cpu"][key]["rounds"] == 6
    assert again.report["evaluation"]["settings"]["blocks"] == 2
    # the run's time is its stages' time (the redone evaluate's new one), not the time since it started
    assert again.report["run"]["duration_s"] == pytest.approx(sum(s["seconds"] for s in again.report["stages"]), abs=0.1)
    manifest = json.loads((again.bundle_dir / "manifest.json").read_text())
    assert manifest["latency_ms"]["cpu"]["b1_s8"]["rounds"] == 6  # the bundle was redone after the new evaluate
    assert "rounds taken in 2 blocks alternating between settings" in (result.run_dir / "report.md").read_text()
    console, log = quiet_console()
    run_recipe(changed, out=result.run_dir, console=console)  # the run now belongs to the changed recipe
    assert "Resuming" in log.getvalue() and "report already done" in log.getvalue()


def test_redo_refuses_when_an_earlier_stage_changed(recipe, finished):
    result, root = finished
    raw = json.loads(json.dumps(recipe))
    raw["stages"][0]["finetune"]["epochs"] = 2
    changed = root / "two-epochs.yaml"
    changed.write_text(yaml.safe_dump(raw))
    with pytest.raises(CompressError, match=r"stage 'finetune' comes earlier and differs.*--redo finetune"):
        run_recipe(changed, out=result.run_dir, console=quiet_console()[0], redo="evaluate")
    raw = json.loads(json.dumps(recipe))
    raw["seed"] = 5
    changed.write_text(yaml.safe_dump(raw))
    with pytest.raises(CompressError, match="'seed' differs"):
        run_recipe(changed, out=result.run_dir, console=quiet_console()[0], redo="report")
    assert (result.run_dir / "report.json").is_file() and (result.run_dir / "stages" / "04-evaluate").is_dir()


def test_redo_names_the_problem_for_unknown_stages_and_empty_directories(recipe, finished, tmp_path):
    result, root = finished
    same = _write(recipe, root / "same.yaml")
    with pytest.raises(CompressError, match="no stage 'evaluation'; its stages are: finetune, export, quantize"):
        run_recipe(same, out=result.run_dir, console=quiet_console()[0], redo="evaluation")
    with pytest.raises(CompressError, match="holds no run to redo"):
        run_recipe(same, out=tmp_path / "nothing", console=quiet_console()[0], redo="evaluate")
    with pytest.raises(CompressError, match="exclude each other"):
        run_recipe(same, out=result.run_dir, console=quiet_console()[0], redo="evaluate", restart=True)


def test_an_option_added_since_the_run_counts_as_unchanged_at_its_default(recipe, finished):
    """A run made before compress grew an option has no value saved for it; left at its default, the
    stage is the same stage, set to something else it is not."""
    result, root = finished
    state_file = result.run_dir / "state.json"
    state = json.loads(state_file.read_text())
    del state["recipe"]["stages"][0]["finetune"]["max_train_examples"]  # as if the option were new
    state_file.write_text(json.dumps(state))
    same = _write(recipe, root / "same-again.yaml")
    assert run_recipe(same, out=result.run_dir, console=quiet_console()[0], redo="evaluate").report is not None
    raw = json.loads(json.dumps(recipe))
    raw["stages"][0]["finetune"]["max_train_examples"] = 50
    changed = root / "limited.yaml"
    changed.write_text(yaml.safe_dump(raw))
    with pytest.raises(CompressError, match="stage 'finetune' comes earlier and differs"):
        run_recipe(changed, out=result.run_dir, console=quiet_console()[0], redo="evaluate")


def test_redo_report_adds_the_comparisons_the_recipe_asks_for(recipe, finished):
    result, root = finished
    raw = _own_recipe(result)
    raw["stages"][-1] = {"report": {"compare": [["teacher-int8", "teacher-onnx"]]}}
    path = root / "compare.yaml"
    path.write_text(yaml.safe_dump(raw))
    again = run_recipe(path, out=result.run_dir, console=quiet_console()[0], redo="report")
    entries = again.report["comparisons"]
    assert [(e["variant"], e["against"], e["setting"]) for e in entries] == [
        ("teacher-int8", "teacher-onnx", "b1_s8"), ("teacher-int8", "teacher-onnx", "b1_s16")
    ]
    rows = {r["name"]: r["latency_ms"]["cpu"] for r in again.report["variants"]}
    for entry in entries:  # computed from the very samples the report holds
        assert entry["p50_ratio"] == pytest.approx(rows["teacher-onnx"][entry["setting"]]["p50"] / entry["p50_ms"], abs=1e-3)
    assert "## Head to head" in (result.run_dir / "report.md").read_text()


def test_redo_needs_only_the_outputs_of_the_stages_it_keeps(recipe, finished):
    """Outputs of the redone stages may be gone (deleted by hand); a kept stage's missing output is
    named, and nothing is deleted or rewound."""
    result, root = finished
    own = root / "own.yaml"
    own.write_text(yaml.safe_dump(_own_recipe(result)))
    variants = {v["name"]: v for v in read_state(result.run_dir)["variants"]}
    Path(variants["teacher-int8"]["path"]).unlink()  # made by quantize, which is redone
    shutil.rmtree(result.bundle_dir)
    again = run_recipe(own, out=result.run_dir, console=quiet_console()[0], redo="quantize")
    assert Path(variants["teacher-int8"]["path"]).is_file() and (again.bundle_dir / "manifest.json").is_file()
    onnx_file = Path(variants["teacher-onnx"]["path"])  # made by export, which is kept
    onnx_file.unlink()
    state_before = (result.run_dir / "state.json").read_text()
    with pytest.raises(CompressError, match=rf"cannot resume, {onnx_file}.*'teacher-onnx'.*is missing"):
        run_recipe(own, out=result.run_dir, console=quiet_console()[0], redo="quantize")
    assert (result.run_dir / "state.json").read_text() == state_before
    assert Path(variants["teacher-int8"]["path"]).is_file()  # nothing of the later stages deleted


def test_a_nested_option_added_since_the_run_counts_as_unchanged_at_its_default():
    """Options inside options (``distill.loss_options.neighbour_temperature``) follow the same rule: absent
    from the saved run and at its default now, the stage is unchanged; set to something else, it changed."""
    from compress.distillation.config import DistillConfig
    from compress.run.rewind import _same_stage

    config = DistillConfig()
    saved = json.loads(json.dumps(config.model_dump(), default=str))
    del saved["loss_options"]["neighbour_temperature"]
    now = json.loads(json.dumps(config.model_dump(), default=str))
    assert _same_stage({"distill": saved}, {"distill": now}, config)
    changed = DistillConfig(loss_options={"neighbour_temperature": 0.1})
    changed_now = json.loads(json.dumps(changed.model_dump(), default=str))
    assert not _same_stage({"distill": saved}, {"distill": changed_now}, changed)
    changed_now["loss_options"]["temperature"] = 3.0  # an option both know, changed: not the same either
    assert not _same_stage({"distill": now}, {"distill": changed_now}, changed)
