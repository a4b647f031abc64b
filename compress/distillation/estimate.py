"""How long caching the teacher will take, said before it starts.

Caching runs the teacher once over every example in length-sorted batches, so its time is predictable
from a couple of batches: one warm-up call (oneDNN builds its kernels on the first), then two timed
batches at the first and third quartile of the lengths, fitted as ``seconds = a + b x padded tokens``
and summed over every batch. On a CPU where bf16 is emulated the edge recipe's caching took 860 s
instead of 158 s; the estimate lets a user see that at the start, not at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from compress.tasks.base import Examples, sorted_batches
from compress.training.loop import as_tensors, autocast


@dataclass(frozen=True)
class CacheEstimate:
    seconds: float
    batches: int
    examples: int
    sample_seconds: tuple[float, float]
    """Measured seconds of the two timed batches (first and third quartile of the lengths)."""

    def line(self, precision: str) -> str:
        return (
            f"    caching the teacher for {self.examples:,} examples ({self.batches} batches, {precision}): "
            f"{about(self.seconds)} (from timed batches of {self.sample_seconds[0]:.2f} / "
            f"{self.sample_seconds[1]:.2f} s)"
        )


def about(seconds: float) -> str:
    """``about 40 s`` below 90 s, else ``about 14 min``."""
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"


@torch.inference_mode()
def estimate_teacher_cache(
    teacher: nn.Module,
    examples: Examples,
    indices: set[int],
    batch_size: int = 128,
    precision: str = "fp32",
    clock: Callable[[], float] = time.perf_counter,
) -> CacheEstimate:
    """Estimate :func:`compress.distillation.cache.cache_teacher`'s time with the same batches and precision
    (three extra teacher calls: under 1% of the work for a few hundred batches)."""
    batches = sorted_batches(examples, batch_size)
    if not batches:
        return CacheEstimate(0.0, 0, 0, (0.0, 0.0))
    sizes = examples.sizes()
    tokens = np.array([len(batch) * sizes[batch].max() for batch in batches], dtype=np.float64)
    picks = (len(batches) // 2, len(batches) // 4, (3 * len(batches)) // 4)

    def run(position: int) -> float:
        inputs = as_tensors(examples.collate(batches[position]))
        start = clock()
        with autocast(precision):
            teacher(**inputs, output_hidden_states=bool(indices))
        return clock() - start

    run(picks[0])  # warm-up
    low, high = run(picks[1]), run(picks[2])
    low_tokens, high_tokens = tokens[picks[1]], tokens[picks[2]]
    per_token = (high - low) / (high_tokens - low_tokens) if high_tokens > low_tokens else 0.0
    if per_token <= 0:  # equal lengths, or noise: plain per-token scaling from the longer batch
        per_token, fixed = high / high_tokens, 0.0
    else:
        fixed = max(0.0, low - per_token * low_tokens)
    seconds = float(fixed * len(batches) + per_token * tokens.sum())
    return CacheEstimate(seconds, len(batches), len(examples), (low, high))
