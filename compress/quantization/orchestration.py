"""Turn a ``quantize`` stage config plus the current variant into a quantized variant.

Orchestration only: the quantizers, the accuracy-aware search, the INC and the NNCF (OpenVINO) paths live in
their own modules.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compress.core.stage import ONNX, OPENVINO, TORCH
from compress.core.variant import Variant
from compress.data.dataset import TaskData
from compress.errors import StageError
from compress.evaluation.accuracy import accuracy
from compress.evaluation.latency import measure_interleaved
from compress.quantization.calibration import CalibrationReader, calibration_texts
from compress.quantization.settings import OrtQuantSettings
from compress.runtimes import OnnxPredictor, Predictor, TorchPredictor
from compress.runtimes.batched import predict_logits
from compress.tasks.base import Split, Task
from compress.training.kd import dev_against_reference

INC_FIELDS = {
    "backend",
    "mode",
    "calibration_samples",
    "calibration_batch_size",
    "max_accuracy_drop",
    "compile",
}
"""The stage options that mean something for INC (it chooses calibration and granularity itself)."""
OPENVINO_FIELDS = {"backend", "mode", "calibration_samples", "preset"}
"""The stage options that mean something for NNCF (backend ``openvino``)."""


@dataclass(frozen=True)
class QuantizeData:
    """What quantizing a variant needs from the run: the task and its data, the seed, the stage directory
    and a log (not the whole run context)."""

    task: Task
    splits: TaskData
    max_length: int
    seed: int
    stage_dir: Path
    log: Callable[[str], object]

    def processor(self, variant: Variant) -> Any:
        return self.task.processor(variant.processor_dir, self.max_length)


def dev_split(data: QuantizeData, processor: Any, reference: Predictor) -> Split:
    """The dev split the budget is counted on: its labels, or for a task scored against a reference (an
    embedder: recall@10) the FP32 ``reference``'s own dev outputs, so the budget is what INT8 loses."""
    return dev_against_reference(data.task, data.task.split(processor, data.splits.dev), reference, 64)


def dev_accuracy(predictor: Predictor, dev: Split, task: Task | None = None) -> float:
    """Dev accuracy, or ``task``'s primary metric (what the accuracy-aware budget is counted in)."""
    logits = predict_logits(predictor, dev[0], 64)
    return task.primary(logits, dev[1]) if task is not None else accuracy(logits, dev[1])


def calibration_reader(cfg: OrtQuantSettings, processor: Any, data: QuantizeData, names: list[str]):
    texts = calibration_texts(data.splits.train.inputs, cfg.calibration_samples, data.seed)
    return CalibrationReader(data.task.encode(processor, texts), cfg.calibration_batch_size, names)


def b1_timer(
    reference: Path, processor_dir: Path, data: QuantizeData, rounds: int, threads: int
) -> Callable[[Path], float]:
    """b1 latency of a trial, timed interleaved with the FP32 model so load swings hit both."""
    inputs = data.task.dummy_inputs(processor_dir, 1, data.max_length, data.splits.dev.inputs)
    fp32 = OnnxPredictor(reference, threads=threads)

    def measure(path: Path) -> float:
        predictors = {"fp32": fp32, "trial": OnnxPredictor(path, threads=threads)}
        stats = measure_interleaved(predictors, {"fp32": inputs, "trial": inputs}, warmup=3, rounds=rounds)
        return round(stats["trial"].p50, 4)

    return measure


def _variant(
    cfg, current: Variant, stage_id: str, runtime: str, path: Path, info: dict[str, Any], suffix: str
):
    from compress.core.outputs import base_name, inherited_info

    return Variant(
        name=cfg.name or f"{base_name(current.name)}{suffix}",
        runtime=runtime,
        precision="int8",
        path=path,
        processor_dir=path if runtime == TORCH else current.processor_dir,
        stage=stage_id,
        info={**inherited_info(current.info), "quantization": info},
    )


