"""The edge targets computed from a fixed report.json dict."""

from __future__ import annotations

import pytest

from compress.errors import CompressError
from compress.reporting.targets import check_targets, default_final, render_targets_markdown


def _latency(p50: float) -> dict:
    return {"cpu": {key: {"p50": p50, "p90": p50 * 1.2, "p99": p50 * 1.5} for key in ("b1_s128", "b1_s47")}}


def _report(final_ms: float = 2.5, final_accuracy: float = 0.815, duration_s: float = 1500.0) -> dict:
    return {
        "baseline": "teacher",
        "data": {"p95_tokens": 47},
        "run": {"duration_s": duration_s},
        "variants": [
            {"name": "teacher", "runtime": "torch", "size_bytes": 90_000_000, "accuracy": 0.821,
             "latency_ms": _latency(30.0)},
            {"name": "teacher-onnx", "runtime": "onnxruntime", "size_bytes": 90_000_000, "accuracy": 0.821,
             "latency_ms": _latency(19.0)},
            {"name": "teacher-int8", "runtime": "onnxruntime", "size_bytes": 23_000_000, "accuracy": 0.818,
             "latency_ms": _latency(10.0)},
            {"name": "student-int8", "runtime": "onnxruntime", "size_bytes": 4_000_000,
             "accuracy": final_accuracy, "latency_ms": _latency(final_ms)},
        ],
    }


def _by_target(checks):
    return {c.target: c for c in checks}


def test_all_targets_pass_on_a_good_report():
    checks = _by_target(check_targets(_report(), bundle_bytes=4_500_000))
    assert default_final(_report()) == "student-int8"
    torch_128 = checks["speed-up vs PyTorch FP32 teacher, b1_s128"]
    assert torch_128.measured == 12.0 and torch_128.passed and torch_128.gap == "+2.00x"
    assert checks["speed-up vs teacher ONNX dynamic INT8, b1_s47"].measured == 4.0
    assert checks["size: teacher weights / bundle"].measured == 20.0
    assert checks["test accuracy delta"].measured == -0.6 and checks["test accuracy delta"].passed
    assert checks["total run time"].measured == 25.0 and checks["total run time"].gap == "+5.00 min"
    assert len(checks) == 7 and all(c.passed for c in checks.values())


def test_misses_report_the_gap():
    checks = _by_target(check_targets(_report(final_ms=5.0, final_accuracy=0.80, duration_s=2400)))
    vs_torch = checks["speed-up vs PyTorch FP32 teacher, b1_s128"]
    assert vs_torch.measured == 6.0 and not vs_torch.passed and vs_torch.gap == "-4.00x"
    assert not checks["speed-up vs teacher ONNX dynamic INT8, b1_s128"].passed
    accuracy = checks["test accuracy delta"]
    assert accuracy.measured == -2.1 and not accuracy.passed and accuracy.gap == "-1.10 pt"
    assert checks["total run time"].gap == "-10.00 min"
    # without a bundle size, the model file alone is compared (and said so)
    assert checks["size: teacher weights / bundle"].measured == 22.5
    assert "model file only" in checks["size: teacher weights / bundle"].detail
    table = render_targets_markdown(list(checks.values()), "student-int8")
    assert table.count("| MISS |") == 6 and table.count("| PASS |") == 1


def test_missing_latency_is_a_miss_not_a_crash():
    report = _report()
    report["variants"][3]["latency_ms"] = {}
    check = _by_target(check_targets(report))["speed-up vs PyTorch FP32 teacher, b1_s128"]
    assert check.measured is None and not check.passed and check.gap == "not measured"


def test_unknown_variant_is_named():
    with pytest.raises(CompressError, match="no variant named 'nope'.*student-int8"):
        check_targets(_report(), final="nope")
