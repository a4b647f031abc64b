"""Assemble report.json, the single source every human-readable report is rendered from."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from compress.core.context import RunContext
from compress.core.variant import Variant
from compress.errors import StageError

SCHEMA_VERSION = 1


def speedups(
    baseline: dict[str, Any], latency: dict[str, Any]
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, dict[str, Any]]]]:
    """Speed-up over the baseline per device and setting, and its spread.

    With raw samples from the same interleaved rounds the speed-up is the median per-round ratio
    (see :func:`paired_ratio`); older reports without samples fall back to the ratio of medians.
    """
    from compress.evaluation.latency import paired_ratio

    ratios: dict[str, dict[str, float]] = {}
    spreads: dict[str, dict[str, dict[str, Any]]] = {}
    for device, settings in latency.items():
        for key, stats in settings.items():
            reference = baseline.get(device, {}).get(key)
            if not reference or not stats.get("p50"):
                continue
            if reference.get("samples") and stats.get("samples"):
                paired = paired_ratio(reference["samples"], stats["samples"])
                spreads.setdefault(device, {})[key] = paired
                ratios.setdefault(device, {})[key] = paired["ratio"]
            else:
                ratios.setdefault(device, {})[key] = round(reference["p50"] / stats["p50"], 3)
    return ratios, spreads


def head_to_head(measured: dict[str, Any], pairs: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """One entry per (pair, device, setting) both rows were timed at: p50s, ratio of p50s, and (with raw
    samples) the median of per-round ratios with its IQR, as :func:`speedups` pairs them."""
    entries = []
    for variant, against in pairs:
        for name in (variant, against):
            if name not in measured:
                raise StageError(
                    f"report.compare: no measured variant {name!r}; measured: {', '.join(measured) or 'none'}"
                )
        mine, theirs = measured[variant].get("latency_ms", {}), measured[against].get("latency_ms", {})
        ratios, spreads = speedups(theirs, mine)
        for device, by_setting in ratios.items():
            for key in by_setting:
                stats, reference = mine[device][key], theirs[device][key]
                entry = {
                    "variant": variant,
                    "against": against,
                    "device": device,
                    "setting": key,
                    "p50_ms": stats["p50"],
                    "against_p50_ms": reference["p50"],
                    "p50_ratio": round(reference["p50"] / stats["p50"], 3),
                }
                if key in spreads.get(device, {}):
                    entry["paired"] = spreads[device][key]
                entries.append(entry)
    return entries


def _ordered_rows(variants: Sequence[Variant], measured: dict[str, Any]) -> list[tuple[Variant, str, dict[str, Any]]]:
    """Each variant's own row, then its rows on other runtimes (``name [runtime]``)."""
    rows = []
    for variant in variants:
        rows.append((variant, variant.name, measured.get(variant.name, {})))
        rows += [(variant, n, r) for n, r in measured.items() if r.get("variant") == variant.name and n != variant.name]
    return rows


CLASSIFICATION_ROW = ("accuracy", "agreement_with_baseline")


