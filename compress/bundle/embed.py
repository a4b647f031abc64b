"""Embed texts with a sentence-embedding bundle. Like :mod:`compress.bundle.predict` (whose verification it
shares): onnxruntime, tokenizers and numpy only. Pooling and normalisation are inside the bundled graph, so
its ``sentence_embedding`` output is the vectors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from compress.bundle.predict import MANIFEST_FILE, _predictor, _tokenizer, check_texts, read_manifest, verified_path
from compress.core.files import read_json
from compress.data.batching import pad_batch
from compress.data.tokenization import TOKENIZER_FILE, TextEncoder
from compress.errors import CompressError

EMBEDDING_TASK = "sentence-embedding"


class BundleEmbedder:
    """Loads and verifies a sentence-embedding bundle, then turns texts into vectors."""

    def __init__(self, bundle_dir: str | Path, threads: int | None = None, verify: bool = True) -> None:
        self.directory = Path(bundle_dir)
        manifest = read_manifest(self.directory)
        task = read_json(self.directory / MANIFEST_FILE).get("task", "text-classification")
        if task != EMBEDDING_TASK:
            raise CompressError(
                f"{self.directory}: a {task} bundle, not a sentence-embedding one; use 'compress predict' for it"
            )
        paths = {name: verified_path(self.directory, name, sha if verify else None) for name, sha in manifest.files.items()}
        self.encoder = TextEncoder(_tokenizer(paths[TOKENIZER_FILE]), manifest.max_length)
        self.predictor = _predictor(paths[manifest.model], threads)

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), dim) float32 vectors, as the model's ``sentence_embedding`` output gives them."""
        check_texts(texts)
        outputs = []
        for start in range(0, len(texts), batch_size):
            ids, mask = pad_batch(self.encoder.encode(texts[start : start + batch_size]), self.encoder.pad_id)
            outputs.append(self.predictor.run({"input_ids": ids, "attention_mask": mask}))
        return np.concatenate(outputs).astype(np.float32) if outputs else np.zeros((0, 0), dtype=np.float32)


def embed(bundle_dir: str | Path, texts: Sequence[str]) -> np.ndarray:
    """Embed ``texts`` with the bundle at ``bundle_dir``."""
    return BundleEmbedder(bundle_dir).embed(texts)
