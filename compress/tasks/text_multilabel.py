"""Multi-label text classification: any number of labels per text (a list per row, or 0/1 columns).

One sigmoid per label (``problem_type="multi_label_classification"`` in the model config), binary
cross-entropy, F1 per label with micro / macro averages (micro-F1 is the primary metric), and a decision
threshold chosen on dev that the bundle's manifest keeps, so ``predict`` returns every label above it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from compress.tasks.base import register_task
from compress.tasks.metrics import multilabel_f1
from compress.tasks.text_classification import TextClassification

THRESHOLDS = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2))
"""Candidate decision thresholds on the sigmoid (dev picks one)."""


def sigmoid(outputs: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(outputs, dtype=np.float64)))


@register_task
class TextMultiLabel(TextClassification):
    name = "text-multilabel"
    label_kind = "multi"
    primary_metric = "micro_f1"
    problem_type = "multi_label_classification"
    metric_names = ("micro_f1", "macro_f1", "exact_match", "agreement_with_baseline")

    def label_array(self, labels: Sequence) -> np.ndarray:
        return np.asarray(labels, dtype=np.float32).reshape(len(labels), -1)

    def loss(self, logits, labels):
        from torch.nn import functional as F

        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))

    def kd_loss(self, student, teacher, labels, temperature: float, hard_label_weight: float):
        """BCE of the student's tempered sigmoids against the teacher's (scaled by T^2), plus BCE on the labels."""
        from torch.nn import functional as F

        targets = (teacher / temperature).sigmoid()
        soft = F.binary_cross_entropy_with_logits(student / temperature, targets) * temperature**2
        if labels is None or hard_label_weight == 0:
            return soft
        return hard_label_weight * self.loss(student, labels) + (1 - hard_label_weight) * soft

    def predictions(self, outputs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """0/1 per label: sigmoid above ``threshold``."""
        return (sigmoid(outputs) > threshold).astype(np.int64)

    def metrics(self, outputs: np.ndarray, labels: Sequence, threshold: float = 0.5) -> dict[str, float]:
        if len(labels) == 0:
            raise ValueError("metrics of an empty split")
        truth = self.label_array(labels).astype(bool)
        predicted = self.predictions(outputs, threshold).astype(bool)
        scores = multilabel_f1(predicted, truth)
        return {
            "micro_f1": scores["micro_f1"],
            "macro_f1": scores["macro_f1"],
            "exact_match": float((predicted == truth).all(axis=1).mean()),
        }

    def per_label(self, outputs: np.ndarray, labels: Sequence, names: Sequence[str], threshold: float) -> dict:
        scores = multilabel_f1(self.predictions(outputs, threshold), self.label_array(labels))
        return {"threshold": threshold, "per_label_f1": dict(zip(names, scores["per_label_f1"], strict=True))}

    def agreement(self, outputs: np.ndarray, reference: np.ndarray) -> float:
        """How often a row gets exactly the baseline's set of labels (at 0.5)."""
        return float((self.predictions(outputs) == self.predictions(reference)).all(axis=1).mean())

    def best_threshold(self, outputs: np.ndarray, labels: Sequence) -> float:
        """The threshold with the best micro-F1 on ``outputs`` (dev); ties go to the one nearest 0.5."""
        scored = [(self.metrics(outputs, labels, t)["micro_f1"], -abs(t - 0.5), float(t)) for t in THRESHOLDS]
        return max(scored)[2]

    def decision_fields(self, dev_outputs: np.ndarray, dev_labels: Sequence) -> dict[str, object]:
        return {"label_kind": self.label_kind, "threshold": self.best_threshold(dev_outputs, dev_labels)}
