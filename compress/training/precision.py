"""``precision: auto``: bf16 autocast only where this machine computes bf16 natively and measurably faster.

``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` answers True wherever oneDNN can *emulate* bf16 on
AVX-512: on an Intel Xeon with AVX512-VNNI but no AVX512-BF16 a bf16 [128x384]x[384x1536] matmul took
7.3 ms against 2.7 ms in fp32 (2.7x slower), and the edge recipe's teacher caching 860 s against 158 s
on an AMD EPYC with AVX512-BF16. So ``auto`` needs both:

1. the CPU's own flags (``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo``; no flags to read, as off
   Linux: fp32), and
2. a micro-benchmark of the matmul training spends most of its time in (MiniLM's FFN up-projection,
   [256 tokens x 384] x [384 x 1536], fp32 against bf16 autocast, interleaved, best of 7; ~0.1 s on the
   EPYC, well under a second where bf16 is emulated) in which bf16 is at least ``BF16_MIN_SPEEDUP``
   faster.

The decision is cached per machine fingerprint (:mod:`compress.core.machine`) and recorded with its reason
and measured times, which the report's environment block shows. A decision measured while the machine
was busy is used but not cached: on 2 cores at load 9 the same matmul took 47 ms in fp32 and 71 ms in
bf16 against 2.7 / 0.7 ms idle, and a cached fallback would have stuck.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from rich.console import Console

from compress.core import machine
from compress.core.machine import CpuInfo, MachineCache, fingerprint, fingerprint_key

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""``/proc/cpuinfo`` flags of CPUs with bf16 matrix instructions (AVX512-BF16 dot products, AMX tiles)."""
BF16_MIN_SPEEDUP = 1.1
"""bf16 must beat fp32 by this factor in the micro-benchmark; on the EPYC it was ~4x, emulated ~0.4x."""
BENCH_SHAPE = (256, 384, 1536)
"""(tokens, hidden, FFN) of the benchmarked matmul: MiniLM's FFN up-projection over a batch's tokens."""
WARMUP, ROUNDS = 3, 7

Timer = Callable[[str], float]
"""``timer("fp32" | "bf16") -> milliseconds`` of one benchmarked matmul in that precision."""


@dataclass(frozen=True)
class PrecisionDecision:
    requested: str
    precision: str
    reason: str
    fp32_ms: float | None = None
    bf16_ms: float | None = None
    native_flags: tuple[str, ...] = ()
    threads: int | None = None
    cached: bool = False
    """True when the decision came from the per-machine cache (no benchmark run)."""

    @property
    def fell_back(self) -> bool:
        """``auto`` chose fp32 (a log note says so once)."""
        return self.requested == "auto" and self.precision == "fp32"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "native_flags": list(self.native_flags)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrecisionDecision:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**{**known, "native_flags": tuple(known.get("native_flags", ()))})


class MatmulTimer:
    """Times one ``BENCH_SHAPE`` matmul, plain fp32 or under CPU bf16 autocast (casts included, as in training)."""

    def __init__(self, shape: tuple[int, int, int] = BENCH_SHAPE) -> None:
        import torch

        tokens, hidden, ffn = shape
        generator = torch.Generator().manual_seed(0)
        self.torch = torch
        self.inputs = torch.randn(tokens, hidden, generator=generator)
        self.weight = torch.randn(ffn, hidden, generator=generator)

    def __call__(self, precision: str) -> float:
        torch = self.torch
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            torch.nn.functional.linear(self.inputs, self.weight)
        return (time.perf_counter() - start) * 1000.0


def benchmark(timer: Timer, warmup: int = WARMUP, rounds: int = ROUNDS) -> tuple[float, float]:
    """Fastest ms of fp32 and bf16 after ``warmup`` calls of each (oneDNN builds its kernels on the first),
    interleaved so a slow spell of a shared host hits both; the fastest call is the one least disturbed."""
    for _ in range(warmup):
        timer("fp32")
        timer("bf16")
    samples: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(rounds):
        for precision in samples:
            samples[precision].append(timer(precision))
    return min(samples["fp32"]), min(samples["bf16"])


