"""Labelled text datasets and the seeded, stratified train/dev/test split."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from compress.data.labels import Labelled
from compress.errors import DataError


@dataclass(frozen=True)
class TextDataset:
    texts: tuple[str, ...]
    labels: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError("texts and labels differ in length")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The raw model inputs of the split (its texts), as the task encodes them."""
        return self.texts

    def take(self, n: int) -> TextDataset:
        return TextDataset(self.texts[:n], self.labels[:n])


@dataclass(frozen=True)
class TaskData:
    """A classification task: label names and the three splits."""

    name: str
    label_names: tuple[str, ...]
    train: TextDataset
    dev: TextDataset
    test: TextDataset
    label_kind: str = "single"
    """single (class index per row), multi (a 0/1 tuple per row) or regression (a float per row)."""
    normalised: dict[str, int] = field(default_factory=dict)
    """How many labels were normalised, by what (whitespace_stripped, integral_floats)."""

    @property
    def num_labels(self) -> int:
        """Model outputs: one per class or label, one for a regression value."""
        return len(self.label_names)

    def label_counts(self, split: str) -> dict[str, object]:
        """Rows per class (single), rows carrying each label (multi), or the value's range (regression)."""
        labels = getattr(self, split).labels
        if self.label_kind == "multi":
            return {name: int(sum(row[i] for row in labels)) for i, name in enumerate(self.label_names)}
        if self.label_kind == "regression":
            values = [float(v) for v in labels]
            return {"min": min(values), "mean": sum(values) / len(values), "max": max(values)} if values else {}
        return dict(Counter(self.label_names[i] for i in labels))

    def summary(self) -> dict[str, object]:
        summary = {
            "name": self.name,
            "labels": list(self.label_names),
            "sizes": {"train": len(self.train), "dev": len(self.dev), "test": len(self.test)},
            "test_label_counts": self.label_counts("test"),
        }
        if self.label_kind != "single" or self.normalised:
            summary.update(label_kind=self.label_kind, normalised_labels=dict(self.normalised))
        return summary


MAX_TEXT_CHARS = 1 << 18
"""Texts are cut to this many characters (256 Ki) as they are loaded. No model reads past ``max_length``
(at most 4,096) tokens, which in any real text end long before 262,144 characters, while tokenizing a
10 MB field takes ~20 s every time it is done. The cut texts still count as truncated in the report."""


def split_labelled(
    name: str, labelled: Labelled, test_size: float, dev_size: float, seed: int, limit: int | None = None
) -> TaskData:
    """Cut long texts and split: stratified by class for single-label data, a seeded shuffle otherwise."""
    texts = [text[:MAX_TEXT_CHARS] for text in labelled.texts]
    if labelled.kind == "single":
        if len(labelled.label_names) < 2:
            raise DataError(
                f"dataset {name!r} has a single class ({labelled.label_names[0]!r}); classification needs two or more"
            )
        data = stratified_split(name, texts, labelled.labels, labelled.label_names, test_size, dev_size, seed, limit)
    else:
        data = shuffled_split(name, texts, labelled.labels, labelled.label_names, test_size, dev_size, seed, limit)
    return dataclasses.replace(data, label_kind=labelled.kind, normalised=labelled.normalised)


def shuffled_split(
    name: str, texts: list[str], labels: list, label_names: tuple[str, ...],
    test_size: float, dev_size: float, seed: int, limit: int | None = None,
) -> TaskData:
    """Shuffle with ``seed`` (keeping ``limit`` rows) and cut test, dev and train (labels not stratified)."""
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    order = order[:limit] if limit is not None else order
    total = len(order)
    n_test, n_dev = _split_count(test_size, total), _split_count(dev_size, total)
    if n_test + n_dev >= total:
        raise DataError(
            f"dataset {name!r} has {total} examples, too few for test={n_test} and dev={n_dev} "
            "with any left to train on; lower data.test_size / data.dev_size"
        )

    def subset(indices: list[int]) -> TextDataset:
        return TextDataset(tuple(texts[i] for i in indices), tuple(labels[i] for i in indices))

    return TaskData(
        name, label_names, subset(order[n_test + n_dev :]), subset(order[n_test : n_test + n_dev]), subset(order[:n_test])
    )


def _split_count(size: float, total: int) -> int:
    return int(round(size * total)) if size < 1 else int(size)


def stratified_split(
    name: str,
    texts: list[str],
    labels: list[int],
    label_names: tuple[str, ...],
    test_size: float,
    dev_size: float,
    seed: int,
    limit: int | None = None,
) -> TaskData:
    """Shuffle with ``seed`` and split each class proportionally into test, dev and train."""
    by_label: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    rng = random.Random(seed)
    for indices in by_label.values():
        rng.shuffle(indices)
    total = len(texts)
    if limit is not None and limit < total:
        by_label = {k: v[: max(1, round(len(v) * limit / total))] for k, v in by_label.items()}
        total = sum(len(v) for v in by_label.values())
    n_test, n_dev = _split_count(test_size, total), _split_count(dev_size, total)
    if n_test + n_dev >= total:
        raise DataError(
            f"dataset {name!r} has {total} examples, too few for test={n_test} and dev={n_dev} "
            "with any left to train on; lower data.test_size / data.dev_size"
        )
    parts: dict[str, list[int]] = {"test": [], "dev": [], "train": []}
    for indices in by_label.values():
        share = len(indices) / total
        k_test, k_dev = round(n_test * share), round(n_dev * share)
        parts["test"] += indices[:k_test]
        parts["dev"] += indices[k_test : k_test + k_dev]
        parts["train"] += indices[k_test + k_dev :]

    def subset(indices: list[int]) -> TextDataset:
        rng.shuffle(indices)
        return TextDataset(tuple(texts[i] for i in indices), tuple(labels[i] for i in indices))

    return TaskData(name, label_names, subset(parts["train"]), subset(parts["dev"]), subset(parts["test"]))
