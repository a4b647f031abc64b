"""Distillation building blocks shared by every stage that learns from a teacher."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from compress.models.forward import classifier_logits
from compress.runtimes.base import Predictor
from compress.runtimes.batched import predict_logits
from compress.runtimes.torch import TorchPredictor
from compress.tasks.base import Examples, Split, Task


def logits_kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None,
    temperature: float = 2.0,
    hard_label_weight: float = 0.5,
    task: Task | None = None,
) -> torch.Tensor:
    """The task's logits KD loss (:meth:`compress.tasks.base.Task.kd_loss`); by default single-label
    classification's ``w * CE(labels) + (1 - w) * T^2 * KL(teacher_T || student_T)`` (Hinton et al.),
    sigmoid-BCE for multi-label, MSE on the value for regression."""
    from compress.tasks import get_task

    task = task or get_task()
    return task.kd_loss(student_logits, teacher_logits, labels, temperature, hard_label_weight)


def teacher_logits(teacher: nn.Module, examples: Examples, batch_size: int = 128) -> torch.Tensor:
    """Teacher logits for every example, computed once (the teacher's forward is the expensive part)."""
    return torch.from_numpy(predict_logits(TorchPredictor(teacher), examples, batch_size))


def logits_kd_loss_fn(cached: torch.Tensor, temperature: float, hard_label_weight: float, task: Task | None = None):
    """A ``train_classifier`` loss that distils from cached teacher logits, looked up by example index."""

    def loss(model: nn.Module, inputs: dict[str, torch.Tensor], labels: torch.Tensor, index: np.ndarray):
        student = classifier_logits(model, inputs)
        return logits_kd_loss(student, cached[torch.from_numpy(index)], labels, temperature, hard_label_weight, task)

    return loss


def dev_against_reference(task: Task | None, dev: Split, reference: Predictor, batch_size: int = 128) -> Split:
    """``dev`` as training and the quantizer's budget score it: with its labels, or for a task scored against
    a reference model (:attr:`Task.dev_against_teacher`: an embedder, recall@10) with the ``reference``'s own
    dev outputs (the teacher, the unpruned model, the FP32 graph)."""
    if task is not None and task.dev_against_teacher:
        return dev[0], predict_logits(reference, dev[0], batch_size)
    return dev