def quantize_onnx_variant(stage_id: str, cfg, current: Variant, data: QuantizeData) -> Variant:
    from compress.onnx.fusion import check_batches, fuse_checked
    from compress.quantization.accuracy_aware import AccuracyAwareSearch
    from compress.quantization.ort import quantize_onnx

    if not current.is_onnx:
        raise StageError(f"quantize: variant {current.name!r} is not an ONNX model; export it first")
    stage_dir = data.stage_dir
    processor = data.processor(current)
    settings = OrtQuantSettings(**cfg.model_dump(include=set(OrtQuantSettings.model_fields)))
    info: dict[str, Any] = cfg.model_dump(exclude={"name", "compile"})
    source = current.path
    if cfg.optimize:
        batches = check_batches(data.task.encode(processor, data.splits.test.inputs[:48]))
        source, info["optimization"] = fuse_checked(
            source, stage_dir, batches, cfg.optimize_tolerance, data.log
        )
    names = OnnxPredictor(source).input_names
    reader = calibration_reader(settings, processor, data, names) if settings.mode == "static" else None
    target = stage_dir / "model.onnx"

    def quantize(trial_settings: OrtQuantSettings, path: Path) -> Path:
        return quantize_onnx(source, path, trial_settings, reader, stage_dir)

    if cfg.max_accuracy_drop is None:
        quantize(settings, target)
    else:
        reference = OnnxPredictor(source, threads=cfg.threads)
        dev = dev_split(data, processor, reference)
        baseline = dev_accuracy(reference, dev, data.task)
        search = AccuracyAwareSearch(
            source,
            quantize,
            lambda path: dev_accuracy(OnnxPredictor(path, threads=cfg.threads), dev, data.task),
            baseline,
            cfg.max_accuracy_drop,
            stage_dir / "trials",
            b1_timer(source, current.processor_dir, data, cfg.trial_latency_rounds, cfg.threads),
            log=lambda line: data.log(f"    {line}"),
        )
        result = search.search(settings, cfg.max_excluded_groups)
        search.keep_best(result, target)
        info.update(_search_summary(result, cfg.max_accuracy_drop))
        _announce(data.log, result.met_budget, result.best.dev_accuracy, baseline, cfg.max_accuracy_drop)
    return _variant(cfg, current, stage_id, ONNX, target, info, "-int8")


def _search_summary(result, max_drop: float) -> dict[str, Any]:
    return {
        "baseline_dev_accuracy": result.baseline_accuracy,
        "dev_accuracy": result.best.dev_accuracy,
        "max_accuracy_drop_points": max_drop,
        "met_budget": result.met_budget,
        "chosen": result.best.record()["config"],
        "sensitivity": result.sensitivity,
        "trials": [t.record() for t in result.trials],
    }


def _announce(
    log: Callable[[str], object], met: bool, accuracy_value: float | None, baseline: float, max_drop: float
) -> None:
    drop = 100 * (baseline - (accuracy_value or 0.0))
    if met:
        log(f"    accuracy-aware: dev drop {drop:.2f} pt within the {max_drop} pt budget")
    else:
        log(
            f"    [bold yellow]accuracy-aware: NO configuration met the {max_drop} pt budget[/]; "
            f"keeping the most accurate one (dev drop {drop:.2f} pt)"
        )


