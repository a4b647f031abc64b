"""The CLI is thin: it validates, lists, runs and predicts through the library."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from compress.cli import app

runner = CliRunner()


def test_recipes_lists_the_default():
    result = runner.invoke(app, ["recipes"])
    assert result.exit_code == 0
    assert "default" in result.output


def test_validate_accepts_the_default_and_shows_stages():
    result = runner.invoke(app, ["validate", "default"])
    assert result.exit_code == 0, result.output
    assert "finetune -> export -> quantize -> evaluate -> bundle -> report" in result.output


def test_messages_with_long_paths_are_not_broken_across_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    deep = tmp_path / ("a-rather-long-directory-name-" * 3) / "recipe.yaml"
    deep.parent.mkdir(parents=True)
    deep.write_text((Path(__file__).parents[1] / "recipes" / "default.yaml").read_text())
    result = runner.invoke(app, ["validate", str(deep)])
    assert result.exit_code == 0, result.output
    assert str(deep) in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_validate_reports_a_typo_with_a_suggestion(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "stages": [{"finetune": {"epoch": 2}}]}))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "unknown field 'stages[0] (finetune).epoch'" in result.output
    assert "did you mean 'epochs'" in result.output
    assert "Traceback" not in result.output


def test_run_then_predict_through_the_cli(tmp_path, tiny_recipe):
    recipe = tiny_recipe(
        [{"finetune": {"epochs": 4, "learning_rate": 3e-3, "batch_size": 16, "patience": 0}}, "export", "quantize", "bundle"]
    )
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(path), "--out", str(out), "--set", "finetune.epochs=6"])
    assert result.exit_code == 0, result.output
    assert (out / "bundle" / "manifest.json").is_file()
    texts = ["the story was superb and moving", "the plot is dull and the cast flat"]
    predicted = runner.invoke(app, ["predict", str(out / "bundle"), *texts])
    assert predicted.exit_code == 0, predicted.output
    lines = [line.split("\t") for line in predicted.output.strip().splitlines()]
    assert [line[0] for line in lines] == ["pos", "neg"]
    assert all(0.5 <= float(line[1]) <= 1.0 for line in lines)
    redo = runner.invoke(app, ["run", str(path), "--out", str(out), "--set", "finetune.epochs=6", "--redo", "bundel"])
    assert redo.exit_code == 2 and "no stage 'bundel'" in redo.output and "Traceback" not in redo.output
    stamp = (out / "stages" / "01-finetune" / "model" / "model.safetensors").stat().st_mtime_ns
    redo = runner.invoke(app, ["run", str(path), "--out", str(out), "--set", "finetune.epochs=6", "--redo", "bundle"])
    assert redo.exit_code == 0, redo.output
    assert "Redoing" in redo.output and (out / "bundle" / "manifest.json").is_file()
    assert (out / "stages" / "01-finetune" / "model" / "model.safetensors").stat().st_mtime_ns == stamp


def test_run_summary_shows_the_task_primary_metric_when_there_is_no_accuracy():
    from compress import cli

    def variant(name, **metrics):
        return {"name": name, "size_bytes": 1e6, "latency_ms": {"cpu": {"b1_s16": {"p50": 2.0}}},
                "speedup_vs_baseline": {"cpu": {"b1_s16": 1.0}}, "accuracy": None, **metrics}

    report = {"task": {"name": "text-regression", "primary": "pearson"},
              "variants": [variant("teacher", pearson=0.7226), variant("teacher-int8", pearson=0.7204)]}
    with cli.console.capture() as captured:
        cli._print_summary(report)
    text = captured.get()
    assert "pearson" in text and "0.7226" in text and "0.7204" in text and "accuracy" not in text
    report["variants"][0]["accuracy"] = 0.8235
    with cli.console.capture() as captured:
        cli._print_summary(report)
    assert "82.35%" in captured.get()


def test_the_end_of_run_hint_names_the_command_that_uses_the_bundle(tmp_path):
    import json

    from compress import cli

    embedder, classifier = tmp_path / "embedder", tmp_path / "classifier"
    for directory, output in ((embedder, "sentence_embedding"), (classifier, "logits")):
        directory.mkdir()
        (directory / "manifest.json").write_text(json.dumps({"output": output}))
    assert cli._bundle_hint(embedder).startswith("compress embed ")
    assert cli._bundle_hint(classifier).startswith("compress predict ")
    assert cli._bundle_hint(tmp_path / "missing").startswith("compress predict ")
