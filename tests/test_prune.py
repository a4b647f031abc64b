"""The prune stage on tiny random BERT / DistilBERT / RoBERTa: every dimension, persistence, export, attention."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from tiny import FAMILIES, tiny_config

from compress.config import parse_recipe
from compress.errors import CompressError, RecipeError
from compress.models import architectures as arch
from compress.models.persistence import load_model, save_model
from compress.pipeline import run_recipe
from compress.pruning.selection import evenly_kept_layers, removal_counts
from compress.pruning.spec import PruningSpec
from compress.pruning.structured import prune_model, shape_summary


def tiny_model(family: str, layers: int = 2, seed: int = 0):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_config(tiny_config(family, layers=layers)).eval()


def batch(seed: int = 1, n: int = 4, length: int = 12):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 40, (n, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, 8:] = 0  # one padded row, so masking is exercised
    return ids, mask


def prune(model, calibration=(), **spec):
    ids, mask = batch()
    return prune_model(model, PruningSpec(**spec), {"input_ids": ids[:2], "attention_mask": mask[:2]}, calibration)


def logits(model, ids, mask):
    with torch.inference_mode():
        return model(input_ids=ids, attention_mask=mask).logits
