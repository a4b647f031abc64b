"""The search: measure every candidate, keep those inside the budget, rank them by a short proxy
distillation, train the best few in full and keep the one best on dev."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from torch import nn

from compress.core.machine import MachineCache, fingerprint_key
from compress.distillation.config import DistillConfig
from compress.distillation.run import DistillResult, distill, teacher_indices
from compress.errors import StageError
from compress.runtimes import Inputs
from compress.search.config import BudgetConfig, SearchConfig
from compress.search.latency import MeasuredShape, measure_shapes
from compress.search.space import StudentShape, candidate_shapes, frontier, shape_of, teacher_dims
from compress.tasks.base import Examples, Split, Task
from compress.training.checkpoints import discard_checkpoint

PROGRESS_NAME = "search-progress"
"""Proxy scores already measured (``<stage dir>/search-progress.json``), so a resumed search does not train
its proxies again; keyed like the per-machine caches, by a digest of what the proxy trained."""


@dataclass
class Candidate:
    shape: StudentShape
    name: str
    measured: MeasuredShape
    fits: bool
    why_not: str = ""
    on_frontier: bool = False
    proxy: float | None = None
    final: float | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **self.shape.to_dict(),
            **self.measured.to_dict(),
            "fits": self.fits,
            "why_not": self.why_not,
            "on_frontier": self.on_frontier,
            "proxy_dev": self.proxy,
            "final_dev": self.final,
            "train_seconds": self.seconds,
        }


def config_for(config: DistillConfig, shape: StudentShape, teacher: nn.Module, **update: Any) -> DistillConfig:
    """``config`` with the student's shape set to ``shape`` (and no search)."""
    hidden = None if shape.hidden == teacher.config.hidden_size else shape.hidden
    shape_update: dict[str, Any] = {"layers": shape.layers, "heads": shape.heads, "ffn": shape.ffn, "hidden": hidden}
    if hidden is not None:  # teacher layers cannot be copied into another width: such a student starts random
        shape_update.update(init="random", anneal_heads=0.0)
    return config.model_copy(update={**shape_update, "search": None, **update})


def budget_check(measured: MeasuredShape, budget: BudgetConfig) -> str:
    """Empty when the candidate fits the budget, else why not."""
    reasons = []
    if budget.reference is not None and measured.reference_ratio is not None and measured.reference_ratio > budget.scale:
        reasons.append(f"{measured.reference_ratio:.2f}x the reference's latency > {budget.scale:g}x")
    if budget.latency_ms is not None and measured.p50_ms > budget.latency_ms:
        reasons.append(f"p50 {measured.p50_ms:.2f} ms > {budget.latency_ms:g} ms")
    if budget.size_mb is not None and measured.size_mb > budget.size_mb:
        reasons.append(f"{measured.size_mb:.1f} MB > {budget.size_mb:g} MB")
    return "; ".join(reasons)


