"""OpenVINO beside ONNX Runtime on the same models, timed interleaved (issue 21).

    python benchmarks/openvino_compare.py runs/edge-x --out reports/openvino/README.md
    python benchmarks/openvino_compare.py --teacher-onnx T.onnx --teacher-int8 T-int8.onnx \\
        --student-onnx S.onnx --student-int8 S-int8.onnx --tokenizer DIR --out openvino.md

For each model (the teacher and, where there is one, the student) it times, in one set of interleaved rounds
(b1 s128 and 2 threads unless told otherwise; every call primed, as ``evaluate`` does):

- the FP32 ONNX on ONNX Runtime (the reference), on OpenVINO pinned to f32, and on OpenVINO's bf16 default
  (where the CPU has bfloat16);
- ONNX Runtime's dynamic INT8 graph on ONNX Runtime and on OpenVINO;
- NNCF's INT8 IR (``compress.quantization.openvino``, quantized here from the FP32 ONNX, calibrated on 256
  train texts one per batch, as ``quantize`` with ``backend: openvino`` does) on OpenVINO.

From a run directory the models are its variants (the teacher's ``<baseline>-onnx`` / ``<baseline>-int8``, the
student's last FP32 ONNX variant and its ``-int8``), the calibration and accuracy texts its recipe's data.
Accuracy on the first ``--accuracy-texts`` test texts comes with each row (0 skips it). It prints a table and
writes Markdown ready for ``reports/openvino/README.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from compress.core.outputs import base_name
from compress.core.variant import ONNX, OPENVINO, Variant
from compress.errors import CompressError
from compress.evaluation.latency import LatencyStats, measure_interleaved, paired_ratio
from compress.quantization.calibration import calibration_texts
from compress.runtimes import Predictor, open_runtime
from compress.runtimes.batched import predict_logits
from compress.tasks import Task, get_task

REFERENCE = "FP32 ONNX on ONNX Runtime"
ORT_INT8 = "ORT dynamic INT8 on ONNX Runtime"


@dataclass
class Model:
    """One model's artifacts: what is timed for it."""

    label: str
    fp32: Path
    processor_dir: Path
    ort_int8: Path | None = None
    nncf_int8: Path | None = None
    nncf_seconds: float | None = None


@dataclass
class Row:
    model: str
    what: str
    variant: Variant
    runtime: str
    predictor: Predictor | None = None
    stats: LatencyStats | None = None
    accuracy: float | None = None
    ratios: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.model}: {self.what}"


@dataclass
class Inputs:
    """Texts and the task: calibration (train), accuracy (test, with labels), timing samples."""

    task: Task
    train: list[str]
    test: list[str]
    labels: list[int]
    seed: int = 0
    max_length: int = 64


def from_run(run_dir: Path, teacher: str | None, student: str | None) -> tuple[list[Model], Inputs]:
    from compress.core.recipe import parse_recipe
    from compress.run.state import read_state

    state = read_state(run_dir)
    variants = [Variant.from_record(record) for record in state["variants"]]
    by_name = {v.name: v for v in variants}
    baseline = next((v for v in variants if v.is_torch), variants[0]).name
    teacher = teacher or f"{baseline}-onnx"
    if teacher not in by_name or not by_name[teacher].is_onnx:
        raise CompressError(f"{run_dir}: no ONNX variant {teacher!r}; pass --teacher NAME")
    models = [_model("teacher", by_name[teacher], by_name.get(f"{base_name(teacher)}-int8"))]
    fp32_onnx = [v for v in variants if v.is_onnx and v.precision == "fp32" and v.name != teacher]
    student = student or (fp32_onnx[-1].name if fp32_onnx else None)
    if student:
        if student not in by_name or not by_name[student].is_onnx:
            raise CompressError(f"{run_dir}: no ONNX variant {student!r}; pass --student NAME")
        models.append(_model("student", by_name[student], by_name.get(f"{base_name(student)}-int8")))
    recipe = parse_recipe(state["recipe"], str(run_dir / "state.json"))
    task = get_task(recipe.task.kind)
    splits = task.load_splits(recipe.data)
    task = task.for_data(splits)
    inputs = Inputs(task, list(splits.train.inputs), list(splits.test.inputs), list(splits.test.labels),
                    recipe.seed, recipe.model.max_length)
    return models, inputs


def _model(label: str, fp32: Variant, int8: Variant | None) -> Model:
    ort_int8 = int8.path if int8 is not None and int8.is_onnx else None
    return Model(f"{label} ({fp32.name})", fp32.path, fp32.processor_dir, ort_int8)


