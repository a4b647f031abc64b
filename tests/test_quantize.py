"""INT8 quantization on tiny models: every ORT mode, calibration, the accuracy-aware search, INC, error paths.

Tolerance: a tiny random BERT has logits around 1e-3, so closeness is measured relative to the largest FP32
logit; INT8 keeps it under 35% (measured ~10-15%), a broken quantization is near or above 100%.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from tiny import synthetic_rows

from compress.core.recipe import parse_recipe
from compress.core.variant import Variant
from compress.data.batching import pad_batch
from compress.data.tokenization import TextEncoder
from compress.errors import RecipeError, StageError
from compress.onnx.export import export_onnx
from compress.quantization import OrtQuantSettings, quantize_onnx
from compress.quantization.accuracy_aware import AccuracyAwareSearch
from compress.quantization.calibration import (
    CalibrationReader,
    calibration_texts,
    check_calibration_ranges,
)
from compress.quantization.graph import check_scales, matmul_groups
from compress.run.state import read_state
from compress.runtimes import OnnxPredictor
from compress.tasks import get_task

RELATIVE_TOLERANCE = 0.35
INPUTS = ["input_ids", "attention_mask"]


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory, tiny_checkpoints):
    from transformers import AutoModelForSequenceClassification

    root = tmp_path_factory.mktemp("quant")
    model = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoints["bert"]).eval()
    encoder = TextEncoder.from_dir(tiny_checkpoints["bert"], 32)
    texts = [text for text, _ in synthetic_rows(200, seed=1)]
    batch = get_task().encode(encoder, texts[:64]).collate(range(64))
    export_onnx(model, batch, root / "fp32.onnx", 17)
    return {
        "root": root,
        "path": root / "fp32.onnx",
        "encoder": encoder,
        "texts": texts,
        "batch": batch,
        "model": model,
    }


def relative_error(path, reference_path, batch) -> float:
    reference = OnnxPredictor(reference_path).run(batch)
    return float(np.abs(OnnxPredictor(path).run(batch) - reference).max() / np.abs(reference).max())


def reader_for(tiny, batch_size=16):
    return CalibrationReader(get_task().encode(tiny["encoder"], tiny["texts"][64:]), batch_size, INPUTS)


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "dynamic"},
        {"mode": "dynamic", "per_channel": True, "quantize_embeddings": False},
        {"mode": "static"},
        {"mode": "static", "format": "qoperator"},
        {"mode": "static", "calibration": "entropy"},
        {"mode": "static", "calibration": "percentile", "per_channel": True},
        {"mode": "static", "reduce_range": True},
    ],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_each_mode_stays_close_to_fp32(tiny_onnx, options, tmp_path):
    settings = OrtQuantSettings(**options)
    out = quantize_onnx(tiny_onnx["path"], tmp_path / "q.onnx", settings, reader_for(tiny_onnx), tmp_path)
    graph = onnx.load(str(out)).graph
    ops = {node.op_type for node in graph.node}
    if settings.mode == "dynamic":
        assert "DynamicQuantizeLinear" in ops or "MatMulInteger" in ops
    elif settings.format == "qdq":
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    else:
        assert "QLinearMatMul" in ops
    assert ("Gather" in ops and any(n.op_type == "Gather" and "quant" in n.input[0] for n in graph.node)) == (
        settings.quantize_embeddings and settings.mode == "dynamic"
    ) or settings.mode == "static"
    assert relative_error(out, tiny_onnx["path"], tiny_onnx["batch"]) < RELATIVE_TOLERANCE


def test_calibration_reader_yields_equal_real_batches(tiny_onnx):
    texts = calibration_texts(tiny_onnx["texts"], 37, seed=0)
    assert len(texts) == 37 and set(texts) <= set(tiny_onnx["texts"])
    assert calibration_texts(tiny_onnx["texts"], 37, seed=0) == texts
    reader = CalibrationReader(get_task().encode(tiny_onnx["encoder"], texts), 16, INPUTS)
    batches = list(reader)
    assert len(batches) == 3 and len(reader) == 3
    shapes = {b["input_ids"].shape for b in batches}
    assert len(shapes) == 1 and next(iter(shapes))[0] == 16
    first = batches[0]
    assert first["input_ids"].dtype == np.int64 and set(first) == set(INPUTS)
    assert (first["attention_mask"].sum(axis=1) > 2).all()  # real tokens, not just [CLS] [SEP]
    assert reader.get_next() is None
    reader.rewind()
    np.testing.assert_array_equal(reader.get_next()["input_ids"], first["input_ids"])


def test_calibration_methods_give_different_ranges(tiny_onnx, tmp_path):
    from onnxruntime.quantization.calibrate import load_tensors_data

    ranges = {}
    for method in ("minmax", "percentile"):
        quantize_onnx(
            tiny_onnx["path"],
            tmp_path / f"{method}.onnx",
            OrtQuantSettings(mode="static", calibration=method),
            reader_for(tiny_onnx),
            tmp_path,
        )
        cache = next(tmp_path.glob(f"calibration-{method}-*.json"))
        ranges[method] = {k: v.range_value for k, v in load_tensors_data(cache).data.items()}
    name = next(iter(ranges["minmax"]))
    widths = {m: float(np.max(r[name][1]) - np.min(r[name][0])) for m, r in ranges.items()}
    assert widths["percentile"] <= widths["minmax"] + 1e-9
    assert any(
        float(np.max(ranges["minmax"][k][1])) != float(np.max(ranges["percentile"][k][1]))
        for k in ranges["minmax"]
    )


def make_sensitive(source, target, layer):
    """Make one FFN output MatMul deliberately sensitive: switch off one intermediate unit (bias -100, so GELU
    gives 0) and give its weight row a 1000x outlier. FP32 multiplies the outlier by zero; INT8 stretches
    every channel's grid to the outlier and rounds the rest of the weights away."""
    model = onnx.load(str(source))
    nodes = {n.name: n for n in model.graph.node}
    producers = {out: n for n in model.graph.node for out in n.output}
    inits = {i.name: i for i in model.graph.initializer}
    prefix = f"/module/bert/encoder/layer.{layer}"

    def set_own_initializer(node_name, change):
        """Give the node a private copy of its constant input (the exporter shares equal tensors)."""
        node = nodes[node_name]
        for index, name in enumerate(node.input):
            while name not in inits and name in producers and producers[name].op_type == "Identity":
                name = producers[name].input[0]
            if name in inits:
                values = numpy_helper.to_array(inits[name]).copy()
                change(values)
                own = f"{node_name}/sensitive"
                model.graph.initializer.append(numpy_helper.from_array(values, own))
                node.input[index] = own
                return
        raise AssertionError(f"{node_name} has no constant input")

    set_own_initializer(f"{prefix}/intermediate/dense/Add", lambda b: b.__setitem__(0, -100.0))

    def amplify_with_outlier(w):
        w *= 20.0  # let the FFN outweigh the residual path, so losing it shows in the logits
        w[0] = 1000 * np.abs(w).max()

    set_own_initializer(f"{prefix}/output/dense/MatMul", amplify_with_outlier)
    onnx.save(model, str(target))
    return target


