"""OpenVINO as a second serving runtime (issue 21): the ``openvino`` runtime against ONNX Runtime, NNCF's INT8 IR,
``evaluate`` rows on both runtimes, an OpenVINO bundle and ``compress predict`` on it, and what happens where the
``openvino`` package is missing (a note in evaluate, one clear message from predict)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny import make_checkpoint, synthetic_rows
from tiny_onnx import export_tiny_onnx
from typer.testing import CliRunner

from compress.core.recipe import parse_recipe
from compress.core.variant import ONNX, OPENVINO, Variant
from compress.data.tokenization import TextEncoder
from compress.errors import CompressError, RecipeError
from compress.runtimes import OnnxPredictor, RuntimeUnavailable, open_runtime
from compress.tasks import get_task

TEXTS = [text for text, _ in synthetic_rows(96, seed=3)]


def _blocked(monkeypatch) -> None:
    """Make ``import openvino`` fail, as on a machine without the package."""
    monkeypatch.setitem(sys.modules, "openvino", None)


def _encoded(directory: Path, texts: list[str], length: int = 32) -> dict[str, np.ndarray]:
    encoder = TextEncoder.from_dir(directory, length)
    examples = get_task().encode(encoder, texts)
    return examples.collate(range(len(examples)))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny BERT, but hidden 128 (1.2 MB of weights): at hidden 32 an INT8 IR's graph text outweighs its weights."""
    return make_checkpoint(tmp_path_factory.mktemp("openvino-checkpoint"), "bert", hidden=128)


@pytest.fixture(scope="module")
def tiny_fp32(tmp_path_factory, checkpoint) -> Path:
    return export_tiny_onnx(checkpoint, tmp_path_factory.mktemp("openvino-fp32"))


def test_openvino_runs_an_onnx_file_like_onnxruntime(tiny_fp32):
    pytest.importorskip("openvino")
    variant = Variant("tiny", ONNX, "fp32", tiny_fp32, tiny_fp32.parent, "test")
    predictor = open_runtime(variant, "openvino", "cpu", threads=2)
    reference = OnnxPredictor(tiny_fp32, threads=2)
    for texts in (TEXTS[:1], TEXTS[:17], TEXTS):  # dynamic batch and sequence axes
        batch = _encoded(tiny_fp32.parent, texts)
        ours, theirs = predictor.run(batch), reference.run(batch)
        assert ours.shape == theirs.shape == (len(texts), 2)
        assert float(np.abs(ours - theirs).max()) < 1e-5  # f32 pinned: no silent bf16
    assert open_runtime(variant, "openvino", "cuda") is None  # the CPU only


def test_nncf_int8_ir_agrees_with_fp32_and_is_smaller(tiny_fp32, tmp_path):
    pytest.importorskip("nncf")
    from compress.quantization.openvino import quantize_for_openvino
    from compress.runtimes.openvino import OpenVinoPredictor

    examples = get_task().encode(TextEncoder.from_dir(tiny_fp32.parent, 32), [t for t, _ in synthetic_rows(64, seed=4)])
    calibration = [examples.collate([i]) for i in range(len(examples))]
    xml = quantize_for_openvino(tiny_fp32, tmp_path / "int8.onnx", calibration)
    assert xml == tmp_path / "int8.xml" and xml.with_suffix(".bin").is_file()
    ir = Variant("tiny-ov-int8", OPENVINO, "int8", xml, tiny_fp32.parent, "test")
    fp32 = Variant("tiny", ONNX, "fp32", tiny_fp32, tiny_fp32.parent, "test")
    assert ir.size_bytes() < 0.6 * fp32.size_bytes()
    assert ir.size_bytes() == xml.stat().st_size + xml.with_suffix(".bin").stat().st_size
    batch = _encoded(tiny_fp32.parent, TEXTS)
    quantized, reference = OpenVinoPredictor(xml, threads=2).run(batch), OnnxPredictor(tiny_fp32).run(batch)
    assert (quantized.argmax(-1) == reference.argmax(-1)).mean() >= 0.9
    assert 0 < float(np.abs(quantized - reference).max()) < 0.35 * float(np.abs(reference).max())  # quantized, and close
    assert open_runtime(ir, "onnxruntime", "cpu") is None  # an IR is OpenVINO's alone


