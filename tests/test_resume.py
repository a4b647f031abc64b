"""Interrupted runs resume: per-epoch training checkpoints, SIGINT / SIGKILL mid-stage, --restart, no overwrites."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from tiny import quiet_console, synthetic_rows, write_csv

from compress.core.files import is_temp_name
from compress.core.recipe import parse_recipe
from compress.errors import CompressError
from compress.run.pipeline import default_run_dir, run_recipe
from compress.training.checkpoints import CHECKPOINT_FILE

ROOT = Path(__file__).resolve().parent.parent
STAGES = [
    {"finetune": {"epochs": 3, "learning_rate": 1e-3, "batch_size": 4, "patience": 0}},
    {"evaluate": {"batch_sizes": [1], "seq_lengths": [16], "rounds": 3, "warmup": 0}},
    {"report": {}},
]


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory, tiny_checkpoints) -> Path:
    """A recipe whose fine-tune epochs take long enough (~1.5 s each on 2 cores) to be interrupted mid-stage:
    the signal must land in epoch 2 or 3, after the first checkpoint and before the stage completes."""
    root = tmp_path_factory.mktemp("resume")
    csv_path = write_csv(root / "reviews.csv", synthetic_rows(1200, seed=1))
    raw = {
        "name": "resume",
        "seed": 3,
        "model": {"source": str(tiny_checkpoints["bert"]), "max_length": 12},
        "data": {"dataset": str(csv_path), "test_size": 100, "dev_size": 100},
        "stages": STAGES,
    }
    path = root / "resume.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _tree_hash(path: Path) -> str:
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path.parent)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def straight(recipe_file, tmp_path_factory, tiny_checkpoints):
    """One uninterrupted run, with the inputs hashed before and after."""
    raw = yaml.safe_load(recipe_file.read_text())
    inputs = [Path(raw["model"]["source"]), Path(raw["data"]["dataset"])]
    before = [_tree_hash(p) for p in inputs]
    console, _ = quiet_console()
    result = run_recipe(recipe_file, out=tmp_path_factory.mktemp("straight") / "run", console=console)
    return result, inputs, before


def _deterministic(report: dict) -> dict:
    """The parts of report.json that must not depend on being interrupted (no timings, no paths)."""
    variants = []
    for v in report["variants"]:
        training = v["info"].get("training", {})
        variants.append({
            "name": v["name"], "accuracy": v["accuracy"], "agreement": v["agreement_with_baseline"],
            "size_bytes": v["size_bytes"], "parameters": v["parameters"],
            "best_epoch": training.get("best_epoch"), "best_dev_accuracy": training.get("best_dev_accuracy"),
            "history": [(h["epoch"], h["dev_accuracy"], round(h["train_loss"], 4)) for h in training.get("history", [])],
            "latency_settings": sorted(v["latency_ms"].get("cpu", {})),
        })
    stages = [(s["id"], s["kind"], s["produced"]) for s in report["stages"]]
    return {"variants": variants, "stages": stages, "data": report["data"], "recipe": report["recipe"]["hash"]}


def _start(recipe_file: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "compress", "run", str(recipe_file), "--out", str(out)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A test runner started in the background by a non-interactive shell inherits SIGINT as ignored,
        # and so would the run (Python installs no KeyboardInterrupt handler then): give it Ctrl-C back.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"run ended before {path.name} appeared: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{path} did not appear in {timeout} s")
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_killed_mid_finetune_resumes_to_the_same_report(sig, recipe_file, straight, tmp_path):
    out = tmp_path / "run"
    process = _start(recipe_file, out)
    checkpoint = out / "stages" / "01-finetune" / CHECKPOINT_FILE
    _wait_for(checkpoint, process)  # epoch 1 of 3 is saved: the run is now inside epoch 2
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    if sig == signal.SIGINT:
        assert process.returncode == 130, stderr
        assert "interrupted" in stderr and "Traceback" not in stderr
    else:
        assert process.returncode == -signal.SIGKILL
    state = json.loads((out / "state.json").read_text())
    assert state["completed"] == ["input"]  # finetune was not finished ...
    assert checkpoint.is_file()  # ... but its epoch checkpoint survived

    console, log = quiet_console()
    resumed = run_recipe(recipe_file, out=out, console=console)
    assert "resuming fine-tune from the checkpoint after epoch" in log.getvalue()
    assert _deterministic(resumed.report) == _deterministic(straight[0].report)
    assert not checkpoint.exists()  # removed once the stage completed
    assert (out / "stages" / "01-finetune" / "COMPLETE.json").is_file()
    assert not [p for p in out.rglob("*") if is_temp_name(p.name)]  # no half-written file left


def test_inputs_are_never_modified(straight):
    result, inputs, before = straight
    assert [_tree_hash(p) for p in inputs] == before
    assert all(result.run_dir.resolve() not in p.resolve().parents for p in inputs)


def test_truncated_texts_are_counted_in_the_report(straight):
    counts = straight[0].report["data"]["truncated_texts"]
    assert set(counts) == {"train", "dev", "test"} and counts["train"] > 0  # max_length 12 cuts the longest texts
    assert "texts truncated to max length" in (straight[0].run_dir / "report.md").read_text()


def test_rerunning_a_finished_run_changes_nothing(recipe_file, straight):
    result = straight[0]
    weights = result.run_dir / "stages" / "01-finetune" / "model" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    console, log = quiet_console()
    again = run_recipe(recipe_file, out=result.run_dir, console=console)
    assert "Resuming" in log.getvalue() and "fine-tune epoch" not in log.getvalue()
    assert weights.stat().st_mtime_ns == stamp
    assert _deterministic(again.report) == _deterministic(result.report)


def test_restart_refuses_to_delete_an_input_of_the_recipe(recipe_file, straight):
    run_dir = straight[0].run_dir
    raw = yaml.safe_load(recipe_file.read_text())
    raw["model"]["source"] = str(run_dir / "stages" / "01-finetune" / "model")
    recipe = parse_recipe(raw, "from-own-run.yaml")
    with pytest.raises(CompressError, match="holds this recipe's input"):
        run_recipe(recipe, out=run_dir, console=quiet_console()[0], restart=True)
    assert (run_dir / "stages" / "01-finetune" / "model" / "model.safetensors").is_file()


def test_never_writes_into_a_directory_that_is_not_a_run(recipe_file, tmp_path):
    (tmp_path / "precious.txt").write_text("data")
    for restart in (False, True):
        with pytest.raises(CompressError, match="not a compress run"):
            run_recipe(recipe_file, out=tmp_path, console=quiet_console()[0], restart=restart)
    assert [p.name for p in tmp_path.iterdir()] == ["precious.txt"]


def test_default_run_directories_are_unique(recipe_file, tmp_path):
    from compress.core.recipe import load_recipe

    recipe = load_recipe(recipe_file)
    first = default_run_dir(recipe, tmp_path)
    first.mkdir()
    second = default_run_dir(recipe, tmp_path)
    assert second != first and not second.exists() and second.name.startswith("resume-")


def test_training_resumes_mid_stage_bit_for_bit(tiny_checkpoints, tmp_path):
    """Interrupt train_classifier inside epoch 2; resuming gives exactly the uninterrupted weights."""
    from tiny import VOCAB

    from compress.tasks.text_classification import TokenExamples
    from compress.training.loop import TrainingConfig, cross_entropy_loss, train_classifier

    ids = [[2, 5 + i % 8, 13 + i % 5, 3] if i % 2 else [2, 13 + i % 8, 20 + i % 5, 3] for i in range(96)]
    labels = [i % 2 for i in range(96)]
    config = TrainingConfig(epochs=2, batch_size=8, learning_rate=3e-3, patience=0)
    console = quiet_console()[0]
    assert max(max(x) for x in ids) < len(VOCAB)
    train, dev = (TokenExamples(ids, 0), labels), (TokenExamples(ids[:32], 0), labels[:32])

    def fresh():
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(tiny_checkpoints["bert"])

    reference = fresh()
    expected = train_classifier(reference, train, dev, config, 0, console)

    calls = {"n": 0}

    def interrupting(*args):
        calls["n"] += 1
        if calls["n"] == 12 + 5:  # 12 steps per epoch: step 5 of epoch 2
            raise KeyboardInterrupt
        return cross_entropy_loss(*args)

    with pytest.raises(KeyboardInterrupt):
        train_classifier(fresh(), train, dev, config, 0, console,
                         loss_fn=interrupting, checkpoint_dir=tmp_path)
    saved = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)
    assert saved["epoch"] == 1 and not saved["finished"]
    resumed_model = fresh()
    resumed = train_classifier(resumed_model, train, dev, config, 0, console,
                               checkpoint_dir=tmp_path)
    assert resumed.to_dict() == expected.to_dict()
    for name, tensor in reference.state_dict().items():
        assert torch.equal(tensor, resumed_model.state_dict()[name]), name


def test_restart_removes_only_compress_outputs(recipe_file, straight):
    """Runs last in this module: it replaces the straight run with a 1-epoch run of a changed recipe."""
    out = straight[0].run_dir
    (out / "my-notes.txt").write_text("keep me")
    different = recipe_file.parent / "different.yaml"
    raw = yaml.safe_load(recipe_file.read_text())
    raw["stages"][0]["finetune"]["epochs"] = 1
    different.write_text(yaml.safe_dump(raw))
    with pytest.raises(CompressError, match="different recipe"):
        run_recipe(different, out=out, console=quiet_console()[0])
    console, log = quiet_console()
    result = run_recipe(different, out=out, console=console, restart=True)
    assert "Restarting" in log.getvalue() and "Resuming" not in log.getvalue()
    assert (out / "my-notes.txt").read_text() == "keep me"
    history = next(v for v in result.report["variants"] if v["name"] == "teacher")["info"]["training"]["history"]
    assert len(history) == 1
