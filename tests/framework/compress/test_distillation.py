"""Hinton's distillation loss by hand (softened KL × T² + hard-label cross-entropy) and a student trained by it."""
from __future__ import annotations

import numpy as np
import pytest

import aisys
from aisys import optim
from aisys.framework import compress as C
from aisys.models import MLP


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_kd_loss_by_hand():
    s = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    t = np.array([[2.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    y = np.array([1, 2])
    T, alpha = 2.0, 0.7
    ps, pt = _softmax(s / T), _softmax(t / T)
    kl = np.sum(pt * (np.log(pt) - np.log(ps))) / 2                     # batchmean
    ce = -np.mean(np.log(_softmax(s)[np.arange(2), y]))
    want = alpha * T * T * kl + (1 - alpha) * ce
    got = C.distillation_loss(aisys.tensor(s), aisys.tensor(t), aisys.tensor(y), temperature=T, alpha=alpha)
    assert got.item() == pytest.approx(want, rel=1e-12)
    soft_only = C.distillation_loss(aisys.tensor(s), aisys.tensor(t), temperature=T, alpha=1.0)
    assert soft_only.item() == pytest.approx(T * T * kl, rel=1e-12)
    assert C.distillation_loss(aisys.tensor(t), aisys.tensor(t), temperature=T, alpha=1.0).item() == \
        pytest.approx(0.0, abs=1e-12), "a student equal to its teacher has no soft loss"


def test_kd_gradient_flows_to_the_student_only():
    rng = np.random.default_rng(0)
    s = aisys.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    t = aisys.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    y = aisys.tensor(np.array([0, 3, 1]))
    assert aisys.gradcheck(lambda a: C.distillation_loss(a, t, y, 3.0, 0.5), [s.detach()])
    C.distillation_loss(s, t, y).backward()
    assert s.grad is not None and t.grad is None, "the teacher's logits are targets, not trained"


def test_distill_trains_a_smaller_student(trained, digits_data):
    train, _, (x, y) = digits_data
    aisys.manual_seed(0)
    student = MLP([64, 16, 10])
    losses = C.distill(student, trained["lenet"], train, optim.Adam(student.parameters(), lr=3e-3), epochs=2,
                       temperature=2.0, alpha=0.5)
    assert losses[1] < losses[0]
    assert (student(x).numpy().argmax(1) == y.numpy()).mean() > 0.8


def test_kd_errors():
    a = aisys.zeros(2, 3)
    with pytest.raises(ValueError, match="one shape"):
        C.distillation_loss(a, aisys.zeros(2, 4), aisys.tensor(np.array([0, 1])))
    with pytest.raises(ValueError, match="temperature=0"):
        C.distillation_loss(a, a, aisys.tensor(np.array([0, 1])), temperature=0)
    with pytest.raises(ValueError, match="labels are needed"):
        C.distillation_loss(a, a, None, alpha=0.5)
