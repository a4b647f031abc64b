"""The CUDA paths, on a real GPU: CUDA-event timing, torch-fp16, ONNX Runtime's CUDA provider, GPU memory.

Skipped where torch sees no CUDA device (every CPU machine, CI); ``make gpu-check`` runs them on a GPU
(``pytest -m gpu``). Each test opens its predictor through ``open_runtime``, the path ``evaluate`` and
``compress bench`` take.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from compress.errors import CompressError
from compress.evaluation.latency import time_call
from compress.evaluation.path_variants import variant_from_path
from compress.evaluation.setting import Setting
from compress.evaluation.suite import LatencySettings, measure_latency
from compress.runtimes import TorchPredictor, open_runtime

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)"),
]


class SleepClassifier(nn.Module):
    """A 'classifier' whose forward is one GPU kernel that spins for ``cycles`` clock cycles."""

    def __init__(self, cycles: int) -> None:
        super().__init__()
        self.cycles = cycles
        self.register_buffer("anchor", torch.zeros(2))  # moves with the module, like weights

    def forward(self, input_ids, attention_mask):  # called with the named inputs, as every model is
        torch.cuda._sleep(self.cycles)
        return self.anchor.expand(input_ids.shape[0], 2)


def _cycles_per_ms() -> float:
    """GPU clock cycles per wall-clock millisecond of ``torch.cuda._sleep``, after the clocks have ramped up."""
    torch.cuda._sleep(200_000_000)  # warm-up: an idle GPU runs at a fraction of its clock at first
    torch.cuda.synchronize()
    probe = 100_000_000
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        torch.cuda._sleep(probe)
        torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - start) * 1000)
    return probe / best


def _inputs(batch: int = 2, seq: int = 16) -> dict[str, np.ndarray]:
    ids = np.random.default_rng(0).integers(5, 40, size=(batch, seq), dtype=np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def test_cuda_event_timing_matches_a_known_sleep_kernel():
    cycles_per_ms = _cycles_per_ms()
    inputs = _inputs()
    measured = {}
    for target_ms in (20.0, 40.0):
        predictor = TorchPredictor(SleepClassifier(int(target_ms * cycles_per_ms)), "cuda")
        time_call(predictor, inputs)  # warm-up (first H2D copy, allocator)
        wall_start = time.perf_counter()
        event_ms = time_call(predictor, inputs)  # on CUDA: the predictor's own CUDA-event clock
        wall_ms = (time.perf_counter() - wall_start) * 1000
        assert event_ms <= wall_ms + 0.5, "CUDA events cannot measure longer than the wall clock around them"
        measured[target_ms] = event_ms
    # the call is the sleep plus tiny copies of a 2x16 batch: within 10% + 1 ms of the calibrated sleep
    assert measured[20.0] == pytest.approx(20.0, rel=0.10, abs=1.0)
    assert measured[40.0] == pytest.approx(40.0, rel=0.10, abs=1.0)
    assert measured[40.0] - measured[20.0] == pytest.approx(20.0, rel=0.10, abs=1.0)


@pytest.fixture(scope="module")
def small_bert(tmp_path_factory):
    """A random BERT checkpoint big enough that its weights dominate GPU memory (hidden 256, 4 layers)."""
    from tiny import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("gpu") / "bert", "bert", layers=4, heads=4, hidden=256)


def test_fp16_runtime_really_runs_half_and_agrees_with_fp32(small_bert):
    variant = variant_from_path(small_bert)
    cpu = open_runtime(variant, "torch", "cpu")
    fp32 = open_runtime(variant, "torch", "cuda")
    fp16 = open_runtime(variant, "torch-fp16", "cuda")
    weight = next(fp16.module.parameters())
    assert weight.dtype == torch.float16 and weight.device.type == "cuda"
    assert next(variant.module().parameters()).dtype == torch.float32  # the variant's own module is untouched
    ids = np.random.default_rng(1).integers(5, 40, size=(8, 32), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[0, 20:] = 0
    inputs = {"input_ids": ids, "attention_mask": mask}
    reference = cpu.run(inputs)
    np.testing.assert_allclose(fp32.run(inputs), reference, atol=1e-4)
    half = fp16.run(inputs)
    assert half.dtype == np.float32  # reported as fp32 numpy like every runtime
    scale = float(np.abs(reference).max())
    assert 0 < float(np.abs(half - reference).max()) <= 1e-2 * max(scale, 1.0)  # differs (it is fp16), but only by rounding
    assert (half.argmax(-1) == reference.argmax(-1)).all()


@pytest.mark.parametrize(
    ("runtime", "provider"),
    [("onnxruntime", "CUDAExecutionProvider"), ("onnxruntime-trt", "TensorrtExecutionProvider")],
)
def test_onnxruntime_gpu_provider_is_really_used(tmp_path, small_bert, runtime, provider):
    import onnxruntime
    from tiny_onnx import export_tiny_onnx

    if provider not in onnxruntime.get_available_providers():
        pytest.skip(f"this onnxruntime has no {provider} (the CPU build, or a build without it)")
    onnx_variant = variant_from_path(export_tiny_onnx(small_bert, tmp_path / "onnx"))
    try:
        predictor = open_runtime(onnx_variant, runtime, "cuda")
    except CompressError as error:  # RuntimeUnavailable: the provider fell back; or the session failed outright
        if provider == "TensorrtExecutionProvider":
            pytest.skip(f"TensorRT libraries are not installed: {error}")
        raise  # the CUDA provider listed but not initialised: ORT would have run on the CPU
    assert predictor.session.get_providers()[0] == provider
    inputs = _inputs(4, 24)
    reference = open_runtime(onnx_variant, "onnxruntime", "cpu").run(inputs)
    np.testing.assert_allclose(predictor.run(inputs), reference, atol=2e-3)


def test_gpu_memory_counts_the_weights_and_fp16_halves_them_with_other_models_loaded(small_bert):
    """``evaluate`` holds every row of a device loaded at once: each row's figure is its own model's."""
    variant = variant_from_path(small_bert)
    weight_bytes = sum(p.numel() * p.element_size() for p in variant.module().parameters())
    fp32_predictor = open_runtime(variant, "torch", "cuda")
    fp16_predictor = open_runtime(variant, "torch-fp16", "cuda")  # both loaded, as in evaluate
    inputs = _inputs(4, 64)
    for predictor in (fp32_predictor, fp16_predictor):
        predictor.run(inputs)  # first calls allocate cuBLAS workspaces that stay for the process
    fp32 = fp32_predictor.peak_memory_bytes(inputs)
    fp16 = fp16_predictor.peak_memory_bytes(inputs)
    assert weight_bytes <= fp32 < 1.5 * weight_bytes  # not the fp16 copy's weights on top
    assert weight_bytes // 2 <= fp16 < 0.75 * fp32
    assert open_runtime(variant, "torch", "cpu").peak_memory_bytes(inputs) is None


def test_cuda_latency_and_memory_rows_end_to_end(small_bert):
    """What ``evaluate`` with ``devices: [cuda]`` reports: CUDA timings and memory for torch and torch-fp16."""
    from rich.console import Console

    variant = variant_from_path(small_bert)
    settings = LatencySettings(
        devices=["cuda"], runtimes=["torch", "torch-fp16"], batch_sizes=[1, 8], seq_lengths=[32],
        warmup=2, rounds=5, blocks=1, prime_ms=0.0,
    )
    rows, notes = measure_latency([variant], settings, ["a great film"], None, Console(quiet=True))
    assert not [n for n in notes if "skipped" in n or "not measured" in n], notes
    assert set(rows) == {"bert", "bert [torch-fp16]"}
    assert rows["bert [torch-fp16]"].precision == "fp16"
    for row in rows.values():
        assert set(row.latency_ms["cuda"]) == {Setting(1, 32), Setting(8, 32)}
        assert all(0 < stats.p50 <= stats.p99 for stats in row.latency_ms["cuda"].values())
        memory = row.memory["cuda"]
        assert memory.peak_allocated_bytes > 0 and memory.method == "torch.cuda.max_memory_allocated"
    fp32, fp16 = (rows[name].memory["cuda"].peak_allocated_bytes for name in ("bert", "bert [torch-fp16]"))
    assert fp16 < 0.75 * fp32
