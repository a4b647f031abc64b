"""Where each supported model family keeps its encoder layers and attention bookkeeping.

Pruning changes Linear shapes; these helpers keep the attention modules' head counts, head sizes and
scaling in step with them, and describe them so a pruned model can be rebuilt from disk.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from compress.errors import StageError

SUPPORTED_FAMILIES = ("bert", "roberta", "distilbert")


@dataclass(frozen=True)
class AttentionLayout:
    heads: int
    head_size: int
    scaling: float

    def to_dict(self) -> dict[str, float]:
        return {"heads": self.heads, "head_size": self.head_size, "scaling": self.scaling}


def model_family(model: nn.Module) -> str:
    config = getattr(model, "config", None)
    return getattr(config, "model_type", "") or ""


def backbone(model: nn.Module) -> nn.Module:
    """The encoder model inside a ``*ForSequenceClassification`` (``model.bert`` ...)."""
    family = model_family(model)
    if family not in SUPPORTED_FAMILIES:
        raise StageError(
            f"model family {family or type(model).__name__!r} is not supported here; "
            f"supported: {', '.join(SUPPORTED_FAMILIES)}"
        )
    return getattr(model, family)


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    base = backbone(model)
    if model_family(model) == "distilbert":
        return base.transformer.layer
    return base.encoder.layer


def self_attention(layer: nn.Module) -> nn.Module:
    """The module holding the Q/K/V projections of one encoder layer."""
    attention = layer.attention
    return getattr(attention, "self", attention)


def attention_layout(model: nn.Module) -> list[AttentionLayout]:
    layouts = []
    for layer in encoder_layers(model):
        attn = self_attention(layer)
        heads = getattr(attn, "num_attention_heads", None) or attn.n_heads
        layouts.append(AttentionLayout(int(heads), int(attn.attention_head_size), float(attn.scaling)))
    return layouts


def set_attention_layout(model: nn.Module, layouts: list[AttentionLayout]) -> None:
    """Write head counts, head sizes and scaling into each layer's attention module."""
    layers = encoder_layers(model)
    if len(layouts) != len(layers):
        raise StageError(f"attention layout has {len(layouts)} layers, the model has {len(layers)}")
    for layer, layout in zip(layers, layouts, strict=True):
        attn = self_attention(layer)
        attn.attention_head_size = layout.head_size
        attn.scaling = layout.scaling
        if hasattr(attn, "n_heads"):
            attn.n_heads = layout.heads
            attn.dim = layout.heads * layout.head_size
        else:
            attn.num_attention_heads = layout.heads
            attn.all_head_size = layout.heads * layout.head_size


def attention_projections(layer: nn.Module) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
    """The query, key and value projections of one encoder layer."""
    attn = self_attention(layer)
    if hasattr(attn, "q_lin"):
        return attn.q_lin, attn.k_lin, attn.v_lin
    return attn.query, attn.key, attn.value


def ffn_projections(layer: nn.Module) -> tuple[nn.Linear, nn.Linear]:
    """The feed-forward block's (hidden -> intermediate, intermediate -> hidden) projections."""
    if hasattr(layer, "ffn"):
        return layer.ffn.lin1, layer.ffn.lin2
    return layer.intermediate.dense, layer.output.dense


def embeddings(model: nn.Module) -> nn.Module:
    return backbone(model).embeddings


def keep_layers(model: nn.Module, keep: list[int]) -> None:
    """Keep only the encoder layers at ``keep`` (in order) and make the config say so."""
    base = backbone(model)
    container = base.transformer if model_family(model) == "distilbert" else base.encoder
    container.layer = nn.ModuleList([container.layer[i] for i in keep])
    if hasattr(container, "n_layers"):
        container.n_layers = len(keep)
    model.config.num_hidden_layers = len(keep)