def search_student(
    teacher: nn.Module,
    train: Split,
    dev: Split,
    special_ids: set[int],
    mask_id: int | None,
    config: DistillConfig,
    seed: int,
    console: Console,
    example: Inputs,
    timed_inputs: Inputs,
    output_names: tuple[str, ...] | list[str],
    work_dir: Path,
    transfer: Examples | None = None,
    task: Task | None = None,
) -> DistillResult:
    """The best student inside ``config.search``'s budget, trained as ``config`` says; its ``info["search"]``
    lists every candidate (measured latency and size, fit, proxy and final dev score) and why it won.

    ``example``: a small batch of the task's inputs (for export); ``timed_inputs``: the inputs at the budget's
    setting. ``work_dir`` holds the sweep and each candidate's training (resumable); the bulky parts (ONNX
    files, teacher caches, checkpoints) are removed once the search is complete.
    """
    search: SearchConfig = config.search
    budget = search.budget
    started = time.perf_counter()
    shapes, notes = candidate_shapes(search.space, teacher.config)
    if not shapes:
        raise StageError("distill search: the search space has no shape this teacher allows: " + "; ".join(notes))
    reference = shape_of(budget.reference, teacher.config) if budget.reference else None
    console.print(f"    search: {len(shapes)} candidate shapes; budget {describe_budget(budget, reference)}")
    for note in notes:
        console.print(f"    search: {note}")
    measured = measure_shapes(
        teacher, shapes, reference, example, timed_inputs, budget, output_names, work_dir / "sweep", search.rounds,
        search.remeasure, log=console.print,
    )
    shutil.rmtree(work_dir / "sweep", ignore_errors=True)
    sweep_seconds = time.perf_counter() - started
    candidates = {}
    for shape in shapes:
        why_not = budget_check(measured[shape], budget)
        candidates[shape] = Candidate(shape, shape.name(), measured[shape], not why_not, why_not)
    fitting = [shape for shape in shapes if candidates[shape].fits]
    if not fitting:
        fastest = min(candidates.values(), key=lambda c: c.measured.p50_ms)
        raise StageError(
            f"distill search: no candidate fits the budget ({describe_budget(budget, reference)}); the fastest, "
            f"{fastest.name}, measured {fastest.measured.p50_ms:.2f} ms ({fastest.why_not}). Loosen the budget "
            "or add smaller shapes to search.space"
        )
    front = sorted(frontier(fitting), key=lambda s: -measured[s].p50_ms)[: search.proxy_candidates]
    for shape in front:
        candidates[shape].on_frontier = True
    console.print(
        f"    search: {len(fitting)} of {len(shapes)} fit; proxy-training the {len(front)} largest "
        f"({', '.join(s.name() for s in front)})"
    )
    proxy_transfer = transfer.head(min(search.proxy_texts, len(transfer))) if transfer is not None else None
    cache_dir = work_dir / "teacher-cache"  # one cache file: the proxies', then the full trainings' (or both)
    cache_dir.mkdir(parents=True, exist_ok=True)
    proxy_indices = _indices(config, teacher, front)
    proxy_started = time.perf_counter()
    progress = MachineCache(PROGRESS_NAME, work_dir)
    for index, shape in enumerate(front, 1):
        candidate = candidates[shape]
        proxy_config = config_for(config, shape, teacher, epochs=search.proxy_epochs)
        identity = {"config": proxy_config.model_dump(mode="json"), "seed": seed,
                    "transfer_texts": len(proxy_transfer) if proxy_transfer is not None else 0}
        key = fingerprint_key(identity)
        done = progress.get(key)
        if done is not None:
            candidate.proxy, candidate.seconds["proxy"] = done["dev"], done["seconds"]
            console.print(f"    proxy {index}/{len(front)}: {candidate.name}: dev {candidate.proxy:.4f} (done before)")
            continue
        console.print(f"    proxy {index}/{len(front)}: {candidate.name}, {search.proxy_epochs} epoch(s)")
        result = _train(
            teacher, train, dev, special_ids, mask_id, proxy_config,
            seed, console, proxy_transfer, work_dir / "proxy" / candidate.name, task, cache_dir, proxy_indices,
        )
        candidate.proxy = result.info["training"]["best_dev_accuracy"]
        candidate.seconds["proxy"] = result.info["distillation"]["seconds"]
        progress.put(key, identity, {"dev": candidate.proxy, "seconds": candidate.seconds["proxy"]})
        _discard(work_dir / "proxy" / candidate.name)
        console.print(f"    proxy {candidate.name}: dev {candidate.proxy:.4f}")
    proxy_seconds = time.perf_counter() - proxy_started
    ranked = sorted(front, key=lambda s: (-(candidates[s].proxy or 0.0), measured[s].p50_ms))
    finalists = ranked[: search.top_k]
    same_examples = transfer is None or len(proxy_transfer) == len(transfer)
    # the proxies' cache already holds every finalist's hidden states when they train on the same examples
    full_indices = proxy_indices if same_examples else _indices(config, teacher, finalists)
    results: dict[StudentShape, DistillResult] = {}
    full_started = time.perf_counter()
    for index, shape in enumerate(finalists, 1):
        candidate = candidates[shape]
        console.print(f"    full training {index}/{len(finalists)}: {candidate.name}")
        results[shape] = _train(
            teacher, train, dev, special_ids, mask_id, config_for(config, shape, teacher),
            seed, console, transfer, work_dir / "full" / candidate.name, task, cache_dir, full_indices,
        )
        candidate.final = results[shape].info["training"]["best_dev_accuracy"]
        candidate.seconds["full"] = results[shape].info["distillation"]["seconds"]
        console.print(f"    {candidate.name}: dev {candidate.final:.4f}")
    _discard(cache_dir)
    for shape in finalists:
        _discard(work_dir / "full" / candidates[shape].name)
    winner = max(finalists, key=lambda s: (candidates[s].final or 0.0, -measured[s].p50_ms))
    result = results[winner]
    reason = _why(candidates[winner], [candidates[s] for s in finalists], budget, reference)
    console.print(f"    search winner: {candidates[winner].name}: {reason}")
    result.info["search"] = {
        "budget": {**budget.model_dump(mode="json"), "limit": describe_budget(budget, reference),
                   "reference_ms": round(measured[reference].p50_ms, 4) if reference else None,
                   "reference": reference.name() if reference else None},
        "teacher": teacher_dims(teacher.config),
        "space": search.space.model_dump(mode="json"),
        "notes": notes,
        "proxy": {"texts": len(proxy_transfer) if proxy_transfer is not None else 0, "epochs": search.proxy_epochs},
        "top_k": search.top_k,
        "winner": candidates[winner].name,
        "reason": reason,
        "candidates": [candidates[s].to_dict() for s in shapes],
        "seconds": {"sweep": round(sweep_seconds, 1), "proxy": round(proxy_seconds, 1),
                    "full": round(time.perf_counter() - full_started, 1),
                    "total": round(time.perf_counter() - started, 1)},
    }
    return result


