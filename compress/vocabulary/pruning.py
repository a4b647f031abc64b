"""Vocabulary pruning: keep only the token embeddings a task uses and remap the tokenizer to match.

Which tokens are kept: every id the *original* tokenizer produces on the training texts, all special
(added) tokens, and a fallback so that unseen words still segment into something better than
``[UNK]``. Kept tokens keep their relative order, so new ids are contiguous and the embedding matrix
is sliced in the same order.

Why predictions can be identical: WordPiece is greedy longest-match-first over the vocabulary and
BPE applies the lowest-ranked applicable merge. With a vocabulary that is a subset of the original
and still holds every token (and, for BPE, every intermediate merge) the original produced for a
word, both algorithms make the same choices, so a text made only of train-seen tokens gets the same
ids (remapped) and therefore bit-identical embeddings and logits. A text containing a dropped token
re-segments (into fallback pieces) and may be classified differently.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tokenizers import Tokenizer
from torch import nn

from compress.data.tokenization import TextEncoder
from compress.errors import StageError

Fallback = Literal["none", "characters"]
SUPPORTED_MODELS = ("WordPiece", "BPE")
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<s>", "</s>", "<pad>", "<unk>", "<mask>")
"""Kept even when a tokenizer does not list them as added tokens."""


@dataclass(frozen=True)
class VocabularyPlan:
    """Original token ids to keep, in their new order (new id = position in ``keep``)."""

    keep: tuple[int, ...]
    original_size: int

    @property
    def mapping(self) -> dict[int, int]:
        return {old: new for new, old in enumerate(self.keep)}


def tokenizer_data(tokenizer: Tokenizer) -> dict[str, Any]:
    """The tokenizer's JSON, after checking its model type is one we can rewrite."""
    data = json.loads(tokenizer.to_str())
    kind = data["model"].get("type")
    if kind not in SUPPORTED_MODELS:
        raise StageError(
            f"vocabulary pruning supports {' and '.join(SUPPORTED_MODELS)} tokenizers, "
            f"this tokenizer's model is {kind!r}"
        )
    return data


def count_token_ids(tokenizer: Tokenizer, texts: Iterable[str]) -> Counter[int]:
    """How often each id occurs when the tokenizer encodes ``texts`` in full (no truncation)."""
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_truncation()
    copy.no_padding()
    counts: Counter[int] = Counter()
    for encoding in copy.encode_batch(list(texts)):
        counts.update(encoding.ids)
    return counts


def _fallback_tokens(vocab: dict[str, int], fallback: Fallback, prefix: str) -> set[str]:
    if fallback == "none":
        return set()
    singles = {t for t in vocab if len(t) == 1}
    continuation = {t for t in vocab if prefix and t.startswith(prefix) and len(t) == len(prefix) + 1}
    return singles | continuation


def _merge_pairs(merges: list[Any]) -> list[tuple[str, str]]:
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in merges]


def _merged(a: str, b: str, prefix: str) -> str:
    return a + (b[len(prefix) :] if prefix and b.startswith(prefix) else b)


def _bpe_closure(kept: set[str], merges: list[tuple[str, str]], prefix: str) -> set[str]:
    """Add every token a kept BPE token is built from, so the kept tokens can still be produced."""
    recipe: dict[str, tuple[str, str]] = {}
    for a, b in merges:
        recipe.setdefault(_merged(a, b, prefix), (a, b))
    closed, stack = set(kept), list(kept)
    while stack:
        parts = recipe.get(stack.pop(), ())
        for part in parts:
            if part not in closed:
                closed.add(part)
                stack.append(part)
    return closed


