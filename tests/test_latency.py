"""Latency statistics, interleaving, paired speed-ups and skipping of runtimes that cannot run here."""

from __future__ import annotations

import itertools
import time
from collections import Counter

import numpy as np
import pytest
from rich.console import Console

from compress.evaluation.latency import (
    NOISY_RELATIVE_IQR,
    LatencyStats,
    block_sizes,
    interleaved_order,
    measure_interleaved,
    measure_settings,
    paired_ratio,
    percentile,
    prime,
)
from compress.evaluation.path_variants import variant_from_path
from compress.evaluation.setting import Setting
from compress.evaluation.suite import LatencySettings, measure_latency
from compress.runtimes import RuntimeUnavailable, open_runtime


def test_percentiles_and_mean_checked_by_hand():
    stats = LatencyStats(
        tuple(float(v) for v in range(10, 0, -1)), batch_size=4
    )  # 10..1, unsorted on purpose
    # rank = (n-1) q/100 over the sorted samples 1..10: p50 -> 4.5 -> 5.5, p90 -> 8.1 -> 9.1, p99 -> 8.91 -> 9.91
    assert stats.p50 == pytest.approx(5.5)
    assert stats.p90 == pytest.approx(9.1)
    assert stats.p99 == pytest.approx(9.91)
    assert stats.mean == pytest.approx(5.5)
    assert stats.throughput == pytest.approx(4 * 1000 / 5.5)
    as_dict = stats.to_dict()
    assert as_dict["samples"] == [float(v) for v in range(10, 0, -1)]
    assert as_dict["rounds"] == 10
    assert percentile([3.0], 99) == 3.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_interleaving_rotates_who_goes_first():
    assert interleaved_order(["a", "b", "c"], 7) == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["c", "b", "a"],
        ["a", "c", "b"],
        ["b", "a", "c"],
        ["a", "b", "c"],  # the design repeats
    ]
    assert interleaved_order([], 2) == [[], []] and interleaved_order(["a"], 2) == [["a"], ["a"]]


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7])
def test_every_variant_follows_every_other_equally_often(n):
    names = [str(i) for i in range(n)]
    cycle = n if n % 2 == 0 else 2 * n
    orders = interleaved_order(names, cycle)
    assert all(sorted(order) == names for order in orders)
    assert Counter(order[0] for order in orders) == {name: cycle // n for name in names}
    neighbours = Counter(pair for order in orders for pair in itertools.pairwise(order))
    assert len(neighbours) == n * (n - 1) and set(neighbours.values()) == {cycle // n}


def named(ids):
    """Named model inputs: ``ids`` with an all-ones attention mask."""
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


class Recorder:
    """A real predictor that records when it was called (for the order, not for timing)."""

    runtime, device = "test", "cpu"

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def run(self, inputs):
        self.log.append(self.name)
        return np.zeros((inputs["input_ids"].shape[0], 2), dtype=np.float32)

    def synchronize(self) -> None:
        pass


@pytest.mark.parametrize(
    ("primed", "expected"),
    [
        (False, ["a", "a", "b", "b", "a", "b", "b", "a", "a", "b"]),  # warm-up, then the rounds alternate
        (True, ["a", "a", "b", "b", "a", "a", "b", "b", "b", "b", "a", "a", "a", "a", "b", "b"]),  # each timed call primed
    ],
)
def test_measure_interleaved_warms_up_then_alternates(primed, expected):
    log: list[str] = []
    inputs = named(np.ones((2, 4), dtype=np.int64))
    stats = measure_interleaved(
        {n: Recorder(n, log) for n in ("a", "b")}, {"a": inputs, "b": inputs}, warmup=2, rounds=3, primed=primed
    )
    assert log == expected
    assert len(stats["a"].samples_ms) == 3 and stats["a"].batch_size == 2


class Sleeper(Recorder):
    """Takes ``ms`` per call, so priming by duration has something to count."""

    def __init__(self, name: str, log: list[str], ms: float) -> None:
        super().__init__(name, log)
        self.ms = ms

    def run(self, inputs):
        time.sleep(self.ms / 1000)
        return super().run(inputs)


def test_priming_repeats_untimed_calls_until_the_time_has_passed():
    log: list[str] = []
    inputs = named(np.ones((1, 4), dtype=np.int64))
    assert prime(Sleeper("a", log, 2.0), inputs, 0.0) == 1  # at least one call, even with no time asked
    calls = prime(Sleeper("b", log, 1.0), inputs, 20.0)
    # a call takes >= 1 ms, so 20 calls always reach 20 ms; one call would have to stall for 20 ms to stop at 1
    assert 2 <= calls <= 20 and log == ["a"] + ["b"] * calls
    log.clear()
    measure_interleaved({"c": Sleeper("c", log, 1.0)}, {"c": inputs}, warmup=0, rounds=2, prime_ms=20.0)
    assert len(log) >= 2 * (2 + 1)  # every timed call after several priming calls


def test_a_later_block_continues_the_balanced_design():
    whole = interleaved_order(["a", "b", "c"], 7)
    assert interleaved_order(["a", "b", "c"], 3) + interleaved_order(["a", "b", "c"], 4, first_round=3) == whole


def test_rounds_split_into_near_equal_blocks():
    assert block_sizes(10, 3) == [4, 3, 3]
    assert block_sizes(30, 5) == [6] * 5
    assert block_sizes(3, 5) == [1, 1, 1]  # never an empty block
    assert block_sizes(7, 1) == [7] and sum(block_sizes(61, 8)) == 61


class Shaped(Recorder):
    """Records the sequence length it was called with, so the log shows which setting ran when."""

    def run(self, inputs):
        self.log.append(f"{self.name}{inputs['input_ids'].shape[1]}")
        return np.zeros((inputs["input_ids"].shape[0], 2), dtype=np.float32)


def test_settings_alternate_in_blocks_and_keep_rounds_paired():
    log: list[str] = []
    predictors = {n: Shaped(n, log) for n in ("a", "b")}

    def shaped(seq):
        return {n: named(np.ones((1, seq), dtype=np.int64)) for n in predictors}

    stats = measure_settings({"s8": (predictors, shaped(8)), "s4": (predictors, shaped(4))},
                             warmup=1, rounds=4, blocks=2, primed=False)
    # warm-up once (first block only), then 2 rounds of s8, 2 of s4, 2 of s8, 2 of s4; the Williams
    # order of 2 names (a b, b a) continues across blocks instead of restarting
    assert log == ["a8", "b8", "a8", "b8", "b8", "a8",
                   "a4", "b4", "a4", "b4", "b4", "a4",
                   "a8", "b8", "b8", "a8",
                   "a4", "b4", "b4", "a4"]
    assert set(stats) == {"s8", "s4"}
    assert all(len(stats[key][name].samples_ms) == 4 for key in stats for name in ("a", "b"))


def test_paired_ratio_uses_the_same_rounds_and_flags_wide_spreads():
    steady = paired_ratio([10, 10, 10, 10], [5, 5, 4, 5])  # ratios 2, 2, 2.5, 2
    assert steady["ratio"] == 2.0 and steady["p25"] == 2.0 and steady["p75"] == 2.125
    assert steady["relative_iqr"] == pytest.approx(0.0625, abs=1e-3) and steady["trusted"]
    # A slow drift hits both variants of a round alike, so the paired ratio stays exact.
    drifting = paired_ratio([10, 20, 30, 40], [5, 10, 15, 20])
    assert drifting["ratio"] == 2.0 and drifting["relative_iqr"] == 0.0
    noisy = paired_ratio([10, 10, 10, 10], [2, 10, 5, 9])  # ratios 5, 1, 2, 1.11
    assert noisy["relative_iqr"] > NOISY_RELATIVE_IQR and not noisy["trusted"]


@pytest.fixture(scope="module")
def tiny_variant(tiny_checkpoints):
    return variant_from_path(tiny_checkpoints["bert"])


def test_runtimes_that_do_not_apply_return_none_and_missing_ones_raise(tiny_variant, monkeypatch):
    assert open_runtime(tiny_variant, "onnxruntime", "cpu") is None  # an ONNX runtime for a torch module
    assert open_runtime(tiny_variant, "torch-fp16", "cpu") is None  # fp16 is a CUDA-only runtime
    monkeypatch.setattr("compress.core.requirements.cuda_available", lambda: False)
    with pytest.raises(RuntimeUnavailable, match="no CUDA device"):
        open_runtime(tiny_variant, "torch", "cuda")


def test_missing_device_and_failing_runtimes_are_skipped_with_notes(tiny_variant, monkeypatch):
    import torch

    def broken_compile(*args, **kwargs):
        raise RuntimeError("inductor is not available here")

    monkeypatch.setattr(torch, "compile", broken_compile)
    settings = LatencySettings(
        batch_sizes=[1],
        seq_lengths=[8],
        rounds=3,
        warmup=0,
        devices=["cpu", "cuda"],
        runtimes=["torch", "torch.compile"],
        memory=False,
    )
    monkeypatch.setattr("compress.evaluation.suite.cuda_available", lambda: False)
    rows, notes = measure_latency([tiny_variant], settings, ["a great film"], None, Console(quiet=True))
    assert set(rows["bert"].latency_ms) == {"cpu"}
    assert rows["bert"].latency_ms["cpu"][Setting(1, 8)].rounds == 3
    assert rows["bert"].to_dict()["latency_ms"]["cpu"]["b1_s8"]["rounds"] == 3
    assert "bert [torch.compile]" not in rows
    assert any("torch.compile" in n and "inductor is not available" in n for n in notes)
    assert any(n.startswith("cuda: no CUDA device") for n in notes)


def test_a_cuda_device_that_fails_to_run_is_a_note_not_an_error(tiny_variant, monkeypatch):
    """With CUDA reported present but unusable (this machine has no GPU), every GPU row is skipped."""
    monkeypatch.setattr("compress.evaluation.suite.cuda_available", lambda: True)
    monkeypatch.setattr("compress.core.requirements.cuda_available", lambda: True)
    settings = LatencySettings(
        batch_sizes=[1], seq_lengths=[8], rounds=3, warmup=0, devices=["cuda"], memory=False
    )
    rows, notes = measure_latency([tiny_variant], settings, ["a great film"], None, Console(quiet=True))
    assert all(not row.latency_ms for row in rows.values())
    assert any("on cuda" in n for n in notes)


def test_tensorrt_without_onnxruntime_gpu_is_unavailable(tmp_path, tiny_checkpoints, monkeypatch):
    import onnxruntime

    if "TensorrtExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("TensorRT is installed here")
    monkeypatch.setattr("compress.core.requirements.cuda_available", lambda: True)
    onnx_variant = _tiny_onnx(tmp_path, tiny_checkpoints["bert"])
    with pytest.raises(RuntimeUnavailable, match="TensorrtExecutionProvider"):
        open_runtime(onnx_variant, "onnxruntime-trt", "cuda")


def _tiny_onnx(tmp_path, checkpoint):
    from tiny_onnx import export_tiny_onnx

    return variant_from_path(export_tiny_onnx(checkpoint, tmp_path / "onnx"))


def test_cuda_predictor_times_with_its_own_clock_only_on_cuda(tiny_variant):
    from compress.evaluation.latency import time_call

    predictor = open_runtime(tiny_variant, "torch", "cpu")
    calls = []
    predictor.time_ms = lambda inputs: calls.append(1) or 1.0  # must not be used on the CPU
    inputs = named(np.ones((1, 8), dtype=np.int64))
    assert time_call(predictor, inputs) > 0 and not calls
    predictor.device = "cuda"
    assert time_call(predictor, inputs) == 1.0 and calls


def test_busy_machine_is_flagged_only_when_other_jobs_compete():
    from compress.evaluation.suite import busy_machine_note

    assert busy_machine_note(load=2.9, cores=2) is None  # our own two threads
    assert busy_machine_note(load=6.3, cores=2).startswith("the machine was busy while timing (load 6.3 on 2 cores)")


def test_memory_child_uses_this_package_from_any_working_directory(tmp_path, tiny_checkpoints, monkeypatch):
    """The child runs ``python -m``, which puts the cwd first on sys.path: a relative variant path and
    a cwd holding another (broken) ``compress`` must not change what is measured."""
    import numpy as np
    from tiny_onnx import export_tiny_onnx

    from compress.core.variant import Variant
    from compress.evaluation.memory import measure_process_memory

    onnx_path = export_tiny_onnx(tiny_checkpoints["bert"], tmp_path / "model")
    (tmp_path / "compress").mkdir()
    (tmp_path / "compress" / "__init__.py").write_text("raise ImportError('the wrong compress')\n")
    monkeypatch.chdir(tmp_path)
    relative = onnx_path.relative_to(tmp_path)
    variant = Variant("tiny", "onnxruntime", "fp32", relative, relative.parent, stage="test")
    inputs = named(np.ones((1, 8), dtype=np.int64))
    measured = measure_process_memory(variant, "onnxruntime", inputs, threads=1)
    assert measured["peak_rss_bytes"] > measured["model_rss_bytes"] > 0


def test_setting_names_itself_as_report_json_does_and_parses_back():
    assert Setting(1, 128).key == "b1_s128" == str(Setting(1, 128))
    assert Setting.parse("b32_s47") == Setting(32, 47) and Setting.parse(Setting(8, 3).key) == Setting(8, 3)
    assert sorted([Setting(8, 128), Setting(1, 128), Setting(1, 47)]) == [Setting(1, 47), Setting(1, 128), Setting(8, 128)]
    for bad in ("b1s128", "b1_s", "s128_b1", "b1_s128 "):
        with pytest.raises(ValueError, match="expected b<batch>_s<seq>"):
            Setting.parse(bad)


def test_typed_rows_serialise_to_report_jsons_shape():
    """evaluate stores rows as report.json (and state.json) always held them: same keys, same order."""
    import json

    from compress.evaluation.suite import AccuracyResult, MeasuredRow, MemoryResult

    stats = LatencyStats((2.0, 1.0, 3.0), batch_size=1)
    row = MeasuredRow("edge", "onnxruntime", "int8", {"cpu": {Setting(1, 128): stats}})
    row.memory["cpu"] = MemoryResult(Setting(8, 128), "peak RSS", peak_rss_bytes=30, model_rss_bytes=10, library_rss_bytes=20)
    row.memory["cuda"] = MemoryResult(Setting(8, 128), "torch.cuda.max_memory_allocated", peak_allocated_bytes=7)
    row.size_bytes = 123
    row.accuracy = AccuracyResult(0.8, 0.95)
    expected = {
        "variant": "edge",
        "runtime": "onnxruntime",
        "precision": "int8",
        "latency_ms": {"cpu": {"b1_s128": stats.to_dict()}},
        "memory": {
            "cpu": {"peak_rss_bytes": 30, "model_rss_bytes": 10, "library_rss_bytes": 20, "method": "peak RSS",
                    "setting": "b8_s128"},
            "cuda": {"peak_allocated_bytes": 7, "method": "torch.cuda.max_memory_allocated", "setting": "b8_s128"},
        },
        "size_bytes": 123,
        "accuracy": 0.8,
        "agreement_with_baseline": 0.95,
    }
    assert json.dumps(row.to_dict()) == json.dumps(expected)
    bare = MeasuredRow("teacher", "torch", "fp32").to_dict()
    assert bare == {"variant": "teacher", "runtime": "torch", "precision": "fp32", "latency_ms": {}, "memory": {}}
