"""DeBERTa-v2 / v3: refused by name for stages that change the structure; every other stage needs no
adapter.

What is missing: DeBERTa's disentangled attention adds content-to-position and position-to-content terms
(``pos_key_proj`` / ``pos_query_proj`` over shared relative embeddings) whose head split follows the
config's head count; pruning heads or head widths, and a one-head student, would have to slice and
merge those terms too. Neither is written or tested."""

from __future__ import annotations

from compress.models.families.base import FamilyAdapter, register_family


@register_family
class DebertaV2Family(FamilyAdapter):
    model_types = ("deberta-v2",)
    operations = frozenset()
    missing = (
        "DeBERTa's disentangled relative-position attention terms would need the same head slicing and "
        "merging as Q/K/V, which is not written"
    )
