"""The task seam: one base class, a registry keyed by task name, and the encoded-examples protocol.

A task owns what is task-specific: reading and checking a dataset's rows, the processor (a tokenizer for
text) saved with each variant, turning examples into named model inputs, dummy inputs for export and
latency, outputs -> predictions, and the metrics. Library code receives :class:`Examples` (one split
encoded by the task) and feeds ``examples.collate(indices)`` to ``model(**inputs)`` or a runtime.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from compress.errors import RecipeError


@runtime_checkable
class Examples(Protocol):
    """One split's inputs encoded by a task, batched by library code without knowing what an example is."""

    def __len__(self) -> int: ...

    def sizes(self) -> np.ndarray:
        """Per-example size (tokens for text), so batches can group examples of similar size."""
        ...

    def collate(self, indices: Sequence[int], length: int | None = None) -> dict[str, np.ndarray]:
        """Named model inputs for the examples ``indices``, padded to their largest (or to ``length``)."""
        ...

    def head(self, n: int) -> Examples:
        """The first ``n`` examples."""
        ...

    def concat(self, other: Examples) -> Examples:
        """These examples followed by ``other``'s (same kind)."""
        ...

    def digest(self, labels: Sequence[int] | None = None) -> str:
        """SHA-256 of the examples (and labels): what a checkpoint or a cache was made from."""
        ...


Split = tuple[Examples, Sequence[int]]
"""Encoded examples and their integer labels."""


