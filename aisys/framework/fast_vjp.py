"""The eager fast path of reverse mode: numpy twins of the VJPs of the ops a training step spends its time in.

Each op's VJP is written with ops, so ``backward(create_graph=True)`` records a differentiable backward
pass and a tracer sees the backward as a graph. That generality costs a shape inference and a new
Tensor per backward op (a few µs each), which is most of a small model's step. A plain first-order
``backward()`` needs none of it: ``autograd`` then runs the twins below on numpy arrays (the same
numpy calls the op references make, so the numbers agree to the last bit in float32/float64).

The op's ``vjp`` stays the definition. ``tests/framework/test_fast_vjp.py`` holds every twin equal
to it on the op-info table's cases, and an op without a twin runs its ``vjp`` under ``no_grad``.
Each twin takes ``(g, out, *inputs, **attrs)`` with ``g`` an ndarray and ``out``/``inputs`` Tensors
(for ``requires_grad``), and returns one ndarray or None per input.
"""
from __future__ import annotations

import numpy as np

from .registry import OPS
from .ops.elementwise import _where_ref
from .ops.reduce import _keep, _count, _sum_to_ref
from .ops import nn as _nn
from .ops.linalg import _matmul_ref as _mm

_ZERO = {}


def _zero(dtype):
    z = _ZERO.get(dtype)
    if z is None:
        z = _ZERO[dtype] = np.zeros((), dtype)
    return z


def _unb(g, x):
    """sum_to: the gradient of a broadcast operand, summed back to its shape."""
    shape = x._data.shape
    if g.shape == shape:
        return g
    if len(shape) == 1 and g.ndim == 2 and g.shape[1] == shape[0]:     # a bias: one reduction over the rows
        return np.add.reduce(g, axis=0)
    return _sum_to_ref(g, shape)


def _inverse(dims: tuple) -> tuple:
    """The permutation that undoes ``dims`` (what np.argsort(dims) gives, without building an array)."""
    if dims == (1, 0):
        return dims
    inv = [0] * len(dims)
    for i, d in enumerate(dims):
        inv[d] = i
    return tuple(inv)


def _binary(fx, fy):
    def twin(g, out, x, y):
        return (_unb(fx(g, out, x._data, y._data), x) if x.requires_grad else None,
                _unb(fy(g, out, x._data, y._data), y) if y.requires_grad else None)
    return twin


def _column_major(d) -> bool:
    return d.ndim == 2 and d.flags.f_contiguous and not d.flags.c_contiguous


def _matmul(g, out, x, y):
    """As ``linalg._matmul_vjp``, including forming a transposed operand's gradient in its own layout, and
    with the matmul op's own reference for every product (so the same BLAS calls as the recorded path)."""
    xd, yd = x._data, y._data
    gx = gy = None
    if x.requires_grad:
        gx = _unb(_mm(yd, g.mT).mT if _column_major(xd) else _mm(g, yd.mT), x)
    if y.requires_grad:
        gy = _unb(_mm(g.mT, xd).mT if _column_major(yd) else _mm(xd.mT, g), y)
    return gx, gy


def _linear(g, out, x, w, *b):
    """As ``linalg._linear_vjp``: what the decomposition permute → matmul → add computes, call for call."""
    xd, wt = x._data, w._data.T
    gx = (_mm(wt, g.mT).mT if _column_major(xd) else _mm(g, wt.mT)) if x.requires_grad else None
    gw = _mm(g.mT, xd) if w.requires_grad else None
    if not b:
        return gx, gw
    return gx, gw, (np.add.reduce(g, axis=0) if b[0].requires_grad else None)


def _where(g, out, c, x, y):
    z = _zero(g.dtype)
    cd = c._data
    return (None, _unb(_where_ref(cd, g, z), x) if x.requires_grad else None,
            _unb(_where_ref(cd, z, g), y) if y.requires_grad else None)


def _relu(g, out, x):
    xd = x._data
    return (_where_ref(xd > _zero(xd.dtype), g, _zero(g.dtype)),)


def _sum(g, out, x, dim=None, keepdim=False):
    return (np.broadcast_to(_keep(g, x, dim, keepdim), x._data.shape),)


