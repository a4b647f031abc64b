"""Accuracy of any predictor on a labelled split, with dynamic padding."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import numpy as np
from rich.console import Console

from compress.core.progress import progress_bar, step
from compress.data.batching import in_input_order, iterate_batches, num_batches
from compress.runtimes import Predictor


def predict_logits(
    predictor: Predictor,
    encoded: Sequence[Sequence[int]],
    pad_id: int,
    batch_size: int = 64,
    console: Console | None = None,
    description: str = "predicting",
) -> np.ndarray:
    """Logits for every encoded text, in order."""
    indices, outputs = [], []
    batches = iterate_batches(encoded, batch_size, pad_id)
    with progress_bar(console, description, num_batches(len(encoded), batch_size)) if console else nullcontext() as bar:
        for index, ids, mask in batches:
            indices.append(index)
            outputs.append(predictor.run({"input_ids": ids, "attention_mask": mask}))
            if bar is not None:
                step(bar)
    return in_input_order(indices, outputs)


def accuracy(logits: np.ndarray, labels: Sequence[int]) -> float:
    if len(labels) == 0:
        raise ValueError("accuracy of an empty split")
    return float((logits.argmax(axis=-1) == np.asarray(labels)).mean())
