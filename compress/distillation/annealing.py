"""Head annealing: the single-head student starts as the teacher's multi-head layers and merges its heads
gradually while it trains.

A student built by ``init='teacher_layers'`` holds the teacher's Q/K/V unchanged (up to a query factor):
splitting its one 384-wide head back into the teacher's 12 heads of 32 gives *exactly* the teacher's
per-head attention. While annealing, each attention layer uses

    P = alpha * P_merged + (1 - alpha) * P_split        (per split head)

(a merged head's probabilities shared by the split heads it was made of), with ``alpha`` rising linearly
from 0 to 1 over the first ``fraction`` of the training steps. From then on (and whenever the model is in
eval mode) the layer is the stock single-head layer, so the trained student is a plain
``BertConfig(num_attention_heads=1)`` model: nothing of the annealing is left in it. While mixing, the
attention probabilities get no dropout (the hidden states still do).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F

from compress.models.families.base import FamilyAdapter, family_for


class HeadAnnealing:
    """The schedule: ``alpha(step)`` for ``total_steps`` training steps, merged after ``fraction`` of them;
    the student has ``heads`` heads per layer, each made of ``split_heads / heads`` teacher heads."""

    def __init__(
        self, heads: int, split_heads: int, query_factors: Sequence[float], fraction: float, total_steps: int
    ) -> None:
        self.heads, self.split_heads, self.query_factors = heads, split_heads, list(query_factors)
        self.ramp = max(1, math.ceil(fraction * total_steps))
        self.step = 0

    @property
    def alpha(self) -> float:
        return min(1.0, self.step / self.ramp)

    def advance(self) -> None:
        self.step += 1


def _additive(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    if mask is None or mask.dtype != torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)


def _heads_view(t: torch.Tensor, heads: int) -> torch.Tensor:
    batch, length, width = t.shape
    return t.view(batch, length, heads, width // heads).transpose(1, 2)


def annealed_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None,
    heads: int, split_heads: int, query_factor: float, alpha: float, bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, L, W) projections -> (B, L, W) context: attention mixed between the student's ``heads`` merged
    heads (HF scaling) and the ``split_heads`` teacher heads they were made of (the teacher's scaling, the
    copied query having been multiplied by ``query_factor``). ``bias`` (B, heads or 1, L, L) is added to the
    scores of both (MPNet's relative position bias; a split head gets the bias of the merged head it is part
    of, which for MPNet's one-column student table is the mean of the teacher heads' biases)."""
    batch, length, width = query.shape
    group = split_heads // heads
    additive = _additive(mask, query.dtype)
    merged = _heads_view(query, heads) @ _heads_view(key, heads).transpose(-1, -2) / math.sqrt(width // heads)
    split = [_heads_view(t, split_heads) for t in (query, key, value)]
    per_head = split[0] @ split[1].transpose(-1, -2) / (query_factor * math.sqrt(width // split_heads))
    if bias is not None:
        merged = merged + bias
        per_head = per_head + (bias if bias.shape[1] == 1 else bias.repeat_interleave(group, dim=1))
    if additive is not None:
        merged, per_head = merged + additive, per_head + additive
    merged_probs = F.softmax(merged, dim=-1).repeat_interleave(group, dim=1)
    probs = alpha * merged_probs + (1 - alpha) * F.softmax(per_head, dim=-1)
    return (probs @ split[2]).transpose(1, 2).reshape(batch, length, width)


def _annealed_forward(
    family: FamilyAdapter, layer: nn.Module, schedule: HeadAnnealing, query_factor: float
) -> Callable[..., tuple[torch.Tensor, None]]:
    """A ``forward`` for one self-attention module of ``layer``: the stock one once merged or in eval mode.
    Where the family's self-attention module also holds the output projection (DistilBERT, MPNet), the
    mixed context goes through it, as the stock forward's would."""
    attention = family.self_attention(layer)
    stock = attention.forward
    projections = family.attention_projections(layer)
    output = family.attention_output(layer)
    projects_output = any(module is output for module in attention.modules())

    def forward(hidden_states, attention_mask=None, *args, **kwargs):
        alpha = schedule.alpha
        if alpha >= 1.0 or not attention.training:
            return stock(hidden_states, attention_mask, *args, **kwargs)
        context = annealed_attention(
            *(projection(hidden_states) for projection in projections),
            attention_mask, schedule.heads, schedule.split_heads, query_factor, alpha,
            family.attention_bias(args, kwargs),
        )
        return (output(context) if projects_output else context), None

    return forward


@contextmanager
def annealing_heads(student: nn.Module, schedule: HeadAnnealing):
    """Give the student's self-attention modules an annealed ``forward`` (an instance attribute, so
    parameters, state dict and hooks are untouched); take it away on exit."""
    family = family_for(student)
    layers = family.encoder_layers(student)
    modules = [family.self_attention(layer) for layer in layers]
    for attention, layer, factor in zip(modules, layers, schedule.query_factors, strict=True):
        attention.forward = _annealed_forward(family, layer, schedule, factor)
    try:
        yield schedule
    finally:
        for attention in modules:
            del attention.forward