def quantize_inc_variant(stage_id: str, cfg, current: Variant, data: QuantizeData) -> Variant:
    from compress.models.torch_export import ExportedClassifier, save_exported
    from compress.quantization.inc import quantize_pt2e

    if not current.is_torch:
        raise StageError(
            f"quantize (inc): variant {current.name!r} is not a PyTorch model; put quantize before export"
        )
    processor = data.processor(current)
    model = copy.deepcopy(current.module()).eval()
    reader = calibration_reader(cfg, processor, data, list(data.task.input_names))
    reference = TorchPredictor(model, threads=cfg.threads)
    dev = dev_split(data, processor, reference)
    baseline = dev_accuracy(reference, dev, data.task)
    scores: list[float] = []

    def evaluate(graph) -> float:
        scores.append(
            dev_accuracy(TorchPredictor(ExportedClassifier(graph), threads=cfg.threads), dev, data.task)
        )
        return scores[-1]

    aware = cfg.max_accuracy_drop is not None
    relative = (cfg.max_accuracy_drop / 100) / baseline if aware and baseline > 0 else None
    result = quantize_pt2e(model, reader.batches, evaluate if aware else None, relative)
    achieved = dev_accuracy(
        TorchPredictor(ExportedClassifier(result.model), threads=cfg.threads), dev, data.task
    )
    directory = data.stage_dir / "model"
    program_sha256 = save_exported(
        result.program, directory, {"architecture": type(current.module()).__name__, "compile": cfg.compile}
    )
    data.task.save_processor(processor, directory)
    info: dict[str, Any] = {
        **cfg.model_dump(include=INC_FIELDS),
        **result.info,
        "baseline_dev_accuracy": baseline,
        "dev_accuracy": achieved,
    }
    if aware:
        met = baseline - achieved <= cfg.max_accuracy_drop / 100 + 1e-12
        info.update(
            met_budget=met,
            max_accuracy_drop_points=cfg.max_accuracy_drop,
            trials=_inc_trials(scores[1:], achieved),
        )
        _announce(data.log, met, achieved, baseline, cfg.max_accuracy_drop)
    else:
        data.log(f"    INC PT2E W8A8: dev accuracy {achieved:.4f} (FP32 {baseline:.4f})")
    variant = _variant(cfg, current, stage_id, TORCH, directory, info, "-inc-int8")
    variant.info["program_sha256"] = program_sha256  # lets a resumed run reload exactly this program
    return variant


def _inc_trials(scores: list[float], achieved: float) -> list[dict[str, Any]]:
    """INC's own trials (its evaluate calls after the FP32 baseline); it re-quantizes the best at the end."""
    from compress.quantization.inc import tuning_configs

    configs = tuning_configs()
    trials = []
    for config, score in zip(configs, scores, strict=False):
        chosen_config = {
            k: v
            for k, v in config.to_dict().items()
            if k in ("act_sym", "act_algo", "w_sym", "w_granularity")
        }
        trials.append(
            {
                "config": chosen_config,
                "dev_accuracy": score,
                "latency_ms": None,
                "size_bytes": None,
                "chosen": False,
            }
        )
    matches = [t for t in trials if abs(t["dev_accuracy"] - achieved) < 1e-9]
    if matches:
        matches[0]["chosen"] = True
    return trials


def quantize_openvino_variant(stage_id: str, cfg, current: Variant, data: QuantizeData) -> Variant:
    """NNCF INT8 of an ONNX variant for OpenVINO (:mod:`compress.quantization.openvino`), calibrated on the
    train texts ORT's static calibration samples, one text per batch (no padding in the ranges); an IR variant."""
    import importlib.metadata

    from compress.quantization.openvino import quantize_for_openvino
    from compress.runtimes.openvino import OpenVinoPredictor

    if not current.is_onnx:
        raise StageError(f"quantize (openvino): variant {current.name!r} is not an ONNX model; export it first")
    processor = data.processor(current)
    examples = data.task.encode(processor, calibration_texts(data.splits.train.inputs, cfg.calibration_samples, data.seed))
    calibration = [examples.collate([index]) for index in range(len(examples))]
    target = quantize_for_openvino(current.path, data.stage_dir / "model.xml", calibration, preset=cfg.preset)
    reference = OnnxPredictor(current.path, threads=cfg.threads)
    dev = dev_split(data, processor, reference)
    baseline = dev_accuracy(reference, dev, data.task)
    achieved = dev_accuracy(OpenVinoPredictor(target, threads=cfg.threads), dev, data.task)
    data.log(f"    NNCF INT8 for OpenVINO: dev {data.task.primary_metric} {achieved:.4f} (FP32 {baseline:.4f})")
    info: dict[str, Any] = {
        **cfg.model_dump(include=OPENVINO_FIELDS),
        "calibration_texts": len(calibration),
        "versions": {name: importlib.metadata.version(name) for name in ("openvino", "nncf")},
        "baseline_dev_accuracy": baseline,
        "dev_accuracy": achieved,
    }
    return _variant(cfg, current, stage_id, OPENVINO, target, info, "-ov-int8")
