"""Parameter and MAC counts of a PyTorch classifier, for reports (torch-pruning's op counter)."""

from __future__ import annotations

import torch
from torch import nn

from compress.models.forward import LogitsOnly

MACS_SEQ_LEN = 128
"""MACs are counted for one sequence of this many tokens (the latency table's b1 s128 setting)."""


def count_macs_and_params(model: nn.Module, seq_len: int = MACS_SEQ_LEN) -> tuple[int, int]:
    """(MACs, parameters) of one forward pass on a batch of one ``seq_len``-token sequence.

    torch-pruning counts the modules' work (Linear, Embedding, LayerNorm ...); the attention
    matmuls, which have no module, are not included, so compare MACs between variants of one family.
    """
    from torch_pruning.utils import count_ops_and_params

    from compress.tasks import get_task

    names = get_task().input_names
    inputs = tuple(torch.ones(1, seq_len, dtype=torch.long) for _ in names)  # token 1 everywhere, no padding
    with torch.inference_mode():
        macs, params = count_ops_and_params(LogitsOnly(model, names).eval(), inputs)
    return int(macs), int(params)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_facts(model: nn.Module) -> dict[str, int]:
    """``{"parameters": ..., "macs": ...}`` for ``variant.info``."""
    macs, _ = count_macs_and_params(model)
    return {"parameters": count_parameters(model), "macs": macs}
