"""Distil a student from a teacher on a task: build, cache the teacher, train with the chosen losses."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn

from compress.data.batching import num_batches
from compress.data.dataset import TaskData
from compress.data.transfer import transfer_texts
from compress.distillation.annealing import HeadAnnealing, annealing_heads
from compress.distillation.augment import augment_ids, embedding_neighbours, train_token_pool
from compress.distillation.cache import stored_teacher_cache
from compress.distillation.config import AugmentConfig, DistillConfig, TransferConfig
from compress.distillation.losses import (
    LOSSES,
    AttentionLoss,
    DistillLoss,
    EmbeddingNeighbourLoss,
    HiddenLoss,
    LogitsLoss,
)
from compress.distillation.student import StudentInit, StudentSpec, build_student, choose_teacher_layers
from compress.distillation.trainer import DistillationModel, distillation_loss_fn
from compress.errors import StageError
from compress.models.families.base import family_for
from compress.runtimes.torch import TorchPredictor
from compress.tasks.base import Examples, Split, Task
from compress.training.checkpoints import state_digest
from compress.training.kd import dev_against_reference
from compress.training.loop import as_tensors, train_classifier
from compress.training.precision import decide_precision

MERGE_SAMPLE = 64
"""Train texts used to fit the merged heads' scale."""


@dataclass
class DistillResult:
    student: nn.Module
    info: dict[str, Any]


def student_spec(config: DistillConfig) -> StudentSpec:
    return StudentSpec(
        layers=config.layers,
        heads=config.heads,
        ffn=config.ffn,
        hidden=config.hidden,
        init=config.init,
        teacher_layers=config.teacher_layers,
        merge_scale=config.merge_scale,
        dropout=config.dropout,
    )


def teacher_indices(config: DistillConfig, teacher: nn.Module) -> set[int]:
    """The teacher hidden-state indices ``config``'s losses read (what its teacher cache must hold)."""
    student, init = build_student(teacher, dataclasses.replace(student_spec(config), merge_scale="mean"))
    losses = build_losses(config, teacher, student, init)
    return set().union(*(loss.teacher_indices() for loss in losses.values()))


def build_losses(
    config: DistillConfig, teacher: nn.Module, student: nn.Module, init: StudentInit, task: Task | None = None
) -> dict[str, DistillLoss]:
    """The weighted losses ``config`` names; the logits loss is ``task``'s KD loss (softmax KL for single
    labels, sigmoid BCE for multi-label, MSE for regression)."""
    options = config.loss_options
    mapping = init.teacher_layers or choose_teacher_layers("uniform", config.layers, teacher.config.num_hidden_layers)
    pairs = list(enumerate(mapping))
    losses: dict[str, DistillLoss] = {}
    for name, weight in config.losses.items():
        if weight == 0:
            continue
        if name == "logits":
            losses[name] = LogitsLoss(options.temperature, options.hard_label_weight, task)
        elif name in ("embedding_cosine", "embedding_mse"):
            losses[name] = LOSSES[name]()
        elif name == "embedding_neighbours":
            losses[name] = EmbeddingNeighbourLoss(options.neighbour_temperature)
        elif name == "hidden":
            chosen = options.hidden_layers or pairs
            losses[name] = HiddenLoss(chosen, student.config.hidden_size, teacher.config.hidden_size)
        else:
            chosen = options.attention_layers or pairs[-1:]
            family = family_for(teacher)
            teacher_layers = family.encoder_layers(teacher)
            qkv = [dict(zip("qkv", family.attention_projections(teacher_layers[t]), strict=True)) for _, t in chosen]
            scales = [init.query_factors[s] if init.query_factors else 1.0 for s, _ in chosen]
            heads = options.relation_heads or family.relation_heads(teacher.config, student.config)
            losses[name] = AttentionLoss(chosen, qkv, heads, options.relations, scales)
    assert set(losses) <= set(LOSSES)
    return losses


def augmented_copies(
    teacher: nn.Module,
    train_ids: list[Sequence[int]],
    aug: AugmentConfig,
    mask_id: int | None,
    special_ids: set[int],
    seed: int,
) -> list[list[int]]:
    neighbours = None
    if aug.replace_with == "neighbours" and aug.replace_prob > 0:
        word_embeddings = family_for(teacher).word_embeddings(teacher).weight
        neighbours = embedding_neighbours(word_embeddings, train_token_pool(train_ids, special_ids), aug.neighbours)
    return augment_ids(
        train_ids,
        aug.copies,
        aug.mask_prob,
        aug.replace_prob,
        aug.drop_prob,
        mask_id,
        special_ids,
        seed,
        neighbours,
        span_prob=aug.span_prob,
    )


def encoded_transfer(
    config: TransferConfig, splits: TaskData, task: Task, processor, seed: int
) -> Examples | None:
    """The recipe's transfer texts (none of them overlapping dev or test), encoded for the teacher."""
    if config.corpus is None:
        return None
    held_out = [*splits.dev.inputs, *splits.test.inputs]
    texts = transfer_texts(
        config.corpus, config.texts, held_out, seed, config.sentences, config.min_words, config.max_words
    )
    return task.encode(processor, texts)


def teacher_hard_labels(outputs: torch.Tensor, task: Task | None) -> list:
    """The teacher's own predictions as labels of the unlabelled examples (transfer texts, perturbed copies):
    a class index, a 0/1 list per label (multi-label) or a value (regression), as ``task`` predicts them."""
    if len(outputs) == 0:
        return []
    if task is None or task.dev_against_teacher:  # no labels to predict (embeddings: their losses ignore them)
        return outputs.argmax(-1).tolist()
    return task.predictions(outputs.numpy()).tolist()