def plan_vocabulary(
    tokenizer: Tokenizer,
    train_texts: Sequence[str],
    fallback: Fallback = "characters",
    keep_first: int = 0,
    min_count: int = 1,
) -> VocabularyPlan:
    """Ids to keep: train tokens seen ``min_count`` times, specials, fallback, ids below ``keep_first``."""
    data = tokenizer_data(tokenizer)
    model = data["model"]
    vocab: dict[str, int] = model["vocab"]
    prefix = model.get("continuing_subword_prefix") or ""
    id_to_token = {i: t for t, i in vocab.items()}
    counts = count_token_ids(tokenizer, train_texts)
    kept = {id_to_token[i] for i, n in counts.items() if n >= min_count and i in id_to_token}
    kept |= _fallback_tokens(vocab, fallback, prefix)
    kept |= {t for t, i in vocab.items() if i < keep_first}
    kept |= {t for t in (*SPECIAL_TOKENS, model.get("unk_token")) if t in vocab}
    if model["type"] == "BPE":
        kept = _bpe_closure(kept, _merge_pairs(model.get("merges", [])), prefix)
    ids = {vocab[t] for t in kept} | {item["id"] for item in data.get("added_tokens", [])}
    pad_id = TextEncoder(Tokenizer.from_str(tokenizer.to_str()), 8).pad_id
    ids |= set(range(pad_id + 1))  # the pad id keeps its number (RoBERTa positions depend on it)
    return VocabularyPlan(tuple(sorted(ids)), tokenizer.get_vocab_size())


def _remap_post_processor(node: Any, mapping: dict[int, int]) -> Any:
    """Rewrite the special-token ids inside Template/Bert/Roberta/Sequence post-processors."""
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if kind == "TemplateProcessing":
        for special in node.get("special_tokens", {}).values():
            special["ids"] = [mapping[i] for i in special["ids"]]
    elif kind in ("BertProcessing", "RobertaProcessing"):
        for key in ("sep", "cls"):
            node[key] = [node[key][0], mapping[node[key][1]]]
    elif kind == "Sequence":
        node["processors"] = [_remap_post_processor(p, mapping) for p in node.get("processors", [])]
    return node


def prune_tokenizer(tokenizer: Tokenizer, plan: VocabularyPlan) -> Tokenizer:
    """A copy of ``tokenizer`` whose vocabulary holds only ``plan.keep``, renumbered 0..n-1."""
    data = tokenizer_data(tokenizer)
    mapping = plan.mapping
    model = data["model"]
    ordered = sorted(model["vocab"].items(), key=lambda item: item[1])
    model["vocab"] = {token: mapping[i] for token, i in ordered if i in mapping}
    if model["type"] == "BPE":
        prefix = model.get("continuing_subword_prefix") or ""
        kept = model["vocab"]
        model["merges"] = [
            [a, b] for a, b in _merge_pairs(model.get("merges", []))
            if a in kept and b in kept and _merged(a, b, prefix) in kept
        ]
    for item in data.get("added_tokens", []):
        item["id"] = mapping[item["id"]]
    data["post_processor"] = _remap_post_processor(data.get("post_processor"), mapping)
    if data.get("padding") and data["padding"].get("pad_id") in mapping:
        data["padding"]["pad_id"] = mapping[data["padding"]["pad_id"]]
    return Tokenizer.from_str(json.dumps(data))


def slice_embeddings(model: nn.Module, plan: VocabularyPlan) -> int:
    """Keep only the rows of ``plan.keep`` in the word embedding; returns the parameters removed."""
    old = model.get_input_embeddings()
    if old.num_embeddings != plan.original_size:
        raise StageError(
            f"the model's word embedding has {old.num_embeddings} rows but the tokenizer has "
            f"{plan.original_size} tokens; they do not belong together"
        )
    pad = old.padding_idx
    if pad is not None and plan.mapping.get(pad) != pad:
        # RoBERTa numbers positions from the pad id, so the pad id must not move.
        raise StageError(f"vocabulary pruning would move the pad id {pad}; keep every id below it")
    new = nn.Embedding(len(plan.keep), old.embedding_dim, padding_idx=pad)
    new.weight.data.copy_(old.weight.data[list(plan.keep)])
    model.set_input_embeddings(new)
    if getattr(model, "config", None) is not None:
        model.config.vocab_size = len(plan.keep)
    return (old.num_embeddings - len(plan.keep)) * old.embedding_dim


def remap_ids(ids: Sequence[int], mapping: dict[int, int]) -> list[int] | None:
    """Original ids in the pruned numbering, or ``None`` when one of them was dropped."""
    out = []
    for i in ids:
        if i not in mapping:
            return None
        out.append(mapping[i])
    return out
