"""Label kinds: what a dataset's labels are (one class, several labels, a number), detected or declared.

Every row's raw label is checked before anything trains. Unambiguous differences are normalised and
counted (surrounding whitespace, integral floats such as ``1.0`` -> ``1``); anything ambiguous (mixed
types, NaN or empty labels, a number with many distinct values in a ``single`` task) is refused naming
the row and the reason, so no run trains on nonsense classes such as a list's Python repr.
"""

from __future__ import annotations

import ast
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from compress.errors import DataError

LABEL_KINDS = ("single", "multi", "regression")
MAX_NUMERIC_CLASSES = 20
"""Whole-number labels with more distinct values than this are not taken as classes without
``data.label_kind: single`` (they look like a score), and never with fractional values."""


@dataclass(frozen=True)
class RawLabel:
    row: int
    """The row's line number in the file (the header is line 1 of a CSV)."""
    text: str
    value: Any


@dataclass(frozen=True)
class Labelled:
    """Texts with labels of one kind: class indices (single), 0/1 tuples (multi) or floats (regression)."""

    kind: str
    texts: list[str]
    labels: list[Any]
    label_names: tuple[str, ...]
    """Class or label names; for regression the name of the predicted value."""
    normalised: dict[str, int] = field(default_factory=dict)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _list_from_text(text: str) -> list | None:
    """A CSV cell holding a list (``["a", "b"]`` or ``['a', 'b']``) as a list, else None."""
    if not (text.startswith("[") and text.endswith("]")):
        return None
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, list):
            return value
    return None


class _Normaliser:
    """Turns raw values into (shape, value) and counts what it normalised."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.counts: Counter[str] = Counter()

    def refuse(self, row: int, reason: str, hint: str | None = None) -> DataError:
        return DataError(f"{self.where}: row {row}: {reason}", hint=hint)

    def scalar(self, row: int, value: Any) -> tuple[str, Any]:
        """('number', float) or ('text', stripped string); empty and NaN labels are refused."""
        if value is None or (isinstance(value, str) and not value.strip()):
            raise self.refuse(row, "empty label", "give every row a label, or remove the row")
        if isinstance(value, bool):
            return "number", float(value)
        if _is_number(value):
            number = float(value)
        elif isinstance(value, str):
            stripped = value.strip()
            if stripped != value:
                self.counts["whitespace_stripped"] += 1
            number = _number(stripped)
            if number is None:
                return "text", stripped
        else:
            raise self.refuse(row, f"label {value!r:.60} is a {type(value).__name__}, not a class, list or number")
        if math.isnan(number) or math.isinf(number):
            raise self.refuse(row, f"label {value!r} is not a number (NaN or infinite)", "fix or remove the row")
        return "number", number

    def shape(self, row: int, value: Any) -> tuple[str, Any]:
        """('list', [names]) for list labels, else :meth:`scalar`."""
        if isinstance(value, str):
            parsed = _list_from_text(value.strip())
            value = parsed if parsed is not None else value
        if isinstance(value, list | tuple):
            names = []
            for item in value:
                kind, item_value = self.scalar(row, item)
                names.append(self.class_name(kind, item_value))
            return "list", names
        return self.scalar(row, value)

    def class_name(self, kind: str, value: Any) -> str:
        if kind == "text":
            return value
        if float(value).is_integer():
            return str(int(value))
        return repr(value)


SHAPE_NAMES = {"list": "a list of labels", "number": "a number", "text": "a class name"}


def normalise_labels(
    where: str, raw: Sequence[RawLabel], kind: str = "auto", label_names: Sequence[str] | None = None
) -> Labelled:
    """Check every row's label, detect (``kind='auto'``) or check the declared kind, and normalise.

    ``label_names`` fixes the labels of multi-label data and their order (the recipe's ``label_columns``)."""
    if not raw:
        raise DataError(f"{where}: no labelled rows")
    normaliser = _Normaliser(where)
    shapes = [normaliser.shape(item.row, item.value) for item in raw]
    first = shapes[0][0]
    for item, (shape, _) in zip(raw, shapes, strict=True):
        if shape != first:
            raise normaliser.refuse(
                item.row,
                f"label {item.value!r:.60} is {SHAPE_NAMES[shape]}, but row {raw[0].row}'s is {SHAPE_NAMES[first]} "
                "(mixed label types)",
                "make every label the same type, or set data.label_kind",
            )
    numbers = [value for _, value in shapes] if first == "number" else []
    if kind == "auto":
        kind = _detect(where, raw, first, numbers)
    texts = [item.text for item in raw]
    if kind == "multi":
        if first != "list":
            raise normaliser.refuse(raw[0].row, f"label {raw[0].value!r:.60} is not a list; data.label_kind is multi")
        names = tuple(label_names or sorted({name for _, value in shapes for name in value}))
        index = {name: i for i, name in enumerate(names)}
        labels = []
        for _, value in shapes:
            hot = [0] * len(names)
            for name in value:
                hot[index[name]] = 1
            labels.append(tuple(hot))
        return Labelled("multi", texts, labels, names, dict(normaliser.counts))
    if kind == "regression":
        if first != "number":
            raise normaliser.refuse(raw[0].row, f"label {raw[0].value!r:.60} is not a number; data.label_kind is regression")
        return Labelled("regression", texts, [float(n) for n in numbers], ("value",), dict(normaliser.counts))
    if first == "list":
        raise normaliser.refuse(
            raw[0].row, f"label {raw[0].value!r:.60} is a list; data.label_kind is single", "set data.label_kind: multi"
        )
    if first == "number":
        _check_numeric_classes(normaliser, raw, numbers)
        for item, number in zip(raw, numbers, strict=True):
            if not isinstance(item.value, int) and number.is_integer() and str(item.value).strip() != str(int(number)):
                normaliser.counts["integral_floats"] += 1
    names_per_row = [normaliser.class_name(shape, value) for shape, value in shapes]
    key = (lambda name: float(name)) if first == "number" else None
    names = tuple(sorted(set(names_per_row), key=key))
    index = {name: i for i, name in enumerate(names)}
    return Labelled("single", texts, [index[name] for name in names_per_row], names, dict(normaliser.counts))


def _detect(where: str, raw: Sequence[RawLabel], shape: str, numbers: list[float]) -> str:
    if shape == "list":
        return "multi"
    if shape == "text":
        return "single"
    fractional = next((item for item, n in zip(raw, numbers, strict=True) if not n.is_integer()), None)
    if fractional is not None:
        return "regression"
    if len(set(numbers)) > MAX_NUMERIC_CLASSES:
        raise DataError(
            f"{where}: the labels are {len(set(numbers))} different whole numbers: classes or a score?",
            hint="set data.label_kind: regression (a score) or data.label_kind: single (classes)",
        )
    return "single"


def _check_numeric_classes(normaliser: _Normaliser, raw: Sequence[RawLabel], numbers: list[float]) -> None:
    seen: set[float] = set()
    for item, number in zip(raw, numbers, strict=True):
        if not number.is_integer():
            raise normaliser.refuse(
                item.row, f"label {item.value!r} has a fraction; data.label_kind is single",
                "set data.label_kind: regression for a score",
            )
        seen.add(number)
        if len(seen) > MAX_NUMERIC_CLASSES:
            raise normaliser.refuse(
                item.row,
                f"label {item.value!r} is the {len(seen)}th distinct number: more than {MAX_NUMERIC_CLASSES} numeric "
                "classes look like a score",
                "set data.label_kind: regression",
            )
