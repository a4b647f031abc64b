"""Which units to remove, given one importance score per unit and layer.

Pure functions on score vectors, so the counting rules (fractions vs counts, per-layer vs global ranking,
rounding, never emptying a layer) are tested without building a model.
"""

from __future__ import annotations

import torch


def _kept(total: int, removed: int, round_to: int | None, minimum: int) -> int:
    keep = total - removed
    if round_to and total >= round_to and keep % round_to:
        keep -= keep % round_to
    return min(total, max(keep, minimum, round_to if round_to and total >= round_to else 0))


def removal_counts(
    scores: list[torch.Tensor], amount: float | int, scope: str, round_to: int | None = None, minimum: int = 1
) -> list[int]:
    """How many units to remove from each layer.

    ``amount`` is a fraction of the units (of each layer, or of all layers with ``scope='global'``) or an int
    count (per layer, or in total). Global ranking compares the scores across layers, so layers end up with
    different widths. Every layer keeps at least ``minimum`` units; kept counts are rounded down to a
    multiple of ``round_to`` where the layer is that wide.
    """
    sizes = [len(s) for s in scores]
    if scope == "per_layer":
        wanted = [amount if isinstance(amount, int) else round(n * amount) for n in sizes]
    else:
        total = sum(sizes)
        n_remove = min(total, amount if isinstance(amount, int) else round(total * amount))
        layer_of = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
        lowest = torch.argsort(torch.cat([s.float() for s in scores]), stable=True)[:n_remove]
        wanted = torch.bincount(layer_of[lowest], minlength=len(sizes)).tolist()
    return [n - _kept(n, min(w, n), round_to, minimum) for n, w in zip(sizes, wanted, strict=True)]


def lowest(scores: torch.Tensor, count: int) -> list[int]:
    """Indices of the ``count`` lowest scores, sorted."""
    if count <= 0:
        return []
    return sorted(torch.argsort(scores.float(), stable=True)[:count].tolist())


def evenly_kept_layers(total: int, drop: int) -> list[int]:
    """Indices of ``total - drop`` layers spread evenly over the stack, first and last included."""
    keep = total - drop
    if keep <= 0:
        return []
    if keep == 1:
        return [0]
    return sorted({round(i * (total - 1) / (keep - 1)) for i in range(keep)})
