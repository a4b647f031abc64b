"""Latency statistics and interleaved measurement of several variants in one run.

Shared 2-core machines swing by 2x between runs, so variants are measured round by round (every
variant once per round, in a balanced order) after a warm-up, and ratios are only ever taken between
numbers of one run.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from compress.runtimes import Inputs, Predictor, batch_size


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), ``q`` in 0..100."""
    if not values:
        raise ValueError("percentile of no samples")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class LatencyStats:
    samples_ms: tuple[float, ...]
    batch_size: int = 1

    @property
    def p50(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p90(self) -> float:
        return percentile(self.samples_ms, 90)

    @property
    def p99(self) -> float:
        return percentile(self.samples_ms, 99)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples_ms)

    @property
    def stdev(self) -> float:
        return statistics.stdev(self.samples_ms) if len(self.samples_ms) > 1 else 0.0

    @property
    def rounds(self) -> int:
        return len(self.samples_ms)

    @property
    def throughput(self) -> float:
        """Samples per second at the median latency."""
        return 1000.0 * self.batch_size / self.p50

    def to_dict(self) -> dict[str, Any]:
        """Summary numbers plus the raw samples (in round order), so reports can plot distributions
        and pair rounds across variants."""
        return {
            "p50": round(self.p50, 4),
            "p90": round(self.p90, 4),
            "p99": round(self.p99, 4),
            "mean": round(self.mean, 4),
            "stdev": round(self.stdev, 4),
            "throughput": round(self.throughput, 2),
            "rounds": len(self.samples_ms),
            "samples": [round(value, 4) for value in self.samples_ms],
        }


