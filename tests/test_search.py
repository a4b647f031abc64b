"""Latency-budget search (issue 21): candidate generation, measured budget filter, per-machine cache, the
proxy / full split, and the report listing every candidate."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError
from transformers import BertConfig, BertForSequenceClassification

from compress.core.machine import MachineCache
from compress.core.recipe import parse_recipe
from compress.errors import CompressError
from compress.run.pipeline import run_recipe
from compress.search import latency as search_latency
from compress.search import run as search_run
from compress.search.config import BudgetConfig, SearchConfig, SearchSpaceOptions
from compress.search.latency import MeasuredShape, measure_shapes
from compress.search.run import budget_check
from compress.search.space import StudentShape, candidate_shapes, default_ffn, frontier


def teacher_config(**kwargs):
    options = {"hidden_size": 48, "num_hidden_layers": 3, "num_attention_heads": 6, "intermediate_size": 96,
               "vocab_size": 64, "max_position_embeddings": 128}
    return BertConfig(**{**options, **kwargs})


def test_candidates_respect_the_family_constraints():
    space = SearchSpaceOptions(layers=[1, 2, 3, 4], heads=[1, 2, 4, 5, 6], ffn=[32, 96, 128])
    shapes, notes = candidate_shapes(space, teacher_config())
    assert {s.layers for s in shapes} == {1, 2, 3}  # the teacher has 3 layers
    assert {s.heads for s in shapes} == {1, 2, 6}  # 4 does not divide 6 heads, 5 divides neither
    assert {s.ffn for s in shapes} == {32, 96}  # 128 is wider than the teacher's FFN
    assert all(s.hidden == 48 and 48 % s.heads == 0 for s in shapes)
    assert len(shapes) == 3 * 3 * 2
    assert any("layers 4" in n for n in notes) and any("ffn 128" in n for n in notes)
    assert any("heads 4" in n for n in notes) and any("heads 5" in n for n in notes)


def test_default_space_follows_the_teacher():
    shapes, _ = candidate_shapes(SearchSpaceOptions(), teacher_config(num_hidden_layers=6, intermediate_size=1536))
    assert {s.layers for s in shapes} == {1, 2, 3, 4}
    assert {s.ffn for s in shapes} == set(default_ffn(1536)) == {256, 512, 768, 1536}
    assert {s.heads for s in shapes} == {1, 2}  # 4 does not divide the 6 heads of this teacher


def test_frontier_keeps_the_shapes_nothing_else_covers():
    shapes = [StudentShape(1, 1, 64, 48), StudentShape(1, 2, 128, 48), StudentShape(2, 1, 64, 48),
              StudentShape(2, 1, 32, 48)]
    assert set(frontier(shapes)) == {StudentShape(1, 2, 128, 48), StudentShape(2, 1, 64, 48)}


def test_budget_options_are_checked_up_front():
    with pytest.raises(ValidationError, match="not both"):
        BudgetConfig(latency_ms=3, reference={"layers": 2})
    with pytest.raises(ValidationError, match="needs latency_ms"):
        BudgetConfig()
    with pytest.raises(ValidationError, match="latency setting"):
        BudgetConfig(latency_ms=3, setting="128")
    with pytest.raises(ValidationError, match="unknown runtime"):
        BudgetConfig(latency_ms=3, runtime="tflite")
    assert SearchConfig(budget={"size_mb": 5}).top_k == 2


def test_budget_filter_reads_measured_numbers():
    shape = StudentShape(2, 1, 64, 48)
    slow = MeasuredShape(shape, p50_ms=3.0, p90_ms=3.2, size_mb=12.0, reference_ms=2.0)
    assert budget_check(slow, BudgetConfig(reference={"layers": 1}, scale=1.6)) == ""
    assert "1.50x" in budget_check(slow, BudgetConfig(reference={"layers": 1}, scale=1.4))
    assert "3.00 ms > 2.5 ms" in budget_check(slow, BudgetConfig(latency_ms=2.5))
    assert "12.0 MB > 10 MB" in budget_check(slow, BudgetConfig(latency_ms=5, size_mb=10))


@pytest.fixture(scope="module")
def latency_teacher():
    """A random BERT large enough that depth shows in its latency (4 layers of width 128)."""
    config = teacher_config(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512,
                            vocab_size=1000)
    return BertForSequenceClassification(config).eval()


def inputs(seq: int) -> dict[str, np.ndarray]:
    ids = np.random.default_rng(0).integers(5, 1000, (1, seq)).astype(np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}


def sweep(teacher, shapes, reference, tmp_path, cache, remeasure=False, **budget):
    return measure_shapes(
        teacher, shapes, reference, inputs(8), inputs(96),
        BudgetConfig(reference={"layers": 1, "heads": 1, "ffn": 128}, setting="b1_s96", **budget),
        ["logits"], tmp_path / "sweep", rounds=15, remeasure=remeasure, cache=cache, log=lambda _: None,
    )


def test_latency_is_measured_on_the_runtime_and_cached_per_machine(latency_teacher, tmp_path, monkeypatch):
    monkeypatch.setattr(search_latency, "busy_load", lambda: None)  # other tests may load the machine
    cache = MachineCache("student-latency", tmp_path / "cache")
    shallow, deep = StudentShape(1, 1, 128, 128), StudentShape(4, 4, 512, 128)
    first = sweep(latency_teacher, [shallow, deep], shallow, tmp_path, cache)
    assert not first[deep].cached and first[shallow].reference_ratio == 1.0
    assert first[deep].p50_ms > 1.5 * first[shallow].p50_ms  # four wider layers against one
    assert first[deep].size_mb > first[shallow].size_mb
    assert "x the reference" in budget_check(first[deep], BudgetConfig(reference={"layers": 1}, scale=1.5))

    def no_build(*args, **kwargs):
        raise AssertionError("a cached candidate was built again")

    monkeypatch.setattr(search_latency, "build_candidate", no_build)
    second = sweep(latency_teacher, [shallow, deep], shallow, tmp_path, cache)
    assert all(m.cached for m in second.values())
    assert second[deep].p50_ms == first[deep].p50_ms

    other_machine = dict(search_latency.fingerprint(threads=2), cpu="another CPU")
    monkeypatch.setattr(search_latency, "fingerprint", lambda threads=None: other_machine)
    with pytest.raises(AssertionError, match="built again"):
        sweep(latency_teacher, [shallow, deep], shallow, tmp_path, cache)
    entries = json.loads(cache.path.read_text())
    assert len(entries) == 2 and all(e["fingerprint"]["cpu"] != "another CPU" for e in entries.values())


def test_a_reference_outside_the_space_is_cached_too(latency_teacher, tmp_path, monkeypatch):
    monkeypatch.setattr(search_latency, "busy_load", lambda: None)
    cache = MachineCache("student-latency", tmp_path / "cache")
    shallow, reference = StudentShape(1, 1, 128, 128), StudentShape(2, 1, 128, 128)
    first = sweep(latency_teacher, [shallow], reference, tmp_path, cache)
    assert first[reference].reference_ratio == 1.0 and not first[reference].cached

    def no_build(*args, **kwargs):
        raise AssertionError("a cached candidate was built again")

    monkeypatch.setattr(search_latency, "build_candidate", no_build)
    second = sweep(latency_teacher, [shallow], reference, tmp_path, cache)  # times nothing
    assert second[reference].cached and second[shallow].reference_ratio == first[shallow].reference_ratio


def fake_sweep(teacher, shapes, reference, *args, **kwargs):
    """Deterministic latencies (layers x FFN), so the test pins what the search does with them; the
    measurement itself is tested above."""
    def ms(s):
        return 0.5 * s.layers * (1 + s.ffn / 64) + 0.1 * s.heads

    ref = ms(reference) if reference else None
    return {s: MeasuredShape(s, ms(s), ms(s), 0.1 * s.layers, ref) for s in [*shapes, *([reference] if reference else [])]}


def search_recipe(tiny_recipe, **search):
    options = {
        "budget": {"reference": {"layers": 2, "heads": 1, "ffn": 32}, "scale": 1.0, "setting": "b1_s32"},
        "space": {"layers": [1, 2], "heads": [1, 2], "ffn": [16, 32, 64]},
        "proxy_texts": 50, "proxy_candidates": 3, "top_k": 2, **search,
    }
    distill = {"epochs": 1, "batch_size": 32, "search": options, "losses": {"logits": 1.0, "hidden": 1.0},
               "max_train_examples": 120}
    # the untrained tiny teacher is enough: the test pins which candidates are trained, not how well
    return parse_recipe(tiny_recipe([{"distill": distill}, "report"]), "tiny.yaml")


def test_search_proxies_the_fitting_frontier_and_trains_only_the_top_k(tiny_recipe, tmp_path, monkeypatch):
    monkeypatch.setattr(search_run, "measure_shapes", fake_sweep)
    trained = []
    real_train = search_run._train

    def spy(teacher, train, dev, special, mask, config, *args):
        trained.append((args[3].parent.name, f"L{config.layers}-H{config.heads}-F{config.ffn}", config.epochs))
        return real_train(teacher, train, dev, special, mask, config, *args)

    monkeypatch.setattr(search_run, "_train", spy)
    result = run_recipe(search_recipe(tiny_recipe), out=tmp_path / "run")
    state = json.loads((result.run_dir / "state.json").read_text())
    student = next(v for v in state["variants"] if v["name"] == "student")
    facts = student["info"]["search"]
    candidates = {c["name"]: c for c in facts["candidates"]}
    assert len(candidates) == 2 * 2 * 3
    fitting = {n for n, c in candidates.items() if c["fits"]}
    # budget: L2-H1-F32 = 1.6 ms; L2-H2-F32 (1.7) and every L2-F64 are slower; all of L1 and L2-F16 fit
    assert fitting == {"L1-H1-F16", "L1-H2-F16", "L1-H1-F32", "L1-H2-F32", "L1-H1-F64", "L1-H2-F64",
                       "L2-H1-F16", "L2-H2-F16", "L2-H1-F32"}
    front = {"L1-H2-F64", "L2-H1-F32", "L2-H2-F16"}  # every other fitting shape has less of everything
    assert {c["name"] for c in facts["candidates"] if c["on_frontier"]} == front
    proxies = [(name, epochs) for where, name, epochs in trained if where == "proxy"]
    assert sorted(proxies) == [(name, 1) for name in sorted(front)]
    full = [name for where, name, _ in trained if where == "full"]
    best_two = sorted(front, key=lambda n: (-candidates[n]["proxy_dev"], candidates[n]["p50_ms"]))[:2]
    assert full == best_two  # best proxy score first, ties to the faster
    winner = candidates[facts["winner"]]
    assert winner["final_dev"] == max(candidates[n]["final_dev"] for n in full)
    assert student["info"]["distillation"]["student"]["layers"] == winner["layers"]
    assert all(c["proxy_dev"] is None for n, c in candidates.items() if n not in dict(proxies))
    report = (result.run_dir / "report.md").read_text()
    assert "Latency-budget search" in report and all(f"| {name} |" in report for name in candidates)
    assert "Pareto front" in report and "**winner**" in report
    resume_files = ("training-checkpoint.pt", "teacher-cache.safetensors")
    leftovers = [p for p in (result.run_dir / "stages").rglob("*") if p.name in resume_files]
    assert leftovers == []  # shared teacher caches and checkpoints are removed with the search


def test_top_k_one_trains_a_single_finalist(tiny_recipe, tmp_path, monkeypatch):
    monkeypatch.setattr(search_run, "measure_shapes", fake_sweep)
    result = run_recipe(search_recipe(tiny_recipe, top_k=1, proxy_candidates=1), out=tmp_path / "run")
    facts = json.loads((result.run_dir / "state.json").read_text())["variants"][-1]["info"]["search"]
    assert sum(c["final_dev"] is not None for c in facts["candidates"]) == 1
    assert sum(c["proxy_dev"] is not None for c in facts["candidates"]) == 1
    assert facts["winner"] == "L2-H1-F32"  # the slowest frontier shape is proxied first


def test_a_budget_nothing_fits_is_one_clear_error(tiny_recipe, tmp_path, monkeypatch):
    monkeypatch.setattr(search_run, "measure_shapes", fake_sweep)
    recipe = search_recipe(tiny_recipe, budget={"latency_ms": 0.01, "setting": "b1_s32"})
    with pytest.raises(CompressError, match="no candidate fits the budget.*fastest, L1-H1-F16"):
        run_recipe(recipe, out=tmp_path / "run")


def test_an_interrupted_search_resumes_without_training_its_proxies_again(tiny_recipe, tmp_path, monkeypatch):
    monkeypatch.setattr(search_run, "measure_shapes", fake_sweep)
    real_train = search_run._train
    trained = []

    def interrupt_first_full_training(*args):
        trained.append(args[-4].parent.name)
        if args[-4].parent.name == "full":
            raise KeyboardInterrupt
        return real_train(*args)

    monkeypatch.setattr(search_run, "_train", interrupt_first_full_training)
    recipe = search_recipe(tiny_recipe)
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        run_recipe(recipe, out=tmp_path / "run")
    assert trained == ["proxy", "proxy", "proxy", "full"]

    def count(*args):
        trained.append(args[-4].parent.name)
        return real_train(*args)

    trained.clear()
    monkeypatch.setattr(search_run, "_train", count)
    result = run_recipe(recipe, out=tmp_path / "run")
    assert trained == ["full", "full"]  # the three proxy scores were read back, not trained again
    facts = json.loads((result.run_dir / "state.json").read_text())["variants"][-1]["info"]["search"]
    assert sum(c["proxy_dev"] is not None for c in facts["candidates"]) == 3


def test_a_narrower_hidden_width_trains_from_random_weights():
    from tiny import tiny_family_model

    from compress.distillation.config import DistillConfig
    from compress.distillation.student import build_student
    from compress.search.run import config_for

    teacher = tiny_family_model("bert")
    config = DistillConfig(anneal_heads=0.5, search={"budget": {"latency_ms": 5}, "space": {"hidden": [16, 32]}})
    shapes, _ = candidate_shapes(config.search.space, teacher.config)
    assert {s.hidden for s in shapes} == {16, 32}
    same = config_for(config, StudentShape(1, 1, 32, 32), teacher)
    narrow = config_for(config, StudentShape(1, 1, 32, 16), teacher)
    assert (same.init, same.hidden, same.anneal_heads, same.search) == ("teacher_layers", None, 0.5, None)
    assert (narrow.init, narrow.hidden, narrow.anneal_heads) == ("random", 16, 0.0)
    from compress.distillation.run import student_spec

    student, _ = build_student(teacher, student_spec(narrow))
    assert student.config.hidden_size == 16
