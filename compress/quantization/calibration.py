"""Calibration data for static quantization: real task texts, fed to ONNX Runtime batch by batch."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compress.data.batching import pad_batch
from compress.data.tokenization import TextEncoder
from compress.errors import StageError


def calibration_texts(texts: Sequence[str], samples: int, seed: int) -> list[str]:
    """A seeded sample of ``samples`` texts (all of them when there are fewer)."""
    if not texts:
        raise StageError("quantize: static calibration needs train-split texts, but the train split is empty")
    chosen = list(texts)
    random.Random(seed).shuffle(chosen)
    return chosen[:samples]


class TextCalibrationReader:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over tokenized texts.

    Every batch has the same shape (padded to the longest calibration text; a short last batch is topped
    up with the first texts) because histogram calibrators stack outputs across batches. ``rewind`` lets
    one reader serve several calibrations.
    """

    def __init__(
        self, encoder: TextEncoder, texts: Sequence[str], batch_size: int, input_names: Sequence[str]
    ):
        encoded = encoder.encode(list(texts))
        if not encoded:
            raise StageError("quantize: no calibration texts")
        batch_size = min(batch_size, len(encoded))
        encoded += encoded[: (-len(encoded)) % batch_size]
        width = max(len(ids) for ids in encoded)
        self.batches = [
            pad_batch(encoded[start : start + batch_size], encoder.pad_id, width)
            for start in range(0, len(encoded), batch_size)
        ]
        self.input_names = list(input_names)
        self._next = 0

    def __len__(self) -> int:
        return len(self.batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self.batches):
            return None
        ids, mask = self.batches[self._next]
        self._next += 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        return {name: feeds[name] for name in self.input_names}

    def rewind(self) -> None:
        self._next = 0

    def __iter__(self):
        self.rewind()
        while (batch := self.get_next()) is not None:
            yield batch


def as_ort_reader(reader: TextCalibrationReader):
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
