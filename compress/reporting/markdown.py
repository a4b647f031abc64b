"""Render report.json as Markdown for people."""

from __future__ import annotations

from typing import Any


def _mb(size: int | None) -> str:
    return "-" if not size else f"{size / 1e6:.1f} MB"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.2f} pt"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def latency_keys(report: dict[str, Any], device: str) -> list[str]:
    keys: list[str] = []
    for variant in report["variants"]:
        for key in variant.get("latency_ms", {}).get(device, {}):
            if key not in keys:
                keys.append(key)
    return keys


def devices(report: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for variant in report["variants"]:
        for device in variant.get("latency_ms", {}):
            if device not in found:
                found.append(device)
    return found


def render_markdown(report: dict[str, Any]) -> str:
    recipe, data, env = report["recipe"], report["data"], report["environment"]
    lines = [f"# compress report: {recipe['name']}", ""]
    if recipe.get("description"):
        lines += [recipe["description"], ""]
    sizes = data.get("sizes", {})
    lines += [
        f"Data: **{data['name']}** ({', '.join(data.get('labels', []))}); train {sizes.get('train')}, "
        f"dev {sizes.get('dev')}, test {sizes.get('test')}; max length {data.get('max_length')}, "
        f"p95 tokens {data.get('p95_tokens')}. Baseline: **{report['baseline']}**. "
        f"Run took {report['run']['duration_s']:.0f} s.",
        "",
        "## Summary",
        "",
    ]
    main_device = (devices(report) or ["cpu"])[0]
    keys = latency_keys(report, main_device)
    header = ["variant", "runtime", "precision", "test accuracy", "vs baseline", "size", "smaller"]
    header += [f"p50 {k} ({main_device})" for k in keys]
    rows = []
    for v in report["variants"]:
        row = [
            v["name"],
            v["runtime"],
            v["precision"],
            _pct(v.get("accuracy")),
            _points(v.get("accuracy_delta_vs_baseline")),
            _mb(v.get("size_bytes")),
            f"{v['size_ratio_vs_baseline']:.1f}x" if v.get("size_ratio_vs_baseline") else "-",
        ]
        for key in keys:
            stats = v.get("latency_ms", {}).get(main_device, {}).get(key)
            speedup = v.get("speedup_vs_baseline", {}).get(main_device, {}).get(key)
            row.append("-" if not stats else f"{stats['p50']:.2f} ms ({speedup:.1f}x)" if speedup else f"{stats['p50']:.2f} ms")
        rows.append(row)
    lines += _table(header, rows) + [""]

    for device in devices(report):
        lines += [f"## Latency on {device} (ms; p50 / p90 / p99, throughput in samples/s)", ""]
        keys = latency_keys(report, device)
        rows = []
        for v in report["variants"]:
            row = [v["name"]]
            for key in keys:
                s = v.get("latency_ms", {}).get(device, {}).get(key)
                row.append("-" if not s else f"{s['p50']:.2f} / {s['p90']:.2f} / {s['p99']:.2f} ({s['throughput']:.0f}/s)")
            rows.append(row)
        lines += _table(["variant"] + keys, rows) + [""]
    settings = report.get("evaluation", {}).get("settings", {})
    if settings:
        lines += [
            f"Measured with {settings.get('threads')} threads, {settings.get('warmup')} warm-up calls and "
            f"{settings.get('rounds')} interleaved rounds per setting (every variant once per round).",
            "",
        ]
    for note in report.get("evaluation", {}).get("notes", []):
        lines.append(f"- Note: {note}")

    lines += quantization_trials(report)
    lines += ["## Stages", ""]
    rows = [[s["id"], s["kind"], f"{s.get('seconds', 0):.0f} s", s.get("produced") or "-"] for s in report["stages"]]
    lines += _table(["stage", "kind", "time", "produced"], rows) + [""]

    libraries = ", ".join(f"{k} {v}" for k, v in env.get("libraries", {}).items() if v)
    lines += [
        "## Environment",
        "",
        f"- CPU: {env.get('cpu')} ({', '.join(env.get('cpu_flags', [])) or 'no vector flags found'}), "
        f"{env.get('cores')} cores, {env.get('threads')} threads used",
        f"- GPU: {env['gpu']['name'] if env.get('gpu') else 'none'}",
        f"- Libraries: {libraries}",
        f"- Recipe: `{recipe['source']}` (hash {recipe['hash']}), git commit {env.get('git_commit') or 'unknown'}",
        "",
    ]
    return "\n".join(lines)


def _trial_config(config: dict[str, Any]) -> str:
    parts = [config.get("mode", ""), config.get("format", "") if config.get("mode") == "static" else ""]
    if config.get("mode") == "static":
        parts.append(config.get("calibration", ""))
    if "per_channel" in config:
        parts.append("per-channel" if config["per_channel"] else "per-tensor")
    parts += [f"{k}={v}" for k, v in config.items() if k in ("act_sym", "act_algo")]
    if config.get("excluded_groups"):
        parts.append("FP32: " + ", ".join(config["excluded_groups"]))
    return " ".join(str(p) for p in parts if p != "")


def quantization_trials(report: dict[str, Any]) -> list[str]:
    """One table per accuracy-aware quantization: every configuration tried, the chosen one marked."""
    lines: list[str] = []
    for variant in report["variants"]:
        quant = variant.get("info", {}).get("quantization") or {}
        if not quant.get("trials"):
            continue
        budget = quant.get("max_accuracy_drop_points")
        verdict = "met" if quant.get("met_budget") else "**NOT met** (kept the most accurate)"
        lines += [
            f"## Quantization trials: {variant['name']}",
            "",
            f"Budget: at most {budget} points below FP32 dev accuracy "
            f"{_pct(quant.get('baseline_dev_accuracy'))}: {verdict}.",
            "",
        ]
        rows = [
            [
                str(index),
                _trial_config(trial.get("config", {})),
                trial.get("error", "-") if trial.get("dev_accuracy") is None else _pct(trial["dev_accuracy"]),
                "-" if trial.get("latency_ms") is None else f"{trial['latency_ms']:.2f} ms",
                _mb(trial.get("size_bytes")),
                "**yes**" if trial.get("chosen") else "",
            ]
            for index, trial in enumerate(quant["trials"], 1)
        ]
        lines += _table(["#", "configuration", "dev accuracy", "p50 b1", "size", "chosen"], rows) + [""]
    return lines
