"""Text -> token ids with the fast ``tokenizers`` library only, so deployed bundles need no torch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer

from compress.core.files import atomic_path
from compress.errors import ModelLoadError

TOKENIZER_FILE = "tokenizer.json"
PAD_TOKENS = ("[PAD]", "<pad>")
MASK_TOKENS = ("[MASK]", "<mask>")


class TextEncoder:
    """Wraps a ``tokenizers.Tokenizer`` with the run's truncation length and pad id."""

    def __init__(self, tokenizer: Tokenizer, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length)
        self.pad_id = next(
            (tokenizer.token_to_id(t) for t in PAD_TOKENS if tokenizer.token_to_id(t) is not None), 0
        )

    @classmethod
    def from_dir(cls, directory: str | Path, max_length: int) -> TextEncoder:
        return cls(load_tokenizer(directory), max_length)

    def with_tokenizer(self, tokenizer: Tokenizer) -> TextEncoder:
        """The same truncation length over another tokenizer (e.g. a vocabulary-pruned one)."""
        return TextEncoder(tokenizer, self.max_length)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def special_ids(self) -> set[int]:
        """Ids of the bracketed special tokens (``[CLS]``, ``<s>`` ...) plus the pad id."""
        vocab = self.tokenizer.get_vocab()
        return {i for token, i in vocab.items() if token.startswith(("[", "<"))} | {self.pad_id}

    @property
    def mask_id(self) -> int | None:
        return next((self.tokenizer.token_to_id(t) for t in MASK_TOKENS if self.tokenizer.token_to_id(t) is not None), None)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [enc.ids for enc in self.tokenizer.encode_batch(list(texts))]

    def count_truncated(self, texts: Sequence[str]) -> int:
        """How many texts are longer than ``max_length`` tokens (and so lose their tail)."""
        return sum(1 for enc in self.tokenizer.encode_batch(list(texts)) if enc.overflowing)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        with atomic_path(directory / TOKENIZER_FILE) as tmp:
            self.tokenizer.save(str(tmp))
        return directory / TOKENIZER_FILE


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """Load ``tokenizer.json``, or convert a slow tokenizer (vocab.txt ...) with transformers."""
    directory = Path(directory)
    fast = directory / TOKENIZER_FILE
    if fast.is_file():
        try:
            return Tokenizer.from_file(str(fast))
        except Exception as error:  # tokenizers raises a bare Exception on malformed JSON
            raise ModelLoadError(f"{fast}: cannot read tokenizer ({error})") from None
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(directory), use_fast=True).backend_tokenizer
    except Exception as error:
        raise ModelLoadError(
            f"{directory}: no usable tokenizer (expected {TOKENIZER_FILE} or vocab files): {error}"
        ) from None
