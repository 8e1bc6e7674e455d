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


__all__ = ["broadcast_shapes", "norm_dims", "reduced_shape", "need_float", "same_spec", "binary_infer",
           "elementwise_cost", "movement_cost", "zero_cost", "Spec", "Cost", "bool_", "prod", "np"]
