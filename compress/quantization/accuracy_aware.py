"""Accuracy-aware ORT quantization: try configurations in order, then exclude sensitive MatMul groups.

The search is independent of how a model is quantized or scored: it takes two callables, so it runs the
same on the real teacher (dev accuracy) and on a tiny test model.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compress.core.files import size_bytes
from compress.errors import StageError
from compress.quantization.graph import matmul_groups
from compress.quantization.settings import OrtQuantSettings

Quantizer = Callable[[OrtQuantSettings, Path], Path]
Scorer = Callable[[Path], float]
Timer = Callable[[Path], float]


@dataclass
class Trial:
    settings: OrtQuantSettings
    path: Path
    dev_accuracy: float | None
    latency_ms: float | None
    size_bytes: int
    excluded_groups: list[str] = field(default_factory=list)
    error: str | None = None
    chosen: bool = False

    def record(self) -> dict[str, Any]:
        config = self.settings.trial_config()
        if self.excluded_groups:
            config["excluded_groups"] = list(self.excluded_groups)
        entry: dict[str, Any] = {
            "config": config,
            "dev_accuracy": self.dev_accuracy,
            "latency_ms": self.latency_ms,
            "size_bytes": self.size_bytes,
            "chosen": self.chosen,
        }
        if self.error:
            entry["error"] = self.error
        return entry


@dataclass
class SearchResult:
    best: Trial
    trials: list[Trial]
    met_budget: bool
    baseline_accuracy: float
    sensitivity: dict[str, float]
    """Dev-accuracy gain from keeping each MatMul group in FP32 (only when no configuration passed)."""


def candidate_settings(base: OrtQuantSettings) -> list[OrtQuantSettings]:
    """The user's configuration first, then cheap accuracy levers: per-channel weights, other calibrations."""
    candidates = [base]
    if not base.per_channel:
        candidates.append(base.model_copy(update={"per_channel": True}))
    if base.mode == "static":
        for method in ("percentile", "entropy"):
            if method != base.calibration:
                candidates.append(base.model_copy(update={"per_channel": True, "calibration": method}))
    return candidates


class AccuracyAwareSearch:
    def __init__(
        self,
        source: Path,
        quantize: Quantizer,
        score: Scorer,
        baseline_accuracy: float,
        max_drop_points: float,
        work_dir: Path,
        timer: Timer | None = None,
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.source, self.quantize, self.score, self.timer, self.log = source, quantize, score, timer, log
        self.baseline = baseline_accuracy
        self.floor = baseline_accuracy - max_drop_points / 100.0
        self.work_dir = work_dir
        self.trials: list[Trial] = []

    def meets(self, trial: Trial) -> bool:
        return trial.dev_accuracy is not None and trial.dev_accuracy >= self.floor - 1e-12

    def run_trial(self, settings: OrtQuantSettings, excluded_groups: list[str] | None = None) -> Trial:
        path = self.work_dir / f"trial-{len(self.trials) + 1:02d}.onnx"
        try:
            self.quantize(settings, path)
            accuracy = self.score(path)
            latency = self.timer(path) if self.timer else None
            trial = Trial(settings, path, accuracy, latency, size_bytes(path), list(excluded_groups or []))
        except StageError as error:
            trial = Trial(settings, path, None, None, 0, list(excluded_groups or []), error=error.message)
        self.trials.append(trial)
        shown = "failed: " + trial.error if trial.error else f"dev accuracy {trial.dev_accuracy:.4f}"
        self.log(f"trial {len(self.trials)} {describe(trial)}: {shown}")
        return trial

    def search(self, base: OrtQuantSettings, max_excluded_groups: int | None = None) -> SearchResult:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        for settings in candidate_settings(base):
            if self.meets(self.run_trial(settings)):
                return self._finish({})
        scored = [t for t in self.trials if t.dev_accuracy is not None]
        if not scored:
            raise StageError(
                "quantize: every accuracy-aware trial failed: "
                + "; ".join(t.error or "" for t in self.trials)
            )
        start = max(scored, key=lambda t: t.dev_accuracy or 0.0)
        sensitivity = self.sensitivity(start)
        if any(self.meets(t) for t in self.trials):
            return self._finish(sensitivity)
        ranked = [g for g, gain in sorted(sensitivity.items(), key=lambda kv: -kv[1]) if gain > 0]
        groups = matmul_groups(self.source)
        for count in range(1, min(len(ranked), max_excluded_groups or len(ranked)) + 1):
            chosen_groups = ranked[:count]
            nodes = [n for g in chosen_groups for n in groups[g]]
            settings = start.settings.model_copy(
                update={"exclude_nodes": [*start.settings.exclude_nodes, *nodes]}
            )
            if self.meets(self.run_trial(settings, chosen_groups)):
                break
        return self._finish(sensitivity)

    def sensitivity(self, start: Trial) -> dict[str, float]:
        """Leave-one-group-out: dev accuracy gained by keeping each MatMul group in FP32."""
        self.log("no configuration met the budget; measuring per-group sensitivity (leave one group out)")
        gains = {}
        for group, nodes in matmul_groups(self.source).items():
            settings = start.settings.model_copy(
                update={"exclude_nodes": [*start.settings.exclude_nodes, *nodes]}
            )
            trial = self.run_trial(settings, [group])
            if trial.dev_accuracy is not None and start.dev_accuracy is not None:
                gains[group] = round(trial.dev_accuracy - start.dev_accuracy, 6)
        return gains

    def _finish(self, sensitivity: dict[str, float]) -> SearchResult:
        scored = [t for t in self.trials if t.dev_accuracy is not None]
        passing = [t for t in scored if self.meets(t)]
        # Among passing trials prefer the fewest FP32 nodes (fastest), then accuracy; else the most accurate.
        if passing:
            best = min(passing, key=lambda t: (len(t.settings.exclude_nodes), -(t.dev_accuracy or 0.0)))
        else:
            best = max(scored, key=lambda t: t.dev_accuracy or 0.0)
        best.chosen = True
        return SearchResult(best, self.trials, bool(passing), self.baseline, sensitivity)

    def keep_best(self, result: SearchResult, target: Path) -> Path:
        """Move the chosen trial's file to ``target`` and delete the others."""
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(result.best.path), str(target))
        for trial in result.trials:
            if trial is not result.best:
                trial.path.unlink(missing_ok=True)
        return target


def describe(trial: Trial) -> str:
    s = trial.settings
    parts = [s.mode, s.format if s.mode == "static" else "", s.calibration if s.mode == "static" else ""]
    parts += ["per-channel" if s.per_channel else "per-tensor"]
    if trial.excluded_groups:
        parts.append(f"fp32: {', '.join(trial.excluded_groups)}")
    return " ".join(p for p in parts if p)
