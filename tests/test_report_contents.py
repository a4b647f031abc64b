"""Reports name the model and the overrides, show per-class metrics with a heat map (3+ classes), the
task's own metrics, mark a noisy head-to-head ratio and plot latency on a log axis (issue 19)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from compress.reporting.html import render_html
from compress.reporting.markdown import render_markdown
from compress.reporting.svg import Point, log_ticks, scatter
from compress.tasks.metrics import class_report

FIXTURE = Path(__file__).parent / "data" / "report_fixture.json"


def _report() -> dict:
    report = json.loads(FIXTURE.read_text())
    report["recipe"]["description"] = "embedded all-MiniLM-L6-v2 on Rotten Tomatoes"
    report["recipe"]["overrides"] = ["model.source=/models/mpnet", "finetune.epochs=1"]
    report["model"] = {"source": "/models/mpnet", "family": "mpnet", "parameters": 109_000_000,
                       "task": "text-classification", "label_kind": "single", "labels": ["fresh", "plot", "rotten"]}
    classes = class_report([0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 2], ["fresh", "plot", "rotten"])
    report["variants"][0]["classes"] = classes
    return report


def test_header_names_the_model_and_the_overrides():
    report = _report()
    text = render_markdown(report)
    assert "Run with overrides: `--set model.source=/models/mpnet --set finetune.epochs=1`" in text
    assert "Model: **/models/mpnet** (family mpnet, 109.0M parameters); task text-classification, single-label: " \
           "fresh, plot, rotten." in text
    page = render_html(report)
    assert "<b>/models/mpnet</b> (family mpnet" in page and "--set model.source=/models/mpnet" in page


def test_per_class_metrics_and_confusion_matrix_in_markdown_and_a_heat_map_in_html():
    report = _report()
    name = report["variants"][0]["name"]
    text = render_markdown(report)
    assert f"## Per class: {name} (macro-F1 65.56%)" in text
    assert "| plot | 50.00% | 50.00% | 50.00% | 2 |" in text
    assert "| true fresh | 2 | 1 | 0 |" in text and "| predicted fresh | predicted plot | predicted rotten |" in text
    page = render_html(report)
    assert "<title>true fresh, predicted plot: 1</title>" in page and "rows are the true class" in page


def test_task_metrics_table_for_multi_label_and_regression():
    report = _report()
    report["task"] = {"name": "text-regression", "metrics": ["pearson", "spearman", "mse", "mae",
                                                              "agreement_with_baseline"], "primary": "pearson"}
    for variant in report["variants"]:
        variant.update(pearson=0.91234, spearman=0.9, mse=0.25, mae=0.4, agreement_with_baseline=0.99)
    text = render_markdown(report)
    assert "## Test metrics (pearson is what training and the quantizer's budget use)" in text
    assert f"| {report['variants'][0]['name']} | 0.9123 | 0.9000 | 0.2500 | 0.4000 | 0.9900 |" in text
    report["variants"][0].update(accuracy=None, accuracy_delta_vs_baseline=None)
    assert f"- **{report['variants'][0]['name']}**: test pearson 0.9123;" in render_markdown(report)
    assert "<h2>Test metrics</h2>" in render_html(report)
    assert "Test metrics" not in render_markdown(_report())  # plain classification: accuracy columns only


def test_a_noisy_head_to_head_ratio_is_marked_and_not_bold():
    report = _report()
    paired = {"ratio": 3.47, "p25": 1.8, "p75": 4.2, "relative_iqr": 0.7, "rounds": 10, "trusted": False}
    report["comparisons"] = [{"variant": "a", "against": "b", "device": "cpu", "setting": "b1_s8", "p50_ms": 1.0,
                              "against_p50_ms": 3.47, "p50_ratio": 3.47, "paired": paired}]
    text = render_markdown(report)
    assert "| a | b | b1_s8 (cpu) | 1.00 / 3.47 ms | 3.47x ⚠ noisy | 3.47x (IQR 1.80-4.20) ⚠ noisy |" in text
    assert '<span class="noisy">⚠ noisy</span>' in render_html(report)


def test_latency_axis_is_logarithmic_so_variants_10x_apart_are_both_readable():
    assert log_ticks(2.9, 49.5) == [2.0, 5.0, 10.0, 20.0, 50.0]
    chart = scatter([Point("fast", 3.0, 0.8), Point("slow", 45.0, 0.85)], "ms", "acc", "t", log_x=True)
    xs = [float(x) for x in re.findall(r'<circle cx="([0-9.]+)"', chart)[:2]]
    # linear: 3 ms would sit 6% of the way to 45 ms; on the log axis the two sit far apart and inside the plot
    assert min(xs) > 80 + 0.1 * 580 and max(xs) - min(xs) > 0.6 * 580
