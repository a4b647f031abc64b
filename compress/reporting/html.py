"""Render report.json as one self-contained HTML page (inline CSS and SVG, no scripts, no network)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from compress.reporting import search, svg
from compress.reporting.comparisons import COMPARISON_HEADER, comparison_rows
from compress.reporting.markdown import data_line, gpu_text
from compress.reporting.views import (
    PER_CLASS_HEADER,
    class_variants,
    count,
    description_text,
    devices,
    headline,
    latency_keys,
    mb,
    memory_text,
    model_text,
    pct,
    per_class_rows,
    points,
    quantization_trials,
    speedup_text,
    summary_line,
    task_metric_table,
    trial_config_text,
)
from compress.training.precision import describe_precision

STYLE = """
body { font-family: system-ui, sans-serif; font-size: 16px; line-height: 1.45; color: #222;
       max-width: 1100px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 28px; margin-bottom: 4px; } h2 { font-size: 22px; margin-top: 36px;
     border-bottom: 1px solid #ddd; padding-bottom: 4px; } h3 { font-size: 18px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.noisy { color: #b35900; font-weight: 600; } .muted { color: #666; font-size: 14px; }
ul.summary li { margin: 4px 0; } figure { margin: 8px 0 20px; } figcaption { color: #555; font-size: 14px; }
code { background: #f4f4f4; padding: 1px 4px; }
"""


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_cell(c)}</td>' if i >= numeric_from else f"<td>{_cell(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(text: str) -> str:
    escaped = escape(str(text))
    return escaped.replace("⚠ noisy", '<span class="noisy">⚠ noisy</span>')


def _page(title: str, body: list[str]) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>" + "\n".join(body) + "</body></html>\n"
    )


def _figure(chart: str, caption: str) -> str:
    return f"<figure>{chart}<figcaption>{escape(caption)}</figcaption></figure>"


def accuracy_latency_points(report: dict[str, Any], group: int = 0, prefix: str = "") -> list[svg.Point]:
    where = headline(report)
    if where is None:
        return []
    device, key = where
    found = []
    for v in report["variants"]:
        stats = v.get("latency_ms", {}).get(device, {}).get(key)
        if stats and v.get("accuracy") is not None:
            found.append(svg.Point(prefix + v["name"], stats["p50"], v["accuracy"], group))
    return found


def summary_section(report: dict[str, Any]) -> list[str]:
    items = "".join(
        f"<li><b>{escape(v['name'])}</b>: {_cell(summary_line(report, v))}</li>" for v in report["variants"]
    )
    return ["<h2>Summary</h2>", f'<ul class="summary">{items}</ul>']


def plots_section(report: dict[str, Any]) -> list[str]:
    out = []
    where = headline(report)
    pts = accuracy_latency_points(report)
    if where and pts:
        device, key = where
        out += [
            "<h2>Accuracy vs latency</h2>",
            _figure(
                svg.scatter(
                    pts, f"p50 latency (ms, log scale), {key} on {device}", "test accuracy", "accuracy vs latency",
                    log_x=True,
                ),
                "Each point is a variant; circled points lie on the Pareto front (no other variant is both faster "
                "and more accurate). Variants without a measured accuracy are not plotted.",
            ),
        ]
    sizes, seen = [], set()
    for v in report["variants"]:
        if v.get("size_bytes") and v.get("variant", v["name"]) not in seen:
            seen.add(v.get("variant", v["name"]))
            ratio = v.get("size_ratio_vs_baseline")
            sizes.append(
                (
                    v["name"],
                    v["size_bytes"] / 1e6,
                    f"{mb(v['size_bytes'])}" + (f" ({ratio:.2f}x)" if ratio else ""),
                )
            )
    if sizes:
        out += [
            "<h2>Size on disk</h2>",
            _figure(
                svg.hbars(sizes, "MB", "size on disk"),
                "Weights on disk (ONNX file or safetensors); ratio vs baseline.",
            ),
        ]
    return out


def latency_section(report: dict[str, Any]) -> list[str]:
    out = []
    threshold = report.get("evaluation", {}).get("noisy_relative_iqr", 0.2)
    for device in devices(report):
        out.append(f"<h2>Latency on {escape(device)}</h2>")
        header = [
            "variant",
            "setting",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "mean ms",
            "samples/s",
            "speed-up vs baseline",
        ]
        rows = []
        for v in report["variants"]:
            for key, s in v.get("latency_ms", {}).get(device, {}).items():
                rows.append(
                    [
                        v["name"],
                        key,
                        f"{s['p50']:.2f}",
                        f"{s['p90']:.2f}",
                        f"{s['p99']:.2f}",
                        f"{s.get('mean', s['p50']):.2f}",
                        f"{s.get('throughput', 0):.0f}",
                        speedup_text(v, device, key),
                    ]
                )
        rows.sort(key=lambda r: latency_keys(report, device).index(r[1]))
        out.append(_table(header, rows, numeric_from=2))
        out.append(
            f'<p class="muted">Speed-up: median of per-round ratios (baseline time / variant time in the '
            f"same interleaved round) with its interquartile range; ⚠ noisy marks a spread wider than "
            f"{100 * threshold:.0f}% of the median: rerun on a quieter machine before trusting it.</p>"
        )
        for key in latency_keys(report, device):
            dist = [
                (v["name"], v["latency_ms"][device][key]["samples"])
                for v in report["variants"]
                if v.get("latency_ms", {}).get(device, {}).get(key, {}).get("samples")
            ]
            if dist:
                out.append(f"<h3>{escape(device)} {escape(key)}</h3>")
                out.append(
                    _figure(
                        svg.distributions(dist, "latency per call (ms)", f"latency {key}"),
                        "Dots: every timed call; box: p25-p75; black bar: median; line: p5-p95.",
                    )
                )
    return out


def comparisons_section(report: dict[str, Any]) -> list[str]:
    if not report.get("comparisons"):
        return []
    rows = [[cell.replace("**", "") for cell in row] for row in comparison_rows(report)]
    return ["<h2>Head to head</h2>", _table(COMPARISON_HEADER, rows, numeric_from=3)]


def task_metrics_section(report: dict[str, Any]) -> list[str]:
    """The task's own test metrics per variant (multi-label F1, regression correlations ...)."""
    table = task_metric_table(report)
    if table is None:
        return []
    header, rows, primary = table
    return [
        "<h2>Test metrics</h2>",
        f'<p class="muted">{escape(primary)} is what training and the quantizer\'s budget use.</p>',
        _table(header, rows),
    ]


def classes_section(report: dict[str, Any]) -> list[str]:
    """Per-class precision / recall / F1 and the confusion matrix as a heat map (3+ classes)."""
    out: list[str] = []
    for variant in class_variants(report):
        classes = variant["classes"]
        out += [
            f"<h2>Per class: {escape(variant['name'])} (macro-F1 {pct(classes['macro_f1'])})</h2>",
            _table(PER_CLASS_HEADER, per_class_rows(classes)),
            _figure(
                svg.heatmap(classes["confusion_matrix"], classes["labels"], f"confusion matrix {variant['name']}"),
                "Confusion matrix on the test split: rows are the true class, columns the predicted one; "
                "shading is the share of the true class's rows.",
            ),
        ]
    return out


def facts_section(report: dict[str, Any]) -> list[str]:
    names = devices(report)
    rows = [
        [
            v["name"],
            v.get("runtime", "-"),
            v.get("precision", "-"),
            count(v.get("parameters")),
            count(v.get("macs")),
            mb(v.get("size_bytes")),
        ]
        + [memory_text(v, d) for d in names]
        for v in report["variants"]
    ]
    header = ["variant", "runtime", "precision", "parameters", "MACs", "on disk"] + [
        f"memory ({d})" for d in names
    ]
    return [
        "<h2>Model size and memory</h2>",
        _table(header, rows, numeric_from=3),
        '<p class="muted">CPU memory: peak RSS of a fresh process that imports the runtime, loads only this '
        "variant and runs the largest batch; the model part is that peak minus the RSS before loading. "
        "GPU memory: torch.cuda.max_memory_allocated.</p>",
    ]


def trials_section(report: dict[str, Any]) -> list[str]:
    out = []
    for v in report["variants"]:
        trials = quantization_trials(v)
        if not trials:
            continue
        rows = [
            [
                trial_config_text(t.get("config") or {}),
                pct(t.get("dev_accuracy")),
                "-" if t.get("latency_ms") is None else f"{t['latency_ms']:.2f}",
                mb(t.get("size_bytes")),
                "✔ chosen" if t.get("chosen") else "",
            ]
            for t in trials
        ]
        out += [
            f"<h2>Quantization trials: {escape(v['name'])}</h2>",
            _table(["config", "dev accuracy", "latency ms", "size", ""], rows),
        ]
    return out


def search_section(report: dict[str, Any]) -> list[str]:
    out = []
    for name, facts in search.searches(report):
        items = "".join(f"<li>{_markdown_bold(line)}</li>" for line in search.summary(facts))
        out += [f"<h2>Latency-budget search: {escape(name)}</h2>", f'<ul class="summary">{items}</ul>']
        chart = search.scatter(facts)
        if chart:
            out.append(_figure(chart, "Each point a candidate that had a proxy distillation; circled: the Pareto front."))
        out.append(_table(search.HEADER, [[cell.replace("**", "") for cell in row] for row in search.rows(facts)], 2))
    return out


def stages_section(report: dict[str, Any]) -> list[str]:
    rows = [
        [s["id"], s["kind"], f"{s.get('seconds', 0):.1f} s", s.get("produced") or "-"]
        for s in report.get("stages", [])
    ]
    return (
        ["<h2>Stages</h2>", _table(["stage", "kind", "time", "produced"], rows, numeric_from=2)]
        if rows
        else []
    )


def notes_section(report: dict[str, Any]) -> list[str]:
    notes = report.get("evaluation", {}).get("notes", [])
    if not notes:
        return []
    return ["<h2>Skipped and notes</h2>", "<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>"]


def environment_section(report: dict[str, Any]) -> list[str]:
    env, recipe = report.get("environment", {}), report.get("recipe", {})
    settings = report.get("evaluation", {}).get("settings", {})
    libraries = ", ".join(f"{k} {v}" for k, v in env.get("libraries", {}).items() if v)
    rows = [
        ["CPU", f"{env.get('cpu')} ({', '.join(env.get('cpu_flags', [])) or 'no vector flags found'})"],
        ["cores / threads used", f"{env.get('cores')} / {env.get('threads')}"],
        ["GPU", gpu_text(env)],
        *([["training precision", describe_precision(env["precision"])]] if env.get("precision") else []),
        ["load average (1/5/15 min)", str(env.get("load_average") or "unknown")],
        ["ONNX Runtime providers", ", ".join(env.get("onnxruntime_providers", [])) or "-"],
        ["ONNX Runtime fusions left off (CPU)", ", ".join(env.get("onnxruntime_cpu_disabled_optimizers", [])) or "-"],
        ["libraries", libraries],
        ["platform", str(env.get("platform"))],
        ["recipe", f"{recipe.get('source')} (hash {env.get('recipe_hash') or recipe.get('hash')})"],
        ["git commit", str(env.get("git_commit") or "unknown")],
        [
            "measurement",
            f"{settings.get('warmup')} warm-up calls, {settings.get('rounds')} interleaved rounds"
            f"{' in ' + str(settings['blocks']) + ' alternating blocks' if (settings.get('blocks') or 1) > 1 else ''}"
            f"{', primed' if settings.get('primed') else ''}, "
            f"runtimes {', '.join(settings.get('runtimes', [])) or '-'}",
        ],
    ]
    return ["<h2>Environment</h2>", _table(["", ""], rows, numeric_from=9)]


def run_sections(report: dict[str, Any]) -> list[str]:
    return (
        summary_section(report)
        + task_metrics_section(report)
        + classes_section(report)
        + plots_section(report)
        + latency_section(report)
        + comparisons_section(report)
        + facts_section(report)
        + trials_section(report)
        + search_section(report)
        + stages_section(report)
        + notes_section(report)
        + environment_section(report)
    )


def render_html(report: dict[str, Any]) -> str:
    recipe = report.get("recipe", {})
    body = [f"<h1>compress report: {escape(recipe.get('name', '?'))}</h1>"]
    if description_text(recipe):
        body.append(f"<p>{_markdown_bold(description_text(recipe))}</p>")
    if model_text(report):
        body.append(f"<p>{_markdown_bold(model_text(report))}</p>")
    body.append(f"<p>{_markdown_bold(data_line(report))}</p>")
    return _page(f"compress report: {recipe.get('name', '?')}", body + run_sections(report))


def _markdown_bold(text: str) -> str:
    parts = escape(text).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def render_comparison_html(runs: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """Several runs on one page: a table of runs, one accuracy-latency chart, a side-by-side table, then each run."""
    body = [f"<h1>compress comparison: {len(runs)} runs</h1>"]
    rows = []
    for label, report in runs:
        env, where = report.get("environment", {}), headline(report)
        rows.append(
            [
                label,
                report.get("recipe", {}).get("name", "?"),
                env.get("cpu", "?"),
                gpu_text(env),
                report.get("run", {}).get("started", "?"),
                f"{where[1]} on {where[0]}" if where else "-",
            ]
        )
    body += [
        "<h2>Runs</h2>",
        _table(["run", "recipe", "CPU", "GPU", "started", "headline setting"], rows, 99),
    ]
    pts = [p for index, (label, report) in enumerate(runs) for p in accuracy_latency_points(report, index)]
    if pts:
        body += [
            "<h2>Accuracy vs latency, all runs</h2>",
            _figure(
                svg.scatter(
                    pts,
                    "p50 latency (ms, log scale) at each run's headline setting",
                    "test accuracy",
                    "comparison",
                    groups=[label for label, _ in runs],
                    log_x=True,
                ),
                "Colour = run. Latency from different runs (or machines) is not interleaved: compare speed-ups "
                "within a run, absolute numbers across runs only as a rough guide.",
            ),
        ]
    names = list(dict.fromkeys(v["name"] for _, r in runs for v in r["variants"]))
    header = ["variant"] + [
        f"{label}: {what}" for label, _ in runs for what in ("accuracy", "p50 ms", "speed-up")
    ]
    table = []
    for name in names:
        row = [name]
        for _, report in runs:
            v = next((x for x in report["variants"] if x["name"] == name), None)
            where = headline(report)
            stats = v and where and v.get("latency_ms", {}).get(where[0], {}).get(where[1])
            row += [
                pct(v.get("accuracy")) if v else "-",
                f"{stats['p50']:.2f}" if stats else "-",
                speedup_text(v, *where) if v and where else "-",
            ]
        table.append(row)
    body += ["<h2>Side by side</h2>", _table(header, table)]
    for label, report in runs:
        body += [
            f'<h1 style="margin-top:48px">{escape(label)}</h1>',
            f"<p>{_markdown_bold(data_line(report))}</p>",
        ]
        body += run_sections(report)
    return _page("compress comparison", body)


__all__ = ["render_html", "render_comparison_html", "points"]
