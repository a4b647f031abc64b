"""Measure a set of variants side by side: test accuracy, then latency sweeps interleaved per setting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console

from compress.data.dataset import TextDataset
from compress.data.tokenization import TextEncoder
from compress.evaluation.accuracy import accuracy, predict_logits
from compress.evaluation.latency import measure_interleaved, percentile
from compress.evaluation.runners import Predictor, open_predictor
from compress.progress import progress_bar, step
from compress.requirements import cuda_available
from compress.variants import Variant


class LatencySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threads: int = Field(2, ge=1, le=256, description="Intra-op threads for every runtime (fixed, recorded).")
    batch_sizes: list[int] = Field([1, 8], min_length=1, description="Batch sizes to time.")
    seq_lengths: list[int | Literal["p95"]] = Field(
        [128, "p95"], min_length=1, description="Sequence lengths; 'p95' is the task's 95th-percentile token length."
    )
    warmup: int = Field(5, ge=0, description="Untimed calls per variant before measuring.")
    rounds: int = Field(30, ge=3, description="Timed rounds; each round runs every variant once, interleaved.")
    devices: list[Literal["cpu", "cuda"]] = Field(["cpu"], min_length=1)


def token_length_p95(encoder: TextEncoder, texts: Sequence[str]) -> int:
    lengths = [len(ids) for ids in encoder.encode(texts)]
    return int(round(percentile(lengths, 95)))


def latency_inputs(tokenizer_dir, texts: Sequence[str], batch: int, seq: int) -> tuple[np.ndarray, np.ndarray]:
    """A batch of real text tokens exactly ``seq`` long (texts joined, [CLS] ... [SEP] kept)."""
    ids = TextEncoder.from_dir(tokenizer_dir, seq).encode([" ".join(texts[:200])])[0]
    body = ids[1:-1] or [ids[0]]
    fill = (body * (seq // len(body) + 1))[: max(0, seq - 2)]
    row = ([ids[0]] + fill + [ids[-1]])[:seq]
    input_ids = np.tile(np.asarray(row, dtype=np.int64), (batch, 1))
    return input_ids, np.ones_like(input_ids)


def measure_accuracy(
    variants: Sequence[Variant], test: TextDataset, max_length: int, console: Console, threads: int
) -> dict[str, dict[str, float]]:
    """Test accuracy of each variant, and how often it agrees with the first variant's predictions."""
    results: dict[str, dict[str, float]] = {}
    reference = None
    for variant in variants:
        encoder = TextEncoder.from_dir(variant.tokenizer_dir, max_length)
        predictor = open_predictor(variant, "cpu", threads)
        logits = predict_logits(
            predictor, encoder.encode(test.texts), encoder.pad_id, 64, console, f"accuracy {variant.name}"
        )
        predictions = logits.argmax(-1)
        reference = predictions if reference is None else reference
        results[variant.name] = {
            "accuracy": accuracy(logits, test.labels),
            "agreement_with_baseline": float((predictions == reference).mean()),
        }
    return results


def measure_latency(
    variants: Sequence[Variant],
    settings: LatencySettings,
    texts: Sequence[str],
    p95_tokens: int | None,
    console: Console,
) -> tuple[dict[str, dict[str, dict[str, dict[str, float]]]], list[str]]:
    """``{variant: {device: {"b{batch}_s{seq}": stats}}}`` plus notes on anything skipped."""
    results: dict[str, dict[str, dict[str, dict[str, float]]]] = {v.name: {} for v in variants}
    notes: list[str] = []
    for device in settings.devices:
        if device == "cuda" and not cuda_available():
            notes.append("cuda: no CUDA device present; GPU latency skipped")
            continue
        predictors: dict[str, Predictor] = {}
        for variant in variants:
            try:
                predictors[variant.name] = open_predictor(variant, device, settings.threads)
            except Exception as error:  # a runtime missing for one variant must not stop the others
                notes.append(f"{variant.name} on {device}: skipped ({error})")
        for batch in settings.batch_sizes:
            for seq in settings.seq_lengths:
                length = p95_tokens if seq == "p95" else seq
                if length is None:
                    continue
                key = f"b{batch}_s{length}"
                inputs = {n: latency_inputs(_variant(variants, n).tokenizer_dir, texts, batch, length) for n in predictors}
                with progress_bar(console, f"latency {device} {key}", settings.rounds) as bar:
                    stats = measure_interleaved(
                        predictors, inputs, settings.warmup, settings.rounds, on_round=lambda: step(bar)
                    )
                for name, value in stats.items():
                    results[name].setdefault(device, {})[key] = value.to_dict()
    return results, notes


def _variant(variants: Sequence[Variant], name: str) -> Variant:
    return next(v for v in variants if v.name == name)


def evaluate_variants(
    variants: Sequence[Variant],
    settings: LatencySettings,
    test: TextDataset | None,
    max_length: int,
    console: Console,
    latency_texts: Sequence[str],
) -> dict[str, Any]:
    """Accuracy (when ``test`` is given) and latency for every variant; the first is the baseline."""
    import torch

    torch.set_num_threads(settings.threads)
    first_encoder = TextEncoder.from_dir(variants[0].tokenizer_dir, max_length)
    p95 = token_length_p95(first_encoder, test.texts) if test is not None else None
    accuracy_results = measure_accuracy(variants, test, max_length, console, settings.threads) if test else {}
    latency, notes = measure_latency(variants, settings, latency_texts, p95, console)
    return {
        "settings": {**settings.model_dump(), "p95_tokens": p95},
        "variants": {
            v.name: {**accuracy_results.get(v.name, {}), "latency_ms": latency[v.name], "size_bytes": v.size_bytes()}
            for v in variants
        },
        "notes": notes,
    }