def test_sensitivity_fallback_excludes_the_sensitive_group(tiny_onnx, tmp_path):
    groups = matmul_groups(tiny_onnx["path"])
    assert {"layer0.attention", "layer0.ffn", "layer1.attention", "layer1.ffn", "head"} <= set(groups)
    source = make_sensitive(tiny_onnx["path"], tmp_path / "sensitive.onnx", layer=1)
    batch = tiny_onnx["batch"]

    def score(path):
        return 1.0 - min(1.0, relative_error(path, source, batch))

    search = AccuracyAwareSearch(
        source,
        lambda settings, path: quantize_onnx(source, path, settings),
        score,
        baseline_accuracy=1.0,
        max_drop_points=40,
        work_dir=tmp_path / "trials",
        timer=lambda path: 1.0,
    )
    result = search.search(OrtQuantSettings(mode="dynamic"))
    records = [t.record() for t in result.trials]
    assert records[0]["dev_accuracy"] < 0.6 and records[1]["config"]["per_channel"] is True
    assert records[1]["dev_accuracy"] < 0.6  # per-channel cannot fix an outlier in every channel
    assert result.sensitivity["layer1.ffn"] == max(result.sensitivity.values()) > 0.3
    assert result.met_budget and result.best.excluded_groups == ["layer1.ffn"]
    assert sum(r["chosen"] for r in records) == 1
    assert set(records[0]) >= {"config", "dev_accuracy", "latency_ms", "size_bytes", "chosen"}
    assert set(groups["layer1.ffn"]) <= set(result.best.settings.exclude_nodes)
    kept = search.keep_best(result, tmp_path / "best.onnx")
    assert kept.is_file() and not any((tmp_path / "trials").glob("*.onnx"))


