"""A variant is one version of the model a run produced: a PyTorch model directory, an ONNX file or an
OpenVINO IR (``model.xml`` with its ``model.bin``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compress.core.files import size_bytes

TORCH = "torch"
ONNX = "onnxruntime"
OPENVINO = "openvino"
"""The artifact formats a variant can be: a compress model directory, an ONNX file, an OpenVINO IR."""


PROCESSOR_KEY = "processor_dir"
LEGACY_PROCESSOR_KEY = "tokenizer_dir"
"""What state.json called the processor directory before tasks had processors (still read)."""


@dataclass
class Variant:
    name: str
    runtime: str
    """``torch``, ``onnxruntime`` or ``openvino`` (the artifact format)."""
    precision: str
    """``fp32``, ``int8`` ..."""
    path: Path
    """A compress model directory (torch), a ``.onnx`` file, or an IR's ``.xml`` (its ``.bin`` beside it)."""
    processor_dir: Path
    """Directory holding this variant's processor (``tokenizer.json`` for text), which the task loads."""
    stage: str
    """Id of the stage that made it."""
    info: dict[str, Any] = field(default_factory=dict)
    """Extra facts for the report (parameters, MACs, export tolerance ...)."""
    _module: Any = field(default=None, repr=False, compare=False)

    @property
    def is_torch(self) -> bool:
        return self.runtime == TORCH

    @property
    def is_onnx(self) -> bool:
        return self.runtime == ONNX

    @property
    def is_openvino(self) -> bool:
        return self.runtime == OPENVINO

    def size_bytes(self) -> int:
        """Bytes of the model weights on disk (the ONNX file, the IR's .xml plus .bin, or the safetensors of
        a torch model)."""
        if self.is_onnx:
            return size_bytes(self.path)
        if self.is_openvino:
            return size_bytes(self.path) + size_bytes(Path(self.path).with_suffix(".bin"))
        weights = list(Path(self.path).glob("*.safetensors"))
        return sum(size_bytes(w) for w in weights) if weights else size_bytes(self.path)

    def module(self):
        """The loaded ``torch.nn.Module`` (torch variants only), loaded once and cached."""
        if not self.is_torch:
            raise TypeError(f"variant {self.name!r} is an ONNX file, not a PyTorch model")
        if self._module is None:
            from compress.models.persistence import load_model

            # Code-running directories load only as they were when vouched for: the program digest
            # compress recorded as it wrote it, the factory the recipe named (the input's source).
            self._module = load_model(
                self.path,
                expected_sha256=self.info.get("program_sha256"),
                expected_factory=self.info.get("factory") or self.info.get("source"),
            )
        return self._module

    def to_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "runtime": self.runtime,
            "precision": self.precision,
            "path": str(self.path),
            "processor_dir": str(self.processor_dir),
            "stage": self.stage,
            "info": self.info,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Variant:
        return cls(
            name=record["name"],
            runtime=record["runtime"],
            precision=record["precision"],
            path=Path(record["path"]),
            processor_dir=Path(record[PROCESSOR_KEY if PROCESSOR_KEY in record else LEGACY_PROCESSOR_KEY]),
            stage=record["stage"],
            info=dict(record.get("info", {})),
        )
