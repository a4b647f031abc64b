"""Build a shallow (often single-head) student of the teacher's own Hugging Face family.

The student is a stock config of the teacher's family (``BertConfig(num_attention_heads=1, ...)``, made
by the family adapter's ``student_config``), so it saves with
``save_pretrained`` and exports like any model. With ``init='teacher_layers'`` it copies the embeddings,
the chosen encoder layers, pooler and classifier from the teacher:

* **merged heads**: the teacher's Q/K/V/O weights are copied as they are. One head of width 384 computes
  ``q.k`` over all 12 heads' dims, i.e. the *sum* of the 12 per-head logits; HF scales it by
  ``1/sqrt(384)`` instead of ``1/sqrt(32)``, so its logits are ``sum / sqrt(12)``. ``merge_scale``
  rescales the query so that the merged logits are ``c * sum`` (``c = 1/heads`` is the mean of the
  heads' logits, the normalised geometric mean of their attention; ``c = 1`` the sum); ``auto`` picks
  ``c`` per layer to best reproduce the teacher layer's output on real texts.
* **narrower FFN**: keeps the intermediate neurons with the largest ``|w_in| * |w_out|``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from compress.errors import StageError
from compress.models.families.base import FamilyAdapter, require

MERGE_GRID = 9
"""Candidate scales tried by ``merge_scale='auto'`` (log-spaced between mean and sum of head logits)."""


@dataclass
class StudentSpec:
    layers: int
    heads: int = 1
    ffn: int | None = None
    hidden: int | None = None
    init: str = "teacher_layers"
    teacher_layers: str | list[int] = "uniform"
    merge_scale: str | float = "auto"
    dropout: float | None = None
    """Hidden and attention-probability dropout; None keeps the teacher's."""


