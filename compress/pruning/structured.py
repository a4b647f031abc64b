"""Structured pruning of classifiers whose family supports ``prune``, with torch-pruning's dependency graph.

torch-pruning's ``DependencyGraph`` finds every tensor coupled to a channel (query, key and value outputs
with the attention output's inputs; an FFN's first-layer outputs with its second layer's inputs; the
residual width across embeddings, LayerNorms and every projection) and cuts them consistently; its
importance estimators rank the channels. Which channels go is decided here (``selection``), because the
recipe's units (whole heads, per-head widths, counts, at least one head per layer) are not
``BasePruner``'s. Dropping whole layers is plain module surgery.

Scaling: after head-dim pruning each attention keeps the scaling it was trained with,
``1/sqrt(original head size)``, not ``1/sqrt(new head size)``. Removing low-importance dims leaves the
remaining terms of ``q . k`` unchanged, so the old scale keeps attention logits (and the model's outputs)
closest to the unpruned ones; re-scaling would sharpen every softmax by ``sqrt(d / d')`` at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from compress.errors import StageError
from compress.models.families.base import AttentionLayout, FamilyAdapter, family_for, require
from compress.models.forward import classifier_logits
from compress.pruning.selection import evenly_kept_layers, lowest, removal_counts
from compress.pruning.spec import PruningSpec

Batch = tuple[dict[str, torch.Tensor], torch.Tensor]
"""(named model inputs, labels)."""


def shape_summary(model: nn.Module) -> dict[str, Any]:
    """Per-layer widths of a supported classifier, for reports and tests."""
    family = family_for(model)
    layers = family.encoder_layers(model)
    layouts = family.attention_layout(model)
    return {
        "layers": len(layers),
        "hidden": family.hidden_width(model),
        "heads": [lay.heads for lay in layouts],
        "head_size": [lay.head_size for lay in layouts],
        "ffn": [family.ffn_projections(layer)[0].out_features for layer in layers],
    }


def prune_model(
    model: nn.Module,
    spec: PruningSpec,
    example: dict[str, torch.Tensor],
    calibration: Sequence[Batch] = (),
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
) -> dict[str, Any]:
    """Prune ``model`` in place as ``spec`` asks; return its shapes before and after."""
    family = require(model, "prune")  # names the family when it is not supported
    refused = family.refused_prune(spec)
    if refused:
        raise StageError(refused)
    if spec.importance == "taylor" and not calibration:
        raise StageError("prune: importance 'taylor' needs calibration batches, none were given")
    model.eval()
    before = shape_summary(model)
    if spec.layers:
        _drop_layers(family, model, spec.layers)
    passes = [
        (spec.heads, _prune_heads),
        (spec.head_dims, _prune_head_dims),
        (spec.ffn, _prune_ffn),
        (spec.hidden, _prune_hidden),
    ]
    for amount, prune_pass in passes:
        if not amount:
            continue
        if spec.importance == "taylor":
            _accumulate_gradients(model, calibration, loss)
        graph = tp.DependencyGraph().build_dependency(
            model, example_inputs=example, output_transform=lambda out: out.logits
        )
        prune_pass(family, model, graph, _importance(spec.importance), spec)
        model.zero_grad(set_to_none=True)
    check_attention_shapes(model)
    return {"before": before, "after": shape_summary(model)}


def check_attention_shapes(model: nn.Module) -> None:
    """Fail loudly if any attention module's bookkeeping disagrees with its Linear shapes."""
    family = family_for(model)
    for index, (layer, layout) in enumerate(
        zip(family.encoder_layers(model), family.attention_layout(model), strict=True)
    ):
        width = layout.heads * layout.head_size
        shapes = [p.out_features for p in family.attention_projections(layer)]
        if any(s != width for s in shapes):
            raise StageError(
                f"layer {index}: attention has {layout.heads} x {layout.head_size}, q/k/v have {shapes}"
            )


def _importance(name: str):
    if name == "taylor":
        return tp.importance.GroupTaylorImportance()
    if name == "random":
        return tp.importance.RandomImportance()
    return tp.importance.GroupMagnitudeImportance(p=2)


def _accumulate_gradients(
    model: nn.Module, batches: Iterable[Batch], loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
) -> None:
    """Gradients of the task ``loss`` on a few train batches (dropout off), for Taylor importance."""
    model.zero_grad(set_to_none=True)
    for inputs, labels in batches:
        loss(classifier_logits(model, inputs), labels).backward()


def _out_channel_group(graph: tp.DependencyGraph, root: nn.Module, idxs: list[int]):
    pruner = graph.get_pruner_of_module(root)
    return graph.get_pruning_group(root, pruner.prune_out_channels, idxs)


