"""Measure a set of variants side by side: test accuracy, then latency sweeps interleaved per setting."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from rich.console import Console

from compress.core.options import Options
from compress.core.progress import progress_bar, step
from compress.core.requirements import cuda_available
from compress.core.variant import Variant
from compress.data.dataset import TextDataset
from compress.evaluation.accuracy import accuracy
from compress.evaluation.latency import LatencyStats, TimedSetting, measure_settings, percentile
from compress.evaluation.setting import Setting
from compress.runtimes import (
    DEFAULT_RUNTIMES,
    Inputs,
    Predictor,
    get_runtime,
    open_predictor,
    open_runtime,
    runtime_names,
)
from compress.runtimes.batched import predict_logits
from compress.tasks import Task, get_task
from compress.tasks.metrics import class_report

PositiveInt = Annotated[int, Field(ge=1)]


class LatencySettings(Options):
    threads: int = Field(2, ge=1, le=256, description="Intra-op threads for every runtime (fixed, recorded).")
    batch_sizes: list[PositiveInt] = Field([1, 8], min_length=1, description="Batch sizes to time.")
    seq_lengths: list[int | Literal["p95"]] = Field(
        [128, "p95"], min_length=1, description="Sequence lengths; 'p95' is the task's 95th-percentile token length."
    )
    warmup: int = Field(5, ge=0, description="Untimed calls per variant before measuring.")
    rounds: int = Field(30, ge=3, description="Timed rounds per setting; each round runs every variant once, interleaved.")
    blocks: int = Field(
        5,
        ge=1,
        description="Take each setting's rounds in this many blocks, alternating between settings, so every "
        "setting's samples span the whole measurement instead of one short spell of a shared host.",
    )
    primed: bool = Field(
        True,
        description="Run each model once, untimed, right before each timed call, so no call pays for the "
        "previous model's threads (doubles the calls).",
    )
    prime_ms: float = Field(
        10.0,
        ge=0,
        description="Repeat the untimed priming call until this many ms have passed: PyTorch's OpenMP threads "
        "spin-wait several ms after a forward, longer than one call of a small model.",
    )
    devices: list[Literal["cpu", "cuda"]] = Field(["cpu"], min_length=1)
    runtimes: list[str] = Field(
        list(DEFAULT_RUNTIMES),
        min_length=1,
        description="Runtimes to time each variant on, where they apply (torch.compile is opt-in); "
        "one that cannot run here is skipped with a note.",
    )
    memory: bool = Field(True, description="Measure peak memory per variant (a fresh process per variant on CPU).")

    @field_validator("seq_lengths")
    @classmethod
    def _positive_lengths(cls, lengths: list[int | str]) -> list[int | str]:
        if any(isinstance(n, int) and n < 1 for n in lengths):
            raise ValueError(f"each length must be a whole number >= 1 or 'p95', got {lengths}")
        return lengths

    @field_validator("runtimes")
    @classmethod
    def _known_runtimes(cls, names: list[str]) -> list[str]:
        unknown = [name for name in names if name not in runtime_names()]
        if unknown:
            raise ValueError(f"unknown runtime {', '.join(map(repr, unknown))}; known: {', '.join(runtime_names())}")
        return names


CLASSIFICATION_METRICS = ("accuracy", "agreement_with_baseline")
"""A task naming these metrics is measured as :class:`AccuracyResult` (report.json's classification shape)."""


@dataclass(frozen=True)
class AccuracyResult:
    accuracy: float
    agreement_with_baseline: float
    """How often its predictions match the first (baseline) variant's."""
    classes: dict[str, Any] | None = None
    """Per-class precision / recall / F1, macro-F1 and the confusion matrix, with 3+ classes
    (:func:`compress.tasks.metrics.class_report`; labels by index, named in the report)."""


@dataclass(frozen=True)
class MemoryResult:
    """Peak memory of one row at one setting: RSS of a fresh process on CPU, torch's allocator on CUDA."""

    setting: Setting
    method: str
    peak_rss_bytes: int | None = None
    model_rss_bytes: int | None = None
    library_rss_bytes: int | None = None
    peak_allocated_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """report.json's ``memory.<device>``: the measured numbers, then ``method`` and ``setting``."""
        numbers = {k: v for k, v in asdict(self).items() if k not in ("setting", "method") and v is not None}
        return {**numbers, "method": self.method, "setting": self.setting.key}


@dataclass
class MeasuredRow:
    """One variant on one runtime: what report.json's ``evaluation.variants.<row>`` holds."""

    variant: str
    runtime: str
    precision: str
    latency_ms: dict[str, dict[Setting, LatencyStats]] = field(default_factory=dict)
    """``{device: {setting: stats}}``."""
    memory: dict[str, MemoryResult] = field(default_factory=dict)
    size_bytes: int | None = None
    accuracy: AccuracyResult | None = None
    scores: dict[str, float] | None = None
    """The task's metrics when it is not classification (``task.metric_names``: embeddings' recall@10 ...)."""

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "variant": self.variant,
            "runtime": self.runtime,
            "precision": self.precision,
            "latency_ms": {
                device: {setting.key: stats.to_dict() for setting, stats in by_setting.items()}
                for device, by_setting in self.latency_ms.items()
            },
            "memory": {device: memory.to_dict() for device, memory in self.memory.items()},
        }
        if self.size_bytes is not None:
            row["size_bytes"] = self.size_bytes
        if self.accuracy is not None:
            row.update({key: value for key, value in asdict(self.accuracy).items() if value is not None})
        if self.scores is not None:
            row.update(self.scores)
        return row