def measured_entries(
    variants: Sequence[Variant], measured: dict[str, Any], baseline: Variant, metric_names: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """report.json's ``variants`` list: one entry per measured row, with ratios against ``baseline``; the
    task's ``metric_names`` (embeddings' recall@10 ...) are added after ``agreement_with_baseline``."""
    base = measured.get(baseline.name, {})
    base_latency = base.get("latency_ms", {})
    base_size = base.get("size_bytes") or baseline.size_bytes()
    base_accuracy = base.get("accuracy")
    entries = []
    for variant, name, result in _ordered_rows(variants, measured):
        size = result.get("size_bytes") or variant.size_bytes()
        accuracy_value = result.get("accuracy")
        ratios, spreads = speedups(base_latency, result.get("latency_ms", {}))
        entries.append(
            {
                "name": name,
                "variant": variant.name,
                "runtime": result.get("runtime", variant.runtime),
                "precision": result.get("precision", variant.precision),
                "stage": variant.stage,
                "path": str(variant.path),
                "accuracy": accuracy_value,
                "accuracy_delta_vs_baseline": (
                    None if accuracy_value is None or base_accuracy is None else round(accuracy_value - base_accuracy, 6)
                ),
                "agreement_with_baseline": result.get("agreement_with_baseline"),
                **{metric: result.get(metric) for metric in metric_names if metric not in CLASSIFICATION_ROW},
                "size_bytes": size,
                "size_ratio_vs_baseline": round(base_size / size, 3) if size else None,
                "parameters": variant.info.get("parameters"),
                "macs": variant.info.get("macs"),
                "latency_ms": result.get("latency_ms", {}),
                "speedup_vs_baseline": ratios,
                "speedup_spread_vs_baseline": spreads,
                "memory": result.get("memory", {}),
                "info": variant.info,
            }
        )
    return entries


def variant_entries(ctx: RunContext) -> list[dict[str, Any]]:
    entries = measured_entries(
        list(ctx.variants.values()), ctx.evaluation.get("variants", {}), ctx.baseline, ctx.task.metric_names
    )
    measured = ctx.evaluation.get("variants", {})
    for entry in entries:
        classes = measured.get(entry["name"], {}).get("classes")
        if classes:
            entry["classes"] = named_classes(classes, ctx.splits.label_names)
    return entries


def named_classes(classes: dict[str, Any], label_names: Sequence[str]) -> dict[str, Any]:
    """A class report keyed by class index (as evaluation computes it) keyed by the data's label names."""
    names = {str(i): name for i, name in enumerate(label_names)}
    return {
        **classes,
        "labels": [names.get(label, label) for label in classes["labels"]],
        "per_class": {names.get(key, key): value for key, value in classes["per_class"].items()},
    }


def model_summary(ctx: RunContext) -> dict[str, Any]:
    """Which model was compressed, for what: source, family, parameters, task, label kind and labels."""
    config = getattr(ctx.baseline.module(), "config", None) if ctx.baseline.is_torch else None
    return {
        "source": ctx.recipe.model.source,
        "family": getattr(config, "model_type", None),
        "parameters": ctx.baseline.info.get("parameters"),
        "task": ctx.task.name,
        "label_kind": ctx.task.label_kind,
        "labels": list(ctx.splits.label_names),
    }


def noise_threshold() -> float:
    from compress.evaluation.latency import NOISY_RELATIVE_IQR

    return NOISY_RELATIVE_IQR


def requested_comparisons(ctx: RunContext) -> list[tuple[str, str]]:
    """The ``compare`` pairs of the recipe's report stage(s)."""
    return [pair for spec in ctx.recipe.stages if spec.kind == "report" for pair in spec.config.compare]


def precision_decision(ctx: RunContext) -> dict[str, Any] | None:
    """How the run's training chose its precision (``info.precision_decision`` of the last variant that
    recorded one: the distilled student's), for the environment block."""
    decisions = [v.info["precision_decision"] for v in ctx.variants.values() if v.info.get("precision_decision")]
    return decisions[-1] if decisions else None


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
            "overrides": list(ctx.recipe.overrides),
        },
        "model": model_summary(ctx),
        "task": {"name": ctx.task.name, "metrics": list(ctx.task.metric_names), "primary": ctx.task.primary_metric},
        "run": {
            "directory": str(ctx.run_dir),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ctx.started)),
            # the stages' own times, so a resumed or --redo run does not count the hours it sat idle
            "duration_s": round(sum(record["seconds"] for record in ctx.stage_records), 1),
        },
        "data": {**ctx.splits.summary(), "p95_tokens": settings.get("p95_tokens"), "max_length": ctx.max_length,
                 **ctx.data_checks},
        "baseline": ctx.baseline.name,
        "variants": variant_entries(ctx),
        "comparisons": head_to_head(ctx.evaluation.get("variants", {}), requested_comparisons(ctx)),
        "stages": ctx.stage_records,
        "evaluation": {
            "settings": settings,
            "notes": ctx.evaluation.get("notes", []),
            "noisy_relative_iqr": noise_threshold(),
        },
        "environment": {**environment(settings.get("threads", 0), precision_decision(ctx)), "recipe_hash": ctx.recipe.hash},
    }
