"""Render report.json as Markdown for people."""

from __future__ import annotations

from typing import Any

from compress.reporting.comparisons import COMPARISON_HEADER, comparison_rows
from compress.reporting.distillation import distillation_section
from compress.reporting.search import markdown_section as search_section
from compress.reporting.views import (
    PER_CLASS_HEADER,
    class_variants,
    count,
    description_text,
    devices,
    latency_keys,
    memory_text,
    metric_text,
    model_text,
    per_class_rows,
    speedup_text,
    summary_line,
    task_metric_table,
    trial_config_text,
)
from compress.reporting.views import mb as _mb
from compress.reporting.views import pct as _pct
from compress.reporting.views import points as _points
from compress.training.precision import describe_precision


def _truncated(data: dict[str, Any]) -> str:
    counts = data.get("truncated_texts") or {}
    total = sum(counts.values())
    return f", {total} texts truncated to max length" if total else ""


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    recipe, env = report["recipe"], report["environment"]
    lines = [f"# compress report: {recipe['name']}", ""]
    if description_text(recipe):
        lines += [description_text(recipe), ""]
    if model_text(report):
        lines += [model_text(report), ""]
    lines += [data_line(report), "", "## Summary", ""]
    lines += [f"- **{v['name']}**: {summary_line(report, v)}" for v in report["variants"]] + [""]
    main_device = (devices(report) or ["cpu"])[0]
    keys = latency_keys(report, main_device)
    primary = _table_metric(report)
    header = ["variant", "runtime", "precision", f"test {primary or 'accuracy'}", "vs baseline", "size", "smaller"]
    header += [f"p50 {k} ({main_device})" for k in keys]
    rows = []
    base = next((v for v in report["variants"] if v["name"] == report.get("baseline")), report["variants"][0])
    for v in report["variants"]:
        row = [
            v["name"],
            v["runtime"],
            v["precision"],
            *(_primary_cells(v, base, primary) if primary else (
                _pct(v.get("accuracy")), _points(v.get("accuracy_delta_vs_baseline")))),
            _mb(v.get("size_bytes")),
            f"{v['size_ratio_vs_baseline']:.1f}x" if v.get("size_ratio_vs_baseline") else "-",
        ]
        for key in keys:
            stats = v.get("latency_ms", {}).get(main_device, {}).get(key)
            speedup = v.get("speedup_vs_baseline", {}).get(main_device, {}).get(key)
            row.append("-" if not stats else f"{stats['p50']:.2f} ms ({speedup:.1f}x)" if speedup else f"{stats['p50']:.2f} ms")
        rows.append(row)
    lines += _table(header, rows) + [""]
    lines += _task_metrics(report) + _classes(report)

    for device in devices(report):
        lines += [f"## Latency on {device} (ms; p50 / p90 / p99, throughput in samples/s; speed-up vs baseline)", ""]
        keys = latency_keys(report, device)
        rows = []
        for v in report["variants"]:
            row = [v["name"]]
            for key in keys:
                s = v.get("latency_ms", {}).get(device, {}).get(key)
                row.append(
                    "-" if not s else f"{s['p50']:.2f} / {s['p90']:.2f} / {s['p99']:.2f} ({s['throughput']:.0f}/s); "
                    f"{speedup_text(v, device, key)}"
                )
            rows.append(row)
        lines += _table(["variant"] + keys, rows) + [""]
    if report.get("comparisons"):
        lines += ["## Head to head", ""] + _table(COMPARISON_HEADER, comparison_rows(report)) + [""]
    lines += _model_facts(report)
    lines += _trials(report)
    settings = report.get("evaluation", {}).get("settings", {})
    if settings:
        lines += [
            f"Measured with {settings.get('threads')} threads, {settings.get('warmup')} warm-up calls and "
            f"{settings.get('rounds')} interleaved rounds per setting (every variant once per round, in a "
            "balanced order"
            + ("; each timed call right after untimed calls of the same model"
               + (f" (at least {settings['prime_ms']:g} ms of them)" if settings.get("prime_ms") else "")
               if settings.get("primed") else "")
            + (f"; rounds taken in {settings['blocks']} blocks alternating between settings"
               if (settings.get("blocks") or 1) > 1 else "")
            + "). "
            "Speed-ups are the median of per-round ratios against the baseline with their interquartile range; "
            f"⚠ noisy marks a spread wider than {100 * report['evaluation'].get('noisy_relative_iqr', 0.2):.0f}% "
            "of the median.",
            "",
        ]
    for note in report.get("evaluation", {}).get("notes", []):
        lines.append(f"- Note: {note}")

    lines += distillation_section(report)
    lines += search_section(report)
    lines += ["", "## Stages", ""]
    rows = [[s["id"], s["kind"], f"{s.get('seconds', 0):.0f} s", s.get("produced") or "-"] for s in report.get("stages", [])]
    lines += _table(["stage", "kind", "time", "produced"], rows) + [""]

    libraries = ", ".join(f"{k} {v}" for k, v in env.get("libraries", {}).items() if v)
    lines += [
        "## Environment",
        "",
        f"- CPU: {env.get('cpu')} ({', '.join(env.get('cpu_flags', [])) or 'no vector flags found'}), "
        f"{env.get('cores')} cores, {env.get('threads')} threads used",
        f"- GPU: {gpu_text(env)}",
        *([f"- Training precision: {describe_precision(env['precision'])}"] if env.get("precision") else []),
        f"- Load average when written: {env.get('load_average') or 'unknown'}",
        f"- Libraries: {libraries}",
        f"- Recipe: `{recipe.get('source')}` (hash {recipe.get('hash')}), git commit {env.get('git_commit') or 'unknown'}",
        "",
    ]
    return "\n".join(lines)