def from_paths(args) -> tuple[list[Model], Inputs]:
    if not args.tokenizer:
        raise CompressError("--teacher-onnx needs --tokenizer DIR (the folder holding tokenizer.json)")
    models = [Model(f"teacher ({args.teacher_onnx.name})", args.teacher_onnx, args.tokenizer, args.teacher_int8)]
    if args.student_onnx:
        models.append(Model(f"student ({args.student_onnx.name})", args.student_onnx, args.student_tokenizer or
                            args.tokenizer, args.student_int8))
    from compress.core.sections import DataConfig

    task = get_task()
    splits = task.load_splits(DataConfig(dataset=args.dataset))
    task = task.for_data(splits)
    return models, Inputs(task, list(splits.train.inputs), list(splits.test.inputs), list(splits.test.labels),
                          max_length=args.max_length)


def quantize_nncf(model: Model, inputs: Inputs, work: Path, samples: int, console: Console) -> None:
    from compress.quantization.openvino import quantize_for_openvino

    processor = inputs.task.processor(model.processor_dir, inputs.max_length)
    examples = inputs.task.encode(processor, calibration_texts(inputs.train, samples, inputs.seed))
    calibration = [examples.collate([i]) for i in range(len(examples))]
    started = time.perf_counter()
    target = work / model.label.split(" ")[0] / "nncf-int8.xml"
    model.nncf_int8 = quantize_for_openvino(model.fp32, target, calibration)
    model.nncf_seconds = time.perf_counter() - started
    console.print(f"  NNCF INT8 of {model.label}: {model.nncf_int8} ({model.nncf_seconds:.0f} s)")


def rows_for(model: Model, bf16: bool) -> list[Row]:
    def variant(path: Path, fmt: str, precision: str) -> Variant:
        return Variant(path.stem, fmt, precision, path, model.processor_dir, "openvino-compare")

    fp32 = variant(model.fp32, ONNX, "fp32")
    rows = [Row(model.label, REFERENCE, fp32, "onnxruntime"), Row(model.label, "FP32 ONNX on OpenVINO (f32)", fp32, "openvino")]
    if bf16:
        rows.append(Row(model.label, "FP32 ONNX on OpenVINO (bf16 default)", fp32, "openvino-bf16"))
    if model.ort_int8:
        int8 = variant(model.ort_int8, ONNX, "int8")
        rows.append(Row(model.label, ORT_INT8, int8, "onnxruntime"))
        rows.append(Row(model.label, "ORT dynamic INT8 on OpenVINO", int8, "openvino"))
    if model.nncf_int8:
        rows.append(Row(model.label, "NNCF INT8 IR on OpenVINO", variant(model.nncf_int8, OPENVINO, "int8"), "openvino"))
    return rows


def size_mb(variant: Variant) -> float:
    return variant.size_bytes() / 1e6


def measure(rows: list[Row], inputs: Inputs, args, console: Console) -> None:
    for row in rows:
        try:
            row.predictor = open_runtime(row.variant, row.runtime, "cpu", args.threads)
        except CompressError as error:
            row.error = str(error).splitlines()[0]
            console.print(f"  [yellow]skipped[/] {row.key}: {row.error}")
    live = [row for row in rows if row.predictor is not None]
    if args.accuracy_texts:
        texts, labels = inputs.test[: args.accuracy_texts], inputs.labels[: args.accuracy_texts]
        for row in live:
            processor = inputs.task.processor(row.variant.processor_dir, inputs.max_length)
            logits = predict_logits(row.predictor, inputs.task.encode(processor, texts), 64)
            row.accuracy = inputs.task.primary(logits, labels)
    feeds = {row.key: inputs.task.dummy_inputs(row.variant.processor_dir, args.batch, args.seq, inputs.test) for row in live}
    console.print(f"  timing {len(live)} rows: {args.rounds} interleaved rounds at b{args.batch} s{args.seq}, "
                  f"{args.threads} threads")
    stats = measure_interleaved({row.key: row.predictor for row in live}, feeds, args.warmup, args.rounds,
                                primed=True, prime_ms=10.0)
    for row in live:
        row.stats = stats[row.key]
    for row in live:
        for reference in (REFERENCE, ORT_INT8):
            base = next((r for r in live if r.model == row.model and r.what == reference), None)
            if base is not None:
                row.ratios[reference] = paired_ratio(base.stats.samples_ms, row.stats.samples_ms)


def _ratio(row: Row, reference: str) -> str:
    ratio = row.ratios.get(reference)
    if not ratio:
        return "-"
    text = f"{ratio['ratio']:.2f}x [{ratio['p25']:.2f}-{ratio['p75']:.2f}]"
    return text if ratio["trusted"] else text + " noisy"


def table_rows(rows: list[Row]) -> list[list[str]]:
    lines = []
    for row in rows:
        if row.stats is None:
            skipped = "skipped: " + (row.error or "-")
            lines.append([row.model, row.what, skipped, "-", "-", "-", "-", f"{size_mb(row.variant):.1f}"])
            continue
        accuracy = "-" if row.accuracy is None else f"{100 * row.accuracy:.2f}%"
        lines.append([row.model, row.what, f"{row.stats.p50:.2f}", f"{row.stats.p90:.2f}", _ratio(row, REFERENCE),
                      _ratio(row, ORT_INT8), accuracy, f"{size_mb(row.variant):.1f}"])
    return lines


