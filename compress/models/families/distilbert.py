"""DistilBERT: ``model.distilbert.transformer.layer[i]`` with ``attention.{q,k,v,out}_lin`` (head count
``n_heads``, width ``dim``) and ``ffn.lin1`` / ``ffn.lin2``; the config says ``hidden_dim`` for the FFN.

No ``distill``: a student config of this family (``n_layers``, ``n_heads``, ``hidden_dim``) and the
teacher-layer weight copy have not been written or tested for it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from compress.models.families.base import AttentionLayout, FamilyAdapter, register_family

if TYPE_CHECKING:
    from torch import nn


@register_family
class DistilBertFamily(FamilyAdapter):
    model_types = ("distilbert",)
    operations = frozenset({"prune", "vocab_prune", "fuse"})
    fusion_type = "bert"
    missing = (
        "a DistilBERT student (DistilBertConfig n_layers/n_heads/hidden_dim) and the teacher-layer copy with "
        "merged heads are not written or tested; distil a BERT or RoBERTa teacher, or prune this one"
    )

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