@dataclass
class StudentInit:
    """What the student was built from, for the report."""

    teacher_layers: list[int] = field(default_factory=list)
    merge_scales: list[float] = field(default_factory=list)
    """Per student layer: ``c`` in ``logits = c * sum of the merged heads' logits``."""
    query_factors: list[float] = field(default_factory=list)
    """Per student layer: the factor folded into the copied query weights (``c * sqrt(heads merged)``)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "teacher_layers": self.teacher_layers,
            "merge_scales": [round(c, 4) for c in self.merge_scales],
        }


def choose_teacher_layers(choice: str | Sequence[int], student_layers: int, teacher_layers: int) -> list[int]:
    """``uniform``: evenly spaced, ending at the last layer (2 of 6 -> [2, 5]); ``first``: [0, 1, ...]."""
    if student_layers > teacher_layers:
        raise StageError(
            f"distill: student layers ({student_layers}) exceed the teacher's ({teacher_layers})"
        )
    if choice == "uniform":
        return [round((i + 1) * teacher_layers / student_layers) - 1 for i in range(student_layers)]
    if choice == "first":
        return list(range(student_layers))
    if isinstance(choice, str):
        raise StageError(
            f"distill: teacher_layers must be 'uniform', 'first' or a list of indices, got {choice!r}"
        )
    indices = [int(i) for i in choice]
    if len(indices) != student_layers:
        raise StageError(
            f"distill: teacher_layers lists {len(indices)} layers, the student has {student_layers}"
        )
    bad = [i for i in indices if not 0 <= i < teacher_layers]
    if bad:
        raise StageError(
            f"distill: teacher_layers {bad} out of range: the teacher has layers 0..{teacher_layers - 1}"
        )
    return indices


def student_config(teacher: nn.Module, spec: StudentSpec):
    family = require(teacher, "distill")
    config = family.student_config(teacher.config, spec.layers, spec.heads, spec.hidden, spec.ffn, spec.dropout)
    if config.hidden_size % spec.heads:
        raise StageError(f"distill: hidden size {config.hidden_size} is not a multiple of heads={spec.heads}")
    return config


def build_student(
    teacher: nn.Module, spec: StudentSpec, sample: dict[str, torch.Tensor] | None = None
) -> tuple[nn.Module, StudentInit]:
    """A fresh student; ``sample`` (a batch of named inputs) is needed for ``merge_scale='auto'``."""
    config = student_config(teacher, spec)
    family = require(teacher, "distill")
    _check_teacher_layout(family, teacher)
    student = type(teacher)(config)
    if spec.init == "random":
        return student.eval(), StudentInit()
    if spec.init != "teacher_layers":
        raise StageError(f"distill: init must be 'teacher_layers' or 'random', got {spec.init!r}")
    if config.hidden_size != teacher.config.hidden_size:
        raise StageError(
            f"distill: init 'teacher_layers' needs the teacher's hidden size ({teacher.config.hidden_size}); "
            f"use init: random for hidden={config.hidden_size}"
        )
    chosen = choose_teacher_layers(spec.teacher_layers, spec.layers, teacher.config.num_hidden_layers)
    _copy_weights(family, teacher, student, chosen)
    group = teacher.config.num_attention_heads / spec.heads
    if spec.merge_scale == "auto" and group > 1 and sample is not None:
        scales = _fit_merge_scales(family, teacher, student, chosen, group, sample)
    else:
        scales = [_scale_value(spec.merge_scale, group)] * spec.layers
    for layer, c in zip(family.encoder_layers(student), scales, strict=True):
        _set_merge_scale(family, layer, c, group)
    return student.eval(), StudentInit(chosen, scales, [c * math.sqrt(group) for c in scales])


def _check_teacher_layout(family: FamilyAdapter, teacher: nn.Module) -> None:
    hidden = teacher.config.hidden_size
    for index, layout in enumerate(family.attention_layout(teacher)):
        if layout.heads * layout.head_size != hidden:
            raise StageError(
                f"distill: teacher layer {index} has attention width {layout.heads * layout.head_size} "
                f"!= hidden "
                f"{hidden} (a pruned model); distil from the unpruned teacher"
            )


def _scale_value(choice: str | float, group: float) -> float:
    if choice in ("mean", "auto"):
        return 1.0 / group
    if choice == "sum":
        return 1.0
    if choice == "none":
        return 1.0 / math.sqrt(group)
    return float(choice)


def _copy_weights(family: FamilyAdapter, teacher: nn.Module, student: nn.Module, chosen: list[int]) -> None:
    """Copy every tensor of the student from the teacher: the encoder layers from the ``chosen`` teacher
    layers (the FFN's kept neurons only), everything else by name. Module names come from the adapter."""
    modules = {id(module): name for name, module in teacher.named_modules()}
    prefix = modules[id(family.encoder_layers(teacher))] + "."
    layer_modules = {id(module): name for name, module in family.encoder_layers(teacher)[0].named_modules()}
    ffn_in, ffn_out = (layer_modules[id(m)] for m in family.ffn_projections(family.encoder_layers(teacher)[0]))
    source = teacher.state_dict()
    keep = _ffn_neurons(family, teacher, chosen, family.ffn_width(student.config))
    state = {}
    for name, target in student.state_dict().items():
        key = name
        if name.startswith(prefix):
            index, rest = name[len(prefix) :].split(".", 1)
            teacher_index = chosen[int(index)]
            key = f"{prefix}{teacher_index}.{rest}"
            value = source[key]
            if rest.startswith(f"{ffn_in}."):
                value = value[keep[int(index)]]
            elif rest == f"{ffn_out}.weight":
                value = value[:, keep[int(index)]]
        else:
            value = family.student_tensor(name, source[key], target.shape)
        state[name] = value.clone()
        if state[name].shape != target.shape:
            raise StageError(
                f"distill: cannot copy {key} {tuple(value.shape)} into {name} {tuple(target.shape)}"
            )
    student.load_state_dict(state)


def _ffn_neurons(family: FamilyAdapter, teacher: nn.Module, chosen: list[int], width: int) -> list[torch.Tensor]:
    """Per chosen layer, the indices (in order) of the ``width`` most important intermediate neurons."""
    layers = family.encoder_layers(teacher)
    keep = []
    for index in chosen:
        w_in, w_out = (linear.weight for linear in family.ffn_projections(layers[index]))
        if width > w_in.shape[0]:
            raise StageError(f"distill: ffn {width} is wider than the teacher's {w_in.shape[0]}")
        importance = w_in.norm(dim=1) * w_out.norm(dim=0)
        keep.append(importance.topk(width).indices.sort().values)
    return keep


def _set_merge_scale(family: FamilyAdapter, layer: nn.Module, c: float, group: float) -> None:
    """Rescale the query so merged logits are ``c * sum`` of the original heads' logits.

    HF already gives ``sum / sqrt(group)``, so the query is multiplied by ``c * sqrt(group)``.
    """
    query = family.attention_projections(layer)[0]
    factor = c * math.sqrt(group)
    with torch.no_grad():
        query.weight.mul_(factor)
        query.bias.mul_(factor)


@torch.no_grad()
def _fit_merge_scales(
    family: FamilyAdapter,
    teacher: nn.Module,
    student: nn.Module,
    chosen: list[int],
    group: float,
    sample: dict[str, torch.Tensor],
) -> list[float]:
    """Per layer, the ``c`` whose merged layer reproduces the teacher layer's output on ``sample`` (MSE)."""
    mask = sample["attention_mask"]
    teacher.eval()
    hidden = teacher(**sample, output_hidden_states=True).hidden_states
    additive = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    valid = mask.bool()
    candidates = torch.logspace(math.log10(1.0 / group), 0.0, MERGE_GRID).tolist()
    scales = []
    for student_layer, teacher_index in zip(family.encoder_layers(student), chosen, strict=True):
        trial = copy.deepcopy(student_layer).eval()
        target = hidden[teacher_index + 1][valid]
        errors = []
        for c in candidates:
            layer = copy.deepcopy(trial)
            _set_merge_scale(family, layer, c, group)
            out = layer(hidden[teacher_index], attention_mask=additive, **family.layer_kwargs(student, hidden[0]))
            out = out[0] if isinstance(out, tuple) else out
            errors.append(float(((out[valid] - target) ** 2).mean()))
        scales.append(candidates[min(range(len(errors)), key=errors.__getitem__)])
    return scales
