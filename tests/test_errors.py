"""Bad input gets one clear CompressError naming the field or file (exit code 2 on the CLI, no traceback)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import Field
from rich.console import Console
from tiny import VOCAB, make_checkpoint, synthetic_rows, tiny_config, tiny_tokenizer, write_csv

from compress.core.recipe import DataConfig, ModelConfig, load_recipe, parse_recipe
from compress.core.stage import _STAGES, Stage, StageConfig, register_stage
from compress.data.sources import load_task
from compress.errors import CompressError, DataError, ModelLoadError, RecipeError, SetupError, StageError

ROOT = Path(__file__).resolve().parent.parent
LABELS = ("neg", "pos")


def recipe(*stages, **sections) -> dict:
    return {"name": "t", "stages": list(stages) or ["export"], **sections}


# ----------------------------------------------------------------------------------------------- recipe
@pytest.fixture
def toy_stage():
    """A stage with a required option and a backend that is not installed."""

    class ToyConfig(StageConfig):
        teacher: str = Field(description="required")

    @register_stage
    class Toy(Stage):
        kind = "toy"
        Config = ToyConfig
        requires = {"surely_not_installed_backend_xyz": "xyz-backend>=1"}

    yield Toy
    _STAGES.pop("toy")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (recipe({"finetun": {}}), "unknown stage 'finetun' (did you mean 'finetune'?)"),
        (recipe({"finetune": {"epocs": 2}}), "'stages[0] (finetune).epocs' (did you mean 'epochs'?)"),
        (recipe(model={"sorce": "minilm"}), "'model.sorce' (did you mean 'source'?)"),
        (recipe(dataa={}), "'dataa' (did you mean 'data'?)"),
        (recipe({"finetune": {"epochs": "two"}}), "stages[0] (finetune).epochs: Input should be a valid integer"),
        (recipe({"finetune": {"warmup_ratio": 1.5}}), "stages[0] (finetune).warmup_ratio: Input should be less than 1"),
        (recipe({"finetune": {"epochs": -1}}), "epochs: Input should be greater than or equal to 0"),
        (recipe(model={"max_length": 2}), "model.max_length: Input should be greater than or equal to 8"),
        (recipe("export", "finetune"), "stages[1] (finetune) needs a PyTorch model, but after stage 'export'"),
        (recipe("quantize"), "stages[0] (quantize) needs an ONNX model"),
        ({"stages": ["export"]}, "name: Field required"),
        ({"name": "t", "stages": []}, "stages: List should have at least 1 item"),
        ([1, 2], "a recipe must be a YAML mapping"),
        (recipe({"export": 3}), "options must be a mapping"),
        (recipe({"export": {}, "quantize": {}}), "must be a stage name or a one-key mapping"),
        (recipe("export", {"export": {}}, "quantize", {"export": {"id": "export"}}), "stage ids must be unique"),
    ],
)
def test_recipe_errors_name_the_field(raw, expected):
    with pytest.raises(RecipeError) as caught:
        parse_recipe(raw, "bad.yaml")
    assert expected in str(caught.value)
    assert str(caught.value).startswith("bad.yaml")


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ({"prune": {"ffn": 1.5}}, "stages[0] (prune).ffn"),
        ({"prune": {"heads": -0.5}}, "stages[0] (prune).heads"),
        ({"prune": {}}, "nothing to prune"),
        ({"toy": {}}, "stages[0] (toy).teacher: Field required"),
    ],
)
def test_out_of_range_and_missing_stage_options_name_the_field(toy_stage, stage, expected):
    with pytest.raises(RecipeError, match="bad.yaml") as caught:
        parse_recipe(recipe(stage), "bad.yaml")
    assert expected in str(caught.value)


def test_not_yaml_and_not_text(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstages: [export\n")
    with pytest.raises(RecipeError, match=r"bad.yaml: not valid YAML at line 3"):
        load_recipe(bad)
    bad.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(RecipeError, match="not valid UTF-8"):
        load_recipe(bad)
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "missing.yaml")
    with pytest.raises(RecipeError, match="did you mean 'finetune'"):
        parse_recipe(recipe("finetune"), "x.yaml", overrides=["finetun.epochs=1"])


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "compress", *args], capture_output=True, text=True, cwd=ROOT, env=env)


def test_cli_prints_one_message_and_exits_2_and_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(recipe({"finetune": {"epocs": 2}})))
    result = _cli("validate", str(bad))
    assert result.returncode == 2
    assert "did you mean 'epochs'" in result.stderr and "Traceback" not in result.stderr
    debug = _cli("--debug", "validate", str(bad))
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "RecipeError" in debug.stderr


def test_every_cli_command_maps_compress_errors(tmp_path):
    from compress import cli

    commands = {c.callback.__name__: c.callback for c in cli.app.registered_commands}
    assert commands and all(getattr(f, "__wrapped__", None) for f in commands.values()), "missing @friendly_errors"
    result = _cli("predict", str(tmp_path), "some text")
    assert result.returncode == 2 and "not a compress bundle" in result.stderr


# ------------------------------------------------------------------------------------------------ model
def _load(source: str, **model) -> object:
    from compress.models.sources import load_input_model

    return load_input_model(ModelConfig(source=source, **model), LABELS)


def test_model_path_problems(tmp_path):
    with pytest.raises(ModelLoadError, match="no such directory"):
        _load(str(tmp_path / "nope"))
    with pytest.raises(ModelLoadError, match="not a model checkpoint"):
        _load(str(tmp_path))
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="expected a checkpoint directory, got a file"):
        _load(str(tmp_path / "file.bin"))
    with pytest.raises(ModelLoadError, match="cannot import module"):
        _load("no_such_package_xyz.models:build", tokenizer=str(tmp_path))


def test_truncated_safetensors_is_named(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "hf", "bert")
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match=str(checkpoint)):
        _load(str(checkpoint))


def test_compress_model_dir_truncated_or_mismatched(tmp_path, tiny_checkpoints):
    from transformers import AutoModelForSequenceClassification

    from compress.models.persistence import MANIFEST, load_model, save_model

    directory = save_model(AutoModelForSequenceClassification.from_pretrained(tiny_checkpoints["bert"]), tmp_path / "m")
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["config"]["num_hidden_layers"] = 3  # the weights hold 2 layers
    (directory / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="weights do not match the model description"):
        load_model(directory)
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])
    with pytest.raises(ModelLoadError, match="model.safetensors: cannot read weights"):
        load_model(directory)


def test_hf_weights_that_do_not_match_the_config(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "hf", "bert")
    config = json.loads((checkpoint / "config.json").read_text())
    config["hidden_size"], config["intermediate_size"] = 48, 96
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="cannot load the model weights"):
        _load(str(checkpoint))


def test_truncated_onnx_is_named(tmp_path):
    from compress.quantization import quantize_dynamic_int8
    from compress.runtimes import OnnxPredictor

    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"\x08\x07\x12\x05hello-not-a-model" * 3)
    with pytest.raises(ModelLoadError, match="model.onnx: not a readable ONNX model"):
        quantize_dynamic_int8(broken, tmp_path / "int8.onnx", False, False, "qint8")
    assert not (tmp_path / "int8.onnx").exists()
    with pytest.raises(CompressError, match="ONNX Runtime cannot load this model"):
        OnnxPredictor(broken)


def test_labels_not_matching_the_head(tmp_path):
    from transformers import AutoModelForSequenceClassification

    from compress.data.tokenization import TextEncoder
    from compress.models.sources import check_model_output
    from compress.tasks import get_task

    three = make_checkpoint(tmp_path / "three", "bert", num_labels=3)
    with pytest.raises(ModelLoadError, match="classification head has 3 labels, the data has 2"):
        _load(str(three))
    inputs = get_task().encode(TextEncoder(tiny_tokenizer(), 16), ["a short check text"]).collate([0])
    model = AutoModelForSequenceClassification.from_pretrained(three)
    with pytest.raises(ModelLoadError, match="outputs 3 logits per text, the data has 2 labels"):
        check_model_output(model, inputs, LABELS, "three")
    check_model_output(model, inputs, ("a", "b", "c"), "three")


def test_tokenizer_that_does_not_fit_the_model(tmp_path):
    from transformers import AutoModelForSequenceClassification

    from compress.data.tokenization import TextEncoder
    from compress.models.sources import check_model_output
    from compress.tasks import get_task

    config = tiny_config("bert")
    config.vocab_size = 4  # far fewer embeddings than the tokenizer's ids
    model = AutoModelForSequenceClassification.from_config(config)
    inputs = get_task().encode(TextEncoder(tiny_tokenizer(), 16), ["a short check text"]).collate([0])
    with pytest.raises(ModelLoadError, match="cannot run on token ids from its tokenizer"):
        check_model_output(model, inputs, LABELS, "small-vocab")
    assert len(VOCAB) > 4


def test_architecture_not_supported_by_a_stage():
    from torch import nn

    from compress.models.architectures import encoder_layers

    with pytest.raises(StageError, match="not supported here; supported: bert, roberta, distilbert"):
        encoder_layers(nn.Linear(2, 2))


# ------------------------------------------------------------------------------------------------- data
def _task(path: Path, **options):
    return load_task(DataConfig(dataset=str(path), test_size=10, dev_size=10, **options))


def test_data_problems(tmp_path):
    with pytest.raises(DataError, match="missing.csv: data file not found"):
        _task(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="unknown dataset 'imdb'"):
        load_task(DataConfig(dataset="imdb"))
    wrong = write_csv(tmp_path / "cols.csv", synthetic_rows(50))
    with pytest.raises(DataError, match=r"missing column\(s\) 'review'; found label, text") as caught:
        _task(wrong, text_column="review")
    assert "data.text_column" in str(caught.value)
    empty = write_csv(tmp_path / "empty.csv", [("   ", "pos"), ("", "neg")])
    with pytest.raises(DataError, match="no examples"):
        _task(empty)
    single = write_csv(tmp_path / "single.csv", [(f"text {i}", "pos") for i in range(40)])
    with pytest.raises(DataError, match="single class"):
        _task(single)
    (tmp_path / "latin1.csv").write_bytes("text,label\ncaf\xe9 au lait,pos\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        _task(tmp_path / "latin1.csv")
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "label": "pos"}\n{oops\n')
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        _task(tmp_path / "bad.jsonl")
    small = write_csv(tmp_path / "small.csv", synthetic_rows(18))
    with pytest.raises(DataError, match="too few"):
        _task(small)
    (tmp_path / "data.parquet").write_bytes(b"PAR1")
    with pytest.raises(DataError, match="unsupported data format"):
        _task(tmp_path / "data.parquet")


def test_long_texts_are_truncated_with_a_warning_and_counted(tmp_path):
    from compress.data.checks import truncation_check
    from compress.data.tokenization import TextEncoder
    from compress.reporting.markdown import _truncated

    rows = synthetic_rows(60) + [("great " * 40, "pos"), ("dull " * 40, "neg")] * 10
    task = _task(write_csv(tmp_path / "long.csv", rows))
    buffer = io.StringIO()
    checks = truncation_check(TextEncoder(tiny_tokenizer(), 16), task, Console(file=buffer, width=200))
    counts = checks["truncated_texts"]
    assert sum(counts.values()) == 20 and set(counts) == {"train", "dev", "test"}
    assert "20 texts are longer than max_length=16" in buffer.getvalue()
    assert _truncated({"truncated_texts": counts}) == ", 20 texts truncated to max length"


# ------------------------------------------------------------------------------------------ environment
def test_missing_required_backend_fails_before_any_work(toy_stage, tmp_path):
    from compress.run.pipeline import run_recipe

    parsed = parse_recipe(recipe({"toy": {"teacher": "t"}}), "toy.yaml")
    with pytest.raises(SetupError, match="stage 'toy' needs xyz-backend>=1, which is not installed"):
        run_recipe(parsed, out=tmp_path / "run", console=Console(file=io.StringIO()))
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU path")
def test_gpu_requested_without_one_is_skipped_with_a_note_or_fails_when_required(tmp_path):
    optional = parse_recipe(recipe("export", {"evaluate": {"devices": ["cpu", "cuda"]}}), "gpu.yaml")
    assert "no CUDA GPU present" in optional.stages[1].build().check_environment()[0]
    required = parse_recipe(recipe("export", {"evaluate": {"devices": ["cuda"], "require_gpu": True}}), "gpu.yaml")
    with pytest.raises(SetupError, match="requires a CUDA GPU and none is present"):
        required.stages[1].build().check_environment()

    from compress.evaluation.suite import LatencySettings, measure_latency

    results, notes = measure_latency([], LatencySettings(devices=["cuda"]), ["a"], 8, Console(file=io.StringIO()))
    assert notes == ["cuda: no CUDA device present; GPU latency skipped"]
