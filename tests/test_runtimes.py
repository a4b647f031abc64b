"""The runtime seam: the registry, every CPU runtime against eager PyTorch, ONNX Runtime's session options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compress.errors import CompressError
from compress.evaluation.path_variants import variant_from_path
from compress.runtimes import (
    ONNX_FILE,
    TORCH_MODEL,
    OnnxPredictor,
    Runtime,
    get_runtime,
    open_runtime,
    register_runtime,
    runtime_names,
)
from compress.runtimes import base as runtimes_base

BUILT_IN = {"torch", "torch-fp16", "torch.compile", "onnxruntime", "onnxruntime-trt", "openvino", "openvino-bf16"}


def _inputs(batch: int = 3, seq: int = 12) -> dict[str, np.ndarray]:
    ids = np.random.default_rng(0).integers(5, 40, size=(batch, seq), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[0, seq // 2 :] = 0  # one padded row, so the mask is really used
    return {"input_ids": ids, "attention_mask": mask}


@pytest.fixture(scope="module")
def tiny(tiny_checkpoints, tmp_path_factory):
    """The tiny BERT as a torch variant and as an ONNX variant, and eager PyTorch's logits on ``_inputs()``."""
    from tiny_onnx import export_tiny_onnx

    torch_variant = variant_from_path(tiny_checkpoints["bert"])
    onnx_variant = variant_from_path(export_tiny_onnx(tiny_checkpoints["bert"], tmp_path_factory.mktemp("onnx")))
    with torch.inference_mode():
        tensors = {name: torch.from_numpy(value) for name, value in _inputs().items()}
        reference = torch_variant.module()(**tensors).logits.numpy()
    return torch_variant, onnx_variant, reference


def test_registry_holds_each_runtime_with_the_artifact_formats_it_opens():
    assert set(runtime_names()) == BUILT_IN
    assert {name for name in BUILT_IN if get_runtime(name).formats == {TORCH_MODEL}} == {
        "torch", "torch-fp16", "torch.compile"
    }
    assert {name for name in BUILT_IN if get_runtime(name).formats == {ONNX_FILE}} == {"onnxruntime", "onnxruntime-trt"}
    assert {name for name in BUILT_IN if get_runtime(name).formats == {ONNX_FILE, "openvino"}} == {"openvino", "openvino-bf16"}
    assert get_runtime("torch-fp16").devices == ("cuda",) and get_runtime("torch-fp16").precision == "fp16"
    assert get_runtime("onnxruntime-trt").devices == ("cuda",) and get_runtime("onnxruntime").library == "onnxruntime"


def test_unknown_runtime_is_an_error_listing_the_known_ones():
    from pydantic import ValidationError

    from compress.evaluation.suite import LatencySettings

    with pytest.raises(CompressError, match="unknown runtime 'tensorflow'; known: ") as error:
        get_runtime("tensorflow")
    assert all(name in str(error.value) for name in BUILT_IN)
    with pytest.raises(ValidationError, match="unknown runtime 'tensorflow'; known: .*onnxruntime-trt"):
        LatencySettings(runtimes=["torch", "tensorflow"])


def test_a_new_runtime_is_one_class_and_its_registration(tiny, monkeypatch):
    """What adding OpenVINO takes: a Runtime subclass registered by name; recipes and open_runtime see it."""
    from compress.evaluation.suite import LatencySettings

    monkeypatch.setattr(runtimes_base, "_RUNTIMES", dict(runtimes_base._RUNTIMES))
    torch_variant, onnx_variant, reference = tiny

    class Doubled(OnnxPredictor):
        runtime = "doubled-ort"

        def run(self, inputs):
            return 2 * super().run(inputs)

    @register_runtime
    class DoubledOrt(Runtime):
        name = "doubled-ort"
        formats = frozenset({ONNX_FILE})
        devices = ("cpu",)
        library = "onnxruntime"

        def open(self, variant, device, threads=None):
            return Doubled(variant.path, device, threads)

    assert "doubled-ort" in runtime_names() and LatencySettings(runtimes=["doubled-ort"]).runtimes == ["doubled-ort"]
    assert open_runtime(torch_variant, "doubled-ort", "cpu") is None  # it opens ONNX files only
    np.testing.assert_allclose(open_runtime(onnx_variant, "doubled-ort", "cpu").run(_inputs()), 2 * reference, atol=2e-4)


