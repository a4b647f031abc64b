"""Head-to-head latency ratios the recipe asks for (``report: {compare: [[variant, against], ...]}``).

The report's speed-up columns are all against one baseline (the PyTorch teacher); a recipe whose claim
is another pair (the pruned ONNX graph against the unpruned ONNX graph, a student against its teacher's
ONNX graph) names the pair, and the report states that ratio from the same interleaved rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from compress.errors import StageError
from compress.evaluation.latency import paired_ratio


def head_to_head(measured: dict[str, Any], pairs: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """One entry per (pair, device, setting) both rows were timed at: p50s, ratio of p50s, and the
    median of per-round ratios with its IQR (rounds are paired: both ran moments apart)."""
    entries = []
    for variant, against in pairs:
        for name in (variant, against):
            if name not in measured:
                raise StageError(
                    f"report.compare: no measured variant {name!r}; measured: {', '.join(measured) or 'none'}"
                )
        mine, theirs = measured[variant].get("latency_ms", {}), measured[against].get("latency_ms", {})
        for device, settings in mine.items():
            for key, stats in settings.items():
                reference = theirs.get(device, {}).get(key)
                if not reference or not stats.get("p50"):
                    continue
                entry = {
                    "variant": variant,
                    "against": against,
                    "device": device,
                    "setting": key,
                    "p50_ms": stats["p50"],
                    "against_p50_ms": reference["p50"],
                    "p50_ratio": round(reference["p50"] / stats["p50"], 3),
                }
                if stats.get("samples") and reference.get("samples"):
                    entry["paired"] = paired_ratio(reference["samples"], stats["samples"])
                entries.append(entry)
    return entries


def comparison_rows(report: dict[str, Any]) -> list[list[str]]:
    """Table rows (variant, against, setting, p50s, p50 ratio, per-round median with IQR) for the views."""
    rows = []
    for entry in report.get("comparisons", []):
        paired = entry.get("paired")
        rounds = f"{paired['ratio']:.2f}x (IQR {paired['p25']:.2f}-{paired['p75']:.2f})" if paired else "-"
        rows.append(
            [
                entry["variant"],
                entry["against"],
                f"{entry['setting']} ({entry['device']})",
                f"{entry['p50_ms']:.2f} / {entry['against_p50_ms']:.2f} ms",
                f"**{entry['p50_ratio']:.2f}x**",
                rounds,
            ]
        )
    return rows


COMPARISON_HEADER = ["variant", "against", "setting", "p50 (variant / against)", "faster by p50", "per-round median"]
