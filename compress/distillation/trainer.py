"""Train a student from cached teacher targets with a weighted sum of registry losses."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from compress.distillation.annealing import HeadAnnealing
from compress.distillation.cache import TeacherCache
from compress.distillation.losses import DistillLoss, StudentOutputs, TeacherTargets
from compress.models.families.base import family_for


class DistillationModel(nn.Module):
    """The student plus the losses' own parameters (projections), trained together as one module.

    ``forward(**inputs)`` returns the student's logits (so dev evaluation and export
    see a plain classifier); with ``labels`` and ``index`` it returns the weighted distillation loss. Going
    through ``forward`` for the loss keeps ``DistributedDataParallel`` wrapping correct.
    """

    def __init__(
        self, student: nn.Module, losses: Mapping[str, DistillLoss], weights: Mapping[str, float]
    ) -> None:
        super().__init__()
        self.student = student
        self.losses = nn.ModuleDict(dict(losses))
        self.weights = dict(weights)
        self.cache: TeacherCache | None = None
        self.annealing: HeadAnnealing | None = None
        """Advanced before each training forward when the student's heads are merged gradually (so the
        first step already mixes in 1/ramp of the merged attention)."""
        self._projection_layers = sorted(
            set().union(*(loss.student_projection_layers() for loss in losses.values()))
        )
        self._needs_hidden = any(loss.teacher_indices() for loss in losses.values())

    def get_extra_state(self) -> dict[str, int]:
        """The annealing progress, so a training checkpoint (the state dict) resumes the schedule mid-way."""
        return {"annealing_step": self.annealing.step if self.annealing is not None else 0}

    def set_extra_state(self, state: dict[str, int]) -> None:
        if self.annealing is not None:
            self.annealing.step = int(state["annealing_step"])

    def forward(self, labels=None, index=None, **inputs):
        if labels is None:
            return self.student(**inputs).logits
        if self.annealing is not None and self.training:
            self.annealing.advance()
        with self._capture_projections() as projections:
            output = self.student(**inputs, output_hidden_states=self._needs_hidden)
        student = StudentOutputs(output.logits, output.hidden_states or (), projections)
        teacher = self._targets(index, inputs["attention_mask"])
        total = sum(self.weights[name] * loss(student, teacher, labels) for name, loss in self.losses.items())
        return total

    def _targets(self, index: np.ndarray, mask: torch.Tensor) -> TeacherTargets:
        assert self.cache is not None, "attach a TeacherCache before training"
        return TeacherTargets(
            logits=self.cache.logits[torch.from_numpy(np.asarray(index))],
            hidden_states=self.cache.hidden_batch(index, mask.shape[1]),
            mask=mask,
        )

    @contextmanager
    def _capture_projections(self):
        captured: dict[int, dict[str, torch.Tensor]] = {}
        handles = []
        family = family_for(self.student)
        layers = family.encoder_layers(self.student)
        for layer_index in self._projection_layers:
            slot = captured.setdefault(layer_index, {})
            for name, module in zip("qkv", family.attention_projections(layers[layer_index]), strict=True):
                handles.append(module.register_forward_hook(_store(slot, name)))
        try:
            yield captured
        finally:
            for handle in handles:
                handle.remove()


def _store(slot: dict[str, torch.Tensor], name: str):
    def hook(_module, _inputs, output):
        slot[name] = output

    return hook


def distillation_loss_fn(model: nn.Module, inputs, labels, index) -> torch.Tensor:
    """The ``train_classifier`` loss: ``model`` is a :class:`DistillationModel` (or its DDP wrapper)."""
    return model(**inputs, labels=labels, index=index)
