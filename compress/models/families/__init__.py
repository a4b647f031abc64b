"""Model families: one adapter module per Hugging Face ``model_type`` (see :mod:`.base`)."""

from compress.models.families.base import (
    OPERATIONS,
    AttentionLayout,
    FamilyAdapter,
    families_supporting,
    family_for,
    family_names,
    register_family,
    require,
)

__all__ = [
    "OPERATIONS",
    "AttentionLayout",
    "FamilyAdapter",
    "families_supporting",
    "family_for",
    "family_names",
    "register_family",
    "require",
]
