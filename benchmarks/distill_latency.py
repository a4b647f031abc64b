"""Interleaved ONNX FP32 latency (b1 s128): a teacher ONNX file vs 2-layer single-head students.

Usage: python benchmarks/distill_latency.py TEACHER_MODEL_DIR TEACHER_ONNX [STUDENT_ONNX]
Students of several FFN widths are built (untrained weights: latency does not depend on them).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import compress  # noqa: F401
from compress.distillation.student import StudentSpec, build_student
from compress.evaluation.latency import measure_interleaved
from compress.models.persistence import load_model
from compress.onnx.export import export_onnx
from compress.runtimes import OnnxPredictor


def main(teacher_dir: str, teacher_onnx: str, trained: str | None) -> None:
    teacher = load_model(teacher_dir)
    example = {"input_ids": np.full((1, 16), 1000, dtype=np.int64), "attention_mask": np.ones((1, 16), dtype=np.int64)}
    predictors = {"teacher-onnx": OnnxPredictor(teacher_onnx, "cpu", 2)}
    if trained:
        predictors["student (given)"] = OnnxPredictor(trained, "cpu", 2)
    scratch = Path(tempfile.mkdtemp())
    for ffn in (768, 512, 384, 256):
        student, _ = build_student(teacher, StudentSpec(layers=2, heads=1, ffn=ffn, merge_scale="mean"))
        path = export_onnx(student, example, scratch / f"{ffn}.onnx", 17)
        predictors[f"student-ffn{ffn}"] = OnnxPredictor(path, "cpu", 2)
    ids = np.random.default_rng(0).integers(1000, 20000, (1, 128)).astype(np.int64)
    ids[0, 0] = 101
    inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    stats = measure_interleaved(predictors, {n: inputs for n in predictors}, 10, 60)
    base = stats["teacher-onnx"].to_dict()["p50"]
    for name, value in stats.items():
        p50 = value.to_dict()["p50"]
        print(f"{name:18} p50 {p50:.2f} ms  {base / p50:.2f}x")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
