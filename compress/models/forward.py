"""One calling convention for every classifier: ``(input_ids, attention_mask) -> logits``."""

from __future__ import annotations

import torch
from torch import nn


def classifier_logits(module: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Run a Hugging Face classifier or a custom module and return its logits tensor."""
    return output_logits(module(input_ids=input_ids, attention_mask=attention_mask))


def output_logits(output) -> torch.Tensor:
    """The logits tensor of a module's output: a tensor, the first of a tuple, or ``.logits``."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple | list):
        return output[0]
    return output.logits


class LogitsOnly(nn.Module):
    """Wraps a classifier so tracing/export sees two tensor inputs and one tensor output."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return classifier_logits(self.module, input_ids, attention_mask)
