"""The recipe's ``model:`` and ``data:`` sections: plain options that model and data loading read.

Kept apart from :mod:`compress.core.recipe` (which needs the stage registry) so that loading a model or a
dataset needs only these values, not the recipe machinery.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from compress.core.options import Options


class ModelConfig(Options):
    source: str = Field(
        "minilm",
        description="'minilm' (the embedded all-MiniLM-L6-v2), a local Hugging Face checkpoint directory, "
        "a directory saved by compress, a hub id (needs internet), or 'package.module:factory' (runs your code).",
    )
    name: str = Field("teacher", description="Variant name of the input model in reports.")
    tokenizer: str | None = Field(None, description="Tokenizer directory when the model source has none.")
    max_length: int = Field(64, ge=8, le=4096, description="Tokens per text; longer texts are truncated.")
    trust_model_code: bool = Field(
        False,
        description="Allow model files that run code when loaded: pickled weights (.bin/.pt) that "
        "torch.load(weights_only=True) refuses, and a factory named inside a compress model directory. "
        "Only for files you trust (CLI: --trust-model-code).",
    )


class DataConfig(Options):
    dataset: str = Field("rotten_tomatoes", description="A built-in dataset name or a .csv/.jsonl file.")
    text_column: str = "text"
    label_column: str = "label"
    test_size: float = Field(2000, gt=0, description="Examples (>=1) or fraction (<1) held out for test.")
    dev_size: float = Field(1000, gt=0, description="Examples (>=1) or fraction (<1) held out for dev.")
    seed: int = 0
    limit: int | None = Field(None, ge=10, description="Stratified subsample before splitting (quick runs).")
    label_kind: Literal["auto", "single", "multi", "regression"] = Field(
        "auto",
        description="single: one class per row; multi: a list of labels per row (or several 0/1 label_columns); "
        "regression: a number per row; auto: detected from the data.",
    )
    label_columns: list[str] | None = Field(
        None, min_length=2, description="Multi-label data as several 0/1 columns, one per label (not label_column)."
    )

    @model_validator(mode="after")
    def _splits_fit_the_limit(self) -> DataConfig:
        if self.limit is not None and self.test_size >= 1 and self.dev_size >= 1:
            if self.test_size + self.dev_size >= self.limit:
                raise ValueError(
                    f"test_size ({self.test_size:g}) + dev_size ({self.dev_size:g}) leave nothing to train "
                    f"on within limit ({self.limit}); lower them or raise data.limit"
                )
        if self.label_columns is not None and self.label_kind not in ("auto", "multi"):
            raise ValueError(f"label_columns are 0/1 columns of a multi-label task, not label_kind {self.label_kind!r}")
        return self


class TaskConfig(Options):
    kind: str = Field(
        "text-classification",
        description="What the model does: 'text-classification' (labels) or 'sentence-embedding' (vectors).",
    )
    pooling: Literal["mean", "cls"] | None = Field(
        None,
        description="sentence-embedding: token vectors -> one vector; None: the sentence-transformers folder's "
        "1_Pooling/config.json, else mean.",
    )
    normalize: bool | None = Field(
        None,
        description="sentence-embedding: L2-normalise the vectors; None: as the folder's modules.json says "
        "(a Normalize module), else true.",
    )
