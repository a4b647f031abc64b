"""MPNet: ``model.mpnet.encoder.layer[i]`` with ``attention.attn.{q,k,v,o}``, ``intermediate.dense`` and
``output.dense``, and one relative position bias table, ``encoder.relative_attention_bias`` (a column per
head), shared by every layer.

* Its attention divides ``q . k`` by ``sqrt(attention_head_size)`` at every call (no ``scaling``
  attribute), so a layout's scaling is always ``1/sqrt(head size)``.
* Refused pruning dimensions: ``heads`` (the shared bias table has one column per head for all layers;
  removing different heads per layer would need a table per layer, which MPNet cannot load) and
  ``head_dims`` (the attention would re-scale by ``1/sqrt(new head size)``, sharpening every softmax).
* The one-head student keeps the relative bias: its table has one column, the **mean** of the teacher's
  per-head columns. With merged heads the student's logits are ``c * sum`` of the teacher heads' logits
  (``c = 1/heads`` by default, the mean), and the mean bias is exactly what that mean of
  ``logits_h + bias_h`` carries; the shared table cannot follow the per-layer ``c`` of
  ``merge_scale: auto``, so it stays the mean.
* No ``fuse``: ORT's transformer optimizer has no MPNet fusion (its relative bias is not BERT's graph).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from compress.errors import StageError
from compress.models.families.base import AttentionLayout, register_family
from compress.models.families.bert import BertFamily

if TYPE_CHECKING:
    from torch import nn

BIAS = "relative_attention_bias.weight"


@register_family
class MPNetFamily(BertFamily):
    """BERT's layer list, FFN, layer dropping and student config; its own attention, layout and bias."""

    model_types = ("mpnet",)
    operations = frozenset({"prune", "distill", "vocab_prune"})
    fusion_type = None
    scaling_follows_head_size = True
    missing = "ORT's transformer optimizer has no fusion for MPNet's relative-position attention"
    prune_refusals = {
        "heads": "one relative-position bias table, a column per head, is shared by all layers",
        "head_dims": "MPNet's attention re-scales by 1/sqrt(head size) at every call",
    }

    def self_attention(self, layer: nn.Module) -> nn.Module:
        return layer.attention.attn

    def attention_projections(self, layer: nn.Module) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
        attention = self.self_attention(layer)
        return attention.q, attention.k, attention.v

    def attention_output(self, layer: nn.Module) -> nn.Linear:
        return layer.attention.attn.o

    def read_layout(self, attention: nn.Module) -> AttentionLayout:
        size = int(attention.attention_head_size)
        return AttentionLayout(int(attention.num_attention_heads), size, size**-0.5)

    def write_layout(self, attention: nn.Module, layout: AttentionLayout) -> None:
        if not math.isclose(layout.scaling, layout.head_size**-0.5, rel_tol=1e-6):
            raise StageError(
                f"MPNet attention scales by 1/sqrt(head size {layout.head_size}); cannot use {layout.scaling}"
            )
        attention.attention_head_size = layout.head_size
        attention.num_attention_heads = layout.heads
        attention.all_head_size = layout.heads * layout.head_size

    def layer_kwargs(self, model: nn.Module, hidden: Any) -> dict[str, Any]:
        return {"position_bias": self.backbone(model).encoder.compute_position_bias(hidden)}

    def attention_bias(self, args: tuple, kwargs: dict[str, Any]) -> Any:
        # MPNetAttention calls its self-attention as attn(hidden, mask, position_bias, output_attentions=...)
        return kwargs["position_bias"] if "position_bias" in kwargs else (args[0] if args else None)

    def student_tensor(self, name: str, teacher_value: Any, student_shape: Any) -> Any:
        if name.endswith(BIAS) and teacher_value.shape[1] != student_shape[1]:
            heads = teacher_value.shape[1]
            if heads % student_shape[1]:
                raise StageError(f"distill: MPNet's {heads} bias columns cannot merge into {student_shape[1]} heads")
            return teacher_value.view(teacher_value.shape[0], student_shape[1], -1).mean(dim=2)
        return teacher_value
