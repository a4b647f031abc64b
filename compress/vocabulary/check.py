"""How closely a vocabulary-pruned model follows the unpruned one on a split's texts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from torch import nn

from compress.data.tokenization import TextEncoder
from compress.runtimes import TorchPredictor
from compress.runtimes.batched import predict_logits
from compress.vocabulary.pruning import VocabularyPlan, remap_ids


@dataclass(frozen=True)
class VocabularyCheck:
    texts: int
    identical_tokenization: float
    """Share of texts whose pruned ids equal the original ids, remapped."""
    prediction_agreement: float
    """Share of texts with the same predicted label as the unpruned model."""
    changed_texts: int
    changed_predictions: int
    verified_identical_texts: int
    max_abs_logit_diff_identical: float
    """Largest logit difference over the verified texts with identical ids (expected 0)."""
    max_abs_logit_diff_changed: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _logits(model: nn.Module, encoded: Sequence[Sequence[int]], pad_id: int) -> np.ndarray:
    if not encoded:
        return np.zeros((0, 0), dtype=np.float32)
    from compress.tasks.text_classification import TokenExamples

    return predict_logits(TorchPredictor(model), TokenExamples(encoded, pad_id), batch_size=64)


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max()) if a.size else 0.0


def compare_on_texts(
    original: nn.Module,
    original_encoder: TextEncoder,
    pruned: nn.Module,
    pruned_encoder: TextEncoder,
    plan: VocabularyPlan,
    texts: Sequence[str],
    predictions: Callable[[np.ndarray], np.ndarray],
    verify_identical: int = 256,
) -> VocabularyCheck:
    """Run both models where tokenization changed, and on a sample of texts where it did not. A text's
    prediction changed when the task's ``predictions`` differ in any output by more than 1e-4: a class, a
    label set, or a regression value."""
    mapping = plan.mapping
    before = original_encoder.encode(texts)
    after = pruned_encoder.encode(texts)
    same = [i for i, (b, a) in enumerate(zip(before, after, strict=True)) if remap_ids(b, mapping) == a]
    same_set = set(same)
    changed = [i for i in range(len(texts)) if i not in same_set]
    sample = same[:verify_identical]
    diffs = {}
    flips = 0
    for name, indices in (("identical", sample), ("changed", changed)):
        old = _logits(original, [before[i] for i in indices], original_encoder.pad_id)
        new = _logits(pruned, [after[i] for i in indices], pruned_encoder.pad_id)
        diffs[name] = _max_diff(old, new)
        flips += _changed_predictions(old, new, predictions) if old.size else 0
    total = max(len(texts), 1)
    return VocabularyCheck(
        texts=len(texts),
        identical_tokenization=round(len(same) / total, 6),
        prediction_agreement=round(1 - flips / total, 6),
        changed_texts=len(changed),
        changed_predictions=flips,
        verified_identical_texts=len(sample),
        max_abs_logit_diff_identical=diffs["identical"],
        max_abs_logit_diff_changed=diffs["changed"],
    )


def _changed_predictions(old: np.ndarray, new: np.ndarray, predictions: Callable[[np.ndarray], np.ndarray]) -> int:
    before, after = (np.asarray(predictions(o), dtype=np.float64).reshape(len(o), -1) for o in (old, new))
    return int((~np.isclose(before, after, rtol=0.0, atol=1e-4)).any(axis=1).sum())
