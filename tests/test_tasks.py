"""The task seam: registry, text classification's processor, collation, dummy inputs, predictions and
metrics, and variant records written before tasks (``tokenizer_dir``) still loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import tiny_bert_teacher, tiny_tokenizer

from compress.core.variant import Variant
from compress.data.tokenization import TextEncoder
from compress.errors import CompressError
from compress.tasks import Task, get_task, register_task, task_names
from compress.tasks.base import iterate_inputs
from compress.tasks.text_classification import TextClassification, TokenExamples
from compress.training.loop import as_tensors


def test_text_classification_is_registered_and_unknown_tasks_are_named():
    assert "text-classification" in task_names()
    task = get_task("text-classification")
    assert isinstance(task, TextClassification) and get_task() is task
    assert task.input_names == ("input_ids", "attention_mask")
    with pytest.raises(CompressError, match="unknown task 'embeddings'.*text-classification"):
        get_task("embeddings")


def test_a_new_task_registers_by_name():
    @register_task
    class Echo(TextClassification):
        name = "echo-test"

    try:
        assert isinstance(get_task("echo-test"), Echo) and "echo-test" in task_names()
    finally:
        from compress.tasks import base

        base._TASKS.pop("echo-test")
    assert issubclass(Echo, Task)


def test_collate_pads_named_inputs_to_the_longest_chosen_example():
    task = get_task()
    encoder = TextEncoder(tiny_tokenizer(), 16)
    examples = task.encode(encoder, ["great charming", "dull", "great dull moving the movie"])
    assert len(examples) == 3 and list(examples.sizes()) == [len(ids) for ids in examples.ids]
    batch = examples.collate([1, 0])
    assert list(batch) == ["input_ids", "attention_mask"]
    width = max(examples.sizes()[[1, 0]])
    assert batch["input_ids"].shape == (2, width) and batch["input_ids"].dtype == np.int64
    assert batch["input_ids"][1].tolist() == list(examples.ids[0]) + [encoder.pad_id] * (width - len(examples.ids[0]))
    assert batch["attention_mask"].sum(axis=1).tolist() == [len(examples.ids[1]), len(examples.ids[0])]
    assert examples.collate([0], length=12)["input_ids"].shape == (1, 12)
    both = examples.head(2).concat(examples)
    assert len(both) == 5 and both.ids[2] == examples.ids[0]
    assert examples.digest([0, 1, 0]) != examples.digest([1, 1, 0]) and examples.digest() == examples.digest()
    seen = [i for index, inputs in iterate_inputs(examples, 2) for i in index]
    assert sorted(seen) == [0, 1, 2]


def test_collated_inputs_run_the_model_like_one_example_at_a_time():
    model = tiny_bert_teacher(layers=2).eval()
    encoder = TextEncoder(tiny_tokenizer(), 16)
    examples = get_task().encode(encoder, ["great charming", "dull", "great dull moving the movie"])
    with torch.inference_mode():
        together = model(**as_tensors(examples.collate([0, 1, 2]))).logits
        alone = [model(input_ids=torch.tensor([ids])).logits[0] for ids in examples.ids]
    torch.testing.assert_close(together, torch.stack(alone), atol=1e-5, rtol=1e-5)


def test_dummy_inputs_are_real_tokens_exactly_seq_long(tmp_path):
    task = get_task()
    encoder = TextEncoder(tiny_tokenizer(), 64)
    task.save_processor(encoder, tmp_path)
    inputs = task.dummy_inputs(tmp_path, 3, 9, ["great movie", "dull"])
    ids = inputs["input_ids"]
    assert ids.shape == (3, 9) and inputs["attention_mask"].tolist() == np.ones((3, 9), dtype=np.int64).tolist()
    cls, sep = encoder.tokenizer.token_to_id("[CLS]"), encoder.tokenizer.token_to_id("[SEP]")
    words = encoder.encode(["great movie dull"])[0][1:-1]
    assert ids[0, 0] == cls and ids[0, -1] == sep and (ids == ids[0]).all()
    assert ids[0, 1:-1].tolist() == (words * 7)[:7]
    assert task.dummy_inputs(tmp_path, 1, 2, ["great"])["input_ids"].tolist() == [[cls, sep]]


def test_predictions_metrics_and_processor_round_trip(tmp_path):
    task = get_task()
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.5], [-1.0, 1.0]])
    assert task.predictions(logits).tolist() == [0, 1, 0, 1]
    assert task.metrics(logits, [0, 1, 1, 1]) == {"accuracy": 0.75}
    with pytest.raises(ValueError, match="empty split"):
        task.metrics(logits[:0], [])
    encoder = TextEncoder(tiny_tokenizer(), 16)
    task.save_processor(encoder, tmp_path)
    loaded = task.processor(tmp_path, 16)
    assert loaded.encode(["great dull"]) == encoder.encode(["great dull"]) and loaded.pad_id == encoder.pad_id
    assert task.manifest_fields(loaded) == {"inputs": ["input_ids", "attention_mask"], "max_length": 16, "pad_id": 0}


def test_examples_are_what_the_task_encodes(tmp_path):
    examples = get_task().encode(TextEncoder(tiny_tokenizer(), 16), ["good"])
    assert isinstance(examples, TokenExamples) and examples.pad_id == 0


def test_a_variant_record_from_before_tasks_still_loads_and_is_written_with_the_new_key(tmp_path):
    old = {
        "name": "teacher", "runtime": "torch", "precision": "fp32", "path": str(tmp_path / "model"),
        "tokenizer_dir": str(tmp_path / "model"), "stage": "input", "info": {"parameters": 5},
    }
    variant = Variant.from_record(old)
    assert variant.processor_dir == Path(tmp_path / "model") and variant.info == {"parameters": 5}
    record = variant.to_record()
    assert record["processor_dir"] == str(tmp_path / "model") and "tokenizer_dir" not in record
    assert Variant.from_record(record) == variant


def test_an_old_state_file_with_tokenizer_dir_reads_as_processor_dir(tmp_path):
    from compress.core.files import write_json_atomic
    from compress.run.state import STATE_FORMAT, read_state

    (tmp_path / "stages" / "00-input" / "model").mkdir(parents=True)
    write_json_atomic(tmp_path / "state.json", {
        "state_format": STATE_FORMAT, "recipe_hash": "x", "completed": ["input"], "current": "teacher",
        "variants": [{
            "name": "teacher", "runtime": "torch", "precision": "fp32", "path": "stages/00-input/model",
            "tokenizer_dir": "stages/00-input/model", "stage": "input", "info": {},
        }],
    })
    state = read_state(tmp_path)
    [record] = state["variants"]
    assert record["processor_dir"] == str(tmp_path / "stages" / "00-input" / "model")
    assert Variant.from_record(record).processor_dir == tmp_path / "stages" / "00-input" / "model"
