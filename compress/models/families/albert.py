"""ALBERT: refused by name for stages that change the structure; every other stage needs no adapter.

What is missing: ALBERT shares one layer's weights across all its layers (``albert_layer_groups``), so
pruning a head, an FFN channel or a layer changes every layer at once; per-layer pruning, dropping layers
and a student would need the shared group unrolled into separate layers, which ``AlbertConfig`` cannot
describe."""

from __future__ import annotations

from compress.models.families.base import FamilyAdapter, register_family


@register_family
class AlbertFamily(FamilyAdapter):
    model_types = ("albert",)
    operations = frozenset()
    missing = (
        "ALBERT shares one set of layer weights across all layers; pruning, distilling or dropping layers "
        "would need the shared layer unrolled, which AlbertConfig cannot describe"
    )
