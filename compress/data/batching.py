"""Dynamic padding: batches are padded to their longest text, not to the maximum length.

Texts of similar length go into the same batch wherever order does not matter (inference: sorted by
length; training: shuffled, then sorted within buckets of a few dozen batches), so little of each batch
is padding. On Rotten Tomatoes (p50 26 tokens, p95 47) a random batch of 32 is about half padding.
"""

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


BUCKET_BATCHES = 50
"""Training batches per length bucket: large enough to group lengths, small enough to stay random."""


def lengths_of(encoded: Sequence[Sequence[int]]) -> np.ndarray:
    return np.fromiter((len(x) for x in encoded), dtype=np.int64, count=len(encoded))


def length_sorted_batches(encoded: Sequence[Sequence[int]], batch_size: int) -> list[np.ndarray]:
    """Index batches that cover every text once, shortest texts first (for inference)."""
    order = np.argsort(lengths_of(encoded), kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Random index batches of similar lengths (for training): every index exactly once.

    The indices are shuffled, cut into buckets of ``BUCKET_BATCHES`` batches, sorted by length inside
    each bucket and cut into batches; the batches are then shuffled, so an epoch does not go from
    short to long texts.
    """
    order = rng.permutation(len(lengths))
    bucket = batch_size * BUCKET_BATCHES
    batches = []
    for start in range(0, len(order), bucket):
        chunk = order[start : start + bucket]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def iterate_batches(
    encoded: Sequence[Sequence[int]], batch_size: int, pad_id: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(indices, input_ids, attention_mask)`` in length order; ``indices`` says where each row goes."""
    for chunk in length_sorted_batches(encoded, batch_size):
        input_ids, mask = pad_batch([encoded[i] for i in chunk], pad_id)
        yield chunk, input_ids, mask


def in_input_order(indices: Sequence[np.ndarray], rows: Sequence[np.ndarray]) -> np.ndarray:
    """Put per-batch outputs from :func:`iterate_batches` back into the order of the inputs."""
    stacked = np.concatenate(rows)
    out = np.empty_like(stacked)
    out[np.concatenate(indices)] = stacked
    return out


def num_batches(n: int, batch_size: int) -> int:
    return (n + batch_size - 1) // batch_size
