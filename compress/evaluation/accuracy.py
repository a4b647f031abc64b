"""Accuracy of any predictor on a labelled split, with dynamic padding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.console import Console

from compress.data.batching import iterate_batches, num_batches
from compress.evaluation.runners import Predictor
from compress.progress import progress_bar, step


def predict_logits(
    predictor: Predictor,
    encoded: Sequence[Sequence[int]],
    pad_id: int,
    batch_size: int = 64,
    console: Console | None = None,
    description: str = "predicting",
) -> np.ndarray:
    """Logits for every encoded text, in order."""
    outputs = []
    batches = iterate_batches(encoded, None, batch_size, pad_id)
    if console is None:
        return np.concatenate([predictor.logits(ids, mask) for ids, mask, _ in batches])
    with progress_bar(console, description, num_batches(len(encoded), batch_size)) as bar:
        for ids, mask, _ in batches:
            outputs.append(predictor.logits(ids, mask))
            step(bar)
    return np.concatenate(outputs)


def accuracy(logits: np.ndarray, labels: Sequence[int]) -> float:
    if len(labels) == 0:
        raise ValueError("accuracy of an empty split")
    return float((logits.argmax(axis=-1) == np.asarray(labels)).mean())
