"""What every rendering of report.json shows the same way: number formats, the headline setting,
the one-line summary per variant. Markdown and HTML both use these, so they never disagree."""

from __future__ import annotations

from typing import Any


def mb(size: int | None) -> str:
    return "-" if not size else f"{size / 1e6:.1f} MB"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.2f} pt"


def count(value: int | None) -> str:
    """12.3M / 4.5G style, for parameters and MACs."""
    if value is None:
        return "-"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.1f}{suffix}"
    return str(value)


def devices(report: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for variant in report["variants"]:
        for device in variant.get("latency_ms", {}):
            if device not in found:
                found.append(device)
    return found


def latency_keys(report: dict[str, Any], device: str) -> list[str]:
    keys: list[str] = []
    for variant in report["variants"]:
        for key in variant.get("latency_ms", {}).get(device, {}):
            if key not in keys:
                keys.append(key)
    return keys


def headline(report: dict[str, Any]) -> tuple[str, str] | None:
    """The (device, setting) the summary quotes: the first device and the first setting measured."""
    for device in devices(report):
        keys = latency_keys(report, device)
        if keys:
            return device, keys[0]
    return None


def spread(variant: dict[str, Any], device: str, key: str) -> dict[str, Any] | None:
    return variant.get("speedup_spread_vs_baseline", {}).get(device, {}).get(key)


def speedup_text(variant: dict[str, Any], device: str, key: str) -> str:
    """``2.91x (IQR 2.70-3.05)``, with a warning mark when the spread is too wide to trust."""
    ratio = variant.get("speedup_vs_baseline", {}).get(device, {}).get(key)
    if ratio is None:
        return "-"
    paired = spread(variant, device, key)
    if not paired:
        return f"{ratio:.2f}x"
    text = f"{ratio:.2f}x (IQR {paired['p25']:.2f}-{paired['p75']:.2f})"
    return text if paired["trusted"] else text + " ⚠ noisy"


def summary_line(report: dict[str, Any], variant: dict[str, Any]) -> str:
    """One sentence a manager can read: accuracy, speed-up and size against the baseline."""
    parts = [f"accuracy {pct(variant.get('accuracy'))}"]
    primary = (report.get("task") or {}).get("primary")
    if variant.get("accuracy") is None and primary and variant.get(primary) is not None:
        parts = [f"test {primary} {variant[primary]:.4f}"]
    if variant.get("accuracy_delta_vs_baseline") is not None:
        parts[-1] += f" ({points(variant['accuracy_delta_vs_baseline'])})"
    where = headline(report)
    if where:
        device, key = where
        stats = variant.get("latency_ms", {}).get(device, {}).get(key)
        if stats:
            parts.append(
                f"{stats['p50']:.2f} ms p50 at {key} on {device}, speed-up {speedup_text(variant, device, key)}"
            )
    ratio = variant.get("size_ratio_vs_baseline")
    if ratio:
        if abs(ratio - 1) < 0.005:
            relation = "same size"
        else:
            relation = f"{ratio:.2f}x smaller" if ratio > 1 else f"{1 / ratio:.2f}x larger"
        parts.append(f"{mb(variant.get('size_bytes'))} on disk, {relation}")
    return "; ".join(parts)


def quantization_trials(variant: dict[str, Any]) -> list[dict[str, Any]]:
    return list(((variant.get("info") or {}).get("quantization") or {}).get("trials") or [])


def memory_text(variant: dict[str, Any], device: str) -> str:
    memory = variant.get("memory", {}).get(device)
    if not memory:
        return "-"
    if "peak_rss_bytes" in memory:
        return f"{mb(memory['peak_rss_bytes'])} peak RSS ({mb(memory.get('model_rss_bytes'))} for the model)"
    return f"{mb(memory.get('peak_allocated_bytes'))} peak allocated"


def trial_config_text(config: dict[str, Any]) -> str:
    parts = [config.get("mode", ""), config.get("format", "") if config.get("mode") == "static" else ""]
    if config.get("mode") == "static":
        parts.append(config.get("calibration", ""))
    if "per_channel" in config:
        parts.append("per-channel" if config["per_channel"] else "per-tensor")
    parts += [f"{k}={v}" for k, v in config.items() if k in ("act_sym", "act_algo")]
    if config.get("excluded_groups"):
        parts.append("FP32: " + ", ".join(config["excluded_groups"]))
    return " ".join(str(p) for p in parts if p != "")


def description_text(recipe: dict[str, Any]) -> str:
    """The recipe's description, and the ``--set`` overrides it ran with (which the description predates)."""
    text = recipe.get("description") or ""
    overrides = recipe.get("overrides") or []
    if overrides:
        sets = " ".join(f"--set {o}" for o in overrides)
        text = (f"{text} " if text else "") + f"Run with overrides: `{sets}` (the description is the recipe file's)."
    return text


def model_text(report: dict[str, Any]) -> str:
    """``Model: **source** (family bert, 22.7M parameters); task ..., single-label: a, b.``"""
    model = report.get("model")
    if not model:
        return ""
    facts = [f"family {model.get('family') or 'unknown'}"]
    if model.get("parameters"):
        facts.append(f"{count(model['parameters'])} parameters")
    labels = model.get("labels") or []
    shown = ", ".join(labels[:12]) + (f" ... ({len(labels)} in all)" if len(labels) > 12 else "")
    kind = {"single": "single-label", "multi": "multi-label", "regression": "regression"}.get(
        model.get("label_kind"), model.get("label_kind")
    )
    return f"Model: **{model.get('source')}** ({', '.join(facts)}); task {model.get('task')}, {kind}: {shown}."


CLASSIFICATION_METRICS = ("accuracy", "agreement_with_baseline")


def task_metric_names(report: dict[str, Any]) -> list[str]:
    """The task's metrics beyond accuracy (multi-label F1, regression correlations, embedding recall ...)."""
    names = (report.get("task") or {}).get("metrics") or []
    return [] if tuple(names) == CLASSIFICATION_METRICS else list(names)


def metric_text(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def task_metric_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]], str] | None:
    """``(header, rows, primary metric)`` of the task's own test metrics per variant; None for plain accuracy."""
    names = task_metric_names(report)
    if not names:
        return None
    rows = [[v["name"]] + [metric_text(v.get(name)) for name in names] for v in report["variants"]]
    return ["variant", *names], rows, (report.get("task") or {}).get("primary") or names[0]


def class_variants(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Variants with a per-class report (3+ classes): the baseline and the last one measured."""
    found = [v for v in report.get("variants", []) if v.get("classes")]
    return found if len(found) <= 2 else [found[0], found[-1]]


def per_class_rows(classes: dict[str, Any]) -> list[list[str]]:
    return [
        [name, pct(row["precision"]), pct(row["recall"]), pct(row["f1"]), str(row["support"])]
        for name, row in classes["per_class"].items()
    ]


PER_CLASS_HEADER = ["class", "precision", "recall", "F1", "support"]
