"""Vocabulary pruning on tiny checkpoints: exact logits for kept tokens, remapped ids, save/load, ONNX."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny import (
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    make_checkpoint,
    registered_families,
    synthetic_rows,
    tiny_tokenizer,
    write_csv,
)
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

from compress.core.recipe import parse_recipe
from compress.data.batching import pad_batch
from compress.data.tokenization import TextEncoder
from compress.errors import StageError
from compress.models.families import family_for
from compress.models.forward import classifier_logits
from compress.tasks.text_classification import TokenExamples
from compress.vocabulary.pruning import plan_vocabulary, prune_tokenizer, remap_ids, slice_embeddings

TRAIN = ["a great film", "the plot was dull", "great actors and a dull story"]
KEPT_TEXTS = ["the great plot", "a dull film and a great story", "actors was the film"]
DROPPED_TEXTS = ["a wonderful film", "the music was boring"]


def _hf_model(directory):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(str(directory)).eval()


def _logits(model, encoder: TextEncoder, texts: list[str]) -> torch.Tensor:
    ids, mask = pad_batch(encoder.encode(texts), encoder.pad_id)
    with torch.inference_mode():
        return classifier_logits(model, {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)})


@pytest.fixture
def pruned_pair(tiny_checkpoints, tmp_path):
    def build(family: str, fallback: str = "none"):
        directory = tiny_checkpoints.get(family) or make_checkpoint(tmp_path / family, family)
        original = _hf_model(directory)
        tokenizer = tiny_tokenizer()
        plan = plan_vocabulary(tokenizer, TRAIN, fallback=fallback)
        model = _hf_model(directory)
        removed = slice_embeddings(model, plan)
        before, after = TextEncoder(tiny_tokenizer(), 32), TextEncoder(prune_tokenizer(tokenizer, plan), 32)
        return original, model, before, after, plan, removed

    return build


def test_plan_keeps_train_tokens_and_specials_with_contiguous_ids():
    tokenizer = tiny_tokenizer()
    plan = plan_vocabulary(tokenizer, TRAIN, fallback="none")
    pruned = prune_tokenizer(tokenizer, plan)
    train_words = {w for text in TRAIN for w in text.split()}
    assert set(pruned.get_vocab()) == {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"} | train_words
    assert sorted(pruned.get_vocab().values()) == list(range(len(plan.keep)))
    for special in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):
        assert pruned.token_to_id(special) == plan.mapping[tokenizer.token_to_id(special)]
    assert TextEncoder(pruned, 32).pad_id == 0
    encoding = pruned.encode("a great film")
    assert encoding.tokens == ["[CLS]", "a", "great", "film", "[SEP]"]
    assert encoding.ids[0] == pruned.token_to_id("[CLS]") and encoding.ids[-1] == pruned.token_to_id("[SEP]")
    assert pruned.encode("a wonderful film").tokens[2] == "[UNK]"


def test_characters_fallback_keeps_single_character_pieces():
    tokenizer = tiny_tokenizer()

    def kept(fallback: str) -> set[str]:
        plan = plan_vocabulary(tokenizer, ["the film"], fallback=fallback)
        return set(prune_tokenizer(tokenizer, plan).get_vocab())

    assert "a" in kept("characters") and "a" not in kept("none")


@pytest.mark.parametrize("family", [f for f in registered_families() if family_for(f).supports("vocab_prune")])
def test_identical_logits_for_texts_made_of_kept_tokens(pruned_pair, family):
    original, model, before, after, plan, removed = pruned_pair(family)
    assert model.get_input_embeddings().num_embeddings == len(plan.keep) < plan.original_size
    assert removed == (plan.original_size - len(plan.keep)) * model.get_input_embeddings().embedding_dim
    for old, new in zip(before.encode(KEPT_TEXTS), after.encode(KEPT_TEXTS), strict=True):
        assert remap_ids(old, plan.mapping) == new
    assert torch.equal(_logits(original, before, KEPT_TEXTS), _logits(model, after, KEPT_TEXTS))
    # A dropped word becomes [UNK]: the ids (and so the logits) legitimately differ.
    assert not torch.equal(_logits(original, before, DROPPED_TEXTS), _logits(model, after, DROPPED_TEXTS))


def test_pruned_model_saves_loads_and_exports_to_onnx(pruned_pair, tmp_path):
    from compress.models.persistence import load_model, save_model
    from compress.onnx.export import export_onnx, max_output_difference

    _, model, _, after, plan, _ = pruned_pair("roberta")
    save_model(model, tmp_path / "model")
    manifest = json.loads((tmp_path / "model" / "compress_model.json").read_text())
    assert manifest["config"]["vocab_size"] == len(plan.keep)
    loaded = load_model(tmp_path / "model")
    assert loaded.get_input_embeddings().weight.shape[0] == len(plan.keep)
    assert torch.equal(_logits(loaded, after, KEPT_TEXTS), _logits(model, after, KEPT_TEXTS))
    encoded = after.encode(KEPT_TEXTS + DROPPED_TEXTS)
    examples = TokenExamples(encoded, after.pad_id)
    export_onnx(loaded, examples.collate([0, 1]), tmp_path / "model.onnx", 17)
    assert max_output_difference(loaded, tmp_path / "model.onnx", examples) < 1e-4


def test_post_processor_ids_are_remapped_for_bert_and_roberta_processing():
    for processor in (
        processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2)),
        processors.RobertaProcessing(("[SEP]", 3), ("[CLS]", 2)),
    ):
        tokenizer = tiny_tokenizer()
        tokenizer.post_processor = processor
        pruned = prune_tokenizer(tokenizer, plan_vocabulary(tokenizer, ["great film"], fallback="none"))
        encoding = pruned.encode("great film")
        assert encoding.tokens[0] == "[CLS]" and encoding.tokens[-1] == "[SEP]"
        expected = (pruned.token_to_id("[CLS]"), pruned.token_to_id("[SEP]"))
        assert (encoding.ids[0], encoding.ids[-1]) == expected


def _tiny_bpe() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = [" ".join(POSITIVE + NEGATIVE + NEUTRAL)] * 3 + [text for text, _ in synthetic_rows(200)]
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    tokenizer.train_from_iterator(corpus, trainer)
    return tokenizer


def test_bpe_segmentation_is_unchanged_for_train_words_and_merges_stay_consistent():
    tokenizer = _tiny_bpe()
    train = ["the film was charming", "a boring plot"]
    plan = plan_vocabulary(tokenizer, train, fallback="characters")
    pruned = prune_tokenizer(tokenizer, plan)
    assert len(plan.keep) < tokenizer.get_vocab_size()
    for text in train + ["charming the boring film", "plot a was"]:
        assert remap_ids(tokenizer.encode(text).ids, plan.mapping) == pruned.encode(text).ids
    # an unseen word still segments into kept pieces (characters at worst), never an error
    assert "[UNK]" not in pruned.encode("wonderful").tokens


def test_unsupported_tokenizer_model_is_named():
    tokenizer = Tokenizer(models.Unigram([("[UNK]", 0.0), ("a", -1.0)], unk_id=0))
    with pytest.raises(StageError, match="'Unigram'"):
        plan_vocabulary(tokenizer, ["a"])


def test_stage_in_a_recipe_prunes_exports_and_bundles(tiny_checkpoints, tmp_path):
    from compress.bundle.predict import predict
    from compress.run.pipeline import run_recipe

    unused = {"music", "script", "cast", "pace"}
    rows = [(" ".join(w for w in t.split() if w not in unused), label) for t, label in synthetic_rows(400)]
    data = write_csv(tmp_path / "data.csv", rows)
    raw = {
        "name": "tiny-vocab",
        "model": {"source": str(tiny_checkpoints["bert"]), "max_length": 32},
        "data": {"dataset": str(data), "test_size": 80, "dev_size": 40},
        "stages": [
            {"finetune": {"epochs": 4, "learning_rate": 3e-3, "batch_size": 16, "patience": 0}},
            {"vocab_prune": {"fallback": "none"}},
            {"export": {}},
            {"bundle": {}},
        ],
    }
    result = run_recipe(parse_recipe(raw, "tiny.yaml"), out=tmp_path / "run")
    state = json.loads((result.run_dir / "state.json").read_text())
    pruned = next(v for v in state["variants"] if v["name"] == "teacher-vocab")
    vocab = pruned["info"]["vocabulary"]
    assert vocab["original_size"] == 44 and vocab["kept_size"] == 44 - len(unused)
    assert vocab["embedding_parameters_removed"] == len(unused) * 32
    assert vocab["test"]["identical_tokenization"] == 1.0 and vocab["test"]["prediction_agreement"] == 1.0
    assert vocab["test"]["max_abs_logit_diff_identical"] == 0.0
    bundle_vocab = Tokenizer.from_file(str(result.bundle_dir / "tokenizer.json")).get_vocab()
    assert len(bundle_vocab) == 40 and "music" not in bundle_vocab
    predictions = predict(result.bundle_dir, ["a great and charming film", "the music was dull and tedious"])
    assert [p.label for p in predictions] == ["pos", "neg"]
    assert np.isfinite([p.probability for p in predictions]).all()


@pytest.mark.integration
def test_real_minilm_vocabulary_on_a_rotten_tomatoes_slice():
    from compress.core.recipe import DataConfig
    from compress.data.sources import load_task
    from compress.models.sources import embedded_model_dir

    task = load_task(DataConfig(limit=3000, test_size=500, dev_size=250))
    tokenizer = TextEncoder.from_dir(embedded_model_dir(), 64).tokenizer
    plan = plan_vocabulary(tokenizer, task.train.texts, fallback="characters")
    pruned = TextEncoder(prune_tokenizer(tokenizer, plan), 64)
    original = TextEncoder(Tokenizer.from_str(tokenizer.to_str()), 64)
    assert plan.original_size == 30522
    assert 3000 < len(plan.keep) < 10000, len(plan.keep)
    for text in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):
        assert pruned.tokenizer.token_to_id(text) == plan.mapping[tokenizer.token_to_id(text)]
    assert pruned.pad_id == 0
    for texts in (task.train.texts[:500], task.test.texts):
        before, after = original.encode(texts), pruned.encode(texts)
        identical = [remap_ids(b, plan.mapping) == a for b, a in zip(before, after, strict=True)]
        kept_only = [remap_ids(b, plan.mapping) is not None for b in before]
        assert identical == kept_only  # identical ids exactly when every original token was kept
    assert not all(identical)  # some test words were never seen in this small train slice
    assert "[UNK]" not in pruned.tokenizer.encode("zyxwvut").tokens  # unseen words fall back to characters