def _scores(graph: tp.DependencyGraph, importance, root: nn.Module) -> torch.Tensor:
    """Importance of each output channel of ``root``, over everything coupled to it."""
    n = graph.get_pruner_of_module(root).get_out_channels(root)
    return importance(_out_channel_group(graph, root, list(range(n)))).detach().float()


def _remove(graph: tp.DependencyGraph, root: nn.Module, idxs: list[int]) -> None:
    if idxs:
        _out_channel_group(graph, root, sorted(idxs)).prune()


def _drop_layers(family: FamilyAdapter, model: nn.Module, layers: list[int] | int) -> None:
    total = len(family.encoder_layers(model))
    if isinstance(layers, int):
        if layers >= total:
            raise StageError(f"prune.layers: cannot drop {layers} of {total} layers; at least one must stay")
        keep = evenly_kept_layers(total, layers)
    else:
        if layers[-1] >= total:
            raise StageError(
                f"prune.layers: index {layers[-1]} out of range; the model has {total} layers (0-{total - 1})"
            )
        keep = [i for i in range(total) if i not in layers]
        if not keep:
            raise StageError(f"prune.layers: {layers} drops all {total} layers; at least one must stay")
    family.keep_layers(model, keep)


def _prune_heads(family: FamilyAdapter, model: nn.Module, graph, importance, spec: PruningSpec) -> None:
    layers, layouts = family.encoder_layers(model), family.attention_layout(model)
    per_channel = [_scores(graph, importance, family.attention_projections(layer)[0]) for layer in layers]
    head_scores = [
        s.view(lay.heads, lay.head_size).mean(1) for s, lay in zip(per_channel, layouts, strict=True)
    ]
    counts = removal_counts(head_scores, spec.heads, spec.scope, round_to=None, minimum=1)
    new_layouts = []
    for layer, lay, scores, count in zip(layers, layouts, head_scores, counts, strict=True):
        idxs = [h * lay.head_size + d for h in lowest(scores, count) for d in range(lay.head_size)]
        _remove(graph, family.attention_projections(layer)[0], idxs)
        new_layouts.append(AttentionLayout(lay.heads - count, lay.head_size, lay.scaling))
    family.set_attention_layout(model, new_layouts)


def _prune_head_dims(family: FamilyAdapter, model: nn.Module, graph, importance, spec: PruningSpec) -> None:
    layers, layouts = family.encoder_layers(model), family.attention_layout(model)
    per_head = [
        _scores(graph, importance, family.attention_projections(layer)[0]).view(lay.heads, lay.head_size)
        for layer, lay in zip(layers, layouts, strict=True)
    ]
    counts = removal_counts(
        [s.mean(0) for s in per_head], spec.head_dims, spec.scope, spec.round_to, minimum=1
    )
    new_layouts = []
    for layer, lay, scores, count in zip(layers, layouts, per_head, counts, strict=True):
        # Each head loses its own least important dims; every head keeps the same width.
        idxs = [h * lay.head_size + d for h in range(lay.heads) for d in lowest(scores[h], count)]
        _remove(graph, family.attention_projections(layer)[0], idxs)
        new_layouts.append(AttentionLayout(lay.heads, lay.head_size - count, lay.scaling))
    family.set_attention_layout(model, new_layouts)


def _prune_ffn(family: FamilyAdapter, model: nn.Module, graph, importance, spec: PruningSpec) -> None:
    roots = [family.ffn_projections(layer)[0] for layer in family.encoder_layers(model)]
    scores = [_scores(graph, importance, root) for root in roots]
    counts = removal_counts(scores, spec.ffn, spec.scope, spec.round_to, minimum=1)
    for root, layer_scores, count in zip(roots, scores, counts, strict=True):
        _remove(graph, root, lowest(layer_scores, count))
    if len(set(shape_summary(model)["ffn"])) == 1:
        family.set_ffn_width(model.config, roots[0].out_features)


def _prune_hidden(family: FamilyAdapter, model: nn.Module, graph, importance, spec: PruningSpec) -> None:
    """Narrow the residual stream; the kept width stays a multiple of the config's head count (and round_to)
    so that the saved Hugging Face config can still build the model before its modules are resized."""
    root = family.residual_root(model)
    scores = _scores(graph, importance, root)
    total = len(scores)
    step = math.lcm(spec.round_to or 1, int(model.config.num_attention_heads))
    keep = total - round(total * spec.hidden)
    keep = max(step, keep - keep % step) if total >= step else total
    _remove(graph, root, lowest(scores, total - keep))
    model.config.hidden_size = keep
