"""Text regression: one number per text (``num_labels=1``, ``problem_type="regression"``), MSE loss,
metrics Pearson (primary: higher is better, as the quantizer's budget expects), Spearman, MSE and MAE;
distillation matches the teacher's value (MSE)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from compress.tasks.base import register_task
from compress.tasks.metrics import regression_metrics
from compress.tasks.text_classification import TextClassification


@register_task
class TextRegression(TextClassification):
    name = "text-regression"
    label_kind = "regression"
    primary_metric = "pearson"
    problem_type = "regression"
    metric_names = ("pearson", "spearman", "mse", "mae", "agreement_with_baseline")

    def label_array(self, labels: Sequence) -> np.ndarray:
        return np.asarray(labels, dtype=np.float32).reshape(len(labels), 1)

    def loss(self, logits, labels):
        from torch.nn import functional as F

        return F.mse_loss(logits.reshape(-1), labels.reshape(-1).to(logits.dtype))

    def kd_loss(self, student, teacher, labels, temperature: float, hard_label_weight: float):
        """MSE to the teacher's value (no temperature: there is no distribution to soften), plus MSE to the label."""
        from torch.nn import functional as F

        soft = F.mse_loss(student.reshape(-1), teacher.reshape(-1).to(student.dtype))
        if labels is None or hard_label_weight == 0:
            return soft
        return hard_label_weight * self.loss(student, labels) + (1 - hard_label_weight) * soft

    def predictions(self, outputs: np.ndarray) -> np.ndarray:
        return np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)[:, 0]

    def metrics(self, outputs: np.ndarray, labels: Sequence) -> dict[str, float]:
        if len(labels) == 0:
            raise ValueError("metrics of an empty split")
        return regression_metrics(self.predictions(outputs), labels)

    def agreement(self, outputs: np.ndarray, reference: np.ndarray) -> float:
        """Pearson correlation with the baseline's values (what 'agreement' means for a number)."""
        from compress.tasks.metrics import pearson

        return pearson(self.predictions(outputs), self.predictions(reference))

    def decision_fields(self, dev_outputs: np.ndarray, dev_labels: Sequence) -> dict[str, object]:
        return {"label_kind": self.label_kind}
