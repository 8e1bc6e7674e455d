"""Matrix multiplication (batched, broadcasting batch dims): the op that matrix units accelerate."""
from __future__ import annotations

import builtins

import numpy as np

from ..dtypes import promote
from ..errors import ShapeError
from ..registry import Cost, FusionKind as K, QuantizedForm, Spec, defop, matrix
from ..tensor import apply, as_tensor
from ._common import _new_spec, broadcast_shapes, column_major, np_unbroadcast, prod


def _matmul_infer(x, y):
    xs, ys = x.shape, y.shape
    if type(xs) is not tuple or type(ys) is not tuple:
        xs, ys = tuple(xs), tuple(ys)
    nx, ny = len(xs), len(ys)
    if nx == 2 and ny == 2 and xs[1] == ys[0]:                # the common case, checked first
        return _new_spec(Spec, ((xs[0], ys[1]), promote(x.dtype, y.dtype)))
    if nx < 2 or ny < 2:
        raise ShapeError("matmul", f"the matmul op needs 2-D or batched operands, got {xs} and {ys}",
                         shapes=(xs, ys), rule="aisys.matmul handles 1-D operands by unsqueezing")
    if xs[-1] != ys[-2]:
        raise ShapeError("matmul", f"inner dimensions differ: {xs} @ {ys}: x.shape[-1]={xs[-1]} must equal "
                         f"y.shape[-2]={ys[-2]}", shapes=(xs, ys),
                         rule="(…, n, k) @ (…, k, m) -> (…, n, m); transpose one operand?")
    batch = broadcast_shapes("matmul", xs[:-2], ys[:-2]) if len(xs) > 2 or len(ys) > 2 else ()
    return _new_spec(Spec, (batch + (xs[-2], ys[-1]), promote(x.dtype, y.dtype)))


def _matmul_cost(in_specs, out_spec):
    k = in_specs[0].shape[-1]
    return Cost(flops=2 * prod(out_spec.shape) * k,
                bytes=in_specs[0].nbytes + in_specs[1].nbytes + out_spec.nbytes)


def _sum_batch(g, x):
    return g if tuple(g.shape) == tuple(x.shape) else g.sum_to(x.shape)


def _column_major(t) -> bool:
    """A 2-D operand stored transposed (a view like ``W.T``, as in x @ W.T of a Linear layer)."""
    return column_major(t._data)


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


_TRANSPOSED_FORM_MIN_MACS = 1 << 20


def _matmul_ref(x, y):
    """np.matmul, except that a large x·yᵀ with y stored transposed (``x @ W.T``, a Linear layer's product)
    is formed as (W·xᵀ)ᵀ and copied back to row-major: OpenBLAS runs that form markedly faster for these
    shapes (one core: 64×784 by 784×256 343 → 298 µs; 32×400 by 400×120 65 → 47 µs) and sums each output
    in the same order. Small products keep the plain call: the copy would cost more than it saves."""
    if (x.ndim == 2 and y.ndim == 2 and x.size * y.shape[1] >= _TRANSPOSED_FORM_MIN_MACS
            and y.flags.f_contiguous and not y.flags.c_contiguous):
        return np.matmul(y.T, x.T).T.copy()
    return np.matmul(x, y)


def _matmul_into(x, y, *, out):
    """``_matmul_ref`` written into ``out`` (C-contiguous, the result's shape and dtype): the same BLAS call on
    the same operands, so the same bits, without a fresh result array."""
    if (x.ndim == 2 and y.ndim == 2 and x.size * y.shape[1] >= _TRANSPOSED_FORM_MIN_MACS
            and y.flags.f_contiguous and not y.flags.c_contiguous):
        np.copyto(out, np.matmul(y.T, x.T).T)
    else:
        np.matmul(x, y, out=out)
    return out


def _matmul_np(g, out, x, y):
    """``_matmul_vjp`` on arrays, product for product (the same BLAS calls, the same operand layouts)."""
    xd, yd = x._data, y._data
    gx = gy = None
    if x.requires_grad:
        gx = np_unbroadcast(_matmul_ref(yd, g.mT).mT if column_major(xd) else _matmul_ref(g, yd.mT), x)
    if y.requires_grad:
        gy = np_unbroadcast(_matmul_ref(g.mT, xd).mT if column_major(yd) else _matmul_ref(xd.mT, g), y)
    return gx, gy


