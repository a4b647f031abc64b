"""Assemble report.json, the single source every human-readable report is rendered from."""

from __future__ import annotations

import time
from typing import Any

from compress.context import RunContext

SCHEMA_VERSION = 1


def _ratios(baseline: dict[str, Any], latency: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Speed-up of a variant's p50 over the baseline's, per device and setting of the same run."""
    out: dict[str, dict[str, float]] = {}
    for device, settings in latency.items():
        for key, stats in settings.items():
            reference = baseline.get(device, {}).get(key)
            if reference and stats.get("p50"):
                out.setdefault(device, {})[key] = round(reference["p50"] / stats["p50"], 3)
    return out


def variant_entries(ctx: RunContext) -> list[dict[str, Any]]:
    measured = ctx.evaluation.get("variants", {})
    baseline = ctx.baseline
    base_latency = measured.get(baseline.name, {}).get("latency_ms", {})
    base_size = measured.get(baseline.name, {}).get("size_bytes") or baseline.size_bytes()
    base_accuracy = measured.get(baseline.name, {}).get("accuracy")
    entries = []
    for variant in ctx.variants.values():
        result = measured.get(variant.name, {})
        size = result.get("size_bytes") or variant.size_bytes()
        accuracy_value = result.get("accuracy")
        entries.append(
            {
                "name": variant.name,
                "runtime": variant.runtime,
                "precision": variant.precision,
                "stage": variant.stage,
                "path": str(variant.path),
                "accuracy": accuracy_value,
                "accuracy_delta_vs_baseline": (
                    None if accuracy_value is None or base_accuracy is None else round(accuracy_value - base_accuracy, 6)
                ),
                "agreement_with_baseline": result.get("agreement_with_baseline"),
                "size_bytes": size,
                "size_ratio_vs_baseline": round(base_size / size, 3) if size else None,
                "parameters": variant.info.get("parameters"),
                "latency_ms": result.get("latency_ms", {}),
                "speedup_vs_baseline": _ratios(base_latency, result.get("latency_ms", {})),
                "info": variant.info,
            }
        )
    return entries


def build_report(ctx: RunContext) -> dict[str, Any]:
    from compress.evaluation.environment import environment

    settings = ctx.evaluation.get("settings", {})
    return {
        "schema_version": SCHEMA_VERSION,
        "recipe": {
            "name": ctx.recipe.name,
            "description": ctx.recipe.description,
            "source": ctx.recipe.source,
            "hash": ctx.recipe.hash,
            "config": ctx.recipe.to_dict(),
        },
        "run": {
            "directory": str(ctx.run_dir),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ctx.started)),
            "duration_s": round(time.time() - ctx.started, 1),
        },
        "data": {**ctx.task.summary(), "p95_tokens": settings.get("p95_tokens"), "max_length": ctx.max_length,
                 **ctx.data_checks},
        "baseline": ctx.baseline.name,
        "variants": variant_entries(ctx),
        "stages": ctx.stage_records,
        "evaluation": {"settings": settings, "notes": ctx.evaluation.get("notes", [])},
        "environment": environment(settings.get("threads", 0)),
    }
