"""Run a deployable bundle on texts. Imports only the bundle's runtime (onnxruntime, or openvino for a bundle whose
manifest says ``runtime: openvino``), tokenizers and numpy: no torch.

A bundle verifies itself completely before anything is loaded: every file the predictor opens (the
model, an OpenVINO IR's weights, and the tokenizer) must be one of the manifest's hashed ``files``, every listed name must stay
inside the bundle (no ``..``, no absolute path, no symbolic link leading out), each file must match its
sha256, and the labels must be as many as the model has outputs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from compress.core.files import read_json, sha256_file
from compress.data.batching import pad_batch
from compress.data.tokenization import TOKENIZER_FILE, TextEncoder
from compress.errors import CompressError

MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class Prediction:
    """One text's prediction. Single-label: the class and its softmax probability. Multi-label: ``labels``
    holds every label whose sigmoid is above the manifest's threshold (``label`` joins them with commas,
    ``probability`` is the highest sigmoid). Regression: ``value`` (``label`` is it, formatted)."""

    text: str
    label: str
    probability: float
    labels: tuple[str, ...] = ()
    value: float | None = None


@dataclass(frozen=True)
class BundleManifest:
    """The parts of ``manifest.json`` the predictor relies on, checked."""

    model: str
    labels: tuple[str, ...]
    max_length: int
    files: dict[str, str]
    """File name (relative to the bundle) -> sha256."""
    label_kind: str = "single"
    threshold: float = 0.5
    """Multi-label decision threshold on each label's sigmoid (chosen on dev when the bundle was made)."""
    runtime: str = "onnxruntime"
    """The runtime the model is for: ``onnxruntime`` (bundles written before the field have no other) or
    ``openvino``."""
    weights: str | None = None
    """An OpenVINO IR's weights file (``model.bin``), hashed like the model."""


def read_manifest(directory: Path) -> BundleManifest:
    """Parse and check ``directory/manifest.json``; every problem is one CompressError naming the manifest."""
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise CompressError(f"{directory}: not a compress bundle (no {MANIFEST_FILE})")
    try:
        raw = read_json(path)
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CompressError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(raw, dict):
        raise CompressError(f"{path}: not a bundle manifest (expected a JSON object, got {type(raw).__name__})")
    problems = [problem for problem in (_labels_problem(raw), _max_length_problem(raw)) if problem]
    files = raw.get("files")
    if not isinstance(files, dict) or not files:
        problems.append("files: missing; a bundle lists every file with its sha256, so it can be verified")
    elif not all(isinstance(f, dict) and isinstance(f.get("sha256"), str) for f in files.values()):
        problems.append("files: every entry needs a 'sha256' string")
    if problems:
        raise CompressError(f"{path}: not a valid bundle manifest: " + "; ".join(problems))
    model, runtime, weights = raw.get("model"), raw.get("runtime", "onnxruntime"), raw.get("weights")
    if runtime not in ("onnxruntime", "openvino"):
        raise CompressError(f"{path}: runtime {runtime!r:.40} is not onnxruntime or openvino")
    needed = [("model", model), ("tokenizer", TOKENIZER_FILE)] + ([("weights", weights)] if runtime == "openvino" else [])
    for what, name in needed:
        if not isinstance(name, str) or name not in files:
            raise CompressError(
                f"{path}: the {what} file {name!r} is not one of the manifest's hashed files, so it cannot be "
                "verified; refusing to load it"
            )
    kind, threshold = raw.get("label_kind", "single"), raw.get("threshold", 0.5)
    if kind not in ("single", "multi", "regression"):
        raise CompressError(f"{path}: label_kind {kind!r:.40} is not single, multi or regression")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold < 1:
        raise CompressError(f"{path}: threshold {threshold!r:.40} is not a number between 0 and 1")
    return BundleManifest(
        model, tuple(raw["labels"]), raw["max_length"], {name: facts["sha256"] for name, facts in files.items()},
        kind, float(threshold), runtime, weights if runtime == "openvino" else None,
    )


def _labels_problem(raw: dict[str, Any]) -> str | None:
    labels = raw.get("labels")
    if labels is None:
        return "labels: missing"
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        return f"labels: expected a list of label names, got {labels!r:.80}"
    return None


def _max_length_problem(raw: dict[str, Any]) -> str | None:
    value = raw.get("max_length")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return f"max_length: expected a positive whole number of tokens, got {value!r:.40}"
    return None


def verified_path(directory: Path, name: str, sha256: str | None) -> Path:
    """``directory/name`` after checking that it stays inside ``directory`` (links followed) and, when
    ``sha256`` is given, that its content matches."""
    where = directory / MANIFEST_FILE
    parts = PurePosixPath(name).parts if isinstance(name, str) else ()
    if not parts or PurePosixPath(name).is_absolute() or "\\" in name or any(p in ("..", ".") for p in parts):
        raise CompressError(f"{where}: file name {name!r} is not a plain path inside the bundle; refusing it")
    path = directory.joinpath(*parts)
    if not path.is_file():
        raise CompressError(f"{path}: listed in the bundle manifest but missing")
    root = directory.resolve()
    if root not in path.resolve().parents:
        raise CompressError(f"{path}: leads outside the bundle (a symbolic link to {path.resolve()}); refusing it")
    if sha256 is not None and sha256_file(path) != sha256:
        raise CompressError(f"{path}: sha256 does not match the manifest; the file was changed or is corrupt")
    return path


