"""Multi-class metrics, multi-label and regression tasks (issue 19): metrics on hand-made examples with
known answers, each task's loss / predictions, and a short pipeline per kind on a tiny BERT
(finetune -> export -> quantize -> evaluate -> bundle -> predict)."""

from __future__ import annotations

import io
import json
import random

import numpy as np
import pytest
import torch
from rich.console import Console
from tiny import NEGATIVE, NEUTRAL, POSITIVE, make_checkpoint

from compress.tasks import get_task
from compress.tasks.metrics import class_report, multilabel_f1, regression_metrics


def test_confusion_matrix_and_per_class_metrics_on_a_hand_made_example():
    # true:      a a a b b c
    # predicted: a a b b c c
    report = class_report(np.array([0, 0, 1, 1, 2, 2]), [0, 0, 0, 1, 1, 2], ["a", "b", "c"])
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    a, b, c = (report["per_class"][name] for name in "abc")
    assert (a["precision"], a["recall"], a["support"]) == (1.0, pytest.approx(2 / 3), 3)
    assert (b["precision"], b["recall"], b["f1"]) == (0.5, 0.5, 0.5)
    assert (c["precision"], c["recall"], c["f1"]) == (0.5, 1.0, pytest.approx(2 / 3))
    assert report["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_multilabel_f1_and_regression_metrics_on_known_answers():
    truth = np.array([[1, 0], [1, 1], [0, 1]])
    predicted = np.array([[1, 1], [1, 0], [0, 1]])
    scores = multilabel_f1(predicted, truth)  # tp 3, fp 1, fn 1 overall; label 0: f1 1, label 1: f1 0.5
    assert scores["micro_f1"] == pytest.approx(0.75) and scores["per_label_f1"] == [1.0, 0.5]
    assert scores["macro_f1"] == pytest.approx(0.75)
    metrics = regression_metrics(np.array([1.0, 2.0, 3.0, 5.0]), [2.0, 4.0, 6.0, 10.0])
    assert metrics["pearson"] == pytest.approx(1.0) and metrics["spearman"] == pytest.approx(1.0)
    assert metrics["mse"] == pytest.approx((1 + 4 + 9 + 25) / 4) and metrics["mae"] == pytest.approx(11 / 4)
    tied = regression_metrics(np.array([1.0, 1.0, 2.0]), [3.0, 2.0, 1.0])  # ranks (1.5, 1.5, 3) vs (3, 2, 1)
    assert tied["spearman"] == pytest.approx(-np.sqrt(3) / 2)


def test_each_task_has_its_loss_predictions_and_kd():
    multi, regression, single = get_task("text-multilabel"), get_task("text-regression"), get_task()
    logits = torch.tensor([[2.0, -2.0], [-1.0, 3.0]])
    labels = torch.from_numpy(multi.label_array([(1, 0), (0, 1)]))
    expected = torch.nn.functional.binary_cross_entropy(logits.sigmoid(), labels)
    assert multi.loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-5)
    assert multi.predictions(logits.numpy()).tolist() == [[1, 0], [0, 1]]
    assert multi.predictions(logits.numpy(), threshold=0.99).tolist() == [[0, 0], [0, 0]]
    assert multi.kd_loss(logits, logits, None, 1.0, 0.0).item() == pytest.approx(
        torch.nn.functional.binary_cross_entropy(logits.sigmoid(), logits.sigmoid()).item(), rel=1e-5
    )
    values = torch.tensor([[1.0], [3.0]])
    assert regression.loss(values, torch.tensor([[2.0], [3.0]])).item() == pytest.approx(0.5)
    assert regression.kd_loss(values, torch.tensor([[1.0], [1.0]]), None, 2.0, 0.5).item() == pytest.approx(2.0)
    assert regression.predictions(values.numpy()).tolist() == [1.0, 3.0]
    assert single.loss(logits, torch.tensor([0, 1])).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).item()
    )
    assert multi.best_threshold(np.array([[0.0], [-0.4], [3.0]]), [(1,), (0,), (1,)]) == pytest.approx(0.45)


