"""Teacher-labelled augmentation: perturbed copies of the *train* texts' token ids (never dev or test).

Each non-special token is, independently, masked (``[MASK]``), replaced by a token drawn from the train
split's own token distribution (so replacements stay in-domain), or dropped. The teacher labels every
copy, so the student sees more of the teacher's function than the original examples show.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def augment_ids(
    encoded: Sequence[Sequence[int]],
    copies: int,
    mask_prob: float,
    replace_prob: float,
    drop_prob: float,
    mask_id: int | None,
    special_ids: set[int],
    seed: int,
) -> list[list[int]]:
    """``copies`` perturbed versions of every example, copy-major (all of copy 1, then all of copy 2 ...)."""
    rng = np.random.default_rng(seed)
    pool = np.asarray([t for ids in encoded for t in ids if t not in special_ids], dtype=np.int64)
    out: list[list[int]] = []
    for _ in range(copies):
        for ids in encoded:
            out.append(
                _perturb(list(ids), rng, pool, mask_prob, replace_prob, drop_prob, mask_id, special_ids)
            )
    return out


def _perturb(ids, rng, pool, mask_prob, replace_prob, drop_prob, mask_id, special_ids) -> list[int]:
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
            result.append(int(pool[rng.integers(len(pool))]))
        else:
            result.append(token)
    return result
