"""The accuracy metric of a labelled split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def accuracy(logits: np.ndarray, labels: Sequence[int]) -> float:
    if len(labels) == 0:
        raise ValueError("accuracy of an empty split")
    return float((logits.argmax(axis=-1) == np.asarray(labels)).mean())
