"""Teacher-labelled augmentation: perturbed copies of train token ids."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compress.distillation.augment import augment_ids, embedding_neighbours, train_token_pool
from compress.distillation.config import AugmentConfig

SPECIAL = {0, 2, 3}  # pad, cls, sep
MASK = 4
TRAIN = [[2, 10, 11, 12, 3], [2, 13, 10, 3]]


def _augment(copies=1, mask=0.0, replace=0.0, drop=0.0, neighbours=None, seed=0):
    return augment_ids(TRAIN, copies, mask, replace, drop, MASK, SPECIAL, seed, neighbours)


def test_copies_are_copy_major_and_keep_special_tokens():
    out = _augment(copies=3, mask=0.3, replace=0.3, drop=0.2)
    assert len(out) == 3 * len(TRAIN)
    for index, ids in enumerate(out):
        source = TRAIN[index % len(TRAIN)]
        assert ids[0] == 2 and ids[-1] == 3  # [CLS] ... [SEP] survive every perturbation
        assert len(ids) <= len(source)


def test_no_perturbation_gives_the_originals_and_full_masking_masks_every_word():
    assert _augment(copies=2) == TRAIN + TRAIN
    assert _augment(mask=1.0) == [[2, MASK, MASK, MASK, 3], [2, MASK, MASK, 3]]
    assert _augment(drop=1.0) == [[2, 3], [2, 3]]


def test_unigram_replacements_come_from_the_train_split():
    pool = train_token_pool(TRAIN, SPECIAL)
    assert sorted(pool.tolist()) == [10, 10, 11, 12, 13]
    out = _augment(copies=20, replace=1.0)
    words = {t for ids in out for t in ids[1:-1]}
    assert words == {10, 11, 12, 13}


def test_embedding_neighbours_are_the_most_similar_other_tokens():
    embeddings = torch.zeros(20, 3)
    embeddings[10] = torch.tensor([1.0, 0.0, 0.0])
    embeddings[11] = torch.tensor([0.9, 0.1, 0.0])  # closest to 10
    embeddings[12] = torch.tensor([0.0, 1.0, 0.0])
    embeddings[13] = torch.tensor([0.1, 0.9, 0.0])  # closest to 12
    embeddings[14] = torch.tensor([1.0, 0.0, 0.0])  # identical to 10, but not in the token list
    table = embedding_neighbours(embeddings, [10, 11, 12, 13, 10], k=1, chunk=3)
    assert {t: c.tolist() for t, c in table.items()} == {10: [11], 11: [10], 12: [13], 13: [12]}
    assert sorted(embedding_neighbours(embeddings, [10, 11, 12, 13], k=10)[10].tolist()) == [11, 12, 13]
    assert embedding_neighbours(embeddings, [10], k=3) == {}


def test_neighbour_replacement_draws_a_tokens_candidates_or_falls_back_to_the_pool():
    neighbours = {10: np.array([50, 51]), 11: np.array([60])}
    out = _augment(copies=30, replace=1.0, neighbours=neighbours)
    first = out[0::2]  # copies of [cls 10 11 12 sep]
    assert {ids[1] for ids in first} == {50, 51}
    assert {ids[2] for ids in first} == {60}
    assert {ids[3] for ids in first} <= {10, 11, 12, 13}  # 12 has no candidates: the unigram pool


def test_neighbour_augmentation_is_validated_in_recipes():
    assert AugmentConfig().replace_with == "unigram"
    assert AugmentConfig(replace_with="neighbours", neighbours=4).neighbours == 4
    with pytest.raises(ValueError, match="replace_with"):
        AugmentConfig(replace_with="synonyms")


def test_span_sampling_keeps_a_contiguous_run_of_words_between_the_special_tokens():
    source = [2, 10, 11, 12, 13, 14, 3]
    out = augment_ids([source], 200, 0.0, 0.0, 0.0, MASK, SPECIAL, 0, span_prob=1.0)
    lengths = set()
    for ids in out:
        assert ids[0] == 2 and ids[-1] == 3
        words = ids[1:-1]
        first = source.index(words[0])
        assert words == source[first : first + len(words)]  # contiguous, in order
        lengths.add(len(words))
    assert lengths == {1, 2, 3, 4, 5}  # every span length from one word to the whole text


def test_span_probability_sets_the_share_of_cut_copies_and_zero_changes_nothing():
    source = [2, 10, 11, 12, 13, 14, 3]
    out = augment_ids([source], 2000, 0.0, 0.0, 0.0, MASK, SPECIAL, 0, span_prob=0.3)
    cut = np.mean([len(ids) < len(source) for ids in out])
    assert 0.2 < cut < 0.3  # 30% are cut, and a fifth of those keep every word
    perturbed = _augment(copies=3, mask=0.3, replace=0.3, drop=0.2, seed=5)
    assert augment_ids(TRAIN, 3, 0.3, 0.3, 0.2, MASK, SPECIAL, 5, span_prob=0.0) == perturbed
    assert augment_ids([[2, 10, 3]], 5, 0.0, 0.0, 0.0, MASK, SPECIAL, 0, span_prob=1.0) == [[2, 10, 3]] * 5