HEADER = ["model", "artifact on runtime", "p50 ms", "p90 ms", "speed-up vs FP32 on ORT", "vs ORT INT8 on ORT",
          "accuracy", "MB"]


def markdown(rows: list[Row], models: list[Model], args, source: str) -> str:
    versions = {name: _version(name) for name in ("onnxruntime", "openvino", "nncf")}
    from compress.evaluation.environment import cpu_description

    cpu, flags = cpu_description()
    lines = [
        "# OpenVINO beside ONNX Runtime",
        "",
        f"Models from `{source}`; b{args.batch} s{args.seq}, {args.threads} threads, {args.rounds} interleaved rounds "
        f"(each call primed), on {cpu} ({', '.join(flags)}), {platform.python_version()}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        "Speed-ups are medians of per-round ratios (interquartile range in brackets); > 1 is faster. "
        + (f"Accuracy on the first {args.accuracy_texts} test texts." if args.accuracy_texts else ""),
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(rows)]
    for model in models:
        if model.nncf_seconds is not None:
            lines.append(f"\nNNCF quantized {model.label} in {model.nncf_seconds:.0f} s ({args.calibration_samples} "
                         "train texts, one per batch, preset performance).")
    lines.append("\nOpenVINO 'f32' pins `INFERENCE_PRECISION_HINT=f32` (the `openvino` runtime); 'bf16 default' is "
                 "what OpenVINO does unasked on a CPU with bfloat16 (the `openvino-bf16` runtime).")
    lines.append("\n```bash\npython " + " ".join(["benchmarks/openvino_compare.py", *sys.argv[1:]]) + "\n```")
    return "\n".join(lines) + "\n"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", type=Path, help="A run directory (the edge recipe's, say).")
    parser.add_argument("--teacher", help="Run dir: the teacher's FP32 ONNX variant (default <baseline>-onnx).")
    parser.add_argument("--student", help="Run dir: the student's FP32 ONNX variant (default: the last other one).")
    parser.add_argument("--no-student", action="store_true", help="Run dir: the teacher only.")
    parser.add_argument("--teacher-onnx", type=Path, help="Instead of a run dir: the teacher's FP32 ONNX file.")
    parser.add_argument("--teacher-int8", type=Path, help="Its ONNX Runtime dynamic INT8 file.")
    parser.add_argument("--student-onnx", type=Path, help="A student's FP32 ONNX file.")
    parser.add_argument("--student-int8", type=Path, help="Its ONNX Runtime dynamic INT8 file.")
    parser.add_argument("--tokenizer", type=Path, help="Folder with the teacher's tokenizer.json (path mode).")
    parser.add_argument("--student-tokenizer", type=Path, help="The student's, when it differs (vocabulary pruning).")
    parser.add_argument("--dataset", default="rotten_tomatoes", help="Path mode: calibration and accuracy texts.")
    parser.add_argument("--max-length", type=int, default=64, help="Path mode: tokens per text (calibration, accuracy).")
    parser.add_argument("--work", type=Path, help="Where the NNCF IRs go (default: RUN_DIR/openvino-compare).")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--calibration-samples", type=int, default=256)
    parser.add_argument("--accuracy-texts", type=int, default=1000, help="Test texts scored per row (0: none).")
    parser.add_argument("--no-bf16", action="store_true", help="Leave out OpenVINO's bf16 default.")
    parser.add_argument("--out", type=Path, help="Write the Markdown here.")
    args = parser.parse_args(argv)
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
    try:
        if args.run_dir:
            models, inputs = from_run(args.run_dir, args.teacher, args.student)
            models = models[:1] if args.no_student else models
            source, work = str(args.run_dir), args.work or args.run_dir / "openvino-compare"
        elif args.teacher_onnx:
            models, inputs = from_paths(args)
            source, work = str(args.teacher_onnx.parent), args.work or Path("runs") / "openvino-compare"
        else:
            raise CompressError("give a run directory or --teacher-onnx FILE")
        for model in models:
            quantize_nncf(model, inputs, work, args.calibration_samples, console)
        from compress.runtimes.openvino import has_bf16

        rows = [row for model in models for row in rows_for(model, not args.no_bf16 and has_bf16())]
        measure(rows, inputs, args, console)
    except CompressError as error:
        console.print(f"[red]error[/]: {error}")
        return 2
    table = Table(title=f"OpenVINO vs ONNX Runtime, b{args.batch} s{args.seq}, {args.threads} threads")
    for column in HEADER:
        table.add_column(column)
    for cells in table_rows(rows):
        table.add_row(*cells)
    console.print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(markdown(rows, models, args, source))
        console.print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
