"""Metrics of the text tasks, in numpy: per-class and confusion matrix (single label), F1 per label with
micro / macro averages (multi-label), MSE / MAE / Pearson / Spearman (regression)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _ratio(part: float, whole: float) -> float:
    return float(part / whole) if whole else 0.0


def confusion_matrix(predictions: np.ndarray, labels: Sequence[int], num_classes: int) -> np.ndarray:
    """``matrix[true, predicted]``: how many test rows of each true class got each predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return matrix


def per_class(matrix: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of every class, from a confusion matrix."""
    rows = {}
    for i, name in enumerate(names):
        true_positive = float(matrix[i, i])
        precision, recall = _ratio(true_positive, matrix[:, i].sum()), _ratio(true_positive, matrix[i, :].sum())
        rows[name] = {"precision": precision, "recall": recall, "f1": _f1(precision, recall), "support": int(matrix[i].sum())}
    return rows


def class_report(predictions: np.ndarray, labels: Sequence[int], names: Sequence[str]) -> dict[str, object]:
    """report.json's ``classes`` block: per-class metrics, macro-F1 and the confusion matrix."""
    matrix = confusion_matrix(predictions, labels, len(names))
    classes = per_class(matrix, names)
    return {
        "labels": list(names),
        "per_class": classes,
        "macro_f1": float(np.mean([c["f1"] for c in classes.values()])),
        "confusion_matrix": matrix.tolist(),
    }


def multilabel_f1(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Micro- and macro-averaged F1 of 0/1 matrices (rows x labels)."""
    predicted, truth = np.asarray(predicted, dtype=bool), np.asarray(truth, dtype=bool)
    tp = (predicted & truth).sum(axis=0).astype(float)
    fp = (predicted & ~truth).sum(axis=0).astype(float)
    fn = (~predicted & truth).sum(axis=0).astype(float)
    per_label = [_f1(_ratio(t, t + p), _ratio(t, t + n)) for t, p, n in zip(tp, fp, fn, strict=True)]
    micro = _f1(_ratio(tp.sum(), tp.sum() + fp.sum()), _ratio(tp.sum(), tp.sum() + fn.sum()))
    return {"micro_f1": micro, "macro_f1": float(np.mean(per_label)), "per_label_f1": per_label}


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), as Spearman's correlation needs."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = np.arange(len(values), dtype=float)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def regression_metrics(predicted: np.ndarray, truth: Sequence[float]) -> dict[str, float]:
    predicted, target = np.asarray(predicted, dtype=float).reshape(-1), np.asarray(truth, dtype=float)
    error = predicted - target
    return {
        "pearson": pearson(predicted, target),
        "spearman": pearson(_ranks(predicted), _ranks(target)),
        "mse": float((error**2).mean()),
        "mae": float(np.abs(error).mean()),
    }
