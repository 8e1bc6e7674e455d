"""Shared pieces of op definitions: inference helpers and cost formulas (shape rules: ``aisys.framework.shapes``)."""
from __future__ import annotations

import math

import numpy as np

from ..dtypes import DType, promote, bool_
from ..errors import ShapeError
from ..registry import Cost, Spec
from ..shapes import broadcast_shapes, norm_dims, reduced_shape  # noqa: F401  (the shape rules live in one place)


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




# ---- numpy helpers of the VJP twins (``vjp_np``, the eager fast path of a plain backward()) --------------
_ZERO: dict = {}


def np_zero(dtype) -> np.ndarray:
    """A 0-d zero of ``dtype``, made once."""
    z = _ZERO.get(dtype)
    if z is None:
        z = _ZERO[dtype] = np.zeros((), dtype)
    return z


def sum_to_array(x: np.ndarray, shape) -> np.ndarray:
    """Sum a broadcast array back to ``shape`` (the numpy reference of the ``sum_to`` op)."""
    shape = tuple(shape)
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1)
    if axes and len(axes) == lead:       # leading axes only (a bias gradient): the same sum, shaped already
        return np.add.reduce(x, axis=axes)
    r = x.sum(axis=axes, keepdims=True) if axes else x
    return r.reshape(shape)


def np_unbroadcast(g: np.ndarray, x) -> np.ndarray:
    """The gradient of a broadcast operand ``x`` (a Tensor): ``g`` summed back to its shape."""
    shape = x._data.shape
    if g.shape == shape:
        return g
    if len(shape) == 1 and g.ndim == 2 and g.shape[1] == shape[0]:     # a bias: one reduction over the rows
        return np.add.reduce(g, axis=0)
    return sum_to_array(g, shape)


def np_binary_twin(fx, fy):
    """A binary op's ``vjp_np`` from the two partial products ``f(g, out, x_array, y_array)``."""
    def twin(g, out, x, y):
        return (np_unbroadcast(fx(g, out, x._data, y._data), x) if x.requires_grad else None,
                np_unbroadcast(fy(g, out, x._data, y._data), y) if y.requires_grad else None)
    return twin


def inverse_permutation(dims: tuple) -> tuple:
    """The permutation that undoes ``dims`` (what np.argsort(dims) gives, without building an array)."""
    if dims == (1, 0):
        return dims
    inv = [0] * len(dims)
    for i, d in enumerate(dims):
        inv[d] = i
    return tuple(inv)


def column_major(d: np.ndarray) -> bool:
    """A 2-D array stored transposed (a view like ``W.T``, as in x @ W.T of a Linear layer)."""
    return d.ndim == 2 and d.flags.f_contiguous and not d.flags.c_contiguous


__all__ = ["broadcast_shapes", "norm_dims", "reduced_shape", "need_float", "same_spec", "binary_infer",
           "elementwise_cost", "movement_cost", "zero_cost", "Spec", "Cost", "bool_", "prod", "np", "np_zero", "sum_to_array", "np_unbroadcast", "np_binary_twin",
           "inverse_permutation", "column_major"]