def test_search_says_when_nothing_meets_the_budget(tiny_onnx, tmp_path):
    search = AccuracyAwareSearch(
        tiny_onnx["path"],
        lambda settings, path: quantize_onnx(tiny_onnx["path"], path, settings),
        lambda path: 0.5,
        baseline_accuracy=1.0,
        max_drop_points=1,
        work_dir=tmp_path,
    )
    result = search.search(OrtQuantSettings(mode="dynamic"), max_excluded_groups=1)
    assert not result.met_budget
    assert [t.chosen for t in result.trials].count(True) == 1


def test_unknown_exclude_nodes_are_an_error(tiny_onnx, tmp_path):
    name = matmul_groups(tiny_onnx["path"])["layer0.ffn"][0]
    with pytest.raises(StageError, match="did you mean") as error:
        quantize_onnx(tiny_onnx["path"], tmp_path / "q.onnx", OrtQuantSettings(exclude_nodes=[name + "x"]))
    assert "exclude_nodes" in str(error.value) and not (tmp_path / "q.onnx").exists()


def test_static_without_calibration_is_an_error(tiny_onnx, tmp_path):
    with pytest.raises(StageError, match="calibration"):
        quantize_onnx(tiny_onnx["path"], tmp_path / "q.onnx", OrtQuantSettings(mode="static"))


def test_non_finite_calibration_ranges_are_refused(tmp_path):
    from onnxruntime.quantization.calibrate import (
        CalibrationMethod,
        TensorData,
        TensorsData,
        save_tensors_data,
    )

    data = TensorsData(
        CalibrationMethod.Percentile,
        {
            "ok": TensorData(lowest=np.float32(-1), highest=np.float32(1)),
            "bad": TensorData(lowest=np.float32(-math.inf), highest=np.float32(1)),
        },
    )
    save_tensors_data(data, tmp_path / "cache.json")
    with pytest.raises(StageError, match="non-finite ranges.*bad"):
        check_calibration_ranges(tmp_path / "cache.json")
    assert not (tmp_path / "cache.json").exists()  # a bad cache must not be reused


def test_invalid_scales_are_refused(tiny_onnx, tmp_path):
    out = quantize_onnx(
        tiny_onnx["path"],
        tmp_path / "q.onnx",
        OrtQuantSettings(mode="static"),
        reader_for(tiny_onnx),
        tmp_path,
    )
    model = onnx.load(str(out))
    scale = next(i for i in model.graph.initializer if i.name.endswith("_scale"))
    scale.CopyFrom(
        numpy_helper.from_array(np.full(numpy_helper.to_array(scale).shape, np.nan, np.float32), scale.name)
    )
    onnx.save(model, str(tmp_path / "broken.onnx"))
    with pytest.raises(StageError, match="invalid"):
        check_scales(tmp_path / "broken.onnx")


def test_stale_value_info_is_stripped(tiny_onnx, tmp_path):
    model = onnx.load(str(tiny_onnx["path"]))
    stale = onnx.helper.make_tensor_value_info(
        model.graph.node[3].output[0], onnx.TensorProto.FLOAT, [7, 7, 7]
    )
    model.graph.value_info.append(stale)
    onnx.save(model, str(tmp_path / "stale.onnx"))
    out = quantize_onnx(tmp_path / "stale.onnx", tmp_path / "q.onnx", OrtQuantSettings())
    assert relative_error(out, tiny_onnx["path"], tiny_onnx["batch"]) < RELATIVE_TOLERANCE


def test_backend_decides_which_runtime_quantize_accepts(tiny_recipe):
    inc = {"quantize": {"backend": "inc", "mode": "static"}}
    parse_recipe(tiny_recipe([inc, {"export": {}}]), "r.yaml")
    with pytest.raises(RecipeError, match="needs a PyTorch model"):
        parse_recipe(tiny_recipe([{"export": {}}, inc]), "r.yaml")
    with pytest.raises(RecipeError, match="needs an ONNX model"):
        parse_recipe(tiny_recipe([{"quantize": {"mode": "static"}}]), "r.yaml")
    with pytest.raises(RecipeError, match="static W8A8"):
        parse_recipe(tiny_recipe([{"quantize": {"backend": "inc"}}]), "r.yaml")


