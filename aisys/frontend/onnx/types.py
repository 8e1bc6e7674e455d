"""ONNX element types ↔ aisys dtypes, and the errors the converter raises.

ONNX has more element types than aisys (unsigned and 16-bit integers, float8, strings, complex): a
tensor of one of those is refused by name rather than silently widened, so an imported graph never
computes in a type the file did not ask for.
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto

from ...framework import dtypes as _dt

#: ONNX TensorProto element type -> aisys dtype (the types aisys can compute in)
TO_AISYS = {TensorProto.FLOAT: _dt.float32, TensorProto.DOUBLE: _dt.float64, TensorProto.FLOAT16: _dt.float16,
            TensorProto.BFLOAT16: _dt.bfloat16, TensorProto.INT8: _dt.int8, TensorProto.INT32: _dt.int32,
            TensorProto.INT64: _dt.int64, TensorProto.BOOL: _dt.bool_}
TO_ONNX = {d.name: t for t, d in TO_AISYS.items()}


class ConversionError(ValueError):
    """An ONNX model cannot be converted exactly: names the node, the operator, the attribute or input
    and what is supported. The converter raises this instead of ever building a wrong graph."""


class NeedsValue(ConversionError):
    """A value the converter must know at import time (a Reshape target, Slice bounds, reduction axes) is
    a graph input: ``input_name`` says which. Bind it with ``load(..., input_values={name: array})``
    (the backend does so at run time, specializing the graph on that value)."""

    def __init__(self, message: str, input_name: str):
        super().__init__(message)
        self.input_name = input_name


def onnx_type_name(elem_type: int) -> str:
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"element type {elem_type}"


def aisys_dtype(elem_type: int, where: str) -> _dt.DType:
    d = TO_AISYS.get(elem_type)
    if d is None:
        raise ConversionError(f"{where}: ONNX type {onnx_type_name(elem_type)} has no aisys dtype; aisys computes "
                              f"in {', '.join(onnx_type_name(t) for t in TO_AISYS)}")
    return d


def onnx_type(dtype) -> int:
    return TO_ONNX[_dt.as_dtype(dtype).name]


def as_aisys_array(arr: np.ndarray, where: str) -> np.ndarray:
    """A numpy array from onnx.numpy_helper in the aisys dtype that holds it exactly (refused otherwise)."""
    try:
        _dt.from_numpy(arr.dtype)
    except TypeError:
        raise ConversionError(f"{where}: a tensor of numpy dtype {arr.dtype} has no aisys dtype; aisys computes in "
                              f"{', '.join(d.name for d in _dt.ALL)}") from None
    return arr
