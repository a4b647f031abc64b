"""The recipe's ``model:`` and ``data:`` sections: plain options that model and data loading read.

Kept apart from :mod:`compress.core.recipe` (which needs the stage registry) so that loading a model or a
dataset needs only these values, not the recipe machinery.
"""

from __future__ import annotations

from pydantic import Field

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
