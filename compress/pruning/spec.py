"""The ``prune`` stage's library options: what to prune (:class:`PruningSpec`) and the recovery fine-tuning
after it (:class:`RecoverConfig`), validated before any work starts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from compress.core.options import Options
from compress.training.loop import TrainingConfig

Amount = int | float
"""A fraction in [0, 1) of the units to remove, or (an int >= 1) a count of them."""


def _check_fraction(value: float | int | None, field: str, allow_count: bool) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{field} must be a number, got {value!r}")
    if isinstance(value, int) and value >= 1:
        if not allow_count:
            raise ValueError(f"{field} must be a fraction in [0, 1), got the count {value}")
        return value
    if not 0 <= float(value) < 1:
        raise ValueError(
            f"{field} must be a fraction in [0, 1){' or a count >= 1' if allow_count else ''}, got {value}"
        )
    return float(value)


class PruningSpec(Options):
    """Structural pruning targets. Every dimension is optional; zero / empty means 'leave it alone'."""

    heads: Amount = Field(
        0.0,
        description="Whole attention heads to remove: fraction, or count (per layer, or "
        "in total with scope 'global'). At least one head stays in every layer.",
    )
    head_dims: float = Field(
        0.0, description="Fraction of each head's width (query/key/value dims) to remove."
    )
    ffn: float = Field(0.0, description="Fraction of the feed-forward (intermediate) channels to remove.")
    layers: list[int] | int = Field(
        default_factory=list,
        description="Encoder layers to drop: a list of indices, or a count (kept layers spread evenly, "
        "first and last kept).",
    )
    hidden: float = Field(
        0.0,
        description="Fraction of the residual (hidden) width to remove; 0 keeps embeddings, "
        "pooler and classifier input unchanged.",
    )
    importance: Literal["magnitude", "taylor", "random"] = Field(
        "magnitude",
        description="How units are ranked: weight L2 magnitude, first-order Taylor (weight x gradient "
        "on calibration batches of the train split), or random (ablations).",
    )
    scope: Literal["global", "per_layer"] = Field(
        "per_layer",
        description="Rank units within each layer (uniform shapes) or across layers (non-uniform).",
    )
    round_to: int | None = Field(
        None,
        ge=1,
        description="Keep FFN widths, head sizes and the hidden width "
        "multiples of this (e.g. 8), rounding the kept count down.",
    )
    calibration_batches: int = Field(
        8, ge=1, le=1000, description="Train batches whose gradients feed 'taylor'."
    )

    @field_validator("heads")
    @classmethod
    def _heads(cls, value):
        return _check_fraction(value, "heads", allow_count=True)

    @field_validator("head_dims", "ffn", "hidden")
    @classmethod
    def _fractions(cls, value, info):
        return _check_fraction(value, info.field_name, allow_count=False)

    @field_validator("layers")
    @classmethod
    def _layers(cls, value):
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise ValueError(f"layers as a count must be >= 0, got {value}")
            return value
        if len(set(value)) != len(value):
            raise ValueError(f"layers lists an index twice: {value}")
        if any(i < 0 for i in value):
            raise ValueError(f"layer indices must be >= 0, got {value}")
        return sorted(value)

    @model_validator(mode="after")
    def _something_to_do(self):
        if not (self.heads or self.head_dims or self.ffn or self.hidden or self.layers):
            raise ValueError("nothing to prune: set at least one of heads, head_dims, ffn, layers, hidden")
        return self


class RecoverConfig(TrainingConfig):
    """Fine-tuning after pruning; ``epochs: 0`` skips it."""

    epochs: int = Field(2, ge=0, le=100, description="Recovery epochs over the train split (0: no recovery).")
    learning_rate: float = Field(1e-4, gt=0, lt=1, description="AdamW peak learning rate.")
    distill_from_unpruned: bool = Field(
        True,
        description="Learn from the unpruned model's logits (KL, plus hard labels) instead of labels only.",
    )
    temperature: float = Field(2.0, gt=0, description="Distillation temperature.")
    hard_label_weight: float = Field(0.5, ge=0, le=1, description="Weight of the label loss; the rest is KL.")
