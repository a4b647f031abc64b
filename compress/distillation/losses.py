"""String-keyed registry of distillation losses (like TextBrewer's presets), so recipes stay plain data.

Every loss is an ``nn.Module`` (``hidden`` owns learned projections) called with the student's outputs
and the teacher's cached targets for the same batch; the trainer sums ``weight * loss``.

* ``logits``: Hinton KD, ``compress.training.kd.logits_kd_loss`` (KL at temperature T plus hard-label CE).
* ``embedding_cosine`` / ``embedding_mse``: on the output vector of a sentence embedder (its pooled embedding).
* ``embedding_neighbours``: the in-batch neighbour distribution of each vector, ``softmax(cos / tau)`` over
  the batch's other vectors, matched by KL(teacher || student): what neighbour search ranks by.
* ``hidden``: MSE between student and teacher layer outputs, through a learned Linear when widths differ.
* ``attention``: MiniLM(v2)-style self-attention relations. Q, K, V of a layer are split into ``R``
  *relation heads* (the same R for student and teacher, whatever their real head counts), and
  ``softmax(A_r B_r^T / sqrt(d_r))`` is matched by KL(teacher || student) over real tokens. ``qk`` is the
  self-attention distribution, ``vv`` the value relation (MiniLM); ``qq`` and ``kk`` are also available.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from compress.errors import StageError
from compress.tasks.sentence_embedding import cosine_distance
from compress.training.kd import logits_kd_loss

RELATIONS = ("qk", "qq", "kk", "vv")


@dataclass
class StudentOutputs:
    logits: torch.Tensor
    hidden_states: Sequence[torch.Tensor] = ()
    """``hidden_states[0]`` is the embedding output, ``hidden_states[i + 1]`` the output of layer ``i``."""
    projections: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    """``{layer: {"q": ..., "k": ..., "v": ...}}`` (B, L, width) for the layers the attention loss reads."""


@dataclass
class TeacherTargets:
    logits: torch.Tensor
    hidden_states: dict[int, torch.Tensor]
    """Only the cached indices (same convention as :class:`StudentOutputs`), (B, L, hidden) float."""
    mask: torch.Tensor
    """(B, L) attention mask of the batch."""


class DistillLoss(nn.Module):
    """Base: which teacher hidden-state indices and student layers' Q/K/V a loss reads."""

    def teacher_indices(self) -> set[int]:
        return set()

    def student_projection_layers(self) -> set[int]:
        return set()

    def forward(
        self, student: StudentOutputs, teacher: TeacherTargets, labels: torch.Tensor | None
    ) -> torch.Tensor:
        raise NotImplementedError


class LogitsLoss(DistillLoss):
    """The task's KD loss on the outputs (default: single-label classification's)."""

    def __init__(self, temperature: float = 2.0, hard_label_weight: float = 0.5, task=None) -> None:
        super().__init__()
        self.temperature, self.hard_label_weight, self.task = temperature, hard_label_weight, task

    def forward(self, student, teacher, labels):
        return logits_kd_loss(
            student.logits, teacher.logits, labels, self.temperature, self.hard_label_weight, self.task
        )


def masked_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the real (unpadded) tokens' features."""
    valid = mask.bool()
    return F.mse_loss(student[valid], teacher[valid])


class HiddenLoss(DistillLoss):
    """``pairs`` are (student layer, teacher layer), 0-based; their *outputs* are matched."""

    def __init__(self, pairs: Sequence[tuple[int, int]], student_width: int, teacher_width: int) -> None:
        super().__init__()
        self.pairs = [(int(s), int(t)) for s, t in pairs]
        project = student_width != teacher_width
        self.projections = nn.ModuleList(
            [nn.Linear(student_width, teacher_width) if project else nn.Identity() for _ in self.pairs]
        )

    def teacher_indices(self):
        return {t + 1 for _, t in self.pairs}

    def forward(self, student, teacher, labels):
        losses = [
            masked_mse(project(student.hidden_states[s + 1]), teacher.hidden_states[t + 1], teacher.mask)
            for (s, t), project in zip(self.pairs, self.projections, strict=True)
        ]
        return torch.stack(losses).mean()


def relation_log_probs(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, heads: int) -> torch.Tensor:
    """log softmax(a_r b_r^T / sqrt(d_r))/ head: (B, L, W) x2 -> (B, R, L, L), padded keys masked."""
    batch, length, width = a.shape
    if width % heads:
        raise StageError(f"distill: relation_heads={heads} does not divide the attention width {width}")
    size = width // heads
    a = a.view(batch, length, heads, size).transpose(1, 2)
    b = b.view(batch, length, heads, size).transpose(1, 2)
    scores = a @ b.transpose(-1, -2) / math.sqrt(size)
    scores = scores.masked_fill(~mask.bool()[:, None, None, :], torch.finfo(scores.dtype).min)
    return F.log_softmax(scores, dim=-1)