def data_line(report: dict[str, Any]) -> str:
    data, run = report.get("data") or {}, report.get("run") or {}
    sizes = data.get("sizes", {})
    text = ""
    if data.get("name"):
        text = (
            f"Data: **{data['name']}** ({', '.join(data.get('labels', []))}); train {sizes.get('train')}, "
            f"dev {sizes.get('dev')}, test {sizes.get('test')}; max length {data.get('max_length')}, "
            f"p95 tokens {data.get('p95_tokens')}{_truncated(data)}. "
        )
    text += f"Baseline: **{report['baseline']}**."
    if run.get("duration_s") is not None:
        text += f" Run took {run['duration_s']:.0f} s (its stages' time)."
    return text


def gpu_text(env: dict[str, Any]) -> str:
    gpu = env.get("gpu")
    if not gpu:
        return "none"
    return f"{gpu['name']} ({gpu.get('memory_gib')} GiB, driver {gpu.get('driver') or '?'}, CUDA {gpu.get('cuda')})"


def _model_facts(report: dict[str, Any]) -> list[str]:
    names = devices(report)
    rows = [
        [v["name"], count(v.get("parameters")), count(v.get("macs")), _mb(v.get("size_bytes"))]
        + [memory_text(v, device) for device in names]
        for v in report["variants"]
    ]
    lines = ["## Model size and memory", ""]
    lines += _table(["variant", "parameters", "MACs", "on disk"] + [f"memory ({d})" for d in names], rows)
    return lines + [
        "",
        "CPU memory: peak RSS of a fresh process that imports the runtime, loads only this variant and runs "
        "the largest batch (the model part is that peak minus the process's RSS before loading).",
        "",
    ]


def _trials(report: dict[str, Any]) -> list[str]:
    """One table per accuracy-aware quantization: every configuration tried, the chosen one marked."""
    lines: list[str] = []
    for variant in report["variants"]:
        quant = variant.get("info", {}).get("quantization") or {}
        if not quant.get("trials"):
            continue
        lines += [f"## Quantization trials: {variant['name']}", ""]
        budget = quant.get("max_accuracy_drop_points")
        if budget is not None:
            verdict = "met" if quant.get("met_budget") else "**NOT met** (kept the most accurate)"
            lines += [
                f"Budget: at most {budget} points below FP32 dev accuracy "
                f"{_pct(quant.get('baseline_dev_accuracy'))}: {verdict}.",
                "",
            ]
        rows = [
            [
                str(index),
                trial_config_text(trial.get("config", {})),
                trial.get("error", "-") if trial.get("dev_accuracy") is None else _pct(trial["dev_accuracy"]),
                "-" if trial.get("latency_ms") is None else f"{trial['latency_ms']:.2f} ms",
                _mb(trial.get("size_bytes")),
                "**yes**" if trial.get("chosen") else "",
            ]
            for index, trial in enumerate(quant["trials"], 1)
        ]
        lines += _table(["#", "configuration", "dev accuracy", "p50 b1", "size", "chosen"], rows) + [""]
    return lines


def _table_metric(report: dict[str, Any]) -> str | None:
    """The task's primary metric when no variant has an accuracy (embeddings: recall@10); None otherwise,
    and the main table shows test accuracy as always."""
    primary = (report.get("task") or {}).get("primary")
    if not primary or primary == "accuracy" or any(v.get("accuracy") is not None for v in report["variants"]):
        return None
    return primary


def _primary_cells(variant: dict[str, Any], base: dict[str, Any], metric: str) -> tuple[str, str]:
    value, reference = variant.get(metric), base.get(metric)
    delta = "-" if value is None or reference is None else f"{value - reference:+.4f}"
    return metric_text(value), delta


def _task_metrics(report: dict[str, Any]) -> list[str]:
    """The task's own test metrics per variant, when they are not plain accuracy."""
    table = task_metric_table(report)
    if table is None:
        return []
    header, rows, primary = table
    return [f"## Test metrics ({primary} is what training and the quantizer's budget use)", ""] + _table(
        header, rows
    ) + [""]


def _classes(report: dict[str, Any]) -> list[str]:
    """Per-class precision / recall / F1 and the confusion matrix (3+ classes)."""
    lines: list[str] = []
    for variant in class_variants(report):
        classes = variant["classes"]
        lines += [f"## Per class: {variant['name']} (macro-F1 {_pct(classes['macro_f1'])})", ""]
        lines += _table(PER_CLASS_HEADER, per_class_rows(classes)) + [""]
        labels = classes["labels"]
        matrix = [
            [f"true {label}"] + [str(n) for n in row]
            for label, row in zip(labels, classes["confusion_matrix"], strict=True)
        ]
        lines += _table(["", *(f"predicted {label}" for label in labels)], matrix) + [""]
    return lines
