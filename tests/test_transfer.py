"""Transfer text for distillation: sentence cutting, the held-out overlap filter, sampling, sources."""

from __future__ import annotations

import pytest

from compress.data.transfer import held_out_filter, load_corpus, split_sentences, transfer_texts
from compress.distillation.config import DistillConfig
from compress.errors import DataError


def test_sentences_are_cut_at_ends_and_html_breaks():
    review = 'A fine film. It is "great!" Really.<br /><br />Second paragraph, no end<br/>3 stars &amp; more'
    assert split_sentences(review) == [
        "A fine film.",
        'It is "great!"',
        "Really.",
        "Second paragraph, no end",
        "3 stars & more",
    ]
    assert split_sentences("e.g. lower case after a dot stays. Mr Smith") == ["e.g. lower case after a dot stays.", "Mr Smith"]


def test_held_out_filter_drops_shared_eight_word_runs_and_exact_short_texts():
    unseen = held_out_filter(["One two three four five six seven eight nine.", "Too short."])
    assert not unseen("zero ONE two three four five six seven eight")  # an 8-word run, any case
    assert unseen("zero one two three four five six seven")  # only 7 shared words
    assert not unseen("too   short")
    assert unseen("too short again")


def _corpus(tmp_path, lines):
    path = tmp_path / "reviews.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_transfer_texts_are_seeded_distinct_in_range_and_never_held_out(tmp_path):
    lines = [f"Review {i} says the film was fine. Then it ended on a note {i}." for i in range(50)]
    lines += ["Short.", "Held out sentence about a film that nobody saw anywhere.", "Review 3 says the film was fine."]
    corpus = _corpus(tmp_path, lines)
    held_out = ["Held out sentence about a film that nobody saw anywhere"]
    texts = transfer_texts(corpus, 40, held_out, seed=3, min_words=3, max_words=10)
    assert len(texts) == 40 and len(set(texts)) == 40
    assert all(3 <= len(t.split()) <= 10 for t in texts)
    assert not any("nobody saw" in t for t in texts)
    assert "Short." not in texts
    assert transfer_texts(corpus, 40, held_out, seed=3, min_words=3, max_words=10) == texts
    assert transfer_texts(corpus, 40, held_out, seed=4, min_words=3, max_words=10) != texts
    everything = transfer_texts(corpus, 10_000, held_out, seed=3, min_words=3, max_words=10)
    assert len(everything) == 100  # 50 x 2 distinct sentences (the duplicate "Review 3 ..." counted once)
    whole = transfer_texts(corpus, 1000, held_out, seed=0, sentences=False, max_words=40)
    assert len(whole) == 51 and sum(t.count(".") == 2 for t in whole) == 50  # whole lines, not sentences


def test_transfer_corpus_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="unknown transfer corpus 'wiki'.*imdb_reviews"):
        load_corpus("wiki")
    with pytest.raises(DataError, match="missing.txt: transfer text file not found"):
        load_corpus(str(tmp_path / "missing.txt"))
    with pytest.raises(DataError, match="has no usable texts"):
        transfer_texts(_corpus(tmp_path, ["One.", "Two words."]), 10, [], seed=0, min_words=3)
    with pytest.raises(ValueError, match="min_words \\(9\\) is larger than max_words \\(4\\)"):
        DistillConfig(transfer={"corpus": "imdb_reviews", "min_words": 9, "max_words": 4})


def test_csv_transfer_corpus_reads_the_text_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('text,other\n"A long enough sentence here.",x\n"Another long enough sentence.",y\n', encoding="utf-8")
    assert sorted(transfer_texts(str(path), 5, [], seed=0)) == [
        "A long enough sentence here.",
        "Another long enough sentence.",
    ]


@pytest.mark.integration
def test_imdb_reviews_are_the_25k_imdb_reviews_and_avoid_the_task_texts():
    from compress.core.recipe import DataConfig
    from compress.data.sources import load_task

    documents = load_corpus("imdb_reviews")
    assert len(documents) == 25_000
    task = load_task(DataConfig())
    held_out = [*task.dev.texts, *task.test.texts]
    texts = transfer_texts("imdb_reviews", 2000, held_out, seed=0)
    assert len(texts) == 2000
    assert not set(texts) & set(held_out)
    assert all("<br" not in t for t in texts)