@pytest.mark.parametrize(("runtime", "atol"), [("torch", 1e-6), ("onnxruntime", 1e-4)])
def test_each_cpu_runtime_gives_eager_torchs_logits(tiny, runtime, atol):
    torch_variant, onnx_variant, reference = tiny
    variant = onnx_variant if runtime == "onnxruntime" else torch_variant
    predictor = open_runtime(variant, runtime, "cpu", threads=1)
    assert predictor.runtime == runtime and predictor.device == "cpu"
    logits = predictor.run(_inputs())
    assert logits.dtype == np.float32 and logits.shape == reference.shape
    np.testing.assert_allclose(logits, reference, atol=atol)
    assert predictor.time_ms(_inputs()) > 0 and predictor.peak_memory_bytes(_inputs()) is None


@pytest.mark.integration  # compiling even the tiny model takes ~30 s on 2 cores
def test_torch_compile_gives_eager_torchs_logits(tiny):
    torch_variant, _, reference = tiny
    predictor = open_runtime(torch_variant, "torch.compile", "cpu", threads=1)
    try:
        logits = predictor.run(_inputs())
    except Exception as error:  # no C++ compiler for inductor here: evaluate skips the row with a note
        pytest.skip(f"torch.compile cannot compile here ({type(error).__name__})")
    np.testing.assert_allclose(logits, reference, atol=1e-5)


def test_onnx_predictor_feeds_only_its_graphs_inputs(tiny):
    _, onnx_variant, reference = tiny
    predictor = open_runtime(onnx_variant, "onnxruntime", "cpu")
    assert predictor.input_names == ["input_ids", "attention_mask"]
    extra = {**_inputs(), "token_type_ids": np.zeros((3, 12), dtype=np.int64)}  # the graph has no such input
    np.testing.assert_allclose(predictor.run(extra), reference, atol=1e-4)
    with pytest.raises(CompressError, match=r"needs inputs \['attention_mask'\]"):
        predictor.run({"input_ids": _inputs()["input_ids"]})


def test_cpu_session_has_skip_layer_norm_fusion_disabled(tiny, tmp_path):
    """ORT fuses an INT8 graph's residual Add + LayerNorm into SkipLayerNormalization by default; compress's
    CPU sessions, whichever caller opens them, leave it off (see CPU_DISABLED_FUSIONS)."""
    import onnx
    import onnxruntime as ort

    from compress.quantization.ort import quantize_onnx
    from compress.quantization.settings import OrtQuantSettings
    from compress.runtimes.onnxruntime import CPU_DISABLED_FUSIONS, open_onnx_session

    _, onnx_variant, reference = tiny
    assert CPU_DISABLED_FUSIONS == ("SkipLayerNormFusion",)
    quantized = quantize_onnx(onnx_variant.path, tmp_path / "int8.onnx", OrtQuantSettings(mode="dynamic"))
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "default.onnx")
    default = ort.InferenceSession(str(quantized), options, providers=["CPUExecutionProvider"])
    session = open_onnx_session(quantized, "cpu", 1, optimized_graph=tmp_path / "ours.onnx")

    def ops(name):
        return {node.op_type for node in onnx.load(str(tmp_path / name)).graph.node}

    assert "SkipLayerNormalization" in ops("default.onnx")  # the fusion applies to this graph
    assert "SkipLayerNormalization" not in ops("ours.onnx") and "LayerNormalization" in ops("ours.onnx")
    np.testing.assert_allclose(session.run(None, _inputs())[0], default.run(None, _inputs())[0], atol=1e-4)
