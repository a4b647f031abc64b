"""precision: auto decided by the CPU's flags and a micro-benchmark, cached per machine, recorded and reported;
the teacher-caching time estimate."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny import quiet_console, tiny_bert_teacher

from compress.core import machine
from compress.core.machine import CpuInfo, MachineCache, cache_dir, parse_cpuinfo
from compress.core.recipe import parse_recipe
from compress.distillation.cache import cache_teacher
from compress.distillation.estimate import about, estimate_teacher_cache
from compress.tasks.text_classification import TokenExamples
from compress.training import precision
from compress.training.loop import autocast, resolve_precision
from compress.training.precision import PrecisionDecision, cached_choice, choose, decide_precision

XEON = CpuInfo("Intel(R) Xeon(R) Platinum", frozenset({"avx2", "avx512f", "avx512_vnni"}), "/proc/cpuinfo")
EPYC = CpuInfo("AMD EPYC", frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}), "/proc/cpuinfo")
SAPPHIRE = CpuInfo("Intel(R) Xeon(R) Gold", frozenset({"avx512f", "amx_tile", "amx_bf16"}), "/proc/cpuinfo")
MAC = CpuInfo("arm", frozenset(), "platform")
BUSY_LOAD = machine.busy_load


@pytest.fixture(autouse=True)
def idle_machine(monkeypatch):
    """Measurements here are fake, so the load of the machine running the tests must not matter."""
    monkeypatch.setattr(machine, "busy_load", lambda: None)


class FakeTimer:
    """Milliseconds per precision, counting calls (the benchmark's only contact with the clock)."""

    def __init__(self, fp32: float, bf16: float) -> None:
        self.ms = {"fp32": fp32, "bf16": bf16}
        self.calls = 0

    def __call__(self, which: str) -> float:
        self.calls += 1
        return self.ms[which]


BF16_SLOWER = (2.7, 7.3)  # the Xeon without BF16: emulated bf16 2.7x slower
BF16_FASTER = (2.7, 0.7)  # the EPYC with AVX512-BF16


@pytest.mark.parametrize(
    ("cpu", "times", "chosen", "reason"),
    [
        (XEON, BF16_SLOWER, "fp32", "CPU has no avx512_bf16 / amx_bf16: bf16 would be emulated"),
        (XEON, BF16_FASTER, "fp32", "CPU has no avx512_bf16 / amx_bf16"),  # flags decide first
        (EPYC, BF16_FASTER, "bf16", "CPU has avx512_bf16 and bf16 is 3.9x faster"),
        (SAPPHIRE, BF16_FASTER, "bf16", "CPU has amx_bf16 and bf16 is 3.9x faster"),
        (EPYC, BF16_SLOWER, "fp32", "CPU has avx512_bf16 but bf16 was not faster here (0.37x fp32's speed"),
        (EPYC, (2.7, 2.6), "fp32", "bf16 was not faster here (1.04x fp32's speed, needs 1.1x"),
    ],
)
def test_each_branch_of_the_auto_decision_records_its_reason(cpu, times, chosen, reason):
    timer = FakeTimer(*times)
    decision = choose(cpu, timer, threads=2)
    assert decision.precision == chosen
    assert reason in decision.reason
    assert (decision.fp32_ms, decision.bf16_ms) == times  # the measured times are recorded either way
    assert f"measured fp32 {times[0]:.2f} ms, bf16 {times[1]:.2f} ms" in decision.reason
    assert decision.native_flags == tuple(f for f in ("avx512_bf16", "amx_bf16") if f in cpu.flags)
    assert timer.calls == 2 * (precision.WARMUP + precision.ROUNDS)
    assert decision.fell_back == (chosen == "fp32")


def test_without_cpu_flags_to_read_auto_is_fp32_and_nothing_is_timed():
    timer = FakeTimer(*BF16_FASTER)
    decision = choose(MAC, timer)
    assert (decision.precision, decision.fp32_ms, timer.calls) == ("fp32", None, 0)
    assert "not Linux" in decision.reason


def test_benchmark_takes_the_fastest_interleaved_round_after_warm_up():
    samples = iter([0.1, 0.1] * precision.WARMUP + [3.0, 1.0, 50.0, 1.2, 2.0, 40.0, 2.5, 1.1, 2.8, 1.3, 3.1, 0.9, 2.9, 1.0])
    fp32, bf16 = precision.benchmark(lambda _: next(samples))
    assert (fp32, bf16) == (2.0, 0.9)  # warm-up calls ignored, and so are the slow spells


def test_a_decision_measured_on_a_busy_machine_is_used_but_not_cached(monkeypatch, tmp_path):
    monkeypatch.setattr(machine, "busy_load", lambda: (9.2, 2))
    cache, timer = MachineCache("precision", tmp_path), FakeTimer(*BF16_SLOWER)
    first = cached_choice(EPYC, timer, cache)
    assert first.precision == "fp32" and "the machine was busy (load 9.2 on 2 cores)" in first.reason
    assert not cached_choice(EPYC, timer, cache).cached
    assert timer.calls == 4 * (precision.WARMUP + precision.ROUNDS)  # measured both times
    assert not (tmp_path / "precision.json").exists()
    monkeypatch.setattr(machine, "busy_load", lambda: None)
    assert cached_choice(EPYC, FakeTimer(*BF16_FASTER), cache).precision == "bf16"  # idle again: kept
    assert cached_choice(EPYC, timer, cache).cached


def test_the_cache_is_hit_on_the_second_call_and_missed_when_the_machine_changes(tmp_path):
    cache = MachineCache("precision", tmp_path)
    timer = FakeTimer(*BF16_FASTER)
    first = cached_choice(EPYC, timer, cache)
    ran = timer.calls
    assert ran > 0 and not first.cached and first.precision == "bf16"
    second = cached_choice(EPYC, timer, cache)
    assert timer.calls == ran  # the benchmark did not run again
    assert second.cached and second.to_dict() == {**first.to_dict(), "cached": True}
    assert cached_choice(XEON, timer, cache).precision == "fp32"  # another CPU: measured again
    assert timer.calls == 2 * ran
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)  # another thread count: measured again
        cached_choice(EPYC, timer, cache)
        assert timer.calls == 3 * ran
    finally:
        torch.set_num_threads(threads)
    stored = json.loads((tmp_path / "precision.json").read_text())
    assert len(stored) == 3
    assert {entry["fingerprint"]["cpu"] for entry in stored.values()} == {"AMD EPYC", XEON.model}
    assert all(entry["fingerprint"]["torch"] == torch.__version__ for entry in stored.values())


