"""Markdown/HTML rendered from a fixed report.json, the report contract, `compress bench` and `compress report`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from compress.cli import app
from compress.reporting.html import render_comparison_html, render_html
from compress.reporting.markdown import render_markdown
from compress.reporting.svg import Point, pareto_front

FIXTURE = Path(__file__).parent / "data" / "report_fixture.json"
CONTRACT_VARIANT_FIELDS = {"name", "runtime", "precision", "accuracy", "size_bytes", "latency_ms"}
CONTRACT_STATS_FIELDS = {"p50", "p90", "p99", "mean", "throughput", "samples"}


@pytest.fixture
def report() -> dict:
    return json.loads(FIXTURE.read_text())


def test_pareto_front_keeps_only_undominated_points():
    pts = [
        Point("slow-best", 10, 0.82),
        Point("dominated", 9, 0.80),
        Point("fast", 7, 0.81),
        Point("fastest", 2, 0.7),
    ]
    assert [p.label for p in pareto_front(pts)] == ["fastest", "fast", "slow-best"]


def test_html_is_self_contained_and_has_every_section(report):
    page = render_html(report)
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page
    assert page.count("<svg") == 3  # accuracy-latency, size bars, one latency distribution (one setting)
    for text in (
        "Summary",
        "Accuracy vs latency",
        "Pareto front",
        "Size on disk",
        "Latency on cpu",
        "Quantization trials: teacher-int8",
        "static random",
        "Stages",
        "Environment",
        "AMD EPYC 9R14",
        "AVX512-VNNI",
        "Skipped and notes",
        "torch-fp16 on cuda: skipped",
    ):
        assert text in page, text
    summary = re.search(r'<ul class="summary">(.*?)</ul>', page).group(1)
    assert "<b>teacher-int8</b>: accuracy 81.90% (-0.25 pt)" in summary
    assert "speed-up 2.50x (IQR 2.46-2.55)" in summary and "3.94x smaller" in summary
    student = re.search(r"<b>student-int8</b>.*?</li>", summary).group(0)
    assert "noisy" in student  # per-round ratios 1.1x .. 5x: too wide to trust
    assert "noisy" not in re.search(r"<b>teacher-int8</b>.*?</li>", summary).group(0)


def test_scatter_marks_the_pareto_front(report):
    page = render_html(report)
    chart = page[page.index("Accuracy vs latency") : page.index("Size on disk")]
    circles = re.findall(r'<circle[^>]*stroke="#000"[^>]*><title>([^:]+):', chart)
    assert sorted(circles) == [
        "student-int8",
        "teacher-int8",
        "teacher-onnx",
    ]  # teacher is dominated by teacher-onnx
    assert "stroke-dasharray" in chart


def test_markdown_has_summary_ratios_memory_and_trials(report):
    text = render_markdown(report)
    assert text.startswith("# compress report: fixture")
    assert (
        "- **teacher-onnx**: accuracy 82.15% (+0.00 pt); 7.10 ms p50 at b1_s128 on cpu, speed-up 1.44x"
        in text
    )
    assert "4.90x (IQR 2.45-7.81) ⚠ noisy" in text
    assert "wider than 20% of the median" in text
    assert "| teacher | 22.7M | 1.4G | 90.9 MB | 600.0 MB peak RSS (181.8 MB for the model) |" in text
    assert "| 1 | dynamic per-tensor | 81.50% | 4.20 ms | 23.1 MB | **yes** |" in text
    assert "| 2 | static random | 70.20% | 3.90 ms | 23.0 MB |  |" in text
    assert "Budget:" not in text  # no accuracy budget was set for these trials
    assert "hash abc123" in text


def test_comparison_page_lists_both_runs(report):
    other = json.loads(json.dumps(report))
    other["environment"]["cpu"] = "Intel Xeon (the other machine)"
    page = render_comparison_html([("run-a", report), ("run-b", other)])
    assert "compress comparison: 2 runs" in page and "Intel Xeon (the other machine)" in page
    assert "run-a: accuracy" in page and "run-b: speed-up" in page
    assert page.count("Quantization trials: teacher-int8") == 2


def test_report_command_rerenders_and_compares(report, tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps(report))
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "a" / "report.md").is_file()
    out = tmp_path / "both.html"
    result = runner.invoke(app, ["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert '<h1 style="margin-top:48px">a</h1>' in out.read_text() and ">b</h1>" in out.read_text()
    result = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "report.json here" in " ".join(result.output.split())


def assert_contract(report: dict) -> None:
    """The report.json fields other tools rely on (vertical-slice contract, extended additively)."""
    assert isinstance(report["baseline"], str)
    assert report["baseline"] in {v["name"] for v in report["variants"]}
    for key in ("cpu", "cpu_flags", "cores", "threads", "gpu", "libraries", "git_commit"):
        assert key in report["environment"], key
    for variant in report["variants"]:
        assert CONTRACT_VARIANT_FIELDS <= set(variant), variant.keys()
        for device, settings in variant["latency_ms"].items():
            assert device in ("cpu", "cuda")
            for key, stats in settings.items():
                assert re.fullmatch(r"b\d+_s\d+", key)
                assert CONTRACT_STATS_FIELDS <= set(stats)
                assert 0 < stats["p50"] <= stats["p90"] <= stats["p99"]
                assert len(stats["samples"]) == stats["rounds"]


def test_fixture_satisfies_the_contract(report):
    assert_contract(report)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory, tiny_checkpoints):
    from tiny_onnx import export_tiny_onnx

    return tiny_checkpoints["bert"], export_tiny_onnx(
        tiny_checkpoints["bert"], tmp_path_factory.mktemp("onnx")
    )


def test_bench_measures_an_hf_checkpoint_and_an_onnx_file(tiny_models, tmp_path):
    checkpoint, onnx_file = tiny_models
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        app,
        [
            "bench",
            str(checkpoint),
            str(onnx_file),
            "--batch-sizes",
            "1,2",
            "--seq-lengths",
            "16",
            "--rounds",
            "3",
            "--warmup",
            "1",
            "--threads",
            "1",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert_contract(report)
    assert report["baseline"] == "bert"
    by_name = {v["name"]: v for v in report["variants"]}
    assert set(by_name) == {"bert", "tiny"}
    assert by_name["tiny"]["runtime"] == "onnxruntime" and by_name["bert"]["runtime"] == "torch"
    assert set(by_name["tiny"]["latency_ms"]["cpu"]) == {"b1_s16", "b2_s16"}
    # ONNX counts initializer elements; export folds away a few unused weights (e.g. token-type rows).
    assert 0.9 < by_name["tiny"]["parameters"] / by_name["bert"]["parameters"] <= 1.0
    memory = by_name["tiny"]["memory"]["cpu"]
    assert memory["peak_rss_bytes"] > memory["model_rss_bytes"] > 0 and memory["setting"] == "b2_s16"
    assert by_name["bert"]["speedup_spread_vs_baseline"]["cpu"]["b1_s16"]["ratio"] == 1.0
    rendered = CliRunner().invoke(app, ["report", str(out), "--out", str(tmp_path / "bench.html")])
    assert rendered.exit_code == 0 and "Latency on cpu" in (tmp_path / "bench.html").read_text()


def test_bench_rejects_bad_input_with_a_clear_message(tiny_models, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["bench", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no such file" in " ".join(result.output.split())
    result = runner.invoke(app, ["bench", str(tiny_models[0]), "--batch-sizes", "one"])
    assert result.exit_code == 2 and "--batch-sizes" in result.output
    result = runner.invoke(app, ["bench", str(tiny_models[0]), "--runtimes", "tensorflow"])
    assert result.exit_code == 2 and "runtimes" in result.output


def test_head_to_head_states_the_ratio_the_recipe_asks_for(report):
    from compress.errors import StageError
    from compress.reporting.build import head_to_head

    measured = {
        "small": {"latency_ms": {"cpu": {"b1_s8": {"p50": 5.0, "samples": [5.0, 5.0, 4.0, 5.0]}}}},
        "big": {"latency_ms": {"cpu": {"b1_s8": {"p50": 10.0, "samples": [10.0, 10.0, 10.0, 10.0]},
                                       "b1_s16": {"p50": 20.0, "samples": [20.0] * 4}}}},
    }
    (entry,) = head_to_head(measured, [("small", "big")])  # b1_s16: only one of them was timed there
    assert entry["setting"] == "b1_s8" and entry["p50_ratio"] == 2.0
    assert entry["paired"]["ratio"] == 2.0 and entry["paired"]["p75"] == 2.125  # per-round 2, 2, 2.5, 2
    with pytest.raises(StageError, match="report.compare: no measured variant 'smal'; measured: small, big"):
        head_to_head(measured, [("smal", "big")])
    report = {**report, "comparisons": [entry]}
    assert "## Head to head" in render_markdown(report)
    assert "| small | big | b1_s8 (cpu) | 5.00 / 10.00 ms | **2.00x** | 2.00x (IQR 2.00-2.12) |" in render_markdown(report)
    page = render_html(report)
    assert "<h2>Head to head</h2>" in page and "2.00x (IQR 2.00-2.12)" in page and "**" not in page
