"""Length-grouped batching: every text exactly once, less padding, outputs back in input order."""

from __future__ import annotations

import numpy as np
import torch
from tiny import VOCAB, tiny_config
from transformers import BertForSequenceClassification

from compress.data.batching import bucketed_batches, iterate_batches, lengths_of, pad_batch
from compress.distillation.cache import cache_teacher
from compress.runtimes import TorchPredictor
from compress.runtimes.batched import predict_logits
from compress.tasks.text_classification import TokenExamples
from compress.training.kd import teacher_logits


def _texts(n: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [[2, *rng.integers(5, len(VOCAB), rng.integers(1, 40)).tolist(), 3] for _ in range(n)]


def _padding_share(encoded, batches) -> float:
    lengths = lengths_of(encoded)
    padded = sum(len(b) * lengths[b].max() for b in batches)
    return 1 - lengths.sum() / padded


def test_bucketed_batches_cover_every_index_once_and_pad_less_than_random():
    encoded = _texts(1000)
    lengths = lengths_of(encoded)
    batches = bucketed_batches(lengths, 16, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    assert all(1 <= len(b) <= 16 for b in batches)
    assert len(batches) == -(-1000 // 16)
    random_order = np.random.default_rng(0).permutation(1000)
    random_batches = [random_order[i : i + 16] for i in range(0, 1000, 16)]
    assert _padding_share(encoded, batches) < 0.1 < 0.3 < _padding_share(encoded, random_batches)
    again = bucketed_batches(lengths, 16, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    other = bucketed_batches(lengths, 16, np.random.default_rng(1))
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other, strict=True))


def test_batches_are_not_ordered_short_to_long_within_an_epoch():
    lengths = lengths_of(_texts(2000))
    batches = bucketed_batches(lengths, 8, np.random.default_rng(0))
    longest = [lengths[b].max() for b in batches]
    assert abs(np.corrcoef(np.arange(len(longest)), longest)[0, 1]) < 0.2


def test_inference_in_length_order_returns_outputs_in_input_order():
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config("bert")).eval()
    encoded = _texts(50, seed=3)
    seen = [i for index, _, _ in iterate_batches(encoded, 8, 0) for i in index]
    assert sorted(seen) == list(range(50))
    names = ("input_ids", "attention_mask")
    one_by_one = np.concatenate([TorchPredictor(model).run(dict(zip(names, pad_batch([x], 0), strict=True))) for x in encoded])
    examples = TokenExamples(encoded, 0)
    np.testing.assert_allclose(predict_logits(TorchPredictor(model), examples, batch_size=8), one_by_one, atol=1e-5)
    np.testing.assert_allclose(teacher_logits(model, examples, batch_size=8).numpy(), one_by_one, atol=1e-5)


def test_teacher_cache_keeps_each_examples_hidden_states_in_input_order():
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config("bert")).eval()
    encoded = _texts(30, seed=4)
    cache = cache_teacher(model, TokenExamples(encoded, 0), {1, 2}, batch_size=7)
    for i in (0, 11, 29):
        with torch.inference_mode():
            alone = model(input_ids=torch.tensor([encoded[i]]), output_hidden_states=True)
        np.testing.assert_allclose(cache.logits[i].numpy(), alone.logits[0].numpy(), atol=1e-5)
        rows = cache.hidden_batch(np.array([i]), len(encoded[i]))
        for layer in (1, 2):
            np.testing.assert_allclose(rows[layer][0].numpy(), alone.hidden_states[layer][0].numpy(), atol=2e-3)
