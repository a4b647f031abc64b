"""Every training stage resumes mid-stage bit for bit (prune recovery, distill), the distill teacher cache is
kept on disk and reused, and SIGTERM interrupts a run like Ctrl-C (exit 143, resumable)."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file
from test_resume import _start, _wait_for
from tiny import quiet_console, synthetic_rows, tiny_bert_teacher, tiny_tokenizer, write_csv

from compress.core.recipe import parse_recipe
from compress.data.tokenization import TextEncoder
from compress.distillation import cache as cache_module
from compress.run.pipeline import run_recipe
from compress.tasks.text_classification import TokenExamples
from compress.training import loop as training
from compress.training.checkpoints import CHECKPOINT_FILE, TEACHER_CACHE_FILE

TRAINING = {"epochs": 3, "batch_size": 8, "learning_rate": 3e-3, "patience": 0}
STAGES = {  # stage, training steps per epoch: 100 train examples (limit 300 - 100 dev - 100 test), batches of 8
    # random importance: pruning again on resume must draw the same heads
    "prune": ({"prune": {"heads": 0.5, "ffn": 0.5, "importance": "random", "recover": TRAINING}}, 13),
    # annealing (schedule progress outside the parameters), augmented copies, dropout RNG, attention loss
    "distill-annealed": ({"distill": {**TRAINING, "layers": 2, "anneal_heads": 0.5, "augment": {"copies": 1},
                                      "losses": {"logits": 1.0, "attention": 0.5}}}, 25),
    # a narrower random student: the hidden loss's trainable projection lives in the distillation wrapper
    "distill-projected": ({"distill": {**TRAINING, "layers": 1, "init": "random", "hidden": 16,
                                       "losses": {"logits": 1.0, "hidden": 1.0}}}, 13),
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _recipe(tiny_recipe, stage: dict):
    return parse_recipe(tiny_recipe([stage], limit=300), "tiny.yaml")


def _weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(next(run_dir.glob("stages/01-*/model/model.safetensors"))))


def _training_info(run_dir) -> dict:
    state = json.loads((run_dir / "state.json").read_text())
    return next(v["info"]["training"] for v in state["variants"] if "training" in v["info"])


def _interrupt_at(monkeypatch, step: int) -> None:
    """Raise KeyboardInterrupt (what Ctrl-C and, under `compress run`, SIGTERM raise) before training step ``step``."""
    calls = {"n": 0}
    as_tensors = training.as_tensors  # called once per training step, on the collated batch

    def counting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == step:
            raise KeyboardInterrupt
        return as_tensors(*args, **kwargs)

    monkeypatch.setattr(training, "as_tensors", counting)


def _count_teacher_runs(monkeypatch) -> dict[str, int]:
    runs = {"n": 0}
    compute = cache_module.cache_teacher

    def counting(*args, **kwargs):
        runs["n"] += 1
        return compute(*args, **kwargs)

    monkeypatch.setattr(cache_module, "cache_teacher", counting)
    return runs


@pytest.mark.parametrize("case", list(STAGES))
def test_training_stage_resumes_mid_epoch_2_bit_for_bit(case, tiny_recipe, tmp_path, monkeypatch):
    stage, steps_per_epoch = STAGES[case]
    recipe, kind = _recipe(tiny_recipe, stage), next(iter(stage))
    straight = run_recipe(recipe, out=tmp_path / "straight", console=quiet_console()[0])

    out = tmp_path / "run"
    stage_dir = out / "stages" / f"01-{kind}"
    with monkeypatch.context() as patch:
        _interrupt_at(patch, steps_per_epoch + 5)  # step 5 of epoch 2
        with pytest.raises(KeyboardInterrupt):
            run_recipe(recipe, out=out, console=quiet_console()[0])
    assert json.loads((out / "state.json").read_text())["completed"] == ["input"]
    saved = torch.load(stage_dir / CHECKPOINT_FILE, weights_only=True)
    assert saved["epoch"] == 1 and not saved["finished"]
    assert (stage_dir / TEACHER_CACHE_FILE).is_file() == (kind == "distill")

    teacher_runs = _count_teacher_runs(monkeypatch)
    console, log = quiet_console()
    resumed = run_recipe(recipe, out=out, console=console)
    description = "recover" if kind == "prune" else "distill"
    assert f"resuming {description} from the checkpoint after epoch 1" in log.getvalue(), log.getvalue()
    if kind == "distill":
        assert "teacher cache reused" in log.getvalue() and teacher_runs["n"] == 0

    expected, actual = _weights(straight.run_dir), _weights(resumed.run_dir)
    assert expected.keys() == actual.keys()
    for name, tensor in expected.items():
        assert torch.equal(tensor, actual[name]), name
    assert _training_info(resumed.run_dir) == _training_info(straight.run_dir)  # same history and best epoch
    assert not (stage_dir / CHECKPOINT_FILE).exists() and not (stage_dir / TEACHER_CACHE_FILE).exists()


def _encoded(n: int = 40, seed: int = 1) -> list[list[int]]:
    return TextEncoder(tiny_tokenizer(), 32).encode([text for text, _ in synthetic_rows(n, seed=seed)])


def test_teacher_cache_is_saved_reused_and_recomputed_when_anything_it_depends_on_changes(tmp_path, monkeypatch):
    teacher, encoded = tiny_bert_teacher(), _encoded()
    runs = _count_teacher_runs(monkeypatch)

    def cached(model=teacher, texts=encoded, indices=frozenset({2}), precision="fp32"):
        return cache_module.stored_teacher_cache(
            model, TokenExamples(texts, 0), set(indices), tmp_path, precision=precision
        )

    first, reused = cached()
    assert not reused and runs["n"] == 1 and (tmp_path / TEACHER_CACHE_FILE).is_file()
    again, reused = cached()
    assert reused and runs["n"] == 1  # read from disk: the teacher did not run
    assert torch.equal(again.logits, first.logits) and torch.equal(again.hidden[2], first.hidden[2])
    assert again.hidden[2].dtype == torch.float16 and list(again.offsets) == list(first.offsets)

    changed = tiny_bert_teacher()
    with torch.no_grad():
        changed.classifier.bias.add_(0.5)
    for options in ({"model": changed}, {"texts": encoded[:-1]}, {"indices": {1, 2}}, {"precision": "bf16"}):
        runs_before = runs["n"]
        cache, reused = cached(**options)
        assert not reused and runs["n"] == runs_before + 1, options
    assert not torch.equal(cached(model=changed)[0].logits, first.logits)  # the last one saved is reused

    (tmp_path / TEACHER_CACHE_FILE).write_bytes(b"not a safetensors file")
    runs_before = runs["n"]
    assert cached()[1] is False and runs["n"] == runs_before + 1  # unreadable: recomputed, not an error


def test_a_checkpoint_of_other_starting_weights_is_not_resumed(tiny_checkpoints, tmp_path):
    """The fingerprint covers the starting weights, not only their shapes (a pruned or distilled model that
    came out differently must not continue from another one's checkpoint)."""
    from transformers import AutoModelForSequenceClassification

    from compress.training.loop import TrainingConfig, train_classifier

    ids = [[2, 5 + i % 8, 13 + i % 5, 3] for i in range(32)]
    labels = [i % 2 for i in range(32)]
    config = TrainingConfig(epochs=1, batch_size=8, patience=0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoints["bert"])
    examples = TokenExamples(ids, 0)
    train_classifier(model, (examples, labels), (examples, labels), config, 0, quiet_console()[0], checkpoint_dir=tmp_path)
    other = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoints["bert"])
    with torch.no_grad():
        other.classifier.bias.add_(0.1)
    console, log = quiet_console()
    train_classifier(other, (examples, labels), (examples, labels), config, 0, console, checkpoint_dir=tmp_path)
    assert "resuming" not in log.getvalue() and "does not match this run" in log.getvalue()


