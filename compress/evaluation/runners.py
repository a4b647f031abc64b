"""Predictors: run any variant (PyTorch module or ONNX file) on padded numpy batches."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from compress.errors import CompressError
from compress.variants import Variant


class Predictor(Protocol):
    runtime: str
    device: str

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...

    def synchronize(self) -> None: ...


class TorchPredictor:
    runtime = "torch"

    def __init__(self, module, device: str = "cpu", threads: int | None = None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = device
        self.module = module.to(device).eval()

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        from compress.models.forward import classifier_logits

        torch = self.torch
        with torch.inference_mode():
            ids = torch.from_numpy(input_ids).to(self.device)
            mask = torch.from_numpy(attention_mask).to(self.device)
            return classifier_logits(self.module, ids, mask).float().cpu().numpy()

    def synchronize(self) -> None:
        if self.device.startswith("cuda"):
            self.torch.cuda.synchronize()


class OnnxPredictor:
    runtime = "onnxruntime"

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None) -> None:
        self.device = device
        self.session = open_onnx_session(path, device, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        return self.session.run(None, {name: feeds[name] for name in self.input_names})[0]

    def synchronize(self) -> None:
        """ONNX Runtime's ``run`` returns after the outputs are on the host."""


def open_onnx_session(path: str | Path, device: str = "cpu", threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning worker threads keep burning CPU after each run; when variants are timed interleaved on
    # a 2-core machine, that steals time from whichever variant runs next.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise CompressError("ONNX Runtime has no CUDA provider here; install onnxruntime-gpu")
        providers.insert(0, "CUDAExecutionProvider")
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as error:  # onnxruntime raises its own exception types for corrupt files
        raise CompressError(f"{path}: ONNX Runtime cannot load this model ({error})") from None


def open_predictor(variant: Variant, device: str = "cpu", threads: int | None = None) -> Predictor:
    if variant.is_torch:
        return TorchPredictor(variant.module(), device, threads)
    return OnnxPredictor(variant.path, device, threads)