def test_quantize_backend_openvino_options_are_checked(tiny_recipe):
    ov = {"backend": "openvino", "mode": "static"}
    recipe = parse_recipe(tiny_recipe([{"export": {}}, {"quantize": ov}, {"evaluate": {}}, {"bundle": {}}]), "r.yaml")
    assert recipe.stages[1].config.preset == "performance"
    with pytest.raises(RecipeError, match="static INT8"):
        parse_recipe(tiny_recipe([{"export": {}}, {"quantize": {"backend": "openvino"}}]), "r.yaml")
    with pytest.raises(RecipeError, match="exclude_nodes, per_channel: not options of backend 'openvino'"):
        parse_recipe(tiny_recipe([{"export": {}}, {"quantize": {**ov, "per_channel": True, "exclude_nodes": ["x"]}}]), "r.yaml")
    with pytest.raises(RecipeError, match="preset applies to backend 'openvino' only"):
        parse_recipe(tiny_recipe([{"export": {}}, {"quantize": {"preset": "mixed"}}]), "r.yaml")
    with pytest.raises(RecipeError, match="needs an ONNX model, but after stage 'quantize' the model is an OpenVINO IR"):
        parse_recipe(tiny_recipe([{"export": {}}, {"quantize": ov}, {"quantize": {"id": "again"}}]), "r.yaml")


@pytest.fixture(scope="module")
def openvino_run(tmp_path_factory, checkpoint, synthetic_csv):
    """finetune -> export -> NNCF INT8 IR -> evaluate on ONNX Runtime and OpenVINO -> bundle (the IR)."""
    pytest.importorskip("nncf")
    from compress.run.pipeline import run_recipe

    raw = {
        "name": "tiny-openvino",
        "seed": 0,
        "model": {"source": str(checkpoint), "max_length": 32},
        "data": {"dataset": str(synthetic_csv), "test_size": 100, "dev_size": 100},
        "stages": [
            {"finetune": {"epochs": 4, "learning_rate": 3e-3, "batch_size": 16, "patience": 0}},
            {"export": {}},
            {"quantize": {"backend": "openvino", "mode": "static", "calibration_samples": 64}},
            {"evaluate": {"batch_sizes": [1], "seq_lengths": [16], "rounds": 3, "warmup": 1, "memory": False,
                          "runtimes": ["onnxruntime", "openvino"]}},
            {"bundle": {}},
            {"report": {}},
        ],
    }
    out = tmp_path_factory.mktemp("openvino-run") / "run"
    return run_recipe(parse_recipe(raw, "tiny-openvino.yaml"), out=out)


def test_evaluate_times_onnx_on_both_runtimes_and_the_ir_on_openvino(openvino_run):
    state = json.loads((openvino_run.run_dir / "state.json").read_text())
    variants = {v["name"]: v for v in state["variants"]}
    assert (variants["teacher-ov-int8"]["runtime"], variants["teacher-ov-int8"]["precision"]) == ("openvino", "int8")
    assert Path(variants["teacher-ov-int8"]["path"]).name == "model.xml"
    info = variants["teacher-ov-int8"]["info"]["quantization"]
    assert info["backend"] == "openvino" and info["calibration_texts"] == 64 and info["dev_accuracy"] >= 0.8
    rows = {row["name"]: row for row in openvino_run.report["variants"]}
    assert {"teacher-onnx", "teacher-onnx [openvino]", "teacher-ov-int8"} <= set(rows)
    assert "teacher-ov-int8 [onnxruntime]" not in rows  # ONNX Runtime cannot run an IR: no row, no note
    for name in ("teacher-onnx", "teacher-onnx [openvino]", "teacher-ov-int8"):
        assert rows[name]["latency_ms"]["cpu"]["b1_s16"]["p50"] > 0
    assert rows["teacher-onnx [openvino]"]["runtime"] == "openvino"
    assert rows["teacher-ov-int8"]["accuracy"] >= 0.8 and rows["teacher-ov-int8"]["agreement_with_baseline"] >= 0.9
    assert rows["teacher-ov-int8"]["size_bytes"] < 0.6 * rows["teacher-onnx"]["size_bytes"]


