"""``compress bench``: measure models outside any recipe with the code the ``evaluate`` stage uses.

The result has report.json's shape (``variants``, ``baseline``, ``evaluation``, ``environment``), so
``compress report`` renders it like a run's report. The first model is the baseline for speed-ups.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from compress.core.variant import Variant
from compress.errors import CompressError
from compress.evaluation.suite import LatencySettings

# Latency does not depend on which words are fed, only on how many; any English text will do.
FILLER_TEXTS = (
    "a quietly moving story about two brothers who drift apart and find their way back, told with warmth "
    "and a sharp eye for the small details of family life, though the middle act drags a little",
)


def _unique_names(variants: list[Variant]) -> list[Variant]:
    seen: dict[str, int] = {}
    for variant in variants:
        seen[variant.name] = seen.get(variant.name, 0) + 1
        if seen[variant.name] > 1:
            variant.name = f"{variant.name}-{seen[variant.name]}"
    return variants


def bench(
    paths: Sequence[str | Path],
    settings: LatencySettings,
    tokenizer: str | Path | None = None,
    console: Console | None = None,
    trust_model_code: bool = False,
) -> dict[str, Any]:
    """Latency (and memory) of every model in ``paths``, interleaved, as a report.json-shaped dict.

    ``trust_model_code`` allows compress model directories whose loading runs code (a torch.export
    program, a factory); without it they are refused, as in a recipe's ``model.source``.
    """
    from compress.evaluation.environment import environment
    from compress.evaluation.path_variants import variant_from_path
    from compress.evaluation.suite import evaluate_variants
    from compress.reporting.build import SCHEMA_VERSION, measured_entries, noise_threshold

    if not paths:
        raise CompressError(
            "give at least one model: an HF checkpoint directory, a compress model directory or .onnx"
        )
    if any(seq == "p95" for seq in settings.seq_lengths):
        raise CompressError("--seq-lengths: 'p95' needs a dataset; give token counts, e.g. 32,128")
    started = time.time()
    variants = _unique_names([variant_from_path(p, tokenizer=tokenizer, trusted=trust_model_code) for p in paths])
    evaluation = evaluate_variants(
        variants, settings, None, max(settings.seq_lengths), console or Console(), FILLER_TEXTS
    )
    return {
        "schema_version": SCHEMA_VERSION,
        "recipe": {"name": "bench", "description": "", "source": "compress bench", "hash": None},
        "run": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "duration_s": round(time.time() - started, 1),
        },
        "data": None,
        "baseline": variants[0].name,
        "variants": measured_entries(variants, evaluation["variants"], variants[0]),
        "stages": [],
        "evaluation": {
            "settings": evaluation["settings"],
            "notes": evaluation["notes"],
            "noisy_relative_iqr": noise_threshold(),
        },
        "environment": environment(settings.threads),
    }
