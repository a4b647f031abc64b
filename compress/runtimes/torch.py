"""PyTorch eager: ``torch`` (CPU or CUDA, the variant's own precision) and ``torch-fp16`` (CUDA, half)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np

from compress.runtimes.base import TORCH_MODEL, HostTimed, Inputs, Runtime, register_runtime

if TYPE_CHECKING:
    from compress.core.variant import Variant


class TorchPredictor(HostTimed):
    """A torch module called with named inputs; returns its logits as float32 numpy."""

    runtime = "torch"

    def __init__(self, module, device: str = "cpu", threads: int | None = None, half: bool = False) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = device
        if device != "cpu" or half:
            module = copy.deepcopy(module)  # never move or cast the variant's shared CPU module in place
        module = module.to(device).eval()
        self.module = module.half() if half else module

    def run(self, inputs: Inputs) -> np.ndarray:
        from compress.models.forward import output_logits

        torch = self.torch
        with torch.inference_mode():
            tensors = {name: torch.from_numpy(np.ascontiguousarray(value)).to(self.device) for name, value in inputs.items()}
            return output_logits(self.module(**tensors)).float().cpu().numpy()

    def synchronize(self) -> None:
        if self.device.startswith("cuda"):
            self.torch.cuda.synchronize()

    def time_ms(self, inputs: Inputs) -> float:
        """One call's milliseconds; on CUDA (host-to-device copy, forward, copy back) by CUDA events."""
        if not self.device.startswith("cuda"):
            return super().time_ms(inputs)
        start, end = (self.torch.cuda.Event(enable_timing=True) for _ in range(2))
        start.record()
        self.run(inputs)
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))

    def peak_memory_bytes(self, inputs: Inputs) -> int | None:
        """This model's weights plus the peak CUDA memory one call allocates on top; None on CPU.

        ``evaluate`` keeps every variant of a device loaded while it measures each: the allocator's
        process-wide peak would count the other variants' weights too, so only the growth during the
        call is taken from it.
        """
        if not self.device.startswith("cuda"):
            return None
        cuda = self.torch.cuda
        cuda.synchronize()
        before = cuda.memory_allocated()
        cuda.reset_peak_memory_stats()
        self.run(inputs)
        cuda.synchronize()
        weights = sum(t.numel() * t.element_size() for t in (*self.module.parameters(), *self.module.buffers()))
        return int(weights + cuda.max_memory_allocated() - before)


@register_runtime
class TorchEager(Runtime):
    name = "torch"
    formats = frozenset({TORCH_MODEL})
    devices = ("cpu", "cuda")
    library = "torch"

    def open(self, variant: Variant, device: str, threads: int | None = None) -> TorchPredictor:
        return TorchPredictor(variant.module(), device, threads)


@register_runtime
class TorchHalf(Runtime):
    name = "torch-fp16"
    formats = frozenset({TORCH_MODEL})
    devices = ("cuda",)
    library = "torch"
    precision = "fp16"

    def open(self, variant: Variant, device: str, threads: int | None = None) -> TorchPredictor:
        return TorchPredictor(variant.module(), device, threads, half=True)