def _indices(config: DistillConfig, teacher: nn.Module, shapes: list[StudentShape]) -> frozenset[int]:
    """The teacher hidden states any of ``shapes``' students reads: one cache serves them all."""
    return frozenset().union(*(teacher_indices(config_for(config, s, teacher), teacher) for s in shapes))


def _train(teacher, train, dev, special_ids, mask_id, config, seed, console, transfer, directory, task, cache_dir,
           cache_indices) -> DistillResult:
    directory.mkdir(parents=True, exist_ok=True)
    return distill(
        teacher, train, dev, special_ids, mask_id, config, seed, console, transfer=transfer, work_dir=directory,
        task=task, cache_dir=cache_dir, cache_indices=cache_indices,
    )


def _discard(directory: Path) -> None:
    """Drop a finished training's resume files (checkpoint, teacher cache: GBs for a shared cache)."""
    if directory.is_dir():
        discard_checkpoint(directory)


def describe_budget(budget: BudgetConfig, reference: StudentShape | None) -> str:
    parts = []
    if reference is not None:
        scale = "" if budget.scale == 1 else f"{budget.scale:g}x "
        parts.append(f"{scale}the latency of {reference.name()}")
    if budget.latency_ms is not None:
        parts.append(f"p50 <= {budget.latency_ms:g} ms")
    if budget.size_mb is not None:
        parts.append(f"<= {budget.size_mb:g} MB")
    where = f"{budget.runtime} {budget.precision} at {budget.setting}, {budget.threads} threads"
    return f"{' and '.join(parts)} ({where})"


def _why(winner: Candidate, finalists: list[Candidate], budget: BudgetConfig, reference: StudentShape | None) -> str:
    others = [c for c in finalists if c is not winner]
    against = "; ".join(f"{c.name} dev {c.final:.4f}" for c in others if c.final is not None)
    latency = f"p50 {winner.measured.p50_ms:.2f} ms"
    if winner.measured.reference_ratio is not None:
        latency += f" ({winner.measured.reference_ratio:.2f}x {reference.name() if reference else 'reference'})"
    return (
        f"best dev score {winner.final:.4f} of the {len(finalists)} fully trained"
        + (f" (vs {against})" if against else "")
        + f", inside the budget at {latency}, {winner.measured.size_mb:.1f} MB"
    )
