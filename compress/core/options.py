"""The strict base of every options class a recipe fills in: stage configs and the library options they compose."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Options(BaseModel):
    """Plain, validated options. Unknown fields are errors, so typos never pass silently, and ``inf`` /
    ``nan`` are refused (a learning rate of ``.inf`` would otherwise train into NaNs).

    Library code (training, pruning, distillation, quantization, evaluation) declares its options on this
    base, so it needs nothing from the stage machinery; a stage's config composes or extends them.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
