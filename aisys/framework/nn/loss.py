"""Loss modules (``nn.MSELoss`` ...): PyTorch's constructors and ``reduction``, each calling ``aisys.nn.functional``."""
from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .module import Module

__all__ = ["MSELoss", "L1Loss", "SmoothL1Loss", "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss",
           "KLDivLoss"]


class _Loss(Module):
    _fn = None
    _reductions = ("mean", "sum", "none")

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        F._no_legacy(type(self).__name__, None, size_average, reduce)
        if reduction not in self._reductions:
            raise ValueError(f"{type(self).__name__}: reduction={reduction!r} is not one of "
                             f"{', '.join(map(repr, self._reductions))}")
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return type(self)._fn(input, target, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class MSELoss(_Loss):
    """Mean squared error (shapes must match exactly: see F.mse_loss)."""
    _fn = F.mse_loss


class L1Loss(_Loss):
    """Mean absolute error."""
    _fn = F.l1_loss


class SmoothL1Loss(_Loss):
    """Squared below ``beta``, absolute above (Huber's loss divided by beta)."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = float(beta)

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits against class indices or probabilities (see F.cross_entropy)."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        F._no_legacy("CrossEntropyLoss", weight, None, None)
        super().__init__(size_average, reduce, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, float(label_smoothing)

    def forward(self, input, target):
        return F.cross_entropy(input, target, ignore_index=self.ignore_index, reduction=self.reduction,
                               label_smoothing=self.label_smoothing)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (after LogSoftmax)."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None, reduction: str = "mean"):
        F._no_legacy("NLLLoss", weight, None, None)
        super().__init__(size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, ignore_index=self.ignore_index, reduction=self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities (after Sigmoid)."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
        F._no_legacy("BCELoss", weight, None, None)
        super().__init__(size_average, reduce, reduction)

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits, computed stably."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None):
        F._no_legacy("BCEWithLogitsLoss", weight, None, None)
        if pos_weight is not None:
            raise ValueError("BCEWithLogitsLoss: pos_weight= is not supported by aisys")
        super().__init__(size_average, reduce, reduction)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, reduction=self.reduction)


class KLDivLoss(_Loss):
    """KL divergence with log-probability inputs; use reduction='batchmean' for the true KL (see F.kl_div)."""
    _reductions = ("mean", "batchmean", "sum", "none")

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False):
        super().__init__(size_average, reduce, reduction)
        self.log_target = bool(log_target)

    def forward(self, input, target):
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)
