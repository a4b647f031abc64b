"""Integration: the real embedded MiniLM teacher on a slice of the real Rotten Tomatoes data."""

from __future__ import annotations

import pytest

from compress.core.recipe import parse_recipe
from compress.data.sources import load_task
from compress.run.pipeline import run_recipe

pytestmark = pytest.mark.integration


def test_rotten_tomatoes_split_is_seeded_stratified_and_disjoint():
    from compress.core.recipe import DataConfig

    task = load_task(DataConfig())
    assert (len(task.train), len(task.dev), len(task.test)) == (9752, 1000, 2000)
    assert task.label_names == ("fresh", "rotten")
    assert not set(task.test.texts) & set(task.train.texts)
    assert not set(task.dev.texts) & set(task.train.texts)
    fresh_share = sum(1 for y in task.test.labels if y == 0) / len(task.test)
    assert abs(fresh_share - 7368 / 12752) < 0.002
    assert load_task(DataConfig()).test.texts[:5] == task.test.texts[:5]


def test_minilm_slice_finetunes_exports_and_quantizes(tmp_path):
    raw = {
        "name": "minilm-slice",
        "model": {"source": "minilm", "max_length": 48},
        "data": {"dataset": "rotten_tomatoes", "limit": 1400, "test_size": 300, "dev_size": 100},
        "stages": [
            {"finetune": {"epochs": 3, "learning_rate": 1e-4, "batch_size": 16, "patience": 0}},
            {"export": {"check_examples": 16}},
            {"quantize": {}},
            {"evaluate": {"batch_sizes": [1], "seq_lengths": [64], "rounds": 3, "warmup": 1}},
            {"report": {}},
        ],
    }
    result = run_recipe(parse_recipe(raw, "slice.yaml"), out=tmp_path / "run")
    variants = {v["name"]: v for v in result.report["variants"]}
    teacher, int8 = variants["teacher"], variants["teacher-int8"]
    # 1,000 training snippets and three short epochs already beat chance (57% majority class) clearly.
    assert teacher["accuracy"] > 0.68, teacher["accuracy"]
    assert variants["teacher-onnx"]["agreement_with_baseline"] == 1.0
    assert int8["agreement_with_baseline"] > 0.93
    assert abs(int8["accuracy"] - teacher["accuracy"]) < 0.04
    assert int8["size_bytes"] < 0.3 * teacher["size_bytes"]
