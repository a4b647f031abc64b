"""Dynamic padding: batches are padded to their longest text, not to the maximum length."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int, length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token id lists into ``input_ids`` and ``attention_mask`` int64 arrays."""
    width = length or max(len(x) for x in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, tokens in enumerate(ids):
        tokens = list(tokens)[:width]
        input_ids[row, : len(tokens)] = tokens
        mask[row, : len(tokens)] = 1
    return input_ids, mask


def iterate_batches(
    encoded: Sequence[Sequence[int]],
    labels: Sequence[int] | None,
    batch_size: int,
    pad_id: int,
    shuffle_seed: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Yield ``(input_ids, attention_mask, labels)``; shuffled when ``shuffle_seed`` is given."""
    order = np.arange(len(encoded))
    if shuffle_seed is not None:
        np.random.default_rng(shuffle_seed).shuffle(order)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        input_ids, mask = pad_batch([encoded[i] for i in chunk], pad_id)
        batch_labels = None if labels is None else np.asarray([labels[i] for i in chunk], dtype=np.int64)
        yield input_ids, mask, batch_labels


def num_batches(n: int, batch_size: int) -> int:
    return (n + batch_size - 1) // batch_size
