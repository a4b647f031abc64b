"""DistilBERT: ``model.distilbert.transformer.layer[i]`` with ``attention.{q,k,v,out}_lin`` (head count
``n_heads``, width ``dim``) and ``ffn.lin1`` / ``ffn.lin2``; the config says ``hidden_dim`` for the FFN.

Its self-attention module (``layer.attention``) also holds the output projection ``out_lin``, which BERT
keeps outside (``attention.output.dense``); head annealing applies it (``annealing.py`` finds it inside).
The student is a stock ``DistilBertConfig`` (``n_layers``, ``n_heads``, ``dim``, ``hidden_dim``)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from compress.models.families.base import AttentionLayout, FamilyAdapter, register_family

if TYPE_CHECKING:
    from torch import nn


@register_family
class DistilBertFamily(FamilyAdapter):
    model_types = ("distilbert",)
    operations = frozenset({"prune", "distill", "vocab_prune", "fuse"})
    fusion_type = "bert"

    def encoder_layers(self, model: nn.Module) -> nn.ModuleList:
        return self.backbone(model).transformer.layer

    def self_attention(self, layer: nn.Module) -> nn.Module:
        return layer.attention

    def attention_projections(self, layer: nn.Module) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
        attention = layer.attention
        return attention.q_lin, attention.k_lin, attention.v_lin

    def attention_output(self, layer: nn.Module) -> nn.Linear:
        return layer.attention.out_lin

    def ffn_projections(self, layer: nn.Module) -> tuple[nn.Linear, nn.Linear]:
        return layer.ffn.lin1, layer.ffn.lin2

    def read_layout(self, attention: nn.Module) -> AttentionLayout:
        return AttentionLayout(int(attention.n_heads), int(attention.attention_head_size), float(attention.scaling))

    def write_layout(self, attention: nn.Module, layout: AttentionLayout) -> None:
        attention.attention_head_size = layout.head_size
        attention.scaling = layout.scaling
        attention.n_heads = layout.heads
        attention.dim = layout.heads * layout.head_size

    def keep_layers(self, model: nn.Module, keep: list[int]) -> None:
        from torch import nn

        transformer = self.backbone(model).transformer
        transformer.layer = nn.ModuleList([transformer.layer[i] for i in keep])
        transformer.n_layers = len(keep)
        model.config.num_hidden_layers = len(keep)

    def set_ffn_width(self, config: Any, width: int) -> None:
        config.hidden_dim = width

    def ffn_width(self, config: Any) -> int:
        return int(config.hidden_dim)

    def hidden_dropout(self, config: Any) -> float:
        return float(config.dropout)

    def student_config(self, teacher_config: Any, layers: int, heads: int, hidden: int | None,
                       ffn: int | None, dropout: float | None) -> Any:
        config = copy.deepcopy(teacher_config)
        config.n_layers = layers
        config.n_heads = heads
        config.dim = hidden or config.dim
        config.hidden_dim = ffn or config.hidden_dim
        if dropout is not None:
            config.dropout = config.attention_dropout = dropout
        return config
