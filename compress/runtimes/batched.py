"""Run a predictor over every example of a split in batches: the inference loop training, distillation,
quantization and evaluation share."""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console

from compress.core.progress import progress_bar, step
from compress.data.batching import in_input_order, num_batches
from compress.runtimes.base import Predictor
from compress.tasks.base import iterate_inputs

if TYPE_CHECKING:
    from compress.tasks.base import Examples


def predict_logits(
    predictor: Predictor,
    examples: Examples,
    batch_size: int = 64,
    console: Console | None = None,
    description: str = "predicting",
) -> np.ndarray:
    """Logits for every example, in order (batched by size, so there is little padding)."""
    indices, outputs = [], []
    batches = iterate_inputs(examples, batch_size)
    with progress_bar(console, description, num_batches(len(examples), batch_size)) if console else nullcontext() as bar:
        for index, inputs in batches:
            indices.append(index)
            outputs.append(predictor.run(inputs))
            if bar is not None:
                step(bar)
    return in_input_order(indices, outputs)
