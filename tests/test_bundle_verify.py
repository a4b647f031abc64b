"""Bundles verify themselves completely before ``compress predict`` loads anything (issue 20, parts 5-6).

Each test builds a real bundle with ``write_bundle`` from a tiny ONNX classifier, tampers with it the
way a careless or hostile hand would, and expects one clear message (exit 2 from the CLI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_onnx import export_tiny_onnx
from typer.testing import CliRunner

from compress.bundle.predict import BundlePredictor, predict
from compress.bundle.writer import write_bundle
from compress.cli import app
from compress.core.files import sha256_file
from compress.data.tokenization import TextEncoder
from compress.errors import CompressError

LABELS = ("neg", "pos")
TEXTS = ["a great and charming film", "a dull and tedious plot"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, tiny_checkpoints) -> Path:
    root = tmp_path_factory.mktemp("bundle-run")
    onnx_path = export_tiny_onnx(tiny_checkpoints["bert"], root / "onnx")
    encoder = TextEncoder.from_dir(onnx_path.parent, 16)
    return write_bundle(root / "bundle", onnx_path, encoder, LABELS, {}, root)


@pytest.fixture
def copy(bundle, tmp_path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(bundle, target)
    return target


def _edit(directory: Path, **changes) -> None:
    """Change manifest fields; a value of None deletes the field."""
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    path.write_text(json.dumps(manifest))


def _files(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())["files"]


def _hashed(path: Path) -> dict:
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def test_an_untouched_bundle_predicts(bundle):
    predictions = predict(bundle, TEXTS)
    assert [p.label in LABELS for p in predictions] == [True, True]
    assert all(0.5 <= p.probability <= 1 for p in predictions)


def test_the_model_must_be_one_of_the_hashed_files(copy):
    shutil.copy(copy / "model.onnx", copy / "other.onnx")  # an unhashed file, swapped in by the manifest
    _edit(copy, model="other.onnx")
    with pytest.raises(CompressError, match="the model file 'other.onnx' is not one of the manifest's hashed files"):
        BundlePredictor(copy)


def test_a_manifest_without_files_is_refused(copy):
    _edit(copy, files=None)
    with pytest.raises(CompressError, match="manifest.json: not a valid bundle manifest: files: missing"):
        BundlePredictor(copy)


def test_the_tokenizer_must_be_hashed_too(copy):
    files = _files(copy)
    del files["tokenizer.json"]
    _edit(copy, files=files)
    with pytest.raises(CompressError, match="tokenizer file 'tokenizer.json' is not one of"):
        BundlePredictor(copy)


@pytest.mark.parametrize("how", ["dotdot", "absolute"])
def test_file_names_must_stay_inside_the_bundle(how, copy, tmp_path):
    outside = tmp_path / "outside.onnx"
    shutil.copy(copy / "model.onnx", outside)
    name = "../outside.onnx" if how == "dotdot" else str(outside)
    _edit(copy, model=name, files={**_files(copy), name: _hashed(outside)})  # correctly hashed, but outside
    with pytest.raises(CompressError, match="is not a plain path inside the bundle"):
        BundlePredictor(copy)


def test_a_symbolic_link_leading_out_is_refused(copy, tmp_path):
    outside = tmp_path / "outside.onnx"
    shutil.move(copy / "model.onnx", outside)
    (copy / "model.onnx").symlink_to(outside)  # same bytes, same hash, but not in the bundle
    with pytest.raises(CompressError, match="model.onnx: leads outside the bundle"):
        BundlePredictor(copy)


def test_label_count_must_match_the_models_outputs(copy):
    _edit(copy, labels=["neg", "neutral", "pos"])
    with pytest.raises(CompressError, match=r"lists 3 labels \(neg, neutral, pos\) but the model model.onnx outputs 2"):
        BundlePredictor(copy).predict(TEXTS)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"labels": None}, "labels: missing"),
        ({"labels": "neg,pos"}, "labels: expected a list of label names, got 'neg,pos'"),
        ({"max_length": -4}, "max_length: expected a positive whole number of tokens, got -4"),
        ({"max_length": "16"}, "max_length: expected a positive whole number of tokens, got '16'"),
        ({"labels": None, "max_length": 2.5}, "labels: missing; max_length: expected a positive whole number"),
    ],
)
def test_bad_labels_or_max_length_are_one_message(changes, message, copy):
    _edit(copy, **changes)
    with pytest.raises(CompressError, match="manifest.json: not a valid bundle manifest: " + message):
        BundlePredictor(copy)
    result = CliRunner().invoke(app, ["predict", str(copy), "a film"])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_non_utf8_argument_to_predict_is_named(bundle):
    compress = Path(sys.executable).with_name("compress")
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    result = subprocess.run([compress, "predict", bundle, b"caf\xff film", "fine"], capture_output=True, env=env)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2, stderr
    assert "text 1 (b'caf\\xff film') is not valid UTF-8" in stderr and "Traceback" not in stderr
    assert result.stdout == b""  # nothing half-printed
