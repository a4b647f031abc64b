"""ELECTRA: BERT's encoder modules under ``model.electra``. Its embeddings may be narrower than the
encoder (``embedding_size`` != ``hidden_size``), joined by ``embeddings_project``; the residual stream then
starts at that projection, so hidden pruning cuts the projection's outputs and leaves the embeddings whole.

No ``fuse``: ORT's BERT fusion is not tested on ELECTRA graphs here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from compress.models.families.base import register_family
from compress.models.families.bert import BertFamily

if TYPE_CHECKING:
    from torch import nn


@register_family
class ElectraFamily(BertFamily):
    model_types = ("electra",)
    operations = frozenset({"prune", "distill", "vocab_prune"})
    fusion_type = None
    missing = "ORT's transformer fusion is not tested on ELECTRA graphs"

    def residual_root(self, model: nn.Module) -> nn.Module:
        return getattr(self.backbone(model), "embeddings_project", None) or self.word_embeddings(model)