def test_an_unreadable_cache_costs_a_measurement_not_the_run(tmp_path):
    (tmp_path / "precision.json").write_text("{not json")
    timer = FakeTimer(*BF16_FASTER)
    assert cached_choice(EPYC, timer, MachineCache("precision", tmp_path)).precision == "bf16"
    assert timer.calls > 0
    assert json.loads((tmp_path / "precision.json").read_text())  # rewritten whole


def test_busy_means_load_above_cores_plus_one(monkeypatch):
    monkeypatch.setattr(machine.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(machine.os, "getloadavg", lambda: (9.23, 5.6, 2.5))
    assert BUSY_LOAD() == (9.2, 2)
    monkeypatch.setattr(machine.os, "getloadavg", lambda: (3.0, 5.6, 2.5))
    assert BUSY_LOAD() is None


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("COMPRESS_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "compress"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "compress"
    monkeypatch.setenv("COMPRESS_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_cpu_flags_are_read_from_proc_cpuinfo(tmp_path):
    text = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.60GHz\nflags\t\t: fpu avx512f avx512_vnni\n\n"
    (tmp_path / "cpuinfo").write_text(text + text.replace(": 0", ": 1"))
    cpu = parse_cpuinfo(tmp_path / "cpuinfo")
    assert (cpu.model, cpu.flags, cpu.source) == ("Intel(R) Xeon(R) CPU @ 2.60GHz", {"fpu", "avx512f", "avx512_vnni"},
                                                  str(tmp_path / "cpuinfo"))
    assert parse_cpuinfo(tmp_path / "missing").source == "platform"


@pytest.fixture
def slow_bf16_machine(monkeypatch, tmp_path):
    """This process on a Xeon without BF16 (emulated bf16 2.7x slower), caching into tmp_path."""
    timer = FakeTimer(*BF16_SLOWER)
    monkeypatch.setenv("COMPRESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(machine, "cpu_info", lambda: XEON)
    monkeypatch.setattr(precision, "MatmulTimer", lambda: timer)
    monkeypatch.setattr(precision, "_decided", {})
    monkeypatch.setattr(precision, "_announced", set())
    return timer


def test_auto_falls_back_to_fp32_says_so_once_and_caches_per_user(slow_bf16_machine, tmp_path):
    console, printed = quiet_console()
    assert decide_precision("auto", console).precision == "fp32"
    assert decide_precision("auto", console).precision == "fp32"
    assert resolve_precision("auto", console) == "fp32"
    assert printed.getvalue().count("precision auto -> fp32") == 1
    assert "bf16 would be emulated (measured fp32 2.70 ms, bf16 7.30 ms" in printed.getvalue()
    assert slow_bf16_machine.calls == 2 * (precision.WARMUP + precision.ROUNDS)  # measured once in all
    assert (tmp_path / "cache" / "precision.json").is_file()
    with autocast("auto"):
        assert torch.nn.Linear(4, 4)(torch.ones(1, 4)).dtype == torch.float32
    assert decide_precision("bf16", console).reason == "set in the recipe"


def test_the_real_benchmark_measures_both_precisions(tmp_path):
    decision = cached_choice(EPYC, cache=MachineCache("precision", tmp_path))
    assert decision.fp32_ms > 0 and decision.bf16_ms > 0
    assert decision.precision in ("fp32", "bf16")
    assert decision.threads == torch.get_num_threads()


def test_a_run_records_and_reports_the_decision_and_estimates_the_teacher_cache(
    slow_bf16_machine, tiny_recipe, tmp_path
):
    from compress.run.pipeline import run_recipe

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only add contention
    try:
        result, log = _run_tiny_distill(tiny_recipe, tmp_path / "run", run_recipe)
    finally:
        torch.set_num_threads(threads)
    assert log.count("precision auto -> fp32") == 1
    assert "caching the teacher for 400 examples (4 batches, fp32): about" in log
    assert log.index("caching the teacher for") < log.index("teacher cached for")
    environment = json.loads(result.report_path.read_text())["environment"]
    assert environment["precision"]["precision"] == "fp32"
    assert environment["precision"]["reason"].startswith("CPU has no avx512_bf16 / amx_bf16")
    assert (environment["precision"]["fp32_ms"], environment["precision"]["bf16_ms"]) == BF16_SLOWER
    markdown = (result.run_dir / "report.md").read_text()
    assert "- Training precision: fp32 (auto: CPU has no avx512_bf16 / amx_bf16: bf16 would be emulated" in markdown
    assert "<td>training precision</td><td>fp32 (auto: CPU has no" in (result.run_dir / "report.html").read_text()


def _run_tiny_distill(tiny_recipe, out, run_recipe):
    distill = {"layers": 1, "epochs": 1, "batch_size": 16, "precision": "auto"}
    stages = [{"finetune": {"epochs": 1, "batch_size": 16}}, {"distill": distill}, "report"]
    console, printed = quiet_console()
    result = run_recipe(parse_recipe(tiny_recipe(stages), "tiny.yaml"), out=out, console=console)
    return result, printed.getvalue()


def test_describe_says_whether_auto_chose():
    decision = PrecisionDecision("auto", "bf16", "CPU has avx512_bf16 and bf16 is 3.9x faster (...)", 2.7, 0.7)
    assert precision.describe_precision(decision.to_dict()) == f"bf16 (auto: {decision.reason})"
    assert precision.describe_precision(PrecisionDecision("fp32", "fp32", "set in the recipe").to_dict()) == (
        "fp32 (set in the recipe)"
    )
    assert PrecisionDecision.from_dict(decision.to_dict()) == decision


# --- the teacher-caching estimate ------------------------------------------------------------------------


def _stepped(lengths_per_batch: list[int], batch: int) -> list[list[int]]:
    """Texts whose length-sorted batches have exactly the given lengths (token id 5 repeated)."""
    return [[5] * length for length in lengths_per_batch for _ in range(batch)]


def test_estimate_fits_fixed_and_per_token_time_from_two_timed_batches():
    lengths = [2 + 3 * b for b in range(8)]  # 8 batches of 4 texts: 4 x 2, 4 x 5, ... tokens
    encoded = _stepped(lengths, 4)[::-1]  # any input order: batches are length-sorted
    ticks = iter([0.0, 10.0, 10.0, 11.0, 11.0, 13.0])  # warm-up 10 s (ignored), q1 batch 1 s, q3 batch 2 s
    estimate = estimate_teacher_cache(tiny_bert_teacher(layers=2), TokenExamples(encoded, 0), set(), 4, clock=lambda: next(ticks))
    # q1 = batch 2 (4 x 8 = 32 tokens), q3 = batch 6 (4 x 20 = 80): 1/48 s per token plus 1/3 s per batch
    assert estimate.sample_seconds == (1.0, 2.0)
    assert (estimate.batches, estimate.examples) == (8, 32)
    assert estimate.seconds == pytest.approx(8 / 3 + 4 * sum(lengths) / 48)
    assert estimate.line("fp32").startswith("    caching the teacher for 32 examples (8 batches, fp32): about 11 s")


def test_estimate_scales_per_token_when_batches_are_alike():
    encoded = _stepped([6] * 5, 2)
    ticks = iter([0.0, 1.0, 1.0, 1.5, 1.5, 2.0])
    estimate = estimate_teacher_cache(tiny_bert_teacher(layers=2), TokenExamples(encoded, 0), set(), 2, clock=lambda: next(ticks))
    assert estimate.seconds == pytest.approx(5 * 0.5)


def test_cache_teacher_logs_the_estimate_first_and_computes_the_same_cache():
    teacher = tiny_bert_teacher(layers=2)
    rng = np.random.default_rng(0)
    encoded = [list(rng.integers(5, 20, size=int(n))) for n in rng.integers(3, 30, size=40)]
    lines: list[str] = []
    logged = cache_teacher(teacher, TokenExamples(encoded, 0), {1}, batch_size=8, log=lines.append)
    plain = cache_teacher(teacher, TokenExamples(encoded, 0), {1}, batch_size=8)
    assert len(lines) == 1 and lines[0].startswith("    caching the teacher for 40 examples (5 batches, fp32): about ")
    torch.testing.assert_close(logged.logits, plain.logits)
    torch.testing.assert_close(logged.hidden[1], plain.hidden[1])


def test_durations_read_as_a_person_would_say_them():
    assert (about(40), about(89), about(860), about(158)) == ("about 40 s", "about 89 s", "about 14 min", "about 3 min")