def relation_kl(student_log: torch.Tensor, teacher_log: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) per query row, averaged over relation heads and real query tokens."""
    valid = mask.bool()
    keys = valid[:, None, None, :]
    row = (teacher_log.exp() * (teacher_log - student_log)).masked_fill(~keys, 0.0).sum(-1)  # (B, R, L)
    weights = valid[:, None, :].expand_as(row)
    return row[weights].mean()


class AttentionLoss(DistillLoss):
    """MiniLM-style relation transfer; ``teacher_qkv`` holds, per pair, the teacher layer's Q/K/V Linears."""

    def __init__(
        self,
        pairs: Sequence[tuple[int, int]],
        teacher_qkv: Sequence[dict[str, nn.Linear]],
        relation_heads: int,
        relations: Sequence[str] = ("qk", "vv"),
        query_scales: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        unknown = [r for r in relations if r not in RELATIONS]
        if unknown or not relations:
            raise StageError(
                f"distill: unknown attention relations {unknown}; choose from {', '.join(RELATIONS)}"
            )
        self.pairs = [(int(s), int(t)) for s, t in pairs]
        self.relation_heads, self.relations = relation_heads, list(relations)
        # The student's query may carry a folded merge scale (see student.py); relations compare raw Q.
        self.query_scales = list(query_scales or [1.0] * len(self.pairs))
        # Frozen copies kept outside the module tree: not trained, not saved, not synchronised by DDP.
        self._teacher = [
            {name: (lin.weight.detach().clone(), lin.bias.detach().clone()) for name, lin in qkv.items()}
            for qkv in teacher_qkv
        ]

    def teacher_indices(self):
        return {t for _, t in self.pairs}

    def student_projection_layers(self):
        return {s for s, _ in self.pairs}

    def forward(self, student, teacher, labels):
        mask = teacher.mask
        losses = []
        for (s, t), weights, scale in zip(self.pairs, self._teacher, self.query_scales, strict=True):
            source = teacher.hidden_states[t]
            mine = {**student.projections[s], "q": student.projections[s]["q"] / scale}
            theirs = {name: F.linear(source, w, b) for name, (w, b) in weights.items()}
            for relation in self.relations:
                a, b = relation[0], relation[1]
                student_log = relation_log_probs(mine[a], mine[b], mask, self.relation_heads)
                with torch.no_grad():
                    teacher_log = relation_log_probs(theirs[a], theirs[b], mask, self.relation_heads)
                losses.append(relation_kl(student_log, teacher_log, mask))
        return torch.stack(losses).mean()


class EmbeddingCosineLoss(DistillLoss):
    """``1 - cos(student, teacher)`` of the model outputs: for sentence embedders, whose output is the
    pooled sentence vector (direction is what cosine search compares)."""

    def forward(self, student, teacher, labels):
        return cosine_distance(student.logits, teacher.logits)


class EmbeddingMseLoss(DistillLoss):
    """Mean squared error between student and teacher output vectors (sentence embeddings)."""

    def forward(self, student, teacher, labels):
        return F.mse_loss(student.logits, teacher.logits.to(student.logits.dtype))


def neighbour_log_probs(vectors: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B, B) log-softmax over each row's cosine similarities to the batch's other vectors (self excluded)."""
    unit = F.normalize(vectors.float(), dim=-1)
    similarity = unit @ unit.T / temperature
    eye = torch.eye(len(unit), dtype=torch.bool, device=unit.device)
    return F.log_softmax(similarity.masked_fill(eye, float("-inf")), dim=-1).masked_fill(eye, 0.0)


class EmbeddingNeighbourLoss(DistillLoss):
    """KL(teacher || student) of each vector's in-batch neighbour distribution ``softmax(cos / tau)``: the
    order of the nearest vectors, which neighbour recall counts, rather than each vector on its own."""

    def __init__(self, temperature: float = 0.05) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, student, teacher, labels):
        if len(student.logits) < 3:
            return student.logits.sum() * 0.0  # a batch of one or two has no neighbours to rank
        mine = neighbour_log_probs(student.logits, self.temperature)
        with torch.no_grad():
            theirs = neighbour_log_probs(teacher.logits, self.temperature)
        return (theirs.exp() * (theirs - mine)).sum(-1).mean()


LOSSES: dict[str, type[DistillLoss]] = {
    "embedding_cosine": EmbeddingCosineLoss,
    "embedding_mse": EmbeddingMseLoss,
    "embedding_neighbours": EmbeddingNeighbourLoss,
    "logits": LogitsLoss,
    "hidden": HiddenLoss,
    "attention": AttentionLoss,
}
"""The registry recipes refer to by name (``losses: {logits: 1.0, hidden: 1.0}``)."""
