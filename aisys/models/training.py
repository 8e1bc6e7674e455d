"""Training loops shared by the models: a classifier trainer that returns its accuracy history.

The loop is the one every framework teaches — forward, loss, ``zero_grad``, ``backward``, ``step`` —
written out in full so a learner can read it, trace it, or swap one piece (the optimizer, the loss).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..framework import optim
from ..framework.nn import functional as F
from ..framework.nn.module import Module
from ..framework.tensor import Tensor, no_grad
from .progress import ProgressBar

__all__ = ["History", "train_classifier", "accuracy", "make_optimizer"]


@dataclass
class History:
    """Per-epoch records of a training run."""
    loss: list = field(default_factory=list)          # mean training loss of each epoch
    train_acc: list = field(default_factory=list)     # accuracy on the training batches seen in each epoch
    test_acc: list = field(default_factory=list)      # accuracy on test_loader after each epoch (if given)

    def __repr__(self) -> str:
        last = lambda xs: f"{xs[-1]:.4f}" if xs else "-"
        return (f"History({len(self.loss)} epochs: loss {last(self.loss)}, train_acc {last(self.train_acc)}, "
                f"test_acc {last(self.test_acc)})")


def make_optimizer(model: Module, optimizer="adam", lr: float = 1e-3, **kwargs) -> optim.Optimizer:
    """An optimizer for ``model.parameters()``: a name ('sgd', 'adam', 'adamw'), an Optimizer class, or an
    already-built Optimizer (returned unchanged)."""
    if isinstance(optimizer, optim.Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        table = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}
        if optimizer.lower() not in table:
            raise ValueError(f"optimizer={optimizer!r}: use 'sgd', 'adam', 'adamw', an aisys.optim class or instance")
        optimizer = table[optimizer.lower()]
    if isinstance(optimizer, type) and issubclass(optimizer, optim.Optimizer):
        return optimizer(model.parameters(), lr=lr, **kwargs)
    raise TypeError(f"optimizer must be a name, an aisys.optim.Optimizer class or instance, got {optimizer!r}")


def accuracy(model: Module, loader) -> float:
    """Fraction of correct argmax predictions over a loader of (x, y) batches, in eval mode, no tape."""
    was_training = model.training
    model.eval()
    correct = total = 0
    with no_grad():
        for x, y in loader:
            pred = model(x)._data.argmax(-1)
            correct += int((pred == y._data).sum())
            total += len(y)
    model.train(was_training)
    return correct / max(total, 1)


def train_classifier(model: Module, train_loader, epochs: int = 5, lr: float = 1e-3, optimizer="adam",
                     test_loader=None, loss_fn=F.cross_entropy, scheduler=None, progress: bool = True,
                     **optimizer_kwargs) -> History:
    """Train ``model`` on (x, y) batches with ``loss_fn`` and return the per-epoch History.

    ``optimizer``: 'sgd' | 'adam' | 'adamw' | an aisys.optim class (built with ``lr`` and
    ``optimizer_kwargs``) | a ready Optimizer. ``scheduler``: optional ``fn(optimizer) -> LRScheduler``,
    stepped once per epoch.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"train_classifier: epochs={epochs!r} must be a positive int")
    opt = make_optimizer(model, optimizer, lr, **optimizer_kwargs)
    sched = scheduler(opt) if scheduler is not None else None
    hist = History()
    bar = ProgressBar(epochs * len(train_loader), desc="train", enabled=progress)
    for epoch in range(epochs):
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for x, y in train_loader:
            out = model(x)
            loss = loss_fn(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            n = len(y)
            loss_sum += float(loss._data) * n
            correct += int((out._data.argmax(-1) == y._data).sum())
            seen += n
            bar.update(epoch=epoch + 1, loss=float(loss._data))
        hist.loss.append(loss_sum / max(seen, 1))
        hist.train_acc.append(correct / max(seen, 1))
        if test_loader is not None:
            hist.test_acc.append(accuracy(model, test_loader))
        if sched is not None:
            sched.step()
    bar.close()
    return hist
