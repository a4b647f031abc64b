"""The edge recipe's targets, checked against a report.json: speed-ups, size, accuracy, run time.

Pure functions of the report dict, so the check is tested on a fixed report and the benchmark script
only adds I/O around it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from compress.errors import CompressError
from compress.evaluation.setting import Setting

MIN_SPEEDUP_VS_TORCH = 10.0
MIN_SPEEDUP_VS_INT8 = 3.0
MIN_SIZE_RATIO = 10.0
MAX_ACCURACY_DROP_PT = 1.0
MAX_RUN_SECONDS = 30 * 60


@dataclass(frozen=True)
class TargetCheck:
    target: str
    measured: float | None
    goal: float
    higher_is_better: bool
    unit: str
    detail: str = ""

    @property
    def passed(self) -> bool:
        if self.measured is None:
            return False
        return self.measured >= self.goal if self.higher_is_better else self.measured <= self.goal

    @property
    def gap(self) -> str:
        """How far from the goal (negative: short of it), in the target's unit."""
        if self.measured is None:
            return "not measured"
        delta = self.measured - self.goal if self.higher_is_better else self.goal - self.measured
        return f"{delta:+.2f}{self.unit}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "gap": self.gap}


def _variant(report: dict[str, Any], name: str) -> dict[str, Any]:
    for variant in report["variants"]:
        if variant["name"] == name:
            return variant
    known = ", ".join(v["name"] for v in report["variants"])
    raise CompressError(f"report has no variant named {name!r}; it has: {known}")


def default_final(report: dict[str, Any]) -> str:
    """The last ONNX or OpenVINO variant: what the edge recipes bundle."""
    onnx = [v["name"] for v in report["variants"] if v["runtime"] in ("onnxruntime", "openvino")]
    if not onnx:
        raise CompressError("report has no ONNX variant; pass the final variant's name")
    return onnx[-1]


def _speedup(
    reference: dict[str, Any], final: dict[str, Any], key: str, goal: float, what: str
) -> TargetCheck:
    name = f"speed-up vs {what}, {key}"
    ref = reference.get("latency_ms", {}).get("cpu", {}).get(key)
    got = final.get("latency_ms", {}).get("cpu", {}).get(key)
    if not ref or not got:
        return TargetCheck(name, None, goal, True, "x", "latency not measured")
    detail = (
        f"p50 {got['p50']:.2f} ms vs {ref['p50']:.2f} ms; p90 ratio {ref['p90'] / got['p90']:.1f}x, "
        f"p99 ratio {ref['p99'] / got['p99']:.1f}x"
    )
    return TargetCheck(name, round(ref["p50"] / got["p50"], 2), goal, True, "x", detail)


def check_targets(
    report: dict[str, Any],
    final: str | None = None,
    int8_baseline: str | None = None,
    bundle_bytes: int | None = None,
) -> list[TargetCheck]:
    """Check ``final`` (default: the last ONNX variant) against the teacher baselines in ``report``.

    ``int8_baseline`` defaults to ``<baseline>-int8``; ``bundle_bytes`` (model + tokenizer) defaults
    to the final variant's model size alone.
    """
    teacher = _variant(report, report["baseline"])
    final_entry = _variant(report, final or default_final(report))
    int8 = _variant(report, int8_baseline or f"{report['baseline']}-int8")
    p95 = report.get("data", {}).get("p95_tokens")
    checks = []
    for setting in [Setting(1, 128)] + ([Setting(1, p95)] if p95 and p95 != 128 else []):
        key = setting.key
        checks.append(_speedup(teacher, final_entry, key, MIN_SPEEDUP_VS_TORCH, "PyTorch FP32 teacher"))
        checks.append(_speedup(int8, final_entry, key, MIN_SPEEDUP_VS_INT8, "teacher ONNX dynamic INT8"))
    size = bundle_bytes or final_entry["size_bytes"]
    what = "bundle (model + tokenizer)" if bundle_bytes else "model file only"
    checks.append(
        TargetCheck(
            "size: teacher weights / bundle",
            round(teacher["size_bytes"] / size, 2),
            MIN_SIZE_RATIO,
            True,
            "x",
            f"{what} {size / 1e6:.1f} MB vs teacher {teacher['size_bytes'] / 1e6:.1f} MB",
        )
    )
    if final_entry.get("accuracy") is None or teacher.get("accuracy") is None:
        checks.append(TargetCheck("test accuracy delta", None, -MAX_ACCURACY_DROP_PT, True, " pt"))
    else:
        delta = round((final_entry["accuracy"] - teacher["accuracy"]) * 100, 2)
        detail = f"{final_entry['accuracy']:.2%} vs teacher {teacher['accuracy']:.2%}"
        checks.append(TargetCheck("test accuracy delta", delta, -MAX_ACCURACY_DROP_PT, True, " pt", detail))
    seconds = report.get("run", {}).get("duration_s")
    minutes = None if seconds is None else round(seconds / 60, 1)
    checks.append(TargetCheck("total run time", minutes, MAX_RUN_SECONDS / 60, False, " min"))
    return checks


def render_targets_markdown(checks: list[TargetCheck], final: str) -> str:
    lines = [
        f"## Edge targets for `{final}`",
        "",
        "| target | measured | goal | result | gap | detail |",
        "|---|---|---|---|---|---|",
    ]
    for c in checks:
        measured = "-" if c.measured is None else f"{c.measured}{c.unit}"
        goal = f"{'>=' if c.higher_is_better else '<='} {c.goal}{c.unit}"
        lines.append(
            f"| {c.target} | {measured} | {goal} | {'PASS' if c.passed else 'MISS'} | {c.gap} | {c.detail} |"
        )
    return "\n".join(lines) + "\n"
