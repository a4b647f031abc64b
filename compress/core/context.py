"""Everything a stage may use while a recipe runs: the run directory, the task data, the variants so far."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from rich.console import Console

from compress.core.recipe import Recipe
from compress.core.variant import Variant
from compress.data.dataset import TaskData
from compress.errors import StageError
from compress.tasks.base import Split, Task


@dataclass
class RunContext:
    recipe: Recipe
    run_dir: Path
    console: Console = field(default_factory=Console)
    variants: dict[str, Variant] = field(default_factory=dict)
    """Every variant made so far, in order; a stage may replace one by reusing its name."""
    evaluation: dict[str, Any] = field(default_factory=dict)
    """Results of the ``evaluate`` stage, keyed as in report.json."""
    stage_records: list[dict[str, Any]] = field(default_factory=list)
    bundle_dir: Path | None = None
    current_name: str = ""
    """Name of the variant the next stage works on."""
    started: float = field(default_factory=time.time)
    data_checks: dict[str, Any] = field(default_factory=dict)
    """Facts about the data found while loading it (texts truncated per split), for the report."""

    @cached_property
    def task(self) -> Task:
        """The run's task: the recipe's ``task.kind``, for the data's label kind (multi-label, regression)."""
        return self._recipe_task.for_data(self.splits)

    @property
    def _recipe_task(self) -> Task:
        from compress.tasks import get_task

        return get_task(self.recipe.task.kind)

    @cached_property
    def splits(self) -> TaskData:
        """The recipe's data as the task reads it: label names and the train / dev / test splits."""
        return self._recipe_task.load_splits(self.recipe.data)

    @property
    def seed(self) -> int:
        return self.recipe.seed

    @property
    def max_length(self) -> int:
        return self.recipe.model.max_length

    def processor_for(self, variant: Variant) -> Any:
        """The task's processor stored with ``variant`` (its tokenizer, for text)."""
        return self.task.processor(variant.processor_dir, self.max_length)

    def encoded(self, processor: Any, split: str) -> Split:
        """The split called ``split`` (train, dev, test) encoded by ``processor``, with its labels."""
        return self.task.split(processor, getattr(self.splits, split))

    def stage_dir(self, stage_id: str) -> Path:
        index = [s.id for s in self.recipe.stages].index(stage_id)
        path = self.run_dir / "stages" / f"{index + 1:02d}-{stage_id}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def add_variant(self, variant: Variant) -> Variant:
        self.variants[variant.name] = variant
        return variant

    def variant(self, name: str) -> Variant:
        if name not in self.variants:
            raise StageError(f"no variant named {name!r}; this run has: {', '.join(self.variants) or 'none yet'}")
        return self.variants[name]

    @property
    def baseline(self) -> Variant:
        """The reference variant: the first PyTorch one (the FP32 teacher)."""
        for variant in self.variants.values():
            if variant.is_torch:
                return variant
        return next(iter(self.variants.values()))


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
