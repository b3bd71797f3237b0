"""The distillation losses against values computed by hand, and the classifier's forward with a teacher."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers import char_tokenizer, classifier
from textrnn.models.distillation import DistillLoss, binary_kl

STUDENT = torch.tensor([[1.0, 0.0], [0.5, -0.5]])
TEACHER = torch.tensor([[2.0, -1.0], [0.0, 1.0]])


def softmax(row):
    e = [math.exp(v) for v in row]
    return [v / sum(e) for v in e]


def test_mse_is_the_mean_squared_logit_difference():
    expected = ((1 - 2) ** 2 + (0 + 1) ** 2 + (0.5 - 0) ** 2 + (-0.5 - 1) ** 2) / 4
    assert DistillLoss("mse").soft(STUDENT, TEACHER, False).item() == pytest.approx(expected)


def test_kl_at_a_temperature_by_hand():
    t = 2.0
    total = 0.0
    for s, q in zip(STUDENT.tolist(), TEACHER.tolist()):
        p_teacher = softmax([v / t for v in q])
        p_student = softmax([v / t for v in s])
        total += sum(p * math.log(p / r) for p, r in zip(p_teacher, p_student))
    expected = t * t * total / 2
    assert DistillLoss("kl", temperature=t).soft(STUDENT, TEACHER, False).item() == pytest.approx(expected, rel=1e-5)


def test_multi_label_kl_is_a_bernoulli_kl_per_label():
    t = 1.0
    total = 0.0
    for s, q in zip(STUDENT.flatten().tolist(), TEACHER.flatten().tolist()):
        p, r = 1 / (1 + math.exp(-q)), 1 / (1 + math.exp(-s))
        total += p * math.log(p / r) + (1 - p) * math.log((1 - p) / (1 - r))
    got = DistillLoss("kl", temperature=t).soft(STUDENT, TEACHER, True).item()
    assert got == pytest.approx(total / 4, rel=1e-5)
    assert binary_kl(TEACHER, TEACHER).abs().max().item() < 1e-7


def test_alpha_mixes_the_gold_labels_in():
    model = classifier(char_tokenizer()).train()
    ids, lengths, labels = torch.tensor([[5, 6, 7], [8, 9, 0]]), torch.tensor([3, 2]), torch.tensor([0, 2])
    teacher = torch.randn(2, 3)
    torch.manual_seed(1)
    logits, hard = model(ids, lengths, labels)
    rule = DistillLoss("mse", alpha=0.25)
    torch.manual_seed(1)
    _, mixed = model(ids, lengths, labels, teacher_logits=teacher, distill=rule)
    expected = 0.25 * rule.soft(logits, teacher, False) + 0.75 * hard
    assert mixed.item() == pytest.approx(expected.item(), rel=1e-6)


def test_an_ensemble_member_each_learns_from_the_teacher():
    model = classifier(char_tokenizer(), ensemble_size=2).train()
    ids, lengths, labels = torch.tensor([[5, 6, 7]]), torch.tensor([3]), torch.tensor([1])
    teacher = torch.tensor([[3.0, -2.0, 0.5]])
    _, loss = model(ids, lengths, labels, teacher_logits=teacher, distill=DistillLoss("mse"))
    loss.backward()
    assert all(m.head.weight.grad is not None and m.head.weight.grad.abs().sum() > 0 for m in model.members)
