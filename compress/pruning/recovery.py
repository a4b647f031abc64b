"""Inputs the ``prune`` stage feeds the pruner, and recovery fine-tuning after pruning."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from compress.data.batching import pad_batch
from compress.training.checkpoints import state_digest
from compress.training.kd import logits_kd_loss_fn, teacher_logits
from compress.training.loop import TrainResult, cross_entropy_loss, train_classifier

if TYPE_CHECKING:
    from compress.core.context import RunContext
    from compress.data.tokenization import TextEncoder
    from compress.pruning.spec import RecoverConfig


def example_inputs(encoded: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Two real examples, for tracing the dependency graph."""
    ids, mask = pad_batch(list(encoded[:2]), pad_id)
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}


def calibration_batches(
    encoded: Sequence[Sequence[int]], labels: Sequence[int], pad_id: int, batch_size: int, batches: int
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The first ``batches`` train batches (the split is already shuffled), for Taylor importance."""
    out = []
    for start in range(0, min(len(encoded), batch_size * batches), batch_size):
        ids, mask = pad_batch(list(encoded[start : start + batch_size]), pad_id)
        chunk = torch.tensor(list(labels[start : start + batch_size]), dtype=torch.long)
        out.append((torch.from_numpy(ids), torch.from_numpy(mask), chunk))
    return out


def recover(
    model: nn.Module,
    unpruned: nn.Module,
    config: RecoverConfig,
    ctx: RunContext,
    encoder: TextEncoder,
    train_ids: Sequence[Sequence[int]],
    checkpoint_dir: str | Path | None = None,
) -> TrainResult | None:
    """Fine-tune the pruned ``model`` in place, optionally distilling from the ``unpruned`` one's logits.

    With ``checkpoint_dir`` (the stage directory) every epoch is checkpointed and an interrupted recovery
    resumes, provided pruning again gives the same pruned weights (it does: the pipeline seeds every stage,
    and the fingerprint checks the pruned model's weights).
    """
    if config.epochs == 0:
        return None
    task = ctx.task
    train = (train_ids, task.train.labels)
    dev = (encoder.encode(task.dev.texts), task.dev.labels)
    loss_fn, resume_key = cross_entropy_loss, ""
    if config.distill_from_unpruned:
        resume_key = state_digest(unpruned) if checkpoint_dir else ""
        cached = teacher_logits(unpruned, train_ids, encoder.pad_id)
        loss_fn = logits_kd_loss_fn(cached, config.temperature, config.hard_label_weight)
    result = train_classifier(
        model,
        train,
        dev,
        encoder.pad_id,
        config,
        ctx.seed,
        ctx.console,
        loss_fn=loss_fn,
        description="recover",
        checkpoint_dir=checkpoint_dir,
        resume_key=resume_key,
    )
    ctx.console.print(
        f"    recovered: best dev accuracy {result.best_dev_accuracy:.4f} (epoch {result.best_epoch})"
    )
    return result
