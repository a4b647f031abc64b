"""Head annealing: split heads reproduce the teacher at the start, the stock merged head at the end."""

from __future__ import annotations

import math

import pytest
import torch
from tiny import layer_output, padded_ids, padded_inputs, registered_families, tiny_bert_teacher, tiny_family_model
from torch.nn import functional as F

from compress.distillation.annealing import HeadAnnealing, annealed_attention, annealing_heads
from compress.distillation.config import DistillConfig
from compress.distillation.run import head_annealing
from compress.distillation.student import StudentSpec, build_student
from compress.errors import StageError
from compress.models import architectures
from compress.models.families.base import family_for


def _student(heads: int = 1):
    """A student of a tiny teacher whose heads attend sharply and differently (random tiny weights attend
    almost uniformly, which would make split and merged heads alike)."""
    teacher = tiny_bert_teacher(heads=4)
    with torch.no_grad():
        for layer in architectures.encoder_layers(teacher):
            attention = architectures.self_attention(layer)
            attention.query.weight.mul_(4.0)
            attention.key.weight.mul_(4.0)
    student, init = build_student(teacher, StudentSpec(layers=2, heads=heads, dropout=0.0), padded_inputs())
    return teacher, student, init


def _schedule(student, init, step: int) -> HeadAnnealing:
    schedule = HeadAnnealing(student.config.num_attention_heads, 4, init.query_factors, 0.5, 10)
    schedule.step = step
    return schedule


@pytest.mark.parametrize("heads", [1, 2])
def test_split_heads_reproduce_the_teachers_layers_before_annealing(heads):
    teacher, student, init = _student(heads)
    ids, mask = padded_ids()
    hidden = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    layers = architectures.encoder_layers(student)
    with annealing_heads(student, _schedule(student, init, 0)):
        student.train()
        for index, source in enumerate(init.teacher_layers):
            out = layer_output(layers[index], hidden[source], mask)
            assert torch.allclose(out[mask.bool()], hidden[source + 1][mask.bool()], atol=1e-5)
    merged = layer_output(layers[0], hidden[init.teacher_layers[0]], mask)  # the stock merged head differs
    assert not torch.allclose(merged[mask.bool()], hidden[init.teacher_layers[0] + 1][mask.bool()], atol=1e-3)


def test_merged_once_annealed_and_in_eval_mode():
    _, student, init = _student()
    ids, mask = padded_ids()

    def last_hidden():
        return student(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1]

    stock = last_hidden()
    schedule = _schedule(student, init, 0)
    with annealing_heads(student, schedule):
        student.train()
        assert not torch.allclose(last_hidden(), stock, atol=1e-3)
        student.eval()
        assert torch.equal(last_hidden(), stock)
        schedule.step = 5
        assert schedule.alpha == 1.0
        student.train()
        assert torch.allclose(last_hidden(), stock, atol=1e-6)


def test_annealing_leaves_a_stock_student_behind():
    _, student, init = _student()
    keys = list(student.state_dict())
    attention = architectures.self_attention(architectures.encoder_layers(student)[0])
    with annealing_heads(student, _schedule(student, init, 0)):
        assert "forward" in vars(attention)
        assert list(student.state_dict()) == keys
    assert "forward" not in vars(attention)
    assert list(student.state_dict()) == keys


def test_schedule_ramps_linearly_over_its_share_of_the_steps():
    schedule = HeadAnnealing(1, 12, [1.0], fraction=0.5, total_steps=10)
    alphas = []
    for _ in range(7):
        alphas.append(schedule.alpha)
        schedule.advance()
    assert alphas == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.0])


