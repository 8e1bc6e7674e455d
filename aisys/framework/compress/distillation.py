"""Knowledge distillation (知识蒸馏): a small student learns from a trained teacher's softened outputs.

Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network" (2015): soften both models' logits
with a temperature T, p = softmax(z/T), and train the student on

    loss = α · T² · KL(p_teacher ‖ p_student) + (1 − α) · CE(student logits, labels)

The T² keeps the soft term's gradients the same size as T changes (they scale as 1/T²). KL is averaged over
the batch (PyTorch's ``reduction="batchmean"``). Everything is written with registry ops, so it
differentiates like any loss.
"""
from __future__ import annotations

from ..nn import functional as F
from ..nn.module import Module
from ..tensor import Tensor, no_grad

__all__ = ["distillation_loss", "distill"]


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor | None = None,
                      temperature: float = 4.0, alpha: float = 0.9) -> Tensor:
    """Hinton's KD loss (see the module docstring). ``labels=None`` with ``alpha=1``: soft targets only."""
    if not isinstance(student_logits, Tensor) or not isinstance(teacher_logits, Tensor):
        raise TypeError("distillation_loss: student_logits and teacher_logits must be aisys Tensors")
    if tuple(student_logits.shape) != tuple(teacher_logits.shape) or student_logits.ndim != 2:
        raise ValueError(f"distillation_loss: student and teacher logits must be (batch, classes) of one shape, got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    if not temperature > 0:
        raise ValueError(f"distillation_loss: temperature={temperature} must be positive")
    if not 0 <= alpha <= 1:
        raise ValueError(f"distillation_loss: alpha={alpha} must be in [0, 1]")
    if labels is None and alpha < 1:
        raise ValueError("distillation_loss: labels are needed unless alpha=1 (soft targets only)")
    T = float(temperature)
    teacher = teacher_logits.detach()
    log_p_s = F.log_softmax(student_logits / T, dim=1)
    log_p_t = F.log_softmax(teacher / T, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum() / student_logits.shape[0]
    loss = kl * (alpha * T * T)
    if alpha < 1:
        loss = loss + F.cross_entropy(student_logits, labels) * (1 - alpha)
    return loss


def distill(student: Module, teacher: Module, loader, optimizer, epochs: int = 1, temperature: float = 4.0,
            alpha: float = 0.9) -> list:
    """Train ``student`` on ``loader``'s (x, y) batches against ``teacher``'s logits; returns the mean loss of
    each epoch. The teacher runs in eval mode without a tape."""
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"distill: epochs={epochs!r} must be a positive int")
    was = teacher.training
    teacher.eval()
    losses = []
    try:
        for _ in range(epochs):
            student.train()
            total, n = 0.0, 0
            for x, y in loader:
                with no_grad():
                    t = teacher(x)
                loss = distillation_loss(student(x), t, y, temperature, alpha)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss._data) * len(y)
                n += len(y)
            losses.append(total / max(n, 1))
    finally:
        teacher.train(was)
    return losses
