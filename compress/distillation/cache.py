"""Teacher outputs computed once per training example and kept for every epoch.

Logits are kept in FP32 (N x labels). Hidden states are kept only for the indices the losses read, in
FP16 and without padding (one flat (tokens, hidden) tensor per index plus offsets): about
``2 bytes x hidden x tokens`` each, i.e. ~200 MB per index for Rotten Tomatoes' 9,752 train texts
(~26 tokens each) at hidden 384. The attention loss recomputes the teacher's Q/K/V from the cached
*input* of a layer, which is 3x smaller than caching Q, K and V.

With a stage directory the cache is also kept on disk (safetensors, written atomically), so an interrupted
``distill`` resumes without running the teacher again; it is reused only when its fingerprint (teacher
weights, texts, hidden-state indices, precision, batching) matches, and discarded with the training
checkpoint once the stage is complete.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from compress.core.files import atomic_path
from compress.data.batching import in_input_order
from compress.distillation.estimate import estimate_teacher_cache
from compress.tasks.base import Examples, iterate_inputs
from compress.training.checkpoints import TEACHER_CACHE_FILE, state_digest
from compress.training.loop import as_tensors, autocast

CACHE_FORMAT = 1
"""Bumped whenever what the cache holds, or how it is computed, changes: older files are recomputed."""


@dataclass
class TeacherCache:
    logits: torch.Tensor
    hidden: dict[int, torch.Tensor]
    offsets: np.ndarray
    """``offsets[i]:offsets[i+1]`` are example ``i``'s rows in every ``hidden`` tensor."""

    @property
    def nbytes(self) -> int:
        return self.logits.numel() * self.logits.element_size() + sum(
            t.numel() * t.element_size() for t in self.hidden.values()
        )

    def hidden_batch(self, index: np.ndarray, length: int) -> dict[int, torch.Tensor]:
        """(B, length, hidden) float32 tensors for the examples ``index``, zero-padded on the right."""
        out = {}
        for key, flat in self.hidden.items():
            batch = torch.zeros(len(index), length, flat.shape[1], dtype=torch.float32)
            for row, i in enumerate(index):
                start, end = self.offsets[i], self.offsets[i + 1]
                batch[row, : end - start] = flat[start:end].float()
            out[key] = batch
        return out


@torch.inference_mode()
def cache_teacher(
    teacher: nn.Module,
    examples: Examples,
    indices: set[int],
    batch_size: int = 128,
    precision: str = "fp32",
    log: Callable[[str], object] | None = None,
) -> TeacherCache:
    """Run the teacher once over ``examples`` (in size order, for little padding); keep logits and the requested
    hidden states in the order of ``examples``. ``log`` first gets an estimate of how long this will take."""
    teacher.eval()
    if log is not None:
        log(estimate_teacher_cache(teacher, examples, indices, batch_size, precision).line(precision))
    lengths = examples.sizes()
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    order, logits = [], []
    hidden = {i: torch.empty(int(offsets[-1]), teacher.config.hidden_size, dtype=torch.float16) for i in indices}
    for index, inputs in iterate_inputs(examples, batch_size):
        with autocast(precision):
            output = teacher(**as_tensors(inputs), output_hidden_states=bool(indices))
        order.append(index)
        logits.append(output.logits.float().numpy())
        for i, flat in hidden.items():
            states = output.hidden_states[i]
            for row, example in enumerate(index):
                flat[offsets[example] : offsets[example + 1]] = states[row, : lengths[example]]
    return TeacherCache(logits=torch.from_numpy(in_input_order(order, logits)), hidden=hidden, offsets=offsets)


def cache_fingerprint(
    teacher: nn.Module, examples: Examples, indices: set[int], batch_size: int, precision: str
) -> str:
    """What a saved cache must match to be reused: teacher weights, the examples, indices, batching, precision."""
    blob = json.dumps(
        [CACHE_FORMAT, state_digest(teacher), examples.digest(), sorted(indices), batch_size, precision]
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def save_teacher_cache(cache: TeacherCache, path: str | Path, fingerprint: str) -> Path:
    from safetensors.torch import save_file

    tensors = {"logits": cache.logits.contiguous(), "offsets": torch.from_numpy(np.asarray(cache.offsets, dtype=np.int64))}
    tensors.update({f"hidden.{i}": flat.contiguous() for i, flat in cache.hidden.items()})
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"fingerprint": fingerprint})
    return Path(path)


def load_teacher_cache(path: str | Path, fingerprint: str) -> TeacherCache | None:
    """The saved cache when it exists, is readable and has this fingerprint; else ``None`` (recompute)."""
    from safetensors import safe_open

    if not Path(path).is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            if (handle.metadata() or {}).get("fingerprint") != fingerprint:
                return None
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (not a dict)
        hidden = {int(key.split(".", 1)[1]): t for key, t in tensors.items() if key.startswith("hidden.")}
        return TeacherCache(logits=tensors["logits"], hidden=hidden, offsets=tensors["offsets"].numpy())
    except Exception:  # a cache we cannot read is recomputed, not a reason to fail the run
        return None


def stored_teacher_cache(
    teacher: nn.Module,
    examples: Examples,
    indices: set[int],
    directory: str | Path | None,
    batch_size: int = 128,
    precision: str = "fp32",
    log: Callable[[str], object] | None = None,
) -> tuple[TeacherCache, bool]:
    """:func:`cache_teacher`, reusing (or saving) the cache in ``directory``; also says whether it was reused."""
    if directory is None:
        return cache_teacher(teacher, examples, indices, batch_size, precision, log), False
    path = Path(directory) / TEACHER_CACHE_FILE
    fingerprint = cache_fingerprint(teacher, examples, indices, batch_size, precision)
    saved = load_teacher_cache(path, fingerprint)
    if saved is not None:
        return saved, True
    cache = cache_teacher(teacher, examples, indices, batch_size, precision, log)
    save_teacher_cache(cache, path, fingerprint)
    return cache, False
