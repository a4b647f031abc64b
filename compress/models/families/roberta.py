"""XLM-RoBERTa and CamemBERT: RoBERTa's modules under their own ``model_type`` (the backbone is still
``model.roberta``), so :class:`~compress.models.families.bert.BertFamily` serves them as it is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from compress.models.families.base import register_family
from compress.models.families.bert import BertFamily

if TYPE_CHECKING:
    from torch import nn


@register_family
class RobertaLikeFamily(BertFamily):
    model_types = ("xlm-roberta", "camembert")

    def backbone(self, model: nn.Module) -> nn.Module:
        return model.roberta