def choose(cpu: CpuInfo, timer: Timer, threads: int | None = None) -> PrecisionDecision:
    """What ``auto`` means on ``cpu``: flags first, then the micro-benchmark (see the module docstring)."""
    if cpu.source == "platform":
        return PrecisionDecision(
            "auto", "fp32", "no CPU flags to read (not Linux): bf16 may be emulated, so fp32", threads=threads
        )
    native = tuple(flag for flag in NATIVE_BF16_FLAGS if flag in cpu.flags)
    try:
        fp32_ms, bf16_ms = benchmark(timer)
    except RuntimeError:  # a torch build without CPU bf16 autocast for this op
        fp32_ms = bf16_ms = None
    measured = (
        f"measured fp32 {fp32_ms:.2f} ms, bf16 {bf16_ms:.2f} ms per [{'x'.join(map(str, BENCH_SHAPE[:2]))}]x"
        f"[{'x'.join(map(str, BENCH_SHAPE[1:]))}] matmul"
        if fp32_ms is not None and bf16_ms is not None
        else "bf16 autocast failed in the benchmark"
    )
    decided = {"fp32_ms": _round(fp32_ms), "bf16_ms": _round(bf16_ms), "native_flags": native, "threads": threads}
    if not native:
        reason = f"CPU has no {' / '.join(NATIVE_BF16_FLAGS)}: bf16 would be emulated ({measured})"
        return PrecisionDecision("auto", "fp32", reason, **decided)
    if fp32_ms is None or bf16_ms is None or bf16_ms * BF16_MIN_SPEEDUP > fp32_ms:
        speedup = f"{fp32_ms / bf16_ms:.2f}x" if fp32_ms and bf16_ms else "no"
        reason = (
            f"CPU has {', '.join(native)} but bf16 was not faster here ({speedup} fp32's speed, "
            f"needs {BF16_MIN_SPEEDUP}x; {measured})"
        )
        return PrecisionDecision("auto", "fp32", reason, **decided)
    reason = f"CPU has {', '.join(native)} and bf16 is {fp32_ms / bf16_ms:.1f}x faster ({measured})"
    return PrecisionDecision("auto", "bf16", reason, **decided)


def cached_choice(
    cpu: CpuInfo | None = None, timer: Timer | None = None, cache: MachineCache | None = None
) -> PrecisionDecision:
    """:func:`choose`, cached per machine fingerprint: the benchmark runs once per CPU, thread count and torch
    (and again while the machine is too busy for its result to be kept)."""
    cpu = cpu or machine.cpu_info()
    identity = fingerprint(cpu)
    key = fingerprint_key(identity)
    cache = cache or MachineCache("precision")
    stored = cache.get(key)
    if stored is not None:
        return replace(PrecisionDecision.from_dict(stored), cached=True)
    busy = machine.busy_load()
    decision = choose(cpu, timer or MatmulTimer(), identity["threads"])
    if busy is not None and decision.fp32_ms is not None:
        load, cores = busy
        note = f"; the machine was busy (load {load} on {cores} cores), so this is measured again next run"
        return replace(decision, reason=decision.reason + note)
    cache.put(key, identity, decision.to_dict())
    return decision


_decided: dict[str, PrecisionDecision] = {}
"""This process's decisions by machine fingerprint: training resolves ``auto`` at every step."""
_announced: set[str] = set()


def decide_precision(requested: str, console: Console | None = None) -> PrecisionDecision:
    """The precision to train in for a recipe's ``precision`` (``fp32``, ``bf16`` or ``auto``).

    With ``console``, an ``auto`` that falls back to fp32 is said once per process (and machine fingerprint).
    """
    if requested != "auto":
        return PrecisionDecision(requested, requested, "set in the recipe")
    key = fingerprint_key(fingerprint())
    if key not in _decided:
        _decided[key] = cached_choice()
    decision = _decided[key]
    if console is not None and decision.fell_back and key not in _announced:
        _announced.add(key)
        console.print(f"    [yellow]precision auto -> fp32[/]: {decision.reason}")
    return decision


def describe_precision(decision: dict[str, Any] | None) -> str:
    """One line for a report: ``bf16 (auto: CPU has avx512_bf16 and bf16 is 4.1x faster (...))``."""
    if not decision:
        return "-"
    if decision.get("requested") != "auto":
        return f"{decision.get('precision')} ({decision.get('reason')})"
    return f"{decision.get('precision')} (auto: {decision.get('reason')})"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
