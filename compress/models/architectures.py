"""Structure lookups by model, each delegated to the model's family adapter (:mod:`compress.models.families`).

Pruning changes Linear shapes; these helpers keep the attention modules' head counts, head sizes and
scaling in step with them, and describe them so a pruned model can be rebuilt from disk. What each
family calls its modules lives in its adapter, not here.
"""

from __future__ import annotations

from torch import nn

from compress.models.families.base import AttentionLayout, family_for, model_type_of

__all__ = [
    "AttentionLayout",
    "attention_layout",
    "attention_projections",
    "backbone",
    "embeddings",
    "encoder_layers",
    "ffn_projections",
    "has_family",
    "keep_layers",
    "model_family",
    "self_attention",
    "set_attention_layout",
]


def model_family(model: nn.Module) -> str:
    return model_type_of(model)


def has_family(model: nn.Module) -> bool:
    """Whether the model's family has an adapter that can prune it (only those models can have an
    attention layout other than their config's)."""
    from compress.models.families.base import _REGISTRY, family_names

    family_names()
    adapter = _REGISTRY.get(model_type_of(model))
    return adapter is not None and adapter.supports("prune")


def backbone(model: nn.Module) -> nn.Module:
    """The encoder model inside a ``*ForSequenceClassification`` (``model.bert`` ...)."""
    return family_for(model).backbone(model)


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    return family_for(model).encoder_layers(model)


def _layer_family(layer: nn.Module):
    """A layer has no config of its own: find the adapter whose layout it matches."""
    from compress.models.families.base import _REGISTRY, family_names

    family_names()
    for adapter in dict.fromkeys(_REGISTRY.values()):
        try:
            adapter.attention_projections(layer)
        except (AttributeError, NotImplementedError):  # not this family's layout, or no layout at all
            continue
        return adapter
    return family_for(layer)  # raises, naming the supported families


def self_attention(layer: nn.Module) -> nn.Module:
    """The module holding the Q/K/V projections of one encoder layer."""
    return _layer_family(layer).self_attention(layer)


def attention_projections(layer: nn.Module) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
    """The query, key and value projections of one encoder layer."""
    return _layer_family(layer).attention_projections(layer)


def ffn_projections(layer: nn.Module) -> tuple[nn.Linear, nn.Linear]:
    """The feed-forward block's (hidden -> intermediate, intermediate -> hidden) projections."""
    return _layer_family(layer).ffn_projections(layer)


def attention_layout(model: nn.Module) -> list[AttentionLayout]:
    return family_for(model).attention_layout(model)


def set_attention_layout(model: nn.Module, layouts: list[AttentionLayout]) -> None:
    """Write head counts, head sizes and scaling into each layer's attention module."""
    family_for(model).set_attention_layout(model, layouts)


def embeddings(model: nn.Module) -> nn.Module:
    return family_for(model).embeddings(model)


def keep_layers(model: nn.Module, keep: list[int]) -> None:
    """Keep only the encoder layers at ``keep`` (in order) and make the config say so."""
    family_for(model).keep_layers(model, keep)
