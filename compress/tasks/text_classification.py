"""Text classification: labelled texts, a ``tokenizers`` tokenizer as processor, ``input_ids`` +
``attention_mask`` as model inputs, logits -> label, accuracy as the metric."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compress.data.batching import lengths_of, pad_batch
from compress.data.tokenization import TextEncoder
from compress.tasks.base import Task, get_task, register_task

INPUT_NAMES = ("input_ids", "attention_mask")
TASK_FOR_LABEL_KIND = {"single": "text-classification", "multi": "text-multilabel", "regression": "text-regression"}


@dataclass(frozen=True)
class TokenExamples:
    """Token-id sequences and the pad id: the :class:`compress.tasks.base.Examples` of text tasks."""

    ids: Sequence[Sequence[int]]
    pad_id: int

    def __len__(self) -> int:
        return len(self.ids)

    def sizes(self) -> np.ndarray:
        return lengths_of(self.ids)

    def collate(self, indices: Sequence[int], length: int | None = None) -> dict[str, np.ndarray]:
        """Right-padded ``input_ids`` and ``attention_mask`` (dynamic padding: to the longest row)."""
        input_ids, mask = pad_batch([self.ids[int(i)] for i in indices], self.pad_id, length)
        return {"input_ids": input_ids, "attention_mask": mask}

    def head(self, n: int) -> TokenExamples:
        return TokenExamples(self.ids[:n], self.pad_id)

    def concat(self, other: TokenExamples) -> TokenExamples:
        return TokenExamples([*self.ids, *other.ids], self.pad_id)

    def digest(self, labels: Sequence[int] | None = None) -> str:
        from compress.training.checkpoints import examples_digest

        return examples_digest(self.ids, labels)


@register_task
class TextClassification(Task):
    name = "text-classification"
    input_names = INPUT_NAMES

    def load_splits(self, data_config):
        from compress.data.sources import load_task

        return load_task(data_config)

    def load_model(self, model_config, data, options):
        from compress.models.sources import load_input_model

        return load_input_model(model_config, data.label_names, self.problem_type)

    def check_model(self, module, inputs, data, source) -> None:
        from compress.models.sources import check_model_output

        check_model_output(module, inputs, data.label_names, source)

    def check_recipe(self, stages, config) -> None:
        """A bundle of a head nothing trained is refused: no finetune, distill or prune recovery before the
        first ``bundle`` stage, and a source whose config names no ``*ForSequenceClassification``
        architecture (a plain encoder or an embedder: its head would be randomly initialised)."""
        kinds = [spec.kind for spec in stages]
        if config is None or config.get("compress_model") or "bundle" not in kinds:
            return
        before = stages[: kinds.index("bundle")]
        trains = [spec.kind for spec in before if spec.kind in ("finetune", "distill")
                  or (spec.kind == "prune" and spec.config.recover.epochs > 0)]
        architectures = [str(name) for name in config.get("architectures") or []]
        if trains or any(name.endswith("ForSequenceClassification") for name in architectures):
            return
        from compress.errors import RecipeError

        raise RecipeError(
            f"this recipe would bundle an untrained classification head: the model's config declares "
            f"{', '.join(architectures) or 'no architecture'} (no *ForSequenceClassification head), and no "
            "finetune, distill or prune with recovery runs before the bundle",
            hint="add a finetune stage before the bundle, or set task.kind: sentence-embedding to compress "
            "the model as an embedder",
        )

    def for_data(self, data) -> Task:
        """Multi-label and regression data (``data.label_kind``) go to their own text tasks."""
        kind = getattr(data, "label_kind", "single")
        return get_task(TASK_FOR_LABEL_KIND[kind]) if kind != self.label_kind else self

    def processor(self, processor_dir: str | Path, max_length: int) -> TextEncoder:
        return TextEncoder.from_dir(processor_dir, max_length)

    def save_processor(self, processor: TextEncoder, directory: str | Path) -> None:
        processor.save(directory)

    def manifest_fields(self, processor: TextEncoder) -> dict[str, object]:
        return {"inputs": list(INPUT_NAMES), "max_length": processor.max_length, "pad_id": processor.pad_id}

    def encode(self, processor: TextEncoder, raw: Sequence[str]) -> TokenExamples:
        return TokenExamples(processor.encode(list(raw)), processor.pad_id)

    def dummy_inputs(
        self, processor_dir: str | Path, batch: int, seq: int, samples: Sequence[str] = ()
    ) -> dict[str, np.ndarray]:
        """A batch of real text tokens exactly ``seq`` long: the first 200 ``samples`` joined, [CLS] ... [SEP]
        kept, the words between repeated to fill ``seq``; a full attention mask."""
        ids = TextEncoder.from_dir(processor_dir, seq).encode([" ".join(list(samples)[:200])])[0]
        body = ids[1:-1] or [ids[0]]
        fill = (body * (seq // len(body) + 1))[: max(0, seq - 2)]
        row = ([ids[0]] + fill + [ids[-1]])[:seq]
        input_ids = np.tile(np.asarray(row, dtype=np.int64), (batch, 1))
        return {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}