def latency_inputs(processor_dir, texts: Sequence[str], batch: int, seq: int) -> Inputs:
    """The task's dummy inputs: a batch of real text tokens exactly ``seq`` long, as named inputs."""
    return get_task().dummy_inputs(processor_dir, batch, seq, texts)


def measure_accuracy(
    variants: Sequence[Variant], test: TextDataset, max_length: int, console: Console, threads: int,
    task: Task | None = None,
) -> dict[str, AccuracyResult | dict[str, float]]:
    """Test accuracy of each variant, and how often it agrees with the first variant's predictions; for a
    task with other metrics, its ``score`` of each variant's outputs against the first variant's."""
    task = task or get_task()
    results: dict[str, AccuracyResult | dict[str, float]] = {}
    reference = None
    for variant in variants:
        examples = task.encode(task.processor(variant.processor_dir, max_length), test.inputs)
        predictor = open_predictor(variant, "cpu", threads)
        logits = predict_logits(predictor, examples, 64, console, f"accuracy {variant.name}")
        reference = logits if reference is None else reference
        if task.metric_names == CLASSIFICATION_METRICS:
            predictions, first = logits.argmax(-1), reference.argmax(-1)
            classes = None
            if logits.shape[-1] >= 3:
                classes = class_report(predictions, test.labels, [str(i) for i in range(logits.shape[-1])])
            results[variant.name] = AccuracyResult(
                accuracy(logits, test.labels), float((predictions == first).mean()), classes
            )
        else:
            results[variant.name] = task.score(logits, reference, test.labels)
    return results


def row_name(variant: Variant, runtime: str) -> str:
    """A variant on its own runtime keeps its name; on another runtime it is ``name [runtime]``."""
    return variant.name if runtime == variant.runtime else f"{variant.name} [{runtime}]"


def largest_setting(settings: LatencySettings, p95_tokens: int | None) -> Setting:
    lengths = [p95_tokens if s == "p95" else s for s in settings.seq_lengths]
    return Setting(max(settings.batch_sizes), max(length for length in lengths if length is not None))


def timed_settings(settings: LatencySettings, p95_tokens: int | None) -> list[Setting]:
    """Every (batch, length) to time, batch-major; 'p95' is dropped when no dataset gave its length."""
    lengths = [p95_tokens if seq == "p95" else seq for seq in settings.seq_lengths]
    return [Setting(batch, length) for batch in settings.batch_sizes for length in lengths if length is not None]


def _open_rows(
    variants: Sequence[Variant], settings: LatencySettings, device: str, rows: dict[str, MeasuredRow], notes: list[str]
) -> dict[str, Predictor]:
    """Every (variant, runtime) that applies on ``device``; the ones that cannot run here become notes."""
    predictors: dict[str, Predictor] = {}
    for variant in variants:
        for runtime in settings.runtimes:
            try:
                predictor = open_runtime(variant, runtime, device, settings.threads)
            except Exception as error:  # one runtime missing for one variant must not stop the others
                notes.append(f"{variant.name} with {runtime} on {device}: skipped ({error})")
                continue
            if predictor is None:
                continue
            name = row_name(variant, runtime)
            predictors[name] = predictor
            rows.setdefault(name, _row(variant, runtime))
    return predictors


def _row(variant: Variant, runtime: str) -> MeasuredRow:
    return MeasuredRow(variant.name, runtime, get_runtime(runtime).precision or variant.precision)


def _usable(
    predictors: dict[str, Predictor], inputs: dict[str, Inputs], device: str, key: Setting, notes: list[str]
) -> dict[str, Predictor]:
    """Predictors whose first call on this setting succeeds (torch.compile may fail only now)."""
    usable = {}
    for name, predictor in predictors.items():
        try:
            predictor.run(inputs[name])
        except Exception as error:  # any runtime failure skips this row for this setting, with a note
            notes.append(f"{name} on {device} {key}: skipped ({type(error).__name__}: {str(error)[:200]})")
            continue
        usable[name] = predictor
    return usable


def _timed_settings(predictors, tokenizers, settings, texts, p95_tokens, device, notes) -> dict[Setting, TimedSetting]:
    """``{setting: (predictors that run at that shape, their inputs)}`` for every setting."""
    timed: dict[Setting, TimedSetting] = {}
    for setting in timed_settings(settings, p95_tokens):
        inputs = {n: latency_inputs(tokenizers[n], texts, setting.batch, setting.seq) for n in predictors}
        usable = _usable(predictors, inputs, device, setting, notes)
        if usable:
            timed[setting] = (usable, inputs)
    return timed