def _mean(g, out, x, dim=None, keepdim=False):
    return (np.divide(np.broadcast_to(_keep(g, x, dim, keepdim), x._data.shape), float(_count(x, dim))),)


def _softmax(g, out, x, dim):
    o = out._data
    return (o * (g - np.sum(g * o, axis=(dim % o.ndim,), keepdims=True, dtype=o.dtype)),)


def _log_softmax(g, out, x, dim):
    return (g - np.exp(out._data) * np.sum(g, axis=(dim % g.ndim,), keepdims=True, dtype=g.dtype),)


def _cross_entropy(g, out, x, target, reduction, ignore_index=None):
    xd, td = x._data, target._data
    one_hot = np.zeros(xd.shape, xd.dtype)                   # row-major, as the recorded path's one_hot op makes it,
    if ignore_index is None:                                 # so the difference below gets the same memory order
        one_hot[np.arange(xd.shape[0]), td] = 1
    else:
        one_hot[...] = td[:, None] == np.arange(xd.shape[1])
    d = np.subtract(_nn._softmax_ref(xd, 1), one_hot)
    if ignore_index is None:
        if reduction == "mean":
            d = np.divide(d, float(xd.shape[0]))
    else:
        keep = (td != ignore_index).astype(xd.dtype)
        d = d * keep.reshape(-1, 1)
        if reduction == "mean":
            d = d / np.add.reduce(keep)
    return (d * (g.reshape(-1, 1) if reduction == "none" else g), None)


def _mse_loss(g, out, x, y, reduction):
    scale = 2.0 / x._data.size if reduction == "mean" else 2.0
    xd, yd = x._data, y._data
    return ((xd - yd) * g * scale if x.requires_grad else None,
            (yd - xd) * g * scale if y.requires_grad else None)


def _conv2d(g, out, x, w, *b, **a):
    gx = _nn._conv_bwd_input_ref(g, w._data, input_shape=x._data.shape, **a) if x.requires_grad else None
    gw = _nn._conv_bwd_weight_ref(g, x._data, weight_shape=w._data.shape, **a) if w.requires_grad else None
    if not b:
        return gx, gw
    return gx, gw, (np.sum(g, axis=(0, 2, 3), dtype=g.dtype) if b[0].requires_grad else None)


TWINS = {
    "add": _binary(lambda g, o, x, y: g, lambda g, o, x, y: g),
    "sub": _binary(lambda g, o, x, y: g, lambda g, o, x, y: np.negative(g)),
    "mul": _binary(lambda g, o, x, y: g * y, lambda g, o, x, y: g * x),
    "div": _binary(lambda g, o, x, y: g / y, lambda g, o, x, y: -g * o._data / y),
    "neg": lambda g, out, x: (np.negative(g),),
    "exp": lambda g, out, x: (g * out._data,),
    "log": lambda g, out, x: (g / x._data,),
    "sqrt": lambda g, out, x: (g / (2.0 * out._data),),
    "tanh": lambda g, out, x: (g * (1.0 - out._data * out._data),),
    "sigmoid": lambda g, out, x: (g * out._data * (1.0 - out._data),),
    "relu": _relu,
    "where": _where,
    "matmul": _matmul,
    "linear": _linear,
    "reshape": lambda g, out, x, shape: (np.reshape(g, x._data.shape),),
    "permute": lambda g, out, x, dims: (np.transpose(g, _inverse(dims)),),
    "broadcast_to": lambda g, out, x, shape: (_sum_to_ref(g, x._data.shape),),
    "contiguous": lambda g, out, x: (g,),
    "sum_to": lambda g, out, x, shape: (np.broadcast_to(g, x._data.shape),),
    "sum": _sum,
    "mean": _mean,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "cross_entropy": _cross_entropy,
    "mse_loss": _mse_loss,
    "conv2d": _conv2d,
    "max_pool2d": lambda g, out, x, **a: (_nn._maxpool_backward_ref(g, x._data, **a),),
    "avg_pool2d": lambda g, out, x, **a: (_nn._avgpool_backward_ref(g, input_shape=x._data.shape, **a),),
}

for _name, _twin in TWINS.items():
    OPS[_name].vjp_np = _twin
