"""Recipe options of a latency-budget search (``distill: {search: ...}``), validated before anything runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from compress.core.options import Options
from compress.evaluation.setting import Setting


class ShapeOptions(Options):
    """A student shape named in a recipe (the budget's reference)."""

    layers: int = Field(ge=1, le=48)
    heads: int = Field(1, ge=1)
    ffn: int | None = Field(None, ge=1, description="Intermediate width; default: the teacher's.")
    hidden: int | None = Field(None, ge=8, description="Hidden width; default: the teacher's.")


class BudgetConfig(Options):
    latency_ms: float | None = Field(None, gt=0, description="Largest p50 latency allowed, in milliseconds.")
    reference: ShapeOptions | None = Field(
        None,
        description="A student shape whose latency, measured in the same sweep as the candidates, sets the "
        "budget (times 'scale'): a budget that holds on any machine, e.g. the edge student's shape.",
    )
    scale: float = Field(1.0, gt=0, le=100, description="Budget = the reference's latency x this.")
    size_mb: float | None = Field(None, gt=0, description="Largest model file allowed (MB, before vocabulary pruning).")
    setting: str = Field("b1_s128", description="Input shape the latency is measured at, b<batch>_s<seq>.")
    runtime: str = Field("onnxruntime", description="Serving runtime the candidates are timed on.")
    precision: Literal["int8", "fp32"] = Field(
        "int8", description="int8: quantized as the serving runtime's INT8 path does it (ORT dynamic, OpenVINO NNCF)."
    )
    optimize: bool = Field(True, description="Fuse attention/LayerNorm/GELU before quantizing, as export: {optimize: true}.")
    threads: int = Field(2, ge=1, le=256, description="Intra-op threads the candidates are timed with.")

    @field_validator("setting")
    @classmethod
    def _setting(cls, value: str) -> str:
        Setting.parse(value)
        return value

    @field_validator("runtime")
    @classmethod
    def _runtime(cls, value: str) -> str:
        from compress.runtimes import runtime_names

        if value not in runtime_names():
            raise ValueError(f"unknown runtime {value!r}; known: {', '.join(runtime_names())}")
        return value

    @model_validator(mode="after")
    def _some_limit(self) -> BudgetConfig:
        if self.latency_ms is not None and self.reference is not None:
            raise ValueError("give the budget as latency_ms or as a reference shape, not both")
        if self.latency_ms is None and self.reference is None and self.size_mb is None:
            raise ValueError("a budget needs latency_ms, a reference shape or size_mb")
        return self


class SearchSpaceOptions(Options):
    layers: list[int] | None = Field(None, description="Student depths; default 1..4 (at most the teacher's).")
    heads: list[int] = Field([1, 2, 4], min_length=1, description="Heads per layer (must divide the hidden width).")
    ffn: list[int] | None = Field(
        None, description="FFN widths; default 1/6, 1/3, 1/2 and all of the teacher's (multiples of 64)."
    )
    hidden: list[int] | None = Field(
        None, description="Hidden widths; default the teacher's only (another width needs init: random)."
    )

    @field_validator("layers", "heads", "ffn", "hidden")
    @classmethod
    def _positive(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or any(v < 1 for v in value)):
            raise ValueError("list at least one value, every value >= 1")
        return sorted(set(value)) if value is not None else None


class SearchConfig(Options):
    budget: BudgetConfig
    space: SearchSpaceOptions = SearchSpaceOptions()
    proxy_texts: int = Field(
        8000, ge=0, description="Transfer texts (the first of the recipe's) in each candidate's proxy distillation."
    )
    proxy_epochs: int = Field(1, ge=1, le=10, description="Epochs of the proxy distillation.")
    proxy_candidates: int = Field(
        6, ge=1, le=64, description="At most this many fitting candidates get a proxy distillation."
    )
    top_k: int = Field(2, ge=1, le=16, description="Candidates, best by proxy, trained in full; the best on dev wins.")
    rounds: int = Field(40, ge=5, le=1000, description="Interleaved timing rounds of the latency sweep.")
    remeasure: bool = Field(False, description="Time every candidate again instead of reading this machine's cache.")
