"""Run a deployable bundle on texts. Imports only onnxruntime, tokenizers and numpy: no torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compress.data.batching import pad_batch
from compress.data.tokenization import TOKENIZER_FILE, TextEncoder
from compress.errors import CompressError
from compress.io_utils import read_json, sha256_file

MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class Prediction:
    text: str
    label: str
    probability: float


class BundlePredictor:
    """Loads ``manifest.json``, checks every file's sha256, and classifies texts."""

    def __init__(self, bundle_dir: str | Path, threads: int | None = None, verify: bool = True) -> None:
        from tokenizers import Tokenizer

        from compress.evaluation.runners import open_onnx_session

        self.directory = Path(bundle_dir)
        manifest_path = self.directory / MANIFEST_FILE
        if not manifest_path.is_file():
            raise CompressError(f"{self.directory}: not a compress bundle (no {MANIFEST_FILE})")
        try:
            self.manifest = read_json(manifest_path)
        except ValueError as error:
            raise CompressError(f"{manifest_path}: not valid JSON ({error})") from None
        if verify:
            self._verify_files()
        self.labels = self.manifest["labels"]
        self.encoder = TextEncoder(Tokenizer.from_file(str(self.directory / TOKENIZER_FILE)), self.manifest["max_length"])
        self.session = open_onnx_session(self.directory / self.manifest["model"], "cpu", threads)

    def _verify_files(self) -> None:
        for name, facts in self.manifest.get("files", {}).items():
            path = self.directory / name
            if not path.is_file():
                raise CompressError(f"{path}: listed in the bundle manifest but missing")
            if sha256_file(path) != facts["sha256"]:
                raise CompressError(f"{path}: sha256 does not match the manifest; the file was changed or is corrupt")

    def probabilities(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        outputs = []
        for start in range(0, len(texts), batch_size):
            ids, mask = pad_batch(self.encoder.encode(texts[start : start + batch_size]), self.encoder.pad_id)
            logits = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            outputs.append(shifted / shifted.sum(axis=-1, keepdims=True))
        return np.concatenate(outputs) if outputs else np.zeros((0, len(self.labels)))

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        probabilities = self.probabilities(texts)
        return [
            Prediction(text, self.labels[int(row.argmax())], float(row.max()))
            for text, row in zip(texts, probabilities, strict=True)
        ]


def predict(bundle_dir: str | Path, texts: Sequence[str]) -> list[Prediction]:
    """Classify ``texts`` with the bundle at ``bundle_dir``."""
    return BundlePredictor(bundle_dir).predict(texts)
