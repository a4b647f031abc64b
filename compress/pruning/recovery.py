"""Inputs the ``prune`` stage feeds the pruner, and recovery fine-tuning after pruning."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from rich.console import Console
from torch import nn

from compress.tasks.base import Examples, Split, Task
from compress.training.checkpoints import state_digest
from compress.training.kd import logits_kd_loss_fn, teacher_logits
from compress.training.loop import TrainResult, as_tensors, cross_entropy_loss, task_loss, train_classifier

if TYPE_CHECKING:
    from compress.pruning.spec import RecoverConfig


def example_inputs(examples: Examples) -> dict[str, torch.Tensor]:
    """Two real examples, for tracing the dependency graph."""
    return as_tensors(examples.collate(range(min(2, len(examples)))))


def calibration_batches(
    examples: Examples, labels: Sequence, batch_size: int, batches: int, task: Task | None = None
) -> list[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """The first ``batches`` train batches (the split is already shuffled), for Taylor importance; labels
    as the ``task``'s loss takes them (class indices by default; floats for multi-label and regression)."""
    out = []
    for start in range(0, min(len(examples), batch_size * batches), batch_size):
        chunk = range(start, min(start + batch_size, len(examples)))
        chosen = [labels[i] for i in chunk]
        targets = torch.from_numpy(task.label_array(chosen)) if task is not None else torch.tensor(chosen, dtype=torch.long)
        out.append((as_tensors(examples.collate(chunk)), targets))
    return out


def recover(
    model: nn.Module,
    unpruned: nn.Module,
    config: RecoverConfig,
    train: Split,
    dev: Split,
    seed: int,
    console: Console,
    checkpoint_dir: str | Path | None = None,
    task: Task | None = None,
) -> TrainResult | None:
    """Fine-tune the pruned ``model`` in place, optionally distilling from the ``unpruned`` one's logits,
    with the ``task``'s own loss and KD loss (default: single-label cross-entropy), keeping the best epoch
    by its primary metric.

    With ``checkpoint_dir`` (the stage directory) every epoch is checkpointed and an interrupted recovery
    resumes, provided pruning again gives the same pruned weights (it does: the pipeline seeds every stage,
    and the fingerprint checks the pruned model's weights).
    """
    if config.epochs == 0:
        return None
    loss_fn, resume_key = (task_loss(task) if task is not None else cross_entropy_loss), ""
    if config.distill_from_unpruned:
        resume_key = state_digest(unpruned) if checkpoint_dir else ""
        started = time.perf_counter()
        console.print(f"    running the unpruned model over {len(train[0]):,} train examples for distillation ...")
        cached = teacher_logits(unpruned, train[0])
        console.print(f"    unpruned model's outputs cached in {time.perf_counter() - started:.0f} s")
        loss_fn = logits_kd_loss_fn(cached, config.temperature, config.hard_label_weight, task)
    result = train_classifier(
        model,
        train,
        dev,
        config,
        seed,
        console,
        loss_fn=loss_fn,
        description="recover",
        checkpoint_dir=checkpoint_dir,
        resume_key=resume_key,
        task=task,
    )
    metric = task.primary_metric if task is not None else "accuracy"
    console.print(f"    recovered: best dev {metric} {result.best_dev_accuracy:.4f} (epoch {result.best_epoch})")
    return result