def measure_latency(
    variants: Sequence[Variant],
    settings: LatencySettings,
    texts: Sequence[str],
    p95_tokens: int | None,
    console: Console,
) -> tuple[dict[str, MeasuredRow], list[str]]:
    """``{row name: MeasuredRow}`` plus notes on anything skipped. A row is a variant on one runtime."""
    rows: dict[str, MeasuredRow] = {}
    notes: list[str] = []
    tokenizers = {}
    for device in settings.devices:
        if device == "cuda" and not cuda_available():
            notes.append("cuda: no CUDA device present; GPU latency skipped")
            continue
        predictors = _open_rows(variants, settings, device, rows, notes)
        for variant in variants:
            for runtime in settings.runtimes:
                tokenizers[row_name(variant, runtime)] = variant.processor_dir
        timed = _timed_settings(predictors, tokenizers, settings, texts, p95_tokens, device, notes)
        if timed:
            label = f"latency {device} ({len(timed)} settings, {settings.blocks} alternating blocks)"
            with progress_bar(console, label, settings.rounds * len(timed)) as bar:
                measured = measure_settings(
                    timed, settings.warmup, settings.rounds, settings.blocks, lambda: step(bar), settings.primed,
                    settings.prime_ms,
                )
            for setting, stats in measured.items():
                for name, value in stats.items():
                    rows[name].latency_ms.setdefault(device, {})[setting] = value
        if settings.memory:
            _measure_memory(variants, settings, device, predictors, p95_tokens, texts, tokenizers, rows, notes)
    return rows, notes


def _measure_memory(variants, settings, device, predictors, p95_tokens, texts, tokenizers, rows, notes) -> None:
    """Peak memory at the largest setting: a child process per row on CPU, torch's allocator on CUDA."""
    from compress.evaluation.memory import measure_process_memory

    setting = largest_setting(settings, p95_tokens)
    by_row = {row_name(v, r): (v, r) for v in variants for r in settings.runtimes}
    for name, predictor in predictors.items():
        inputs = latency_inputs(tokenizers[name], texts, setting.batch, setting.seq)
        try:
            if device == "cpu":
                measured = measure_process_memory(*by_row[name], inputs, settings.threads)
                memory = MemoryResult(
                    setting, "peak RSS of a fresh process that loads only this variant", **measured
                )
            else:
                peak = predictor.peak_memory_bytes(inputs)
                if peak is None:
                    notes.append(f"{name} on {device}: memory not measured (only torch reports CUDA memory)")
                    continue
                memory = MemoryResult(setting, "torch.cuda.max_memory_allocated", peak_allocated_bytes=peak)
        except Exception as error:  # memory is secondary: a failure becomes a note, never a failed run
            notes.append(f"{name} on {device}: memory not measured ({str(error)[:200]})")
            continue
        rows[name].memory[device] = memory


def busy_machine_note(load: float | None = None, cores: int | None = None) -> str | None:
    """A warning when other work competed for the CPU while timing (1-minute load above cores + 1).

    Under oversubscription PyTorch's OpenMP threads spin at barriers and eager latency can inflate
    tenfold, while ONNX Runtime (spinning off) degrades gently: such ratios are not trustworthy.
    """
    import os

    load = os.getloadavg()[0] if load is None else load
    cores = (os.cpu_count() or 1) if cores is None else cores
    if load <= cores + 1:  # our own threads count too: one extra runnable job is tolerated
        return None
    return (
        f"the machine was busy while timing (load {load:.1f} on {cores} cores): latencies, PyTorch eager's "
        "above all, are inflated; rerun on an idle machine before trusting the ratios"
    )


def evaluate_variants(
    variants: Sequence[Variant],
    settings: LatencySettings,
    test: TextDataset | None,
    max_length: int,
    console: Console,
    latency_texts: Sequence[str],
    task: Task | None = None,
) -> dict[str, Any]:
    """Accuracy (when ``test`` is given) and latency for every variant; the first is the baseline."""
    import torch

    torch.set_num_threads(settings.threads)
    task = task or get_task()
    first = task.processor(variants[0].processor_dir, max_length)
    p95 = int(round(percentile(task.encode(first, test.inputs).sizes().tolist(), 95))) if test is not None else None
    accuracy_results = measure_accuracy(variants, test, max_length, console, settings.threads, task) if test else {}
    rows, notes = measure_latency(variants, settings, latency_texts, p95, console)
    busy = busy_machine_note()
    if busy:
        console.print(f"    [yellow]warning[/]: {busy}")
        notes.insert(0, busy)
    by_name = {v.name: v for v in variants}
    for variant in variants:  # a variant whose runtime was skipped everywhere still gets its accuracy and size
        rows.setdefault(variant.name, _row(variant, variant.runtime))
    for row in rows.values():
        variant = by_name[row.variant]
        row.size_bytes = variant.size_bytes()
        if row.runtime == variant.runtime:
            result = accuracy_results.get(variant.name)
            if isinstance(result, dict):
                row.scores = result
            else:
                row.accuracy = result
    return {
        "settings": {**settings.model_dump(), "p95_tokens": p95},
        "variants": {name: row.to_dict() for name, row in rows.items()},
        "notes": notes,
    }