def sorted_batches(examples: Examples, batch_size: int) -> list[np.ndarray]:
    """Index batches covering every example once, smallest first (for inference: little padding)."""
    order = np.argsort(examples.sizes(), kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def iterate_inputs(examples: Examples, batch_size: int) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Yield ``(indices, inputs)`` in size order; ``indices`` says where each row goes."""
    for chunk in sorted_batches(examples, batch_size):
        yield chunk, examples.collate(chunk)


class Task(ABC):
    """What one kind of problem needs; subclasses register with :func:`register_task`."""

    name: ClassVar[str]
    input_names: ClassVar[tuple[str, ...]]
    """The model's named inputs, in the order an exported graph takes them (each with dynamic batch and
    sequence axes: :func:`compress.onnx.export.dynamic_axes`)."""
    output_names: ClassVar[tuple[str, ...]] = ("logits",)
    label_kind: ClassVar[str] = "single"
    """The data's label kind this task trains on (:mod:`compress.data.labels`)."""
    primary_metric: ClassVar[str] = "accuracy"
    """The metric (higher is better) that training keeps the best epoch by and the quantizer budgets."""
    problem_type: ClassVar[str | None] = None
    """The Hugging Face ``problem_type`` of the model's head (None: single-label classification)."""
    unsupported_stages: ClassVar[tuple[str, ...]] = ()
    """Stages that cannot run on this task yet; refused before a run starts, naming the kind and stage."""
    unsupported_because: ClassVar[str] = ""
    """What the refusal of :attr:`unsupported_stages` names (default: the label kind)."""
    supported_summary: ClassVar[str] = "finetune, export, quantize, evaluate and bundle"
    """The stages this task does run, for that refusal's hint."""
    dev_against_teacher: ClassVar[bool] = False
    """Distillation's dev check scores the student against the teacher's dev outputs (passed to
    :meth:`primary` as the labels) instead of the data's labels: for tasks without labels (embeddings)."""

    def for_data(self, data: Any) -> Task:
        """The task for ``data``'s label kind (text classification hands multi-label and regression data to
        their own tasks); ``self`` by default."""
        return self

    def label_array(self, labels: Sequence[Any]) -> np.ndarray:
        """Labels as the loss takes them (class indices here; floats for multi-label and regression)."""
        return np.asarray(labels, dtype=np.int64)

    def loss(self, logits: Any, labels: Any) -> Any:
        """The training loss of a batch's logits against its labels (torch tensors): cross-entropy here."""
        from torch.nn import functional as F

        return F.cross_entropy(logits, labels)

    def kd_loss(self, student: Any, teacher: Any, labels: Any, temperature: float, hard_label_weight: float) -> Any:
        """``w * loss(labels) + (1 - w) * T^2 * KL(teacher_T || student_T)`` (Hinton et al.) for softmax heads."""
        from torch.nn import functional as F

        soft = F.kl_div(
            F.log_softmax(student / temperature, dim=-1),
            F.softmax(teacher / temperature, dim=-1),
            reduction="batchmean",
        ) * temperature**2
        if labels is None or hard_label_weight == 0:
            return soft
        return hard_label_weight * self.loss(student, labels) + (1 - hard_label_weight) * soft

    def primary(self, outputs: np.ndarray, labels: Sequence[Any]) -> float:
        """The :attr:`primary_metric` of ``outputs`` against ``labels``."""
        return self.metrics(outputs, labels)[self.primary_metric]

    def agreement(self, outputs: np.ndarray, reference: np.ndarray) -> float:
        """How often ``outputs`` predict what the baseline's ``reference`` outputs predict."""
        same = self.predictions(outputs) == self.predictions(reference)
        return float(same.reshape(len(same), -1).all(axis=1).mean())

    def decision_fields(self, dev_outputs: np.ndarray, dev_labels: Sequence[Any]) -> dict[str, Any]:
        """What a bundle's manifest needs to turn outputs into predictions (a multi-label threshold ...)."""
        return {}

    metric_names: ClassVar[tuple[str, ...]] = ("accuracy", "agreement_with_baseline")
    """What :meth:`score` returns per variant, the primary metric (what runs compare) first."""

    @abstractmethod
    def load_model(self, model_config: Any, data: Any, options: Any) -> Any:
        """The recipe's ``model.source`` as this task's model (a ``compress.models.sources.LoadedModel``);
        ``data`` is what :meth:`load_splits` returned, ``options`` the recipe's ``task:`` section."""

    @abstractmethod
    def check_model(self, module: Any, inputs: dict[str, np.ndarray], data: Any, source: str) -> None:
        """Run the loaded model once on ``inputs`` (from its processor); a clear error when it does not fit."""

    def check_recipe(self, stages: Sequence[Any], config: dict[str, Any] | None) -> None:
        """Refuse (RecipeError) a recipe this task cannot give a useful model from, before any work:
        ``stages`` are the recipe's stage specs (``.kind``, ``.config``), ``config`` the model's config as
        its source declares it (None when not read). Nothing by default."""
        return None

    def bundle_fields(self, module: Any, onnx_path: Path) -> dict[str, Any]:
        """What a bundle's manifest says about the model's outputs, beyond :meth:`manifest_fields`
        (``module``: the run's input model, ``onnx_path``: the graph being bundled)."""
        return {}

    def score(self, outputs: np.ndarray, reference: np.ndarray, labels: Sequence[int]) -> dict[str, float]:
        """:attr:`metric_names` of a variant's test ``outputs``, given the baseline's (``reference``): the
        task's :meth:`metrics` and how often the variant agrees with the baseline."""
        return {**self.metrics(outputs, labels), "agreement_with_baseline": self.agreement(outputs, reference)}

    @abstractmethod
    def load_splits(self, data_config: Any) -> Any:
        """Read, check and split the recipe's dataset (train / dev / test with labels)."""

    @abstractmethod
    def processor(self, processor_dir: str | Path, max_length: int) -> Any:
        """The processor stored in a variant's processor directory (a tokenizer for text)."""

    @abstractmethod
    def save_processor(self, processor: Any, directory: str | Path) -> None:
        """Store ``processor`` next to a variant, where :meth:`processor` finds it again."""

    @abstractmethod
    def encode(self, processor: Any, raw: Sequence[Any]) -> Examples:
        """Encode raw inputs (texts for text tasks) into examples."""

    @abstractmethod
    def dummy_inputs(
        self, processor_dir: str | Path, batch: int, seq: int, samples: Sequence[Any] = ()
    ) -> dict[str, np.ndarray]:
        """Inputs of shape ``batch`` x ``seq`` for export and latency, built from real ``samples`` where given."""

    def examples(self, processor: Any, split: Any) -> Examples:
        """A split's inputs encoded (``split.inputs``)."""
        return self.encode(processor, split.inputs)

    def split(self, processor: Any, split: Any) -> Split:
        """A split's encoded examples and labels, as training and evaluation take them."""
        return self.examples(processor, split), split.labels

    @abstractmethod
    def manifest_fields(self, processor: Any) -> dict[str, Any]:
        """What a deployed bundle's manifest says about the inputs (names, and how to build them)."""

    def predictions(self, outputs: np.ndarray) -> np.ndarray:
        """Model outputs -> predicted label indices."""
        return np.asarray(outputs).argmax(axis=-1)

    def metrics(self, outputs: np.ndarray, labels: Sequence[int]) -> dict[str, float]:
        """The task's metrics of ``outputs`` against ``labels`` (``accuracy`` first: it is what runs compare)."""
        if len(labels) == 0:
            raise ValueError("accuracy of an empty split")
        return {"accuracy": float((self.predictions(outputs) == np.asarray(labels)).mean())}


def check_task_stages(task: Task, stage_kinds: Sequence[str]) -> None:
    """Refuse (RecipeError) a recipe stage that ``task`` cannot run yet, naming the label kind and the stage."""
    refused = [kind for kind in stage_kinds if kind in task.unsupported_stages]
    if refused:
        raise RecipeError(
            f"stage {refused[0]!r} does not support {task.unsupported_because or task.label_kind + ' labels'} "
            f"(task {task.name}) yet",
            hint=f"remove {', '.join(map(repr, refused))} from the recipe; {task.name} runs {task.supported_summary}",
        )


_TASKS: dict[str, Task] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make ``cls`` available as ``get_task(cls.name)``."""
    _TASKS[cls.name] = cls()
    return cls


def task_names() -> list[str]:
    return sorted(_TASKS)


def get_task(name: str = "text-classification") -> Task:
    """The registered task called ``name`` (``compress.tasks`` registers the built-in ones on import)."""
    if name not in _TASKS:
        raise RecipeError(f"unknown task {name!r}; known tasks: {', '.join(sorted(_TASKS))}")
    return _TASKS[name]

