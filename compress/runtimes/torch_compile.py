"""``torch.compile`` of a torch model; opt-in, since compiling each shape costs tens of seconds on a small CPU."""

from __future__ import annotations

from typing import TYPE_CHECKING

from compress.runtimes.base import TORCH_MODEL, Runtime, register_runtime
from compress.runtimes.torch import TorchPredictor

if TYPE_CHECKING:
    from compress.core.variant import Variant


class CompiledTorchPredictor(TorchPredictor):
    """Compilation happens on the first call of each shape (the warm-up)."""

    runtime = "torch.compile"

    def __init__(self, module, device: str = "cpu", threads: int | None = None) -> None:
        super().__init__(module, device, threads)
        self.module = self.torch.compile(self.module, dynamic=False)


@register_runtime
class TorchCompile(Runtime):
    name = "torch.compile"
    formats = frozenset({TORCH_MODEL})
    devices = ("cpu", "cuda")
    library = "torch"

    def open(self, variant: Variant, device: str, threads: int | None = None) -> CompiledTorchPredictor:
        return CompiledTorchPredictor(variant.module(), device, threads)