def _rows(n: int, seed: int = 0):
    """Texts of filler with positive / negative words; labels derived from which words appear."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        good, bad = rng.randint(0, 2), rng.randint(0, 2)
        words = rng.choices(NEUTRAL, k=4) + rng.choices(POSITIVE, k=good) + rng.choices(NEGATIVE, k=bad)
        rng.shuffle(words)
        rows.append((" ".join(words), good, bad))
    return rows


def _run(tmp_path, rows_file, num_labels, stages=None, **data):
    from compress.core.recipe import parse_recipe
    from compress.run.pipeline import run_recipe

    source = make_checkpoint(tmp_path / "model", "bert", num_labels=num_labels)
    recipe = {
        "name": "tiny-kind",
        "model": {"source": str(source), "max_length": 32},
        "data": {"dataset": str(rows_file), "test_size": 60, "dev_size": 60, **data},
        "stages": stages or [
            {"finetune": {"epochs": 8, "learning_rate": 5e-3, "batch_size": 16, "patience": 0}},
            {"export": {"optimize": False}},
            {"quantize": {"mode": "dynamic", "max_accuracy_drop": 50}},
            {"evaluate": {"seq_lengths": [16], "batch_sizes": [1], "rounds": 3, "warmup": 0, "memory": False}},
            "bundle",
            "report",
        ],
    }
    buffer = io.StringIO()
    result = run_recipe(parse_recipe(recipe), out=tmp_path / "run", console=Console(file=buffer, width=200))
    return result, buffer.getvalue()


def _variant(result, name):
    report = json.loads((result.run_dir / "report.json").read_text())
    return next(row for row in report["variants"] if row["name"] == name)


def test_multi_label_pipeline_trains_bce_picks_a_threshold_and_predicts_label_sets(tmp_path):
    from compress.bundle.predict import predict

    rows = tmp_path / "multi.jsonl"
    rows.write_text("".join(
        json.dumps({"text": text, "label": (["good"] if good else []) + (["bad"] if bad else [])}) + "\n"
        for text, good, bad in _rows(480)
    ))
    result, output = _run(tmp_path, rows, num_labels=2)
    assert "multi labels (text-multilabel), train: bad" in output
    teacher = _variant(result, "teacher")
    assert teacher["micro_f1"] > 0.75 and teacher["accuracy"] is None, teacher
    manifest = json.loads((result.bundle_dir / "manifest.json").read_text())
    assert manifest["label_kind"] == "multi" and 0 < manifest["threshold"] < 1
    saved = (result.run_dir / "stages" / "00-input" / "model" / "compress_model.json").read_text()
    assert '"problem_type": "multi_label_classification"' in saved
    both, neither = predict(result.bundle_dir, ["cast superb plot awful", "cast plot scene story"])
    assert set(both.labels) == {"good", "bad"} and neither.labels == ()


def test_regression_pipeline_trains_mse_and_predicts_the_value(tmp_path):
    from compress.bundle.predict import predict

    rows = tmp_path / "scores.csv"
    rows.write_text("text,score\n" + "".join(f"{text},{good - bad + 0.5}\n" for text, good, bad in _rows(480)))
    result, output = _run(tmp_path, rows, num_labels=1, label_column="score")
    assert "regression labels (text-regression)" in output
    teacher = _variant(result, "teacher")
    assert teacher["pearson"] > 0.8 and {"spearman", "mse", "mae"} <= set(teacher), teacher
    assert json.loads((result.bundle_dir / "manifest.json").read_text())["label_kind"] == "regression"
    high, low = predict(result.bundle_dir, ["superb superb cast", "awful awful cast"])
    assert high.value > 1.5 and low.value < -0.5


PRUNE_STAGES = [
    {"finetune": {"epochs": 8, "learning_rate": 5e-3, "batch_size": 16, "patience": 0}},
    {"prune": {"heads": 0.5, "ffn": 0.5, "importance": "taylor", "calibration_batches": 2,
               "recover": {"epochs": 3, "learning_rate": 3e-3, "batch_size": 16, "patience": 0}}},
    {"vocab_prune": {}},
    {"evaluate": {"seq_lengths": [16], "batch_sizes": [1], "rounds": 3, "warmup": 0, "memory": False,
                  "runtimes": ["torch"]}},
    "report",
]


@pytest.mark.parametrize("kind", ["multi", "regression"])
def test_prune_and_vocab_prune_run_on_multi_label_and_regression_with_the_tasks_own_loss(kind, tmp_path):
    """Taylor importance and recovery use the kind's loss (BCE / MSE, KD from the unpruned model's outputs),
    recovery keeps the best epoch by the kind's primary metric, and the vocabulary check compares the kind's
    predictions (label sets / values), so both stages work on these kinds instead of being refused."""
    if kind == "multi":
        rows = tmp_path / "multi.jsonl"
        rows.write_text("".join(
            json.dumps({"text": text, "label": (["good"] if good else []) + (["bad"] if bad else [])}) + "\n"
            for text, good, bad in _rows(480)
        ))
        result, output = _run(tmp_path, rows, num_labels=2, stages=PRUNE_STAGES)
        metric, floor = "micro_f1", 0.7
    else:
        rows = tmp_path / "scores.csv"
        rows.write_text("text,score\n" + "".join(f"{text},{good - bad + 0.5}\n" for text, good, bad in _rows(480)))
        result, output = _run(tmp_path, rows, num_labels=1, stages=PRUNE_STAGES, label_column="score")
        metric, floor = "pearson", 0.75
    assert f"recovered: best dev {metric}" in output
    teacher, pruned, vocab = (_variant(result, name) for name in ("teacher", "pruned", "pruned-vocab"))
    assert pruned[metric] > floor and pruned[metric] > teacher[metric] - 0.15, (teacher, pruned)
    state = json.loads((result.run_dir / "state.json").read_text())
    infos = {v["name"]: v["info"] for v in state["variants"]}
    assert infos["pruned"]["pruning"]["after"]["ffn"] < infos["pruned"]["pruning"]["before"]["ffn"]
    check = infos["pruned-vocab"]["vocabulary"]["test"]
    assert check["identical_tokenization"] == 1.0 and check["prediction_agreement"] == 1.0
    assert vocab[metric] == pytest.approx(pruned[metric], abs=1e-6)
    problem = "multi_label_classification" if kind == "multi" else "regression"
    saved = (result.run_dir / "stages" / "03-vocab_prune" / "model" / "compress_model.json").read_text()
    assert f'"problem_type": "{problem}"' in saved


def test_changed_predictions_compare_each_kinds_predictions():
    from compress.tasks.text_multilabel import TextMultiLabel
    from compress.tasks.text_regression import TextRegression
    from compress.vocabulary.check import _changed_predictions

    old = np.array([[2.0, -1.0], [0.5, 0.4]])
    new = np.array([[2.0, 1.0], [0.4, 0.5]])
    assert _changed_predictions(old, new, get_task().predictions) == 1  # single label, argmax: the second row flips
    assert _changed_predictions(old, new, TextMultiLabel().predictions) == 1  # label sets: the first row gains one
    values = np.array([[1.0], [2.0], [3.0]])
    assert _changed_predictions(values, values + np.array([[0.0], [5e-5], [0.2]]), TextRegression().predictions) == 1


DISTILL_STAGES = [
    {"finetune": {"epochs": 8, "learning_rate": 5e-3, "batch_size": 16, "patience": 0}},
    {"distill": {"layers": 1, "heads": 1, "epochs": 5, "learning_rate": 3e-3, "batch_size": 16, "patience": 0,
                 "losses": {"logits": 1.0, "hidden": 1.0}}},
    {"evaluate": {"seq_lengths": [16], "batch_sizes": [1], "rounds": 3, "warmup": 0, "memory": False,
                  "runtimes": ["torch"]}},
    "report",
]


def test_a_multi_label_teacher_distils_into_a_student_with_its_kind_of_head(tmp_path):
    rows = tmp_path / "multi.jsonl"
    rows.write_text("".join(
        json.dumps({"text": text, "label": (["good"] if good else []) + (["bad"] if bad else [])}) + "\n"
        for text, good, bad in _rows(480)
    ))
    result, output = _run(tmp_path, rows, num_labels=2, stages=DISTILL_STAGES)
    teacher, student = _variant(result, "teacher"), _variant(result, "student")
    assert "best dev micro_f1" in output
    assert student["micro_f1"] > 0.7 and student["micro_f1"] > teacher["micro_f1"] - 0.15, (teacher, student)
    saved = (result.run_dir / "stages" / "02-distill" / "model" / "compress_model.json").read_text()
    assert '"problem_type": "multi_label_classification"' in saved


def test_a_regression_teacher_distils_into_a_student_that_predicts_values(tmp_path):
    rows = tmp_path / "scores.csv"
    rows.write_text("text,score\n" + "".join(f"{text},{good - bad + 0.5}\n" for text, good, bad in _rows(480)))
    result, output = _run(tmp_path, rows, num_labels=1, stages=DISTILL_STAGES, label_column="score")
    teacher, student = _variant(result, "teacher"), _variant(result, "student")
    assert "best dev pearson" in output
    assert student["pearson"] > 0.7 and student["pearson"] > teacher["pearson"] - 0.15, (teacher, student)