@contextmanager
def head_annealing(student: nn.Module, teacher: nn.Module, init: StudentInit, config: DistillConfig, examples: int):
    """The annealing schedule while training (None when ``anneal_heads`` is 0 or no heads are merged)."""
    heads, split_heads = student.config.num_attention_heads, teacher.config.num_attention_heads
    if not config.anneal_heads or heads == split_heads or not init.query_factors:
        yield None
        return
    if split_heads % heads:
        raise StageError(
            f"distill: anneal_heads needs the teacher's {split_heads} heads to split evenly into the "
            f"student's {heads}"
        )
    steps = config.epochs * num_batches(examples, config.batch_size)
    schedule = HeadAnnealing(heads, split_heads, init.query_factors, config.anneal_heads, steps)
    with annealing_heads(student, schedule):
        yield schedule


def distill(
    teacher: nn.Module,
    train: Split,
    dev: Split,
    special_ids: set[int],
    mask_id: int | None,
    config: DistillConfig,
    seed: int,
    console: Console,
    transfer: Examples | None = None,
    work_dir: str | Path | None = None,
    task: Task | None = None,
    cache_dir: str | Path | None = None,
    cache_indices: frozenset[int] = frozenset(),
) -> DistillResult:
    """``train`` and ``dev``: the task's encoded examples with labels (augmentation perturbs token ids, so
    it needs token examples). ``transfer``: encoded unlabelled texts, labelled by the teacher like the
    augmented copies.

    ``work_dir`` (the stage directory) keeps the teacher cache and a checkpoint after every epoch, so an
    interrupted call resumes: the cache is reused when it matches, training continues after the last saved
    epoch with the same result as an uninterrupted call. The best epoch is the one with the best primary
    metric of ``task`` (accuracy without one; micro-F1, Pearson ...); a task that scores against the teacher
    (:attr:`Task.dev_against_teacher`: embeddings, whose data has no labels) scores the teacher's dev outputs.

    ``cache_dir`` keeps the teacher cache elsewhere than ``work_dir``, and ``cache_indices`` adds hidden-state
    indices to it: several students of different depths (a latency-budget search) then share one cache.
    """
    started = time.perf_counter()
    teacher.eval()
    train_examples, train_labels = train[0], list(train[1])
    if config.max_train_examples:
        train_examples = train_examples.head(config.max_train_examples)
        train_labels = train_labels[: config.max_train_examples]
    torch.manual_seed(seed)
    sample = as_tensors(train_examples.collate(range(min(MERGE_SAMPLE, len(train_examples)))))
    student, init = build_student(teacher, student_spec(config), sample)
    losses = build_losses(config, teacher, student, init, task)
    aug = config.augment
    augmented_ids = augmented_copies(teacher, train_examples.ids, aug, mask_id, special_ids, seed) if aug.copies else []
    augmented = dataclasses.replace(train_examples, ids=augmented_ids)
    every = train_examples.concat(augmented)
    if transfer is not None:
        every = every.concat(transfer)
    transfer_count = len(transfer) if transfer is not None else 0
    indices = set().union(*(loss.teacher_indices() for loss in losses.values())) | set(cache_indices)
    decision = decide_precision(config.precision, console)
    precision = decision.precision
    cache, reused = stored_teacher_cache(
        teacher, every, indices, cache_dir or work_dir, precision=precision, log=console.print
    )
    teacher_labels = teacher_hard_labels(cache.logits[len(train_examples) :], task)
    cached_at = time.perf_counter()
    console.print(
        f"    teacher {'cache reused' if reused else 'cached'} for {len(every)} examples "
        f"({len(augmented)} augmented, {transfer_count} transfer texts): "
        f"{cache.nbytes / 1e6:.1f} MB in {cached_at - started:.0f} s ({precision})"
    )
    model = DistillationModel(student, losses, config.losses)
    model.cache = cache
    dev = dev_against_reference(task, dev, TorchPredictor(teacher))
    with head_annealing(student, teacher, init, config, len(every)) as model.annealing:
        result = train_classifier(
            model,
            (every, train_labels + teacher_labels),
            dev,
            config.model_copy(update={"max_train_examples": None}),
            seed,
            console,
            loss_fn=distillation_loss_fn,
            description="distill",
            checkpoint_dir=work_dir,
            resume_key=state_digest(teacher) if work_dir else "",  # what a random-init student learns from
            task=task,
        )
    family = family_for(teacher)
    info = {
        "distillation": {
            "losses": dict(config.losses),
            "loss_options": config.loss_options.model_dump(),
            "student": {
                "layers": config.layers,
                "heads": config.heads,
                "ffn": family.ffn_width(student.config),
                "hidden": student.config.hidden_size,
                "init": config.init,
                "dropout": family.hidden_dropout(student.config),
                "anneal_heads": config.anneal_heads,
                **init.to_dict(),
            },
            "teacher_shape": {
                "layers": teacher.config.num_hidden_layers,
                "heads": teacher.config.num_attention_heads,
                "ffn": family.ffn_width(teacher.config),
                "hidden": teacher.config.hidden_size,
            },
            "augment": aug.model_dump(),
            "train_examples": len(train_examples),
            "augmented_examples": len(augmented),
            "transfer": config.transfer.model_dump(),
            "transfer_examples": transfer_count,
            "teacher_cache_mb": round(cache.nbytes / 1e6, 1),
            "teacher_cache_seconds": round(cached_at - started, 1),
            "teacher_cache_reused": reused,
            "precision": precision,
            "seconds": round(time.perf_counter() - started, 1),
        },
        "training": result.to_dict(),
        "precision_decision": decision.to_dict(),
    }
    return DistillResult(model.student.eval(), info)
