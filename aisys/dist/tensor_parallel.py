"""Tensor parallelism (Megatron-LM, Shoeybi et al. 2019): one MLP block split across ranks, one all-reduce.

Y = act(X·Aᵀ + a)·Bᵀ + b. Split A by its output features (*column parallel*: rank r holds rows r of A and
of a, and computes its slice of the hidden layer with no communication), and B by its input features
(*row parallel*: rank r multiplies its hidden slice by its columns of B, giving a partial Y). The
partial Ys add up to Y: **exactly one all-reduce in the forward pass** (Megatron's operator g). In the
backward pass g is the identity, and the gradient of X needs the conjugate all-reduce (operator f),
``sync_input_grad``.

With aisys autograd the all-reduce is written ``y = partial + (sum − partial).detach()``: the value is the
all-reduced sum, and the gradient reaches this rank's partial unchanged — g's backward.
"""
from __future__ import annotations

import numpy as np

from ..framework import nn
from ..framework.nn import functional as F
from ..framework.nn.module import Parameter
from ..framework.tensor import Tensor
from .schedule import chunk_bounds

__all__ = ["ColumnParallelLinear", "RowParallelLinear", "TensorParallelMLP", "tp_mlp_forward"]


def tp_mlp_forward(comm, x, w1, b1, w2, b2):
    """Lab 11's tensor-parallel MLP in numpy: this rank holds rows ``w1``/``b1`` of fc1 (column parallel) and
    columns ``w2`` of fc2 (row parallel); y = all-reduce(relu(x·w1ᵀ + b1)·w2ᵀ) + b2 — one all-reduce."""
    h = np.maximum(x @ w1.T + b1, 0.0)
    return comm.allreduce(h @ w2.T, algorithm="ring") + b2


def _shard(n: int, size: int, rank: int) -> slice:
    b = chunk_bounds(n, size)
    return slice(int(b[rank]), int(b[rank + 1]))


class ColumnParallelLinear(nn.Module):
    """Rank r's rows of a Linear's weight (out_features split across ranks) and of its bias."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, rank: int, size: int):
        super().__init__()
        rows = _shard(weight.shape[0], size, rank)
        self.rows = (rows.start, rows.stop)
        self.weight = Parameter(np.array(weight[rows]))
        self.bias = Parameter(np.array(bias[rows])) if bias is not None else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)


class RowParallelLinear(nn.Module):
    """Rank r's columns of a Linear's weight (in_features split); the bias is added once, after the sum."""

    def __init__(self, weight: np.ndarray, rank: int, size: int):
        super().__init__()
        cols = _shard(weight.shape[1], size, rank)
        self.cols = (cols.start, cols.stop)
        self.weight = Parameter(np.array(weight[:, cols]))

    def forward(self, h: Tensor) -> Tensor:
        return F.linear(h, self.weight)


class TensorParallelMLP(nn.Module):
    """``fc2(act(fc1(x)))`` split over ``comm.size`` ranks (see the module doc).

    Build it from the full layers so every rank slices the same weights: ``TensorParallelMLP(comm, fc1, fc2)``
    with aisys ``nn.Linear`` layers (or arrays ``(w1, b1, w2, b2)`` via ``from_arrays``).
    """

    def __init__(self, comm, fc1: nn.Linear, fc2: nn.Linear, activation: str = "gelu", algorithm: str = "ring"):
        super().__init__()
        w1, b1 = fc1.weight.numpy(), None if fc1.bias is None else fc1.bias.numpy()
        w2, b2 = fc2.weight.numpy(), None if fc2.bias is None else fc2.bias.numpy()
        self._build(comm, w1, b1, w2, b2, activation, algorithm)

    @classmethod
    def from_arrays(cls, comm, w1, b1, w2, b2, activation: str = "gelu", algorithm: str = "ring"):
        obj = cls.__new__(cls)
        nn.Module.__init__(obj)
        obj._build(comm, np.asarray(w1), None if b1 is None else np.asarray(b1), np.asarray(w2),
                   None if b2 is None else np.asarray(b2), activation, algorithm)
        return obj

    def _build(self, comm, w1, b1, w2, b2, activation, algorithm):
        if w1.shape[0] != w2.shape[1]:
            raise ValueError(f"TensorParallelMLP: fc1 makes {w1.shape[0]} hidden features but fc2 takes "
                             f"{w2.shape[1]}; they must match")
        if w1.shape[0] < comm.size:
            raise ValueError(f"TensorParallelMLP: {w1.shape[0]} hidden features cannot be split over "
                             f"{comm.size} ranks; use at most {w1.shape[0]} ranks")
        if activation not in ("gelu", "relu", "tanh"):
            raise ValueError(f"TensorParallelMLP: activation {activation!r} must be 'gelu', 'relu' or 'tanh'")
        object.__setattr__(self, "comm", comm)
        self.activation = activation
        self.algorithm = algorithm
        self.fc1 = ColumnParallelLinear(w1, b1, comm.rank, comm.size)
        self.fc2 = RowParallelLinear(w2, comm.rank, comm.size)
        self.bias = Parameter(np.array(b2)) if b2 is not None else None
        self.allreduces = 0            # all-reduces issued by forward passes (one per call)

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc1(x)
        h = {"gelu": F.gelu, "relu": F.relu, "tanh": lambda t: t.tanh()}[self.activation](h)
        partial = self.fc2(h)
        total = self.comm.allreduce(partial.numpy(), algorithm=self.algorithm)      # operator g: the one all-reduce
        self.allreduces += 1
        y = partial + Tensor(total - partial.numpy())
        return y + self.bias if self.bias is not None else y

    def sync_input_grad(self, x: Tensor) -> np.ndarray:
        """Operator f's backward: the input's gradient is the sum of every rank's partial gradient."""
        if x.grad is None:
            raise ValueError("sync_input_grad: x has no gradient; create it with requires_grad=True and call "
                             "backward first")
        return self.comm.allreduce(x.grad.numpy(), algorithm=self.algorithm)
