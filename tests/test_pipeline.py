"""The vertical slice on a tiny model: finetune -> export -> quantize -> evaluate -> bundle -> report."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from compress.core.recipe import parse_recipe
from compress.run.pipeline import run_recipe

SLICE = [
    {"finetune": {"epochs": 6, "learning_rate": 3e-3, "batch_size": 16, "patience": 0}},
    {"export": {}},
    {"quantize": {}},
    {"evaluate": {"batch_sizes": [1, 4], "seq_lengths": [32, "p95"], "rounds": 5, "warmup": 1}},
    {"bundle": {}},
    {"report": {}},
]


@pytest.fixture(scope="module")
def slice_run(tmp_path_factory, tiny_checkpoints, synthetic_csv):
    raw = {
        "name": "tiny",
        "model": {"source": str(tiny_checkpoints["bert"]), "max_length": 32},
        "data": {"dataset": str(synthetic_csv), "test_size": 100, "dev_size": 100},
        "stages": SLICE,
    }
    out = tmp_path_factory.mktemp("run") / "run"
    return run_recipe(parse_recipe(raw, "tiny.yaml"), out=out)


def test_training_learns_the_task(slice_run):
    teacher = next(v for v in slice_run.report["variants"] if v["name"] == "teacher")
    assert teacher["accuracy"] >= 0.9, teacher["accuracy"]
    history = teacher["info"]["training"]["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_export_and_quantization_agree_with_torch(slice_run):
    variants = {v["name"]: v for v in slice_run.report["variants"]}
    assert set(variants) == {"teacher", "teacher-onnx", "teacher-int8"}
    assert variants["teacher-onnx"]["info"]["max_abs_logit_diff_vs_torch"] < 1e-4
    assert variants["teacher-onnx"]["agreement_with_baseline"] == 1.0
    assert variants["teacher-int8"]["agreement_with_baseline"] >= 0.95
    assert abs(variants["teacher-int8"]["accuracy"] - variants["teacher"]["accuracy"]) <= 0.05
    assert variants["teacher-int8"]["size_bytes"] < variants["teacher-onnx"]["size_bytes"]


def test_report_json_contract(slice_run):
    report = json.loads((slice_run.run_dir / "report.json").read_text())
    assert report["baseline"] == "teacher"
    for key in ("cpu", "cpu_flags", "threads", "libraries"):
        assert key in report["environment"]
    p95 = report["data"]["p95_tokens"]
    assert 5 <= p95 <= 32
    for variant in report["variants"]:
        assert variant["runtime"] in ("torch", "onnxruntime")
        assert variant["precision"] in ("fp32", "int8")
        assert 0 <= variant["accuracy"] <= 1
        assert variant["size_bytes"] > 0
        cpu = variant["latency_ms"]["cpu"]
        assert set(cpu) == {"b1_s32", f"b1_s{p95}", "b4_s32", f"b4_s{p95}"}
        for stats in cpu.values():
            assert 0 < stats["p50"] <= stats["p90"] <= stats["p99"]
    assert (slice_run.run_dir / "report.md").read_text().startswith("# compress report: tiny")
    assert (slice_run.run_dir / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert report["environment"]["recipe_hash"] == report["recipe"]["hash"]
    for variant in report["variants"]:
        assert len(variant["latency_ms"]["cpu"]["b1_s32"]["samples"]) == 5
        assert "b1_s32" in variant["speedup_spread_vs_baseline"]["cpu"]


def test_bundle_predicts_like_the_int8_variant_without_torch(slice_run):
    bundle = slice_run.bundle_dir
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["labels"] == ["neg", "pos"]
    assert set(manifest["files"]) == {"model.onnx", "tokenizer.json"}
    assert manifest["onnxruntime_session"] == {"cpu_disabled_optimizers": ["SkipLayerNormFusion"]}  # how it was timed
    script = (
        "import sys, json; from compress.bundle.predict import predict; "
        f"out = predict({str(bundle)!r}, ['a great and charming film', 'a dull and tedious plot']); "
        "print(json.dumps([[p.label, p.probability] for p in out])); "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    predictions, torch_loaded = result.stdout.strip().splitlines()
    assert json.loads(predictions)[0][0] == "pos" and json.loads(predictions)[1][0] == "neg"
    assert torch_loaded == "False"


def test_bundle_refuses_a_tampered_model(slice_run, tmp_path):
    import shutil

    from compress.bundle.predict import BundlePredictor
    from compress.errors import CompressError

    copy = tmp_path / "bundle"
    shutil.copytree(slice_run.bundle_dir, copy)
    with open(copy / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(CompressError, match="sha256"):
        BundlePredictor(copy)
