"""Matrix multiplication (batched, broadcasting batch dims): the op that matrix units accelerate."""
from __future__ import annotations

import numpy as np

from ..dtypes import promote
from ..errors import ShapeError
from ..registry import Cost, FusionKind as K, Spec, defop
from ..tensor import apply, as_tensor
from ._common import broadcast_shapes, prod


def _matmul_infer(x, y):
    xs, ys = tuple(x.shape), tuple(y.shape)
    if len(xs) < 2 or len(ys) < 2:
        raise ShapeError("matmul", f"the matmul op needs 2-D or batched operands, got {xs} and {ys}",
                         shapes=(xs, ys), rule="aisys.matmul handles 1-D operands by unsqueezing")
    if xs[-1] != ys[-2]:
        raise ShapeError("matmul", f"inner dimensions differ: {xs} @ {ys}: x.shape[-1]={xs[-1]} must equal "
                         f"y.shape[-2]={ys[-2]}", shapes=(xs, ys),
                         rule="(…, n, k) @ (…, k, m) -> (…, n, m); transpose one operand?")
    batch = broadcast_shapes("matmul", xs[:-2], ys[:-2])
    return Spec(batch + (xs[-2], ys[-1]), promote(x.dtype, y.dtype))


def _matmul_cost(in_specs, out_spec):
    k = in_specs[0].shape[-1]
    return Cost(flops=2 * prod(out_spec.shape) * k,
                bytes=in_specs[0].nbytes + in_specs[1].nbytes + out_spec.nbytes)


def _sum_batch(g, x):
    return g if tuple(g.shape) == tuple(x.shape) else g.sum_to(x.shape)


def _column_major(t) -> bool:
    """A 2-D operand stored transposed (a view like ``W.T``, as in x @ W.T of a Linear layer)."""
    d = t._data
    return d.ndim == 2 and d.flags.f_contiguous and not d.flags.c_contiguous


def _matmul_vjp(g, out, x, y):
    """dx = g·yᵀ, dy = xᵀ·g. For an operand stored transposed the product is formed as (yᵀ... )ᵀ so the
    gradient comes out in the operand's own layout: the weight gradient of ``x @ W.T`` is then row-major
    like W, and nothing downstream (the leaf's .grad copy, the optimizer) has to transpose it."""
    gx = gy = None
    if x.requires_grad:
        gx = _sum_batch((y @ g.mT).mT if _column_major(x) else g @ y.mT, x)
    if y.requires_grad:
        gy = _sum_batch((g.mT @ x).mT if _column_major(y) else x.mT @ g, y)
    return gx, gy


defop("matmul", infer=_matmul_infer, ref=np.matmul, fusion=K.COMPLEX_OUT_FUSABLE, cost=_matmul_cost,
      vjp=_matmul_vjp,
      jvp=lambda t, out, x, y: (t[0] @ y if t[0] is not None else None) if t[1] is None else
                               (x @ t[1] if t[0] is None else t[0] @ y + x @ t[1]),
      doc="FLOPs = 2·n·k·m per batch (one multiply and one add per MAC).", torch_name="torch.matmul")


def matmul(x, y):
    """numpy/PyTorch matmul semantics, including 1-D operands (unsqueezed, then squeezed)."""
    x, y = as_tensor(x), as_tensor(y)
    if x.ndim == 0 or y.ndim == 0:
        raise ShapeError("matmul", f"both operands need at least 1 dimension, got {tuple(x.shape)} and {tuple(y.shape)}",
                         shapes=(x.shape, y.shape), rule="use * for scalar multiplication")
    sx, sy = x.ndim == 1, y.ndim == 1
    if sx:
        x = x.unsqueeze(0)
    if sy:
        y = y.unsqueeze(-1)
    out = apply("matmul", x, y)
    if sx and sy:
        return out.reshape(())
    if sx:
        return out.squeeze(-2)
    if sy:
        return out.squeeze(-1)
    return out