def test_sigterm_is_raised_as_an_interrupt_and_the_previous_handler_restored():
    from compress.cli import Terminated, sigterm_as_interrupt

    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as raised, sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises at once
    assert isinstance(raised.value, Terminated)
    assert signal.getsignal(signal.SIGTERM) is previous


@pytest.fixture
def distill_recipe_file(tmp_path, tiny_checkpoints):
    """Distil epochs long enough (half a second each on 2 idle cores) for SIGTERM to land in epoch 2, 3 or 4."""
    csv_path = write_csv(tmp_path / "reviews.csv", synthetic_rows(600, seed=1))
    raw = {
        "name": "sigterm",
        "seed": 3,
        "model": {"source": str(tiny_checkpoints["bert"]), "max_length": 12},
        "data": {"dataset": str(csv_path), "test_size": 100, "dev_size": 100},
        "stages": [{"distill": {"layers": 2, "epochs": 4, "batch_size": 8, "patience": 0}}],
    }
    path = tmp_path / "sigterm.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_sigterm_mid_distill_exits_143_and_the_run_resumes(distill_recipe_file, tmp_path, monkeypatch):
    out = tmp_path / "run"
    process = _start(distill_recipe_file, out)
    checkpoint = out / "stages" / "01-distill" / CHECKPOINT_FILE
    _wait_for(checkpoint, process)  # epoch 1 of 4 is saved: the run is now inside epoch 2
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "interrupted" in stderr and "rerun with the same --out to resume" in stderr
    assert "Traceback" not in stderr
    assert json.loads((out / "state.json").read_text())["completed"] == ["input"]
    assert checkpoint.is_file() and (checkpoint.parent / TEACHER_CACHE_FILE).is_file()

    teacher_runs = _count_teacher_runs(monkeypatch)
    console, log = quiet_console()
    run_recipe(distill_recipe_file, out=out, console=console)
    assert "teacher cache reused" in log.getvalue() and teacher_runs["n"] == 0
    assert "resuming distill from the checkpoint after epoch" in log.getvalue()
    assert (out / "stages" / "01-distill" / "COMPLETE.json").is_file()
    assert not checkpoint.exists() and not (checkpoint.parent / TEACHER_CACHE_FILE).exists()
