"""Shared pieces of op definitions: broadcasting rules, dim normalization, cost formulas."""
from __future__ import annotations

import math

import numpy as np

from ..dtypes import DType, promote, bool_
from ..errors import ShapeError
from ..registry import Cost, Spec


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
    if keepdim:
        return tuple(1 if i in dims else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in dims)


def need_float(op: str, *xs) -> None:
    for x in xs:
        if not x.dtype.is_floating:
            raise TypeError(f"{op}: expects a floating-point tensor, got {x.dtype.name} of shape "
                            f"{tuple(x.shape)}; convert with .float()")


_new_spec = tuple.__new__          # Spec(shape, dtype) without the NamedTuple constructor's Python frame: the
                                   # elementwise inferences below run on every eager op


def same_spec(op: str, float_only: bool = False):
    def infer(x, **attrs):
        if float_only:
            need_float(op, x)
        return _new_spec(Spec, (tuple(x.shape), x.dtype))
    return infer


def binary_infer(op: str, out_dtype: DType | None = None, float_only: bool = False):
    def infer(x, y, **attrs):
        shape = broadcast_shapes(op, x.shape, y.shape)     # shapes are tuples (numpy arrays and graph nodes)
        dt = promote(x.dtype, y.dtype)
        if float_only and not dt.is_floating:
            raise TypeError(f"{op}: expects floating-point operands, got {x.dtype.name} and {y.dtype.name}")
        return _new_spec(Spec, (shape, out_dtype or dt))
    return infer


def elementwise_cost(flops_per_element: int = 1):
    def cost(in_specs, out_spec, **attrs):
        return Cost(flops=flops_per_element * out_spec.numel,
                    bytes=sum(s.nbytes for s in in_specs) + out_spec.nbytes)
    return cost


def movement_cost(in_specs, out_spec, **attrs) -> Cost:
    """Data movement only: no arithmetic, read the input once, write the output once."""
    return Cost(flops=0, bytes=in_specs[0].nbytes + out_spec.nbytes)


def zero_cost(in_specs, out_spec, **attrs) -> Cost:
    """Views (reshape of a contiguous tensor) move no bytes."""
    return Cost(flops=0, bytes=0)


def prod(xs) -> int:
    return math.prod(xs)


__all__ = ["broadcast_shapes", "norm_dims", "reduced_shape", "need_float", "same_spec", "binary_infer",
           "elementwise_cost", "movement_cost", "zero_cost", "Spec", "Cost", "bool_", "prod", "np"]
