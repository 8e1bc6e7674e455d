"""Shape rules shared by every layer: broadcasting, reduction dims, and the output size of a sliding window.

Each rule is written once here and read by the op definitions (shape inference), the compiler (the
channels-last convolution), the chip (im2col GEMM sizes, pooling) and the models (LeNet's feature map):
a layer that computed a convolution's output size its own way could silently disagree with the op it
models. Errors are :class:`~aisys.framework.errors.ShapeError` (a ``ValueError``) naming the op, the
sizes and the rule.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import ShapeError

_BROADCAST_SEEN: dict = {}     # (a, b) -> result for shape pairs that broadcast: every eager binary op asks


def broadcast_shapes(op: str, a: tuple, b: tuple) -> tuple:
    """NumPy/PyTorch broadcasting: align from the right; sizes must match or one must be 1."""
    if type(a) is not tuple or type(b) is not tuple:
        a, b = tuple(a), tuple(b)
    if a == b:
        return a
    out = _BROADCAST_SEEN.get((a, b))
    if out is None:
        out = _broadcast_shapes(op, a, b)
        if len(_BROADCAST_SEEN) > 4096:
            _BROADCAST_SEEN.clear()
        _BROADCAST_SEEN[(a, b)] = out
    return out


def _broadcast_shapes(op: str, a: tuple, b: tuple) -> tuple:
    n = max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for i, (x, y) in enumerate(zip(pa, pb)):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            d = i - n
            raise ShapeError(op, f"cannot broadcast shapes {tuple(a)} and {tuple(b)}: dimension {d} "
                             f"is {x} vs {y}", shapes=(a, b),
                             rule="broadcasting aligns shapes from the right; each pair of sizes must be "
                                  "equal or one of them 1 (reshape or unsqueeze one operand)")
    return tuple(out)


def norm_dims(op: str, dim, ndim: int, shape=()) -> tuple:
    """dim=None -> all dims; int or tuple -> sorted non-negative tuple, checked against ndim."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        d = int(d)
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise ShapeError(op, f"dim {d} is out of range for a {ndim}-D tensor of shape {tuple(shape)}",
                             shapes=(shape,), rule=f"valid dims are {-ndim}..{ndim - 1}")
        out.append(d % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ShapeError(op, f"dim {dim} repeats a dimension", shapes=(shape,))
    return tuple(sorted(out))


def reduced_shape(shape: tuple, dims: tuple, keepdim: bool) -> tuple:
    """The shape left after reducing ``dims`` (kept as size-1 dims with ``keepdim``)."""
    if keepdim:
        return tuple(1 if i in dims else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in dims)


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1, *,
                     op: str = "conv2d", dim: str = "") -> int:
    """Output positions of a sliding window along one axis, as PyTorch computes them:
    ⌊(size + 2·padding − dilation·(kernel − 1) − 1) / stride⌋ + 1 (with dilation 1: ⌊(size + 2p − k)/s⌋ + 1).

    Convolutions, pooling, the chip's im2col GEMMs and the models all read this one formula; a window
    that does not fit raises a ``ShapeError`` naming ``op`` and the axis ``dim``."""
    out = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    if out <= 0:
        where = f"input {dim}={size}" if dim else f"an input of size {size}"
        raise ShapeError(op, f"a {kernel}-wide kernel (stride {stride}, padding {padding}, dilation {dilation}) "
                         f"does not fit {where}: the output size would be {out}; add padding or shrink the kernel",
                         rule="out = ⌊(in + 2·pad − dil·(k−1) − 1)/stride⌋ + 1 must be ≥ 1")
    return out


def numel(shape) -> int:
    return math.prod(shape)


__all__ = ["broadcast_shapes", "norm_dims", "reduced_shape", "conv_output_size", "numel"]