defop("matmul", infer=_matmul_infer, ref=_matmul_ref, ref_into=_matmul_into, fusion=K.COMPLEX_OUT_FUSABLE,
      cost=_matmul_cost,
      vjp=_matmul_vjp, vjp_np=_matmul_np, chip=matrix("gemm"),
      jvp=lambda t, out, x, y: (t[0] @ y if t[0] is not None else None) if t[1] is None else
                               (x @ t[1] if t[0] is None else t[0] @ y + x @ t[1]),
      doc="FLOPs = 2·n·k·m per batch (one multiply and one add per MAC).", torch_name="torch.matmul",
      saved=((0, 1), (1, 0)), quantized=QuantizedForm("integer", "matmul_integer"))


def matmul(input, other):
    """numpy/PyTorch matmul semantics, including 1-D operands (unsqueezed, then squeezed)."""
    x, y = as_tensor(input), as_tensor(other)
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


# ---- linear: the eager form of a fully connected layer ---------------------------------------------
def _linear_infer(x, w, *b):
    xs, ws = x.shape, w.shape
    if len(xs) != 2 or len(ws) != 2 or xs[1] != ws[1]:
        raise ShapeError("linear", f"expects input (N, in_features) and weight (out_features, in_features), got "
                         f"{xs} and {ws}", shapes=(xs, ws), rule="input.shape[1] == weight.shape[1]")
    dt = promote(x.dtype, w.dtype)
    if b:
        if tuple(b[0].shape) != (ws[0],):
            raise ShapeError("linear", f"bias shape {tuple(b[0].shape)} must be ({ws[0]},)", shapes=(b[0].shape, ws))
        dt = promote(dt, b[0].dtype)
    return Spec((xs[0], ws[0]), dt)


def _linear_ref(x, w, b=None):
    """x·wᵀ (+ b): the same numpy calls, in the same order, as matmul(x, permute(w)) then add, so the fused
    op and its decomposition agree to the last bit."""
    out = _matmul_ref(x, w.T)
    if b is not None:
        np.add(out, b, out=out)
    return out


def _linear_vjp(g, out, x, w, *b):
    """The decomposition's gradients, product for product: dx = g·(wᵀ)ᵀ (formed transposed when x is stored
    transposed, as ``_matmul_vjp`` does), dw = gᵀ·x, db = g summed over the rows."""
    wt = w.mT
    gx = ((wt @ g.mT).mT if _column_major(x) else g @ wt.mT) if x.requires_grad else None
    gw = g.mT @ x if w.requires_grad else None
    return (gx, gw) + ((g.sum_to(b[0].shape) if b[0].requires_grad else None,) if b else ())


def _linear_np(g, out, x, w, *b):
    """``_linear_vjp`` on arrays: what the decomposition permute → matmul → add computes, call for call."""
    xd, wt = x._data, w._data.T
    gx = (_matmul_ref(wt, g.mT).mT if column_major(xd) else _matmul_ref(g, wt.mT)) if x.requires_grad else None
    gw = _matmul_ref(g.mT, xd) if w.requires_grad else None
    if not b:
        return gx, gw
    return gx, gw, (np.add.reduce(g, axis=0) if b[0].requires_grad else None)


def _linear_jvp(t, out, x, w, *b):
    terms = [t[0] @ w.mT if t[0] is not None else None, x @ t[1].mT if t[1] is not None else None]
    if b and t[2] is not None:
        terms.append(t[2].broadcast_to(out.shape))
    terms = [s for s in terms if s is not None]
    acc = terms[0]
    for s in terms[1:]:
        acc = acc + s
    return acc


def _linear_cost(in_specs, out_spec):
    n, o = out_spec.shape
    return Cost(flops=2 * n * o * in_specs[0].shape[1] + (n * o if len(in_specs) > 2 else 0),
                bytes=builtins.sum(s.nbytes for s in in_specs) + out_spec.nbytes)


defop("linear", infer=_linear_infer, ref=_linear_ref, fusion=K.OPAQUE, cost=_linear_cost,
      vjp=_linear_vjp, jvp=_linear_jvp, vjp_np=_linear_np, chip=matrix("linear"), torch_name="torch.nn.functional.linear",
      quantized=QuantizedForm("integer", "matmul_integer"),
      doc="y = x·wᵀ + b in one op: what an eager nn.Linear records (one tape entry instead of permute, matmul, "
          "add). A tracer is shown the three-op decomposition instead, so graphs, the compiler's epilogue fusion "
          "and the chip's lowering see the matmul; both forms compute the same bits.", saved=((0, 1), (1, 0)))
