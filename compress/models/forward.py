"""One calling convention for every classifier: named inputs (as the task collates them) -> logits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn


def classifier_logits(module: nn.Module, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Run a Hugging Face classifier or a custom module on named inputs and return its logits tensor."""
    return output_logits(module(**inputs))


def output_logits(output) -> torch.Tensor:
    """The logits tensor of a module's output: a tensor, the first of a tuple, or ``.logits``."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple | list):
        return output[0]
    return output.logits


class LogitsOnly(nn.Module):
    """Wraps a classifier so tracing/export sees positional tensor inputs (the task's input names, in order)
    and one tensor output."""

    def __init__(self, module: nn.Module, input_names: Sequence[str]) -> None:
        super().__init__()
        self.module = module
        self.input_names = tuple(input_names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return classifier_logits(self.module, dict(zip(self.input_names, inputs, strict=True)))
