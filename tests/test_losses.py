import math

import torch

from compress.training.kd import logits_kd_loss


def test_kd_loss_is_zero_soft_term_when_student_equals_teacher():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.5]])
    assert logits_kd_loss(logits, logits, None).item() < 1e-7


def test_kd_loss_matches_hand_computation():
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[math.log(3.0), 0.0]])  # probabilities 3/4, 1/4 at T=1
    expected_kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert abs(logits_kd_loss(student, teacher, None, temperature=1.0).item() - expected_kl) < 1e-6
    labels = torch.tensor([0])
    mixed = logits_kd_loss(student, teacher, labels, temperature=1.0, hard_label_weight=0.5).item()
    assert abs(mixed - (0.5 * math.log(2) + 0.5 * expected_kl)) < 1e-6
