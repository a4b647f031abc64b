"""BERT and RoBERTa: ``model.<bert|roberta>.encoder.layer[i]`` with ``attention.self.{query,key,value}``,
``attention.output.dense``, ``intermediate.dense`` and ``output.dense`` (RoBERTa reuses BERT's modules)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from compress.models.families.base import AttentionLayout, FamilyAdapter, register_family

if TYPE_CHECKING:
    from torch import nn


@register_family
class BertFamily(FamilyAdapter):
    model_types = ("bert", "roberta")
    operations = frozenset({"prune", "distill", "vocab_prune", "fuse"})
    fusion_type = "bert"

    def encoder_layers(self, model: nn.Module) -> nn.ModuleList:
        return self.backbone(model).encoder.layer

    def self_attention(self, layer: nn.Module) -> nn.Module:
        return layer.attention.self

    def attention_projections(self, layer: nn.Module) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
        attention = self.self_attention(layer)
        return attention.query, attention.key, attention.value

    def attention_output(self, layer: nn.Module) -> nn.Linear:
        return layer.attention.output.dense

    def ffn_projections(self, layer: nn.Module) -> tuple[nn.Linear, nn.Linear]:
        return layer.intermediate.dense, layer.output.dense

    def read_layout(self, attention: nn.Module) -> AttentionLayout:
        return AttentionLayout(
            int(attention.num_attention_heads), int(attention.attention_head_size), float(attention.scaling)
        )

    def write_layout(self, attention: nn.Module, layout: AttentionLayout) -> None:
        attention.attention_head_size = layout.head_size
        attention.scaling = layout.scaling
        attention.num_attention_heads = layout.heads
        attention.all_head_size = layout.heads * layout.head_size

    def keep_layers(self, model: nn.Module, keep: list[int]) -> None:
        from torch import nn

        encoder = self.backbone(model).encoder
        encoder.layer = nn.ModuleList([encoder.layer[i] for i in keep])
        model.config.num_hidden_layers = len(keep)

    def student_config(self, teacher_config: Any, layers: int, heads: int, hidden: int | None,
                       ffn: int | None, dropout: float | None) -> Any:
        config = copy.deepcopy(teacher_config)
        config.num_hidden_layers = layers
        config.num_attention_heads = heads
        config.hidden_size = hidden or config.hidden_size
        config.intermediate_size = ffn or config.intermediate_size
        if dropout is not None:
            config.hidden_dropout_prob = config.attention_probs_dropout_prob = dropout
        return config
