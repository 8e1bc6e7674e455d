"""Data types: the numpy dtype behind each aisys dtype, its short name for printing, and promotion.

aisys follows PyTorch's names (``aisys.float32``) and its promotion rules in simplified form:
a tensor's dtype wins over a Python scalar's kind unless the scalar is floating and the tensor is
not (int tensor * 2.5 -> float32, the default float).
"""
from __future__ import annotations

import numpy as np


class DType:
    """One element type. ``np`` is the numpy dtype that stores it; ``short`` is how graphs print it."""

    __slots__ = ("name", "np", "short", "is_floating", "itemsize", "_rank")

    def __init__(self, name: str, np_dtype, short: str, rank: int):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.short = short
        self.is_floating = name.startswith(("float", "bfloat"))
        self.itemsize = self.np.itemsize
        self._rank = rank

    def __repr__(self) -> str:
        return f"aisys.{self.name}"

    def __reduce__(self):
        return (from_name, (self.name,))


_NP_SLOT = DType.np          # the slot that holds a loaded numpy dtype


class _LazyDType(DType):
    """A dtype whose numpy type lives in an optional extension (``ml_dtypes``): loaded on first use of
    ``.np``, so ``import aisys`` does not pay for it (ml_dtypes 0.7's extension takes ~0.5 s to load)."""

    __slots__ = ("_module", "_attr")

    def __init__(self, name: str, module: str, attr: str, short: str, rank: int, itemsize: int):
        self.name, self.short, self._rank, self.itemsize = name, short, rank, itemsize
        self.is_floating = name.startswith(("float", "bfloat"))
        self._module, self._attr = module, attr

    @property
    def np(self):
        try:
            return _NP_SLOT.__get__(self, DType)
        except AttributeError:
            import importlib
            value = np.dtype(getattr(importlib.import_module(self._module), self._attr))
            _NP_SLOT.__set__(self, value)
            return value


bool_ = DType("bool", np.bool_, "b1", 0)
int8 = DType("int8", np.int8, "i8", 1)
int32 = DType("int32", np.int32, "i32", 2)
int64 = DType("int64", np.int64, "i64", 3)
float16 = DType("float16", np.float16, "f16", 10)
bfloat16 = _LazyDType("bfloat16", "ml_dtypes", "bfloat16", "bf16", 10, itemsize=2)
float32 = DType("float32", np.float32, "f32", 11)
float64 = DType("float64", np.float64, "f64", 12)

ALL = (bool_, int8, int32, int64, float16, bfloat16, float32, float64)
_BY_NP = {d.np: d for d in ALL if not isinstance(d, _LazyDType)}
_BY_NP_NAME = {d.name: d for d in ALL if isinstance(d, _LazyDType)}   # matched by name: no import needed
_BY_NAME = {d.name: d for d in ALL} | {"bool_": bool_, "half": float16, "float": float32,
                                       "double": float64, "long": int64, "int": int32}
default_float = float32


def from_name(name: str) -> DType:
    return _BY_NAME[name]


def from_numpy(np_dtype) -> DType:
    """The aisys dtype storing ``np_dtype``; raises TypeError for unsupported ones (complex, uint16, ...)."""
    dt = np.dtype(np_dtype)
    d = _BY_NP.get(dt)
    if d is None and dt.name in _BY_NP_NAME and dt == _BY_NP_NAME[dt.name].np:
        d = _BY_NP_NAME[dt.name]
    if d is None:
        raise TypeError(f"numpy dtype {np.dtype(np_dtype)} is not supported by aisys; "
                        f"supported: {', '.join(x.name for x in ALL)}. Convert with .astype(np.float32) first.")
    return d


def as_dtype(x) -> DType:
    """Accept an aisys dtype, a numpy dtype/type, or a name like 'float32'."""
    if isinstance(x, DType):
        return x
    if isinstance(x, str):
        if x in _BY_NAME:
            return _BY_NAME[x]
        raise TypeError(f"unknown dtype name {x!r}; use one of {', '.join(d.name for d in ALL)}")
    return from_numpy(x)


def promote(a: DType, b: DType) -> DType:
    """Result dtype of a binary op on two tensors (PyTorch-style lattice)."""
    if a is b:
        return a
    if a.is_floating or b.is_floating:
        if a.is_floating and b.is_floating:
            if a._rank == b._rank:          # float16 with bfloat16: neither holds the other
                return float32
            return a if a._rank > b._rank else b
        return a if a.is_floating else b
    return a if a._rank >= b._rank else b


def infer_from_data(data) -> DType:
    """The dtype PyTorch would pick for ``aisys.tensor(data)``: numpy keeps its dtype (float64 stays
    float64); Python floats become float32, ints int64, bools bool."""
    if isinstance(data, np.ndarray) or isinstance(data, np.generic):
        return from_numpy(data.dtype)
    arr = np.asarray(data)
    if arr.dtype == np.bool_:
        return bool_
    if np.issubdtype(arr.dtype, np.integer):
        return int64
    if np.issubdtype(arr.dtype, np.floating):
        return default_float
    raise TypeError(f"cannot make a tensor from data of numpy dtype {arr.dtype}")
