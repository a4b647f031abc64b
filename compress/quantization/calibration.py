"""Calibration data for static quantization: real task texts, fed to ONNX Runtime batch by batch."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compress.errors import StageError
from compress.tasks.base import Examples


def calibration_texts(texts: Sequence[str], samples: int, seed: int) -> list[str]:
    """A seeded sample of ``samples`` texts (all of them when there are fewer)."""
    if not texts:
        raise StageError("quantize: static calibration needs train-split texts, but the train split is empty")
    chosen = list(texts)
    random.Random(seed).shuffle(chosen)
    return chosen[:samples]


class CalibrationReader:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over the task's encoded examples.

    Every batch has the same shape (padded to the largest calibration example; a short last batch is topped
    up with the first examples) because histogram calibrators stack outputs across batches. ``rewind`` lets
    one reader serve several calibrations.
    """

    def __init__(self, examples: Examples, batch_size: int, input_names: Sequence[str]):
        if not len(examples):
            raise StageError("quantize: no calibration texts")
        batch_size = min(batch_size, len(examples))
        order = list(range(len(examples)))
        order += order[: (-len(order)) % batch_size]
        width = int(examples.sizes().max())
        self.batches = [
            examples.collate(order[start : start + batch_size], width) for start in range(0, len(order), batch_size)
        ]
        self.input_names = list(input_names)
        self._next = 0

    def __len__(self) -> int:
        return len(self.batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self.batches):
            return None
        feeds = self.batches[self._next]
        self._next += 1
        return {name: feeds[name] for name in self.input_names}

    def rewind(self) -> None:
        self._next = 0

    def __iter__(self):
        self.rewind()
        while (batch := self.get_next()) is not None:
            yield batch


def as_ort_reader(reader: CalibrationReader):
    """Wrap in ORT's base class (imported lazily) so ORT's type checks pass."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, Any] | None:
            return reader.get_next()

        def __len__(self) -> int:
            return len(reader)

        def set_range(self, start_index: int, end_index: int) -> None:
            reader._next = start_index

    reader.rewind()
    return _Reader()


def check_calibration_ranges(cache: Path) -> None:
    """Refuse calibration ranges that are inf/nan (percentile or entropy on degenerate histograms)."""
    from onnxruntime.quantization.calibrate import load_tensors_data

    data = load_tensors_data(cache)
    bad = []
    for name, value in data.data.items():
        low, high = value.range_value if hasattr(value, "range_value") else value
        if not all(math.isfinite(float(np.max(np.abs(v)))) for v in (low, high)):
            bad.append(name)
    if bad:
        cache.unlink(missing_ok=True)
        raise StageError(
            f"quantize: {data.calibration_method} calibration produced non-finite ranges for "
            f"{len(bad)} tensor(s), e.g. {', '.join(bad[:3])}; use calibration: minmax, more "
            "calibration_samples, or exclude the nodes reading those tensors"
        )
