"""The runtime seam: one :class:`Runtime` per way of executing a variant, looked up by recipe name.

Two things are kept apart. The *artifact format* is what a variant is on disk (a torch model directory
or an ONNX file; ``Variant.runtime`` stores it as ``torch`` / ``onnxruntime``). A *runtime* executes an
artifact (``torch`` eager, ``torch.compile``, ``torch-fp16`` on CUDA, ONNX Runtime with the CPU, CUDA or
TensorRT provider) and declares which formats it opens. Each runtime is one module in this package,
registered with :func:`register_runtime`; adding one (OpenVINO, say) is one new module plus its import in
``compress/runtimes/__init__.py``.

A :class:`Predictor` is an opened runtime: it takes named inputs (whatever the task collates, by name)
and returns the model's output as numpy. Runtimes know nothing of tokens or texts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

import numpy as np

from compress.core import requirements
from compress.core.variant import ONNX, TORCH
from compress.errors import CompressError

if TYPE_CHECKING:
    from compress.core.variant import Variant

Inputs = Mapping[str, np.ndarray]
"""Named model inputs of one batch, as the task collates them."""

TORCH_MODEL = TORCH
"""Artifact format: a torch model directory (``Variant.runtime == "torch"``)."""
ONNX_FILE = ONNX
"""Artifact format: an ONNX file (``Variant.runtime == "onnxruntime"``)."""


class RuntimeUnavailable(CompressError):
    """A runtime that applies to a variant cannot run on this machine (missing library, device or provider)."""


class Predictor(Protocol):
    runtime: str
    device: str

    def run(self, inputs: Inputs) -> np.ndarray: ...

    def synchronize(self) -> None: ...

    def time_ms(self, inputs: Inputs) -> float: ...

    def peak_memory_bytes(self, inputs: Inputs) -> int | None: ...


class HostTimed:
    """Default clock and memory for predictors without their own: wall time around a synchronised call."""

    def time_ms(self, inputs: Inputs) -> float:
        start = time.perf_counter()
        self.run(inputs)  # type: ignore[attr-defined]
        self.synchronize()  # type: ignore[attr-defined]
        return (time.perf_counter() - start) * 1000.0

    def peak_memory_bytes(self, inputs: Inputs) -> int | None:
        """None: only torch on CUDA reports its own memory; CPU memory is measured in a fresh process."""
        return None


def batch_size(inputs: Inputs) -> int:
    """The batch size of named inputs (the first axis of the first input)."""
    return int(next(iter(inputs.values())).shape[0])


class Runtime:
    """One way of executing an artifact. Subclass, set the class attributes, implement :meth:`open`,
    and decorate with :func:`register_runtime`."""

    name: ClassVar[str]
    formats: ClassVar[frozenset[str]]
    """Artifact formats it opens (:data:`TORCH_MODEL`, :data:`ONNX_FILE`)."""
    devices: ClassVar[tuple[str, ...]]
    library: ClassVar[str]
    """The Python package it runs on (imported before memory baselines are read)."""
    precision: ClassVar[str | None] = None
    """Overrides the variant's precision in reports (``fp16``), else the variant's own."""

    def applies(self, variant: Variant, device: str) -> bool:
        return variant.runtime in self.formats and device in self.devices

    def open(self, variant: Variant, device: str, threads: int | None = None) -> Predictor:
        raise NotImplementedError


_RUNTIMES: dict[str, Runtime] = {}
R = TypeVar("R", bound=type[Runtime])


def register_runtime(cls: R) -> R:
    """Class decorator: make ``cls`` available under ``cls.name`` (recipes, ``compress bench --runtimes``)."""
    if cls.name in _RUNTIMES and type(_RUNTIMES[cls.name]) is not cls:
        raise ValueError(f"runtime {cls.name!r} is registered twice")
    _RUNTIMES[cls.name] = cls()
    return cls


def runtime_names() -> tuple[str, ...]:
    return tuple(_RUNTIMES)


def get_runtime(name: str) -> Runtime:
    runtime = _RUNTIMES.get(name)
    if runtime is None:
        raise CompressError(f"unknown runtime {name!r}; known: {', '.join(_RUNTIMES)}")
    return runtime


def open_runtime(variant: Variant, runtime: str, device: str, threads: int | None = None) -> Predictor | None:
    """Open ``variant`` on ``runtime`` and ``device``; ``None`` when that combination does not apply
    (an ONNX file has no torch.compile), :class:`RuntimeUnavailable` when it applies but cannot run here."""
    spec = get_runtime(runtime)
    if not spec.applies(variant, device):
        return None
    if device.startswith("cuda") and not requirements.cuda_available():
        raise RuntimeUnavailable("no CUDA device present")
    return spec.open(variant, device, threads)


def open_predictor(variant: Variant, device: str = "cpu", threads: int | None = None) -> Predictor:
    """``variant`` on the runtime native to its artifact format (torch eager, or ONNX Runtime)."""
    predictor = open_runtime(variant, variant.runtime, device, threads)
    if predictor is None:
        raise CompressError(f"variant {variant.name!r}: no runtime {variant.runtime!r} on {device}")
    return predictor
