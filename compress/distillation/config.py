"""Recipe options of the ``distill`` stage (validated before anything runs)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from compress.core.options import Options
from compress.search.config import SearchConfig
from compress.training.loop import TrainingConfig

LOSS_NAMES = ("logits", "hidden", "attention", "embedding_cosine", "embedding_mse", "embedding_neighbours")
Pair = tuple[int, int]


class LossOptions(Options):
    temperature: float = Field(2.0, gt=0, description="Softmax temperature of the logits loss.")
    hard_label_weight: float = Field(0.5, ge=0, le=1, description="Share of hard-label CE in the logits loss.")
    hidden_layers: list[Pair] | None = Field(
        None,
        description="(student layer, teacher layer) pairs whose outputs are matched (default: init map).",
    )
    attention_layers: list[Pair] | None = Field(
        None,
        description="(student layer, teacher layer) pairs for relation transfer; default: the last pair.",
    )
    relation_heads: int | None = Field(None, ge=1, description="Relation heads (default: the teacher's head count).")
    relations: list[Literal["qk", "qq", "kk", "vv"]] = Field(
        ["qk", "vv"], min_length=1, description="'qk' attention distribution, 'vv' value relation (MiniLM)."
    )
    neighbour_temperature: float = Field(
        0.05, gt=0, le=10, description="Temperature of the embedding_neighbours loss's softmax over cosines."
    )


class AugmentConfig(Options):
    copies: int = Field(0, ge=0, le=20, description="Teacher-labelled perturbed copies of each train text (0: off).")
    mask_prob: float = Field(0.1, ge=0, le=1, description="Per token: replace with [MASK].")
    replace_prob: float = Field(0.1, ge=0, le=1, description="Per token: replace with a random train-split token.")
    drop_prob: float = Field(0.05, ge=0, le=1, description="Per token: delete.")
    replace_with: Literal["unigram", "neighbours"] = Field(
        "unigram",
        description="Replacement token: drawn from the train split's tokens ('unigram'), or one of the "
        "token's nearest train-split tokens in the teacher's word embeddings ('neighbours').",
    )
    neighbours: int = Field(8, ge=1, le=1000, description="Candidates per token for 'neighbours'.")
    span_prob: float = Field(
        0.0, ge=0, le=1, description="Per copy: keep only a random contiguous span of its words (n-gram sampling)."
    )


class TransferConfig(Options):
    corpus: str | None = Field(
        None,
        description="Unlabelled in-domain text the teacher labels for the student: 'imdb_reviews' (built in) "
        "or a .txt (one text per line) / .csv / .jsonl (column 'text') path; None: off.",
    )
    texts: int = Field(30000, ge=1, le=2_000_000, description="Texts drawn at random from the corpus (seeded).")
    sentences: bool = Field(True, description="Cut documents into sentences (the task's snippets are sentences).")
    min_words: int = Field(3, ge=1, description="Shortest text kept, in words.")
    max_words: int = Field(60, ge=1, description="Longest text kept, in words.")

    @model_validator(mode="after")
    def _word_range(self) -> TransferConfig:
        if self.min_words > self.max_words:
            raise ValueError(f"min_words ({self.min_words}) is larger than max_words ({self.max_words})")
        return self


class DistillConfig(TrainingConfig):
    layers: int = Field(2, ge=1, le=48, description="Encoder layers of the student.")
    heads: int = Field(1, ge=1, description="Attention heads per student layer.")
    ffn: int | None = Field(None, ge=1, description="Intermediate (FFN) width; default: the teacher's.")
    hidden: int | None = Field(None, ge=8, description="Hidden width; default: the teacher's (needed by teacher_layers).")
    dropout: float | None = Field(
        None, ge=0, lt=1, description="Hidden and attention dropout of the student; default: the teacher's."
    )
    init: Literal["teacher_layers", "random"] = "teacher_layers"
    teacher_layers: Literal["uniform", "first"] | list[int] = Field(
        "uniform",
        description="Teacher layers copied into the student: 'uniform', 'first' or 0-based indices.",
    )
    merge_scale: Literal["auto", "mean", "sum", "none"] | float = Field(
        "auto",
        description="Merged-head logit scale: 'mean'/'sum' of the heads' logits, 'none' (HF default), "
        "a number c (logits = c * sum), or 'auto' (per layer, best reproduces the teacher layer).",
    )
    anneal_heads: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of the training steps over which the teacher's split heads merge into the "
        "student's heads (attention mixed from split to merged); 0: merged from the first step.",
    )
    losses: dict[str, float] = Field({"logits": 1.0}, description="Loss name -> weight (logits, hidden, attention).")
    loss_options: LossOptions = LossOptions()
    augment: AugmentConfig = AugmentConfig()
    transfer: TransferConfig = TransferConfig()
    search: SearchConfig | None = Field(
        None,
        description="Latency-budget search: the student shape (layers, heads, ffn, hidden) is chosen among "
        "candidates measured on the serving runtime; the fields above then only give the training options.",
    )
    name: str = Field("student", description="Variant name of the student.")
    epochs: int = Field(8, ge=0, le=100)
    learning_rate: float = Field(1e-4, gt=0, lt=1)
    patience: int = Field(2, ge=0)

    @model_validator(mode="after")
    def _annealing_needs_copied_heads(self) -> DistillConfig:
        if self.anneal_heads and self.init != "teacher_layers":
            raise ValueError("anneal_heads starts from the teacher's heads: it needs init: teacher_layers")
        return self

    @field_validator("losses")
    @classmethod
    def _known_losses(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(LOSS_NAMES))
        if unknown:
            raise ValueError(f"unknown loss {unknown[0]!r}; available: {', '.join(LOSS_NAMES)}")
        if not value or any(w < 0 for w in value.values()) or not any(w > 0 for w in value.values()):
            raise ValueError("give at least one loss a positive weight (weights must be >= 0)")
        return value
