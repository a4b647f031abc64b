"""Teacher-labelled augmentation: perturbed copies of the *train* texts' token ids (never dev or test).

Each non-special token is, independently, masked (``[MASK]``), replaced, or dropped. A replacement is
drawn from the train split's own token distribution (``unigram``: replacements stay in-domain), or from
the token's nearest train-split tokens in the teacher's word-embedding space (``neighbours``, after
TinyBERT's word replacement: "great" becomes "good" or "terrific" rather than "the", so a copy stays
close to a sentence the task could contain). With ``span_prob`` a copy is cut down to a random
contiguous span of its words (n-gram sampling, after Tang et al. 2019: "a three-hour cinema master
class" -> "cinema master"), which shows the student how the teacher scores phrases, not only whole
sentences, the way SST's phrase labels do. The teacher labels every copy, so the student sees more of
the teacher's function than the original examples show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch


def augment_ids(
    encoded: Sequence[Sequence[int]],
    copies: int,
    mask_prob: float,
    replace_prob: float,
    drop_prob: float,
    mask_id: int | None,
    special_ids: set[int],
    seed: int,
    neighbours: Mapping[int, np.ndarray] | None = None,
    span_prob: float = 0.0,
) -> list[list[int]]:
    """``copies`` perturbed versions of every example, copy-major (all of copy 1, then all of copy 2 ...).

    With ``neighbours`` (token -> candidate tokens, see :func:`embedding_neighbours`) a replaced token is
    one of its candidates; tokens without candidates fall back to the train split's token distribution.
    With probability ``span_prob`` a perturbed copy keeps only a random span of its words (length uniform
    in 1..all), special tokens around it kept.
    """
    rng = np.random.default_rng(seed)
    pool = train_token_pool(encoded, special_ids)
    out: list[list[int]] = []
    for _ in range(copies):
        for ids in encoded:
            perturbed = _perturb(list(ids), rng, pool, mask_prob, replace_prob, drop_prob, mask_id, special_ids, neighbours)
            if span_prob > 0 and rng.random() < span_prob:  # no draw when off: earlier runs stay reproducible
                perturbed = random_span(perturbed, rng, special_ids)
            out.append(perturbed)
    return out


def random_span(ids: list[int], rng: np.random.Generator, special_ids: set[int]) -> list[int]:
    """The leading and trailing special tokens around a random contiguous span of the words between them."""
    start, end = 0, len(ids)
    while start < end and ids[start] in special_ids:
        start += 1
    while end > start and ids[end - 1] in special_ids:
        end -= 1
    words = end - start
    if words < 2:
        return ids
    length = int(rng.integers(1, words + 1))
    offset = start + int(rng.integers(0, words - length + 1))
    return ids[:start] + ids[offset : offset + length] + ids[end:]


def train_token_pool(encoded: Sequence[Sequence[int]], special_ids: set[int]) -> np.ndarray:
    """Every non-special token occurrence of the split (drawing from it samples the unigram distribution)."""
    return np.asarray([t for ids in encoded for t in ids if t not in special_ids], dtype=np.int64)


def embedding_neighbours(
    word_embeddings: torch.Tensor, tokens: Sequence[int], k: int, chunk: int = 2048
) -> dict[int, np.ndarray]:
    """For each of ``tokens``: the ``k`` other ``tokens`` with the most similar embedding (cosine)."""
    vocabulary = torch.as_tensor(sorted(set(int(t) for t in tokens)), dtype=torch.long)
    k = min(k, len(vocabulary) - 1)
    if k < 1:
        return {}
    with torch.no_grad():
        vectors = torch.nn.functional.normalize(word_embeddings.detach().float()[vocabulary], dim=-1)
        table: dict[int, np.ndarray] = {}
        for start in range(0, len(vocabulary), chunk):
            rows = vectors[start : start + chunk]
            similarity = rows @ vectors.T
            own = torch.arange(start, start + len(rows))
            similarity[torch.arange(len(rows)), own] = -float("inf")  # never a token's own neighbour
            best = similarity.topk(k, dim=-1).indices
            for token, candidates in zip(vocabulary[start : start + chunk].tolist(), vocabulary[best].numpy(), strict=True):
                table[token] = candidates
    return table


def _perturb(ids, rng, pool, mask_prob, replace_prob, drop_prob, mask_id, special_ids, neighbours) -> list[int]:
    result = []
    for token in ids:
        if token in special_ids:
            result.append(token)
            continue
        draw = rng.random()
        if draw < drop_prob:
            continue
        if draw < drop_prob + mask_prob and mask_id is not None:
            result.append(mask_id)
        elif draw < drop_prob + mask_prob + replace_prob and len(pool):
            candidates = neighbours.get(token) if neighbours else None
            source = candidates if candidates is not None and len(candidates) else pool
            result.append(int(source[rng.integers(len(source))]))
        else:
            result.append(token)
    return result