def test_an_openvino_bundle_predicts_like_its_variant_without_torch(openvino_run):
    from compress.runtimes.openvino import OpenVinoPredictor

    bundle = openvino_run.bundle_dir
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert (manifest["runtime"], manifest["model"], manifest["weights"]) == ("openvino", "model.xml", "model.bin")
    assert set(manifest["files"]) == {"model.xml", "model.bin", "tokenizer.json"}
    assert manifest["openvino"]["cpu_config"]["INFERENCE_PRECISION_HINT"] == "f32" and "onnxruntime_session" not in manifest
    assert manifest["latency_ms"]["cpu"]["b1_s16"]["p50"] > 0
    state = json.loads((openvino_run.run_dir / "state.json").read_text())
    variant = next(v for v in state["variants"] if v["name"] == "teacher-ov-int8")
    texts = TEXTS[:24]
    expected = OpenVinoPredictor(openvino_run.run_dir / variant["path"]).run(_encoded(bundle, texts)).argmax(-1)
    code = (
        "import sys, json; from compress.bundle.predict import predict; "
        f"print(json.dumps([p.label for p in predict({str(bundle)!r}, {texts!r})])); print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    labels, torch_loaded = result.stdout.strip().splitlines()[-2:]
    assert json.loads(labels) == [manifest["labels"][i] for i in expected]
    assert torch_loaded == "False"


def test_a_changed_ir_weights_file_is_refused(openvino_run, tmp_path):
    import shutil

    from compress.bundle.predict import BundlePredictor

    copy = tmp_path / "bundle"
    shutil.copytree(openvino_run.bundle_dir, copy)
    with open(copy / "model.bin", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(CompressError, match="model.bin: sha256 does not match"):
        BundlePredictor(copy)


def test_an_onnx_variant_can_be_bundled_for_openvino(tiny_fp32, tmp_path):
    pytest.importorskip("openvino")
    from compress.bundle.predict import BundlePredictor
    from compress.bundle.writer import write_bundle

    encoder = TextEncoder.from_dir(tiny_fp32.parent, 32)
    bundle = write_bundle(tmp_path / "bundle", tiny_fp32, encoder, ("neg", "pos"), {}, tmp_path, runtime="openvino")
    assert not (bundle / "model.onnx").exists()
    probabilities = BundlePredictor(bundle).probabilities(TEXTS[:8])
    logits = OnnxPredictor(tiny_fp32).run(_encoded(tiny_fp32.parent, TEXTS[:8]))
    softmax = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert np.abs(probabilities - softmax).max() < 1e-5  # converted as it is: FP32 stays FP32


def test_missing_openvino_is_a_note_in_evaluate(tiny_fp32, monkeypatch):
    from rich.console import Console

    from compress.evaluation.suite import LatencySettings, evaluate_variants

    _blocked(monkeypatch)
    variant = Variant("tiny-onnx", ONNX, "fp32", tiny_fp32, tiny_fp32.parent, "test")
    with pytest.raises(RuntimeUnavailable, match="OpenVINO is not installed"):
        open_runtime(variant, "openvino", "cpu")
    settings = LatencySettings(
        batch_sizes=[1], seq_lengths=[8], rounds=3, warmup=1, memory=False, runtimes=["onnxruntime", "openvino"]
    )
    result = evaluate_variants([variant], settings, None, 32, Console(quiet=True), TEXTS)
    assert set(result["variants"]) == {"tiny-onnx"}
    assert any("tiny-onnx with openvino on cpu: skipped (OpenVINO is not installed" in note for note in result["notes"])


def test_predict_says_once_that_an_openvino_bundle_needs_openvino(openvino_run, monkeypatch):
    from compress.cli import app

    _blocked(monkeypatch)
    result = CliRunner().invoke(app, ["predict", str(openvino_run.bundle_dir), "a great film"])
    assert result.exit_code == 2
    assert "this bundle runs on OpenVINO" in result.output and "pip install openvino" in result.output
    assert "Traceback" not in result.output