def interleaved_order(names: Sequence[str], rounds: int, first_round: int = 0) -> list[list[str]]:
    """Round orders from a Williams design (a balanced Latin square, repeated): over each cycle every
    variant runs first equally often and right after every other variant equally often.

    What one runtime leaves behind for the next call (PyTorch's OpenMP threads still spinning, a cache
    filled with other weights) costs the next variant a roughly fixed time; a plain rotation (A B C, B C A,
    ...) always puts the same neighbour in front of a variant, which skews the ratios of the fastest ones.
    ``first_round`` continues the design where an earlier block of rounds stopped.
    """
    n = len(names)
    if n == 0:
        return [[] for _ in range(rounds)]
    first = [(k + 1) // 2 if k % 2 else (n - k // 2) % n for k in range(n)]  # 0, 1, n-1, 2, n-2, ...
    square = [[(i + r) % n for i in first] for r in range(n)]
    if n % 2:  # odd n needs the mirrored square too for every ordered pair to appear
        square += [row[::-1] for row in square]
    return [[names[i] for i in square[r % len(square)]] for r in range(first_round, first_round + rounds)]


def time_call(predictor: Predictor, inputs: Inputs) -> float:
    """Milliseconds for one call; on CUDA the predictor times itself (CUDA events)."""
    if str(predictor.device).startswith("cuda"):
        return predictor.time_ms(inputs)
    start = time.perf_counter()
    predictor.run(inputs)
    predictor.synchronize()
    return (time.perf_counter() - start) * 1000.0


def prime(predictor: Predictor, inputs: Inputs, at_least_ms: float) -> int:
    """Untimed calls until ``at_least_ms`` have passed (at least one); returns how many were made."""
    calls, spent = 0, 0.0
    while calls == 0 or spent < at_least_ms:
        spent += time_call(predictor, inputs)
        calls += 1
    return calls


def measure_interleaved(
    predictors: Mapping[str, Predictor],
    inputs: Mapping[str, Inputs],
    warmup: int,
    rounds: int,
    on_round: Callable[[], None] | None = None,
    primed: bool = True,
    first_round: int = 0,
    prime_ms: float = 0.0,
) -> dict[str, LatencyStats]:
    """Time each predictor ``rounds`` times on its inputs, interleaved, after ``warmup`` calls each.

    ``primed``: each timed call directly follows an untimed call of the same model, so it measures that
    model warm and alone, as a back-to-back benchmark would. Without it a call pays for whatever ran just
    before: PyTorch's OpenMP threads keep spinning after a forward, and the edge
    student's INT8 call took 3.56 ms right after a PyTorch call against 2.93 ms after another ONNX Runtime
    call; a pause to let them stop costs short calls instead (the cores go idle: 3.35 -> 3.55 ms after 5 ms).
    ``prime_ms``: repeat the untimed call until this long has passed. libgomp's threads (PyTorch's CPU
    build) spin-wait 300,000 pauses after a parallel region, several milliseconds on the AMD EPYC of the
    bundled reports, longer than one call of a small model: primed by one call, the edge student's ONNX
    graph measured 4.27 ms beside PyTorch models against 4.03 ms without them.
    """
    names = list(predictors)
    for name in names:
        for _ in range(warmup):
            time_call(predictors[name], inputs[name])
    samples: dict[str, list[float]] = {name: [] for name in names}
    for order in interleaved_order(names, rounds, first_round):
        for name in order:
            if primed:
                prime(predictors[name], inputs[name], prime_ms)
            samples[name].append(time_call(predictors[name], inputs[name]))
        if on_round:
            on_round()
    return {
        name: LatencyStats(tuple(values), batch_size=batch_size(inputs[name]))
        for name, values in samples.items()
    }


TimedSetting = tuple[Mapping[str, Predictor], Mapping[str, Inputs]]
"""The predictors timed at one input shape, and each one's inputs of that shape."""

K = TypeVar("K", bound=Hashable)


def block_sizes(rounds: int, blocks: int) -> list[int]:
    """``rounds`` split into at most ``blocks`` near-equal blocks (larger ones first)."""
    count = max(1, min(blocks, rounds))
    size, extra = divmod(rounds, count)
    return [size + (1 if index < extra else 0) for index in range(count)]


def measure_settings(
    settings: Mapping[K, TimedSetting],
    warmup: int,
    rounds: int,
    blocks: int = 1,
    on_round: Callable[[], None] | None = None,
    primed: bool = True,
    prime_ms: float = 0.0,
) -> dict[K, dict[str, LatencyStats]]:
    """:func:`measure_interleaved` for several input shapes, their rounds taken in alternating blocks.

    A shared host has slow spells lasting seconds to minutes, and the fastest and slowest variants do
    not slow down alike in them (on this project's 2-core VM the same student/teacher pair measured
    3.8x in one 10-second spell and 4.7x in the next). Measured one setting after the other, each
    setting's ratios come from one short window; in ``blocks`` alternating blocks (s128, s47, s128,
    s47, ...) every setting's samples span the whole measurement. Returns ``{setting: {name: stats}}``
    with the samples in round order, so rounds stay paired across variants.
    """
    samples: dict[K, dict[str, list[float]]] = {key: {name: [] for name in timed} for key, (timed, _) in settings.items()}
    done = 0
    for index, size in enumerate(block_sizes(rounds, blocks)):
        for key, (predictors, inputs) in settings.items():
            stats = measure_interleaved(
                predictors, inputs, warmup if index == 0 else 0, size, on_round, primed, done, prime_ms
            )
            for name, value in stats.items():
                samples[key][name].extend(value.samples_ms)
        done += size
    return {
        key: {name: LatencyStats(tuple(times), batch_size=batch_size(inputs[name])) for name, times in samples[key].items()}
        for key, (_, inputs) in settings.items()
    }


NOISY_RELATIVE_IQR = 0.20
"""A speed-up whose per-round ratios spread wider than this (interquartile range / median) is flagged."""


def paired_ratio(baseline_ms: Sequence[float], variant_ms: Sequence[float]) -> dict[str, Any]:
    """Speed-up over the baseline from samples of the same rounds: round ``r``'s ratio is
    ``baseline[r] / variant[r]``, two calls made moments apart, so slow drifts of machine load cancel.

    Returns the median ratio, its interquartile range, the relative IQR and whether that is narrow
    enough (``<= NOISY_RELATIVE_IQR``) to trust.
    """
    rounds = min(len(baseline_ms), len(variant_ms))
    if rounds == 0:
        raise ValueError("no paired rounds")
    ratios = [baseline_ms[r] / variant_ms[r] for r in range(rounds) if variant_ms[r] > 0]
    median = percentile(ratios, 50)
    low, high = percentile(ratios, 25), percentile(ratios, 75)
    relative_iqr = (high - low) / median if median else math.inf
    return {
        "ratio": round(median, 3),
        "p25": round(low, 3),
        "p75": round(high, 3),
        "relative_iqr": round(relative_iqr, 3),
        "rounds": rounds,
        "trusted": relative_iqr <= NOISY_RELATIVE_IQR,
    }