class BundlePredictor:
    """Loads and verifies a bundle (see the module docstring), then classifies texts."""

    def __init__(self, bundle_dir: str | Path, threads: int | None = None, verify: bool = True) -> None:
        """``verify=False`` skips only the sha256 comparison (the structural checks always run)."""
        self.directory = Path(bundle_dir)
        manifest = read_manifest(self.directory)
        paths = {name: verified_path(self.directory, name, sha if verify else None) for name, sha in manifest.files.items()}
        self.labels = list(manifest.labels)
        self.label_kind, self.threshold = manifest.label_kind, manifest.threshold
        self.encoder = TextEncoder(_tokenizer(paths[TOKENIZER_FILE]), manifest.max_length)
        self.model_path = paths[manifest.model]
        weights = paths[manifest.weights] if manifest.weights else None
        self.predictor = _predictor(self.model_path, threads, manifest.runtime, weights)
        width = self.predictor.output_width()
        if width is not None:
            self._check_width(width)

    def _check_width(self, width: int) -> None:
        if width != len(self.labels):
            raise CompressError(
                f"{self.directory / MANIFEST_FILE}: lists {len(self.labels)} labels ({', '.join(self.labels)}) "
                f"but the model {self.model_path.name} outputs {width} scores per text"
            )

    def probabilities(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Softmax probabilities (single-label), each label's sigmoid (multi-label) or the value (regression)."""
        check_texts(texts)
        outputs = []
        for start in range(0, len(texts), batch_size):
            ids, mask = pad_batch(self.encoder.encode(texts[start : start + batch_size]), self.encoder.pad_id)
            logits = self.predictor.run({"input_ids": ids, "attention_mask": mask})
            self._check_width(logits.shape[-1])  # a symbolic output width is known only now
            if self.label_kind == "multi":
                outputs.append(1.0 / (1.0 + np.exp(-logits)))
            elif self.label_kind == "regression":
                outputs.append(logits)
            else:
                shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
                outputs.append(shifted / shifted.sum(axis=-1, keepdims=True))
        return np.concatenate(outputs) if outputs else np.zeros((0, len(self.labels)))

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        probabilities = self.probabilities(texts)
        if self.label_kind == "regression":
            return [
                Prediction(text, f"{row[0]:.4g}", 1.0, value=float(row[0]))
                for text, row in zip(texts, probabilities, strict=True)
            ]
        if self.label_kind == "multi":
            chosen = [tuple(self.labels[i] for i in np.flatnonzero(row > self.threshold)) for row in probabilities]
            return [
                Prediction(text, ",".join(labels), float(row.max()), labels=labels)
                for text, row, labels in zip(texts, probabilities, chosen, strict=True)
            ]
        return [
            Prediction(text, self.labels[int(row.argmax())], float(row.max()))
            for text, row in zip(texts, probabilities, strict=True)
        ]


def check_texts(texts: Sequence[str]) -> None:
    """Texts must be strings of valid Unicode: a command-line argument that was not UTF-8 arrives as a
    string with escaped bytes (surrogates) that the tokenizer and the terminal would choke on."""
    if isinstance(texts, str):
        raise CompressError("texts: expected a list of texts, got a single string")
    for number, text in enumerate(texts, start=1):
        if not isinstance(text, str):
            raise CompressError(f"text {number}: expected a string, got {type(text).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raw = os.fsencode(text)
            raise CompressError(
                f"text {number} ({raw[:60]!r}) is not valid UTF-8; pass texts encoded as UTF-8"
            ) from None


def _tokenizer(path: Path):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises a bare Exception for unreadable files
        raise CompressError(f"{path}: not a readable tokenizer ({str(error)[:200]})") from None


def _predictor(path: Path, threads: int | None, runtime: str = "onnxruntime", weights: Path | None = None):
    """The model on ONNX Runtime's CPU provider, or compiled for OpenVINO's CPU plugin, with the settings every
    latency in the manifest used."""
    if runtime == "openvino":
        return _openvino_predictor(path, threads, weights)
    from compress.runtimes import OnnxPredictor

    try:
        return OnnxPredictor(path, "cpu", threads)
    except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/... types
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise CompressError(f"{path}: ONNX Runtime cannot load the bundle's model ({first})") from None


def _openvino_predictor(path: Path, threads: int | None, weights: Path | None):
    from compress.runtimes import RuntimeUnavailable
    from compress.runtimes.openvino import OpenVinoPredictor, import_openvino

    try:
        import_openvino()
    except RuntimeUnavailable:
        raise CompressError(
            f"{path.parent}: this bundle runs on OpenVINO (its manifest says runtime: openvino), which is not "
            "installed here",
            hint="pip install openvino (the version the manifest's 'openvino' field names)",
        ) from None
    return OpenVinoPredictor(path, "cpu", threads, weights=weights)


def predict(bundle_dir: str | Path, texts: Sequence[str]) -> list[Prediction]:
    """Classify ``texts`` with the bundle at ``bundle_dir``."""
    return BundlePredictor(bundle_dir).predict(texts)