def test_accuracy_aware_stage_records_trials_in_the_report(tiny_recipe, tmp_path):
    from compress.run.pipeline import run_recipe

    stages = [
        {"export": {}},
        {
            "quantize": {
                "mode": "static",
                "max_accuracy_drop": 2.0,
                "calibration_samples": 32,
                "trial_latency_rounds": 3,
            }
        },
        {"evaluate": {"batch_sizes": [1], "seq_lengths": [16], "rounds": 3, "warmup": 1}},
        {"report": {}},
    ]
    result = run_recipe(parse_recipe(tiny_recipe(stages), "tiny.yaml"), out=tmp_path / "run")
    variant = next(v for v in result.report["variants"] if v["name"] == "teacher-int8")
    quant = variant["info"]["quantization"]
    assert quant["met_budget"] is True and quant["trials"][0]["config"]["mode"] == "static"
    chosen = [t for t in quant["trials"] if t["chosen"]]
    assert len(chosen) == 1 and chosen[0]["dev_accuracy"] >= quant["baseline_dev_accuracy"] - 0.02
    assert all(t["size_bytes"] > 0 and t["latency_ms"] > 0 for t in quant["trials"])
    markdown = (result.run_dir / "report.md").read_text()
    assert "## Quantization trials: teacher-int8" in markdown and "**yes**" in markdown


def test_fusion_is_checked_and_then_quantized(tiny_onnx, tmp_path):
    from compress.onnx.fusion import fuse_transformer

    info = fuse_transformer(tiny_onnx["path"], tmp_path / "fused.onnx", [tiny_onnx["batch"]], 1e-3)
    assert info["used"] and info["fused_operators"].get("Attention", 0) > 0
    assert "SkipLayerNormalization" not in info["fused_operators"]  # slower than LayerNorm + Add on ORT's CPU provider
    assert info["max_abs_logit_diff"] < 1e-4
    out = quantize_onnx(tmp_path / "fused.onnx", tmp_path / "q.onnx", OrtQuantSettings(mode="dynamic"))
    assert relative_error(out, tiny_onnx["path"], tiny_onnx["batch"]) < RELATIVE_TOLERANCE
    # the word-embedding lookup stays a Gather, so INT8 still stores the embeddings in 8 bits
    ops = {node.op_type for node in onnx.load(str(out)).graph.node}
    assert "EmbedLayerNormalization" not in ops
    unfused = quantize_onnx(tiny_onnx["path"], tmp_path / "q-unfused.onnx", OrtQuantSettings(mode="dynamic"))
    assert out.stat().st_size <= unfused.stat().st_size * 1.05


def test_cpu_sessions_leave_skip_layer_norm_unfused(tiny_onnx, tmp_path):
    """ORT would fuse the residual Add + LayerNorm of an INT8 graph into SkipLayerNormalization when it
    loads it; compress's sessions (evaluation, bundle) leave it off, and outputs stay the same."""
    import onnxruntime as ort

    from compress.runtimes import open_onnx_session

    quantized = quantize_onnx(tiny_onnx["path"], tmp_path / "q.onnx", OrtQuantSettings(mode="dynamic"))
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "ort-default.onnx")
    default = ort.InferenceSession(str(quantized), options, providers=["CPUExecutionProvider"])
    ours = open_onnx_session(quantized, "cpu", 2, optimized_graph=tmp_path / "ours.onnx")

    def ops(name):
        return {node.op_type for node in onnx.load(str(tmp_path / name)).graph.node}

    assert "SkipLayerNormalization" in ops("ort-default.onnx")  # what ORT does by default
    assert "SkipLayerNormalization" not in ops("ours.onnx") and "LayerNormalization" in ops("ours.onnx")
    ids, mask = tiny_onnx["batch"].values()
    feeds = {"input_ids": ids, "attention_mask": mask}
    np.testing.assert_allclose(ours.run(None, feeds)[0], default.run(None, feeds)[0], atol=1e-4)


def _exported(result) -> Variant:
    state = read_state(result.run_dir)  # paths made usable from here (state.json keeps them run-relative)
    return Variant.from_record(next(v for v in state["variants"] if v["name"] == "teacher-onnx"))


