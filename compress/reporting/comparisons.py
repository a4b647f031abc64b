"""The "Head to head" table of the views: the latency ratios the recipe asks for
(``report: {compare: [[variant, against], ...]}``), computed by :func:`compress.reporting.build.head_to_head`.

The report's speed-up columns are all against one baseline (the PyTorch teacher); a recipe whose claim
is another pair (the pruned ONNX graph against the unpruned ONNX graph, a student against its teacher's
ONNX graph) names the pair, and the report states that ratio from the same interleaved rounds.
"""

from __future__ import annotations

from typing import Any


def comparison_rows(report: dict[str, Any]) -> list[list[str]]:
    """Table rows (variant, against, setting, p50s, p50 ratio, per-round median with IQR) for the views."""
    rows = []
    for entry in report.get("comparisons", []):
        paired = entry.get("paired")
        rounds = f"{paired['ratio']:.2f}x (IQR {paired['p25']:.2f}-{paired['p75']:.2f})" if paired else "-"
        trusted = not paired or paired.get("trusted", True)
        ratio = f"**{entry['p50_ratio']:.2f}x**" if trusted else f"{entry['p50_ratio']:.2f}x ⚠ noisy"
        if not trusted:
            rounds += " ⚠ noisy"
        rows.append(
            [
                entry["variant"],
                entry["against"],
                f"{entry['setting']} ({entry['device']})",
                f"{entry['p50_ms']:.2f} / {entry['against_p50_ms']:.2f} ms",
                ratio,
                rounds,
            ]
        )
    return rows


COMPARISON_HEADER = ["variant", "against", "setting", "p50 (variant / against)", "faster by p50", "per-round median"]
