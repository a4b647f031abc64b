"""Tasks: what is specific to one kind of problem (rows, processor, inputs, predictions, metrics).

Library code (training, distillation, pruning, quantization, evaluation) asks the task for batches of named
model inputs and never builds them itself. ``get_task("text-classification")`` is today's only task.
"""

from compress.tasks import (  # noqa: F401  (register the tasks)
    sentence_embedding,
    text_classification,
    text_multilabel,
    text_regression,
)
from compress.tasks.base import Examples, Task, get_task, register_task, task_names

__all__ = ["Examples", "Task", "get_task", "register_task", "task_names"]