def test_mixed_attention_by_hand():
    """alpha * (merged 4-wide head) + (1 - alpha) * (two 2-wide heads), the second key masked out."""
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 3, 4, generator=generator) for _ in range(3))
    mask = torch.tensor([[1, 0, 1]])
    factor, alpha = 2.0, 0.25
    out = annealed_attention(q, k, v, mask.bool()[:, None, None, :], heads=1, split_heads=2, query_factor=factor, alpha=alpha)
    keep = mask.bool()[0]
    expected = torch.empty(3, 4)
    merged = F.softmax((q[0] @ k[0].T / 2.0)[:, keep], dim=-1)  # HF: 1/sqrt(4)
    for h in range(2):
        dims = slice(2 * h, 2 * h + 2)
        split = F.softmax((q[0, :, dims] @ k[0, :, dims].T / (factor * math.sqrt(2)))[:, keep], dim=-1)
        expected[:, dims] = (alpha * merged + (1 - alpha) * split) @ v[0, keep][:, dims]
    assert torch.allclose(out[0], expected, atol=1e-6)


def test_annealing_needs_teacher_heads_that_split_evenly():
    teacher = tiny_bert_teacher(heads=4)
    student, init = build_student(teacher, StudentSpec(layers=2, heads=8), padded_inputs())
    with pytest.raises(StageError, match="4 heads to split evenly into the student's 8"):
        with head_annealing(student, teacher, init, DistillConfig(anneal_heads=0.5), examples=10):
            pass
    same, same_init = build_student(teacher, StudentSpec(layers=2, heads=4), padded_inputs())
    with head_annealing(same, teacher, same_init, DistillConfig(anneal_heads=0.5), examples=10) as schedule:
        assert schedule is None  # nothing to merge


def _sharp_family_teacher(family: str):
    """A tiny teacher of ``family`` whose heads attend sharply; MPNet's shared relative-bias table gets the
    same strong column for every head, so the student's one (mean) column is exactly each head's bias."""
    teacher = tiny_family_model(family, layers=4, heads=4)
    adapter = family_for(teacher)
    with torch.no_grad():
        for layer in adapter.encoder_layers(teacher):
            query, key, _ = adapter.attention_projections(layer)
            query.weight.mul_(4.0)
            key.weight.mul_(4.0)
        for name, parameter in teacher.named_parameters():
            if name.endswith("relative_attention_bias.weight"):
                parameter.copy_(torch.randn(parameter.shape[0], 1).mul(3.0).expand_as(parameter))
    return teacher, adapter


@pytest.mark.parametrize("family", [f for f in registered_families() if family_for(f).supports("distill")])
def test_every_family_anneals_from_its_teachers_heads_to_its_stock_merged_head(family):
    """Split heads give the teacher's layers; just before the end of the ramp the annealed layer is the stock
    merged layer, which catches a family whose self-attention module also projects the output (DistilBERT,
    MPNet) or takes a position bias (MPNet) that the annealed forward would otherwise skip."""
    teacher, adapter = _sharp_family_teacher(family)
    student, init = build_student(teacher, StudentSpec(layers=2, heads=1, dropout=0.0), padded_inputs())
    ids, mask = padded_ids()
    valid = mask.bool()
    with torch.no_grad():
        hidden = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    layers = adapter.encoder_layers(student)

    def run(layer, states):
        additive = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        out = layer(states, attention_mask=additive, **adapter.layer_kwargs(student, states))
        return out[0] if isinstance(out, tuple) else out

    with torch.no_grad():
        stock = [run(layer, hidden[source]) for layer, source in zip(layers, init.teacher_layers, strict=True)]
        with annealing_heads(student, HeadAnnealing(1, 4, init.query_factors, 0.5, 10)):
            student.train()
            for layer, source in zip(layers, init.teacher_layers, strict=True):
                torch.testing.assert_close(run(layer, hidden[source])[valid], hidden[source + 1][valid], atol=1e-5, rtol=0)
        late = HeadAnnealing(1, 4, init.query_factors, 1.0, 1_000_000)
        late.step = 999_999  # alpha = 1 - 1e-6: still the annealed forward, all but merged
        with annealing_heads(student, late):
            student.train()
            for layer, source, expected in zip(layers, init.teacher_layers, stock, strict=True):
                torch.testing.assert_close(run(layer, hidden[source])[valid], expected[valid], atol=1e-4, rtol=0)
        student.eval()
    assert not torch.allclose(stock[0][valid], hidden[init.teacher_layers[0] + 1][valid], atol=1e-3)