def test_export_can_fuse_and_keeps_the_fused_graph_only_when_it_agrees(tiny_recipe, tmp_path, monkeypatch):
    from compress.run.pipeline import run_recipe

    stages = [{"export": {"optimize": True, "check_examples": 8}}]
    variant = _exported(run_recipe(parse_recipe(tiny_recipe(stages), "tiny.yaml"), out=tmp_path / "run"))
    fusion = variant.info["optimization"]
    assert fusion["used"] and variant.path.name == "fused.onnx"
    ops = {node.op_type for node in onnx.load(str(variant.path)).graph.node}
    assert {"LayerNormalization", "BiasGelu", "Attention"} <= ops and "SkipLayerNormalization" not in ops
    unfused = variant.path.with_name("model.onnx")
    texts = [row[0] for row in synthetic_rows(16, seed=5)]
    encoder = TextEncoder.from_dir(variant.processor_dir, 32)
    batch = dict(zip(("input_ids", "attention_mask"), pad_batch(encoder.encode(texts), encoder.pad_id), strict=True))
    np.testing.assert_allclose(OnnxPredictor(variant.path).run(batch), OnnxPredictor(unfused).run(batch), atol=1e-4)

    # A fusion that changes the outputs (here: the fused graph's classifier bias moved by 0.01) is refused.
    import onnxruntime.transformers.optimizer as ort_optimizer

    real_optimize = ort_optimizer.optimize_model

    def skewed(*args, **kwargs):
        optimized = real_optimize(*args, **kwargs)
        bias = next(t for t in optimized.model.graph.initializer if t.name.endswith("classifier.bias"))
        bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias) + 0.01, bias.name))
        return optimized

    monkeypatch.setattr(ort_optimizer, "optimize_model", skewed)
    stages = [{"export": {"optimize": True, "check_examples": 8}}]
    variant = _exported(run_recipe(parse_recipe(tiny_recipe(stages), "tiny.yaml"), out=tmp_path / "skewed"))
    assert variant.info["optimization"]["used"] is False and variant.path.name == "model.onnx"
    assert "fused outputs differ by" in variant.info["optimization"]["reason"]
    assert variant.info["optimization"]["max_abs_logit_diff"] == pytest.approx(0.01, rel=1e-3)


@pytest.mark.integration  # torch.export + PT2E take ~30 s on 2 busy cores, even for a tiny model
def test_inc_backend_stage_quantizes_saves_and_reloads(tiny_recipe, tmp_path, capfd):
    import torch

    from compress.models.persistence import load_model
    from compress.run.pipeline import run_recipe

    inc = {"backend": "inc", "mode": "static", "max_accuracy_drop": 100, "compile": False}
    inc["calibration_samples"] = 32
    stages = [
        {"quantize": inc},
        {"evaluate": {"batch_sizes": [1], "seq_lengths": [16], "rounds": 3, "warmup": 1}},
        {"report": {}},
    ]
    result = run_recipe(parse_recipe(tiny_recipe(stages), "tiny.yaml"), out=tmp_path / "run")
    printed = capfd.readouterr()
    assert "[INFO]" not in printed.out + printed.err  # INC's own log is silenced (it printed ~30 lines)
    variants = {v["name"]: v for v in result.report["variants"]}
    teacher, quantized = variants["teacher"], variants["teacher-inc-int8"]
    assert (quantized["runtime"], quantized["precision"]) == ("torch", "int8")
    assert quantized["agreement_with_baseline"] >= 0.9
    info = quantized["info"]["quantization"]
    assert info["met_budget"] is True and info["trials"] and info["trials"][0]["chosen"]
    assert json.loads((Path(quantized["path"]) / "compress_model.json").read_text())["kind"] == "torch.export"
    module = load_model(quantized["path"], expected_sha256=quantized["info"]["program_sha256"])
    reference = load_model(teacher["path"])
    ids = torch.randint(5, 30, (3, 9))
    mask = torch.ones_like(ids)
    with torch.no_grad():  # dynamic batch and sequence survive the save
        got = module(input_ids=ids, attention_mask=mask)
        expected = reference(input_ids=ids, attention_mask=mask).logits
    assert got.shape == (3, 2)
    assert float((got - expected).abs().max() / expected.abs().max()) < RELATIVE_TOLERANCE
