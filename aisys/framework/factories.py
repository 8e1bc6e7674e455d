"""Making tensors, with PyTorch's names, signatures and dtype rules (``aisys.tensor``, ``zeros``, ``linspace``,
``randint`` ...).

Every factory takes PyTorch's keywords — ``dtype=``, ``device=`` (only the CPU exists: see ``device``),
``requires_grad=`` — and checks what it is given: a size must be whole numbers (``zeros(2.9)`` is a
TypeError, not a silent 2), and ``aisys.tensor`` says what it got and what it accepts instead of passing
numpy's text along. Random factories draw from aisys's generator (``aisys.manual_seed``), or from a
``Generator`` passed as ``generator=``.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from . import dtypes as _dt
from .device import as_device
from .tensor import Tensor, _Generator, _ops as _tensor_methods, as_tensor

__all__ = ["tensor", "as_tensor", "from_numpy", "zeros", "ones", "empty", "full", "zeros_like", "ones_like",
           "empty_like", "full_like", "rand_like", "randn_like", "randint_like", "arange", "linspace", "logspace",
           "eye", "randn", "rand", "randint", "randperm", "multinomial", "Generator", "size_arg"]

_ACCEPTED = "a number, a (nested) list or tuple of numbers, a numpy array or a Tensor"


# ---- checking arguments ------------------------------------------------------------------------------
def _is_int(s) -> bool:
    if isinstance(s, bool):
        return False
    if isinstance(s, numbers.Integral):
        return True
    return isinstance(s, Tensor) and s._data.size == 1 and s._data.dtype.kind in "iu"


def size_arg(fn: str, shape) -> tuple:
    """``shape`` as given to ``zeros(2, 3)`` or ``zeros((2, 3))``, checked: whole, non-negative numbers."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for i, s in enumerate(shape):
        if not _is_int(s):
            kind = type(s).__name__
            raise TypeError(f"{fn}(): a size must be whole numbers, got {s!r} ({kind}) at position {i} of "
                            f"{tuple(shape)!r}" + ("; a size computed by division needs int(...) or //"
                                                   if isinstance(s, float) else ""))
    out = tuple(int(s) for s in shape)
    if any(s < 0 for s in out):
        raise ValueError(f"{fn}(): sizes cannot be negative, got {out}")
    return out


def _dtype(dtype, default=None):
    return default if dtype is None else _dt.as_dtype(dtype)


def _make(arr: np.ndarray, dt, device, requires_grad: bool) -> Tensor:
    as_device(device)
    return Tensor(arr, dtype=dt, requires_grad=requires_grad)


def _ragged(data, path="") -> str:
    """Where nested lists stop being rectangular, for the error message."""
    if not isinstance(data, (list, tuple)):
        return ""
    lengths = [len(x) if isinstance(x, (list, tuple)) else None for x in data]
    for i, n in enumerate(lengths):
        if n != lengths[0]:
            a = "a number" if lengths[0] is None else f"length {lengths[0]}"
            b = "a number" if n is None else f"length {n}"
            return f"element {path}[{i}] is {b} but element {path}[0] is {a}"
    for i, x in enumerate(data):
        inner = _ragged(x, f"{path}[{i}]")
        if inner:
            return inner
    return ""


def _unwrap(data, path="", found=None):
    """Nested lists/tuples with Tensors replaced by arrays; refuses elements that are not numbers."""
    found = {"numpy": False} if found is None else found
    out = []
    for i, x in enumerate(data):
        if isinstance(x, Tensor):
            found["numpy"] = True
            out.append(x._data)
        elif isinstance(x, (list, tuple)):
            out.append(_unwrap(x, f"{path}[{i}]", found)[0])
        elif isinstance(x, (np.ndarray, np.generic)):
            found["numpy"] = True
            out.append(x)
        elif isinstance(x, (bool, numbers.Number)) and not isinstance(x, complex):
            out.append(x)
        else:
            raise TypeError(f"aisys.tensor: element {path}[{i}] is {type(x).__name__} {x!r:.40}; every element "
                            f"must be a number (or a tensor)")
    return out, found


def _array_of(data):
    """(numpy array, whether its dtype is numpy's own) for ``aisys.tensor(data)``, or a clear error."""
    if isinstance(data, Tensor):
        return data._data, True
    if isinstance(data, (np.ndarray, np.generic)):
        return np.asarray(data), True
    if isinstance(data, (list, tuple)):
        nested, found = _unwrap(data)
        try:
            arr = np.asarray(nested)
        except ValueError:
            raise ValueError(f"aisys.tensor: the nested lists are ragged ({_ragged(data) or 'uneven lengths'}); "
                             f"a tensor is rectangular: every list at one depth must have the same length") from None
        if arr.dtype == object:
            raise ValueError(f"aisys.tensor: the nested lists are ragged ({_ragged(data) or 'uneven lengths'}); "
                             f"a tensor is rectangular: every list at one depth must have the same length")
        return arr, found["numpy"]
    if isinstance(data, (bool, numbers.Number)) and not isinstance(data, complex):
        return np.asarray(data), False
    raise TypeError(f"aisys.tensor: cannot make a tensor from {type(data).__name__} {data!r:.40}; give {_ACCEPTED}")


def _python_dtype(arr: np.ndarray):
    """PyTorch's choice for Python data: bool -> bool, int -> int64, float -> the default float."""
    if arr.dtype == np.bool_:
        return _dt.bool_
    if arr.dtype.kind in "iu":
        return _dt.int64
    if arr.dtype.kind == "f":
        return _dt.default_float
    raise TypeError(f"aisys.tensor: cannot make a tensor from data of numpy dtype {arr.dtype}; give {_ACCEPTED}")


# ---- from data ----------------------------------------------------------------------------------------
def tensor(data, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data``; dtype inferred like PyTorch (numpy float64 stays float64,
    Python floats become float32, Python ints int64)."""
    arr, numpy_typed = _array_of(data)
    dt = _dt.as_dtype(dtype) if dtype is not None else (_dt.from_numpy(arr.dtype) if numpy_typed
                                                         else _python_dtype(arr))
    return _make(np.array(arr, dtype=dt.np), dt, device, requires_grad)


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor sharing ``ndarray``'s memory (writes show through both ways), as torch.from_numpy."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy array, got {type(ndarray).__name__}")
    _dt.from_numpy(ndarray.dtype)                  # a TypeError naming the dtype if aisys cannot hold it
    return Tensor._wrap(ndarray)


# ---- filled ---------------------------------------------------------------------------------------------
def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dt = _dtype(dtype, _dt.default_float)
    return _make(np.zeros(size_arg("zeros", size), dt.np), dt, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dt = _dtype(dtype, _dt.default_float)
    return _make(np.ones(size_arg("ones", size), dt.np), dt, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """As torch.empty; the values are zeros (any value is a valid "uninitialized" one)."""
    dt = _dtype(dtype, _dt.default_float)
    return _make(np.zeros(size_arg("empty", size), dt.np), dt, device, requires_grad)


def _fill_dtype(fill_value):
    if isinstance(fill_value, Tensor):
        return fill_value.dtype
    if isinstance(fill_value, (bool, np.bool_)):
        return _dt.bool_
    if isinstance(fill_value, numbers.Integral):
        return _dt.int64
    return _dt.default_float


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``size`` filled with ``fill_value``; dtype from the value as torch (bool, int64, or the default float)."""
    dt = _dtype(dtype, _fill_dtype(fill_value))
    value = fill_value._data if isinstance(fill_value, Tensor) else fill_value
    shape = size_arg("full", size if isinstance(size, (tuple, list)) else (size,))
    return _make(np.full(shape, value, dt.np), dt, device, requires_grad)


def zeros_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return zeros(*input.shape, dtype=dtype or input.dtype, device=device, requires_grad=requires_grad)


def ones_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return ones(*input.shape, dtype=dtype or input.dtype, device=device, requires_grad=requires_grad)


def empty_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return zeros_like(input, dtype, device, requires_grad)


def full_like(input: Tensor, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return full(tuple(input.shape), fill_value, dtype=dtype or input.dtype, device=device, requires_grad=requires_grad)


# ---- ranges --------------------------------------------------------------------------------------------
def _number(fn: str, name: str, v):
    if isinstance(v, Tensor):
        if v._data.size != 1:
            raise ValueError(f"{fn}(): {name} must be a number or a one-element tensor, got shape {tuple(v.shape)}")
        return v._data.reshape(()).item()
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{fn}(): {name} must be a number, got {type(v).__name__} {v!r:.40}")
    return v


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """[start, end) in steps of ``step`` (``arange(5)``, ``arange(0, 1, 0.1)``); float arguments give the
    default float dtype, whole numbers int64, as torch."""
    if end is None:
        start, end = 0, start
    start, end, step = (_number("arange", n, v) for n, v in (("start", start), ("end", end), ("step", step)))
    if step == 0:
        raise ValueError("arange(): step must be nonzero")
    if (end - start) * step < 0:
        raise ValueError(f"arange(): the range [{start}, {end}) never reaches its end in steps of {step}; "
                         f"flip the sign of step")
    floating = any(isinstance(v, float) or isinstance(v, np.floating) for v in (start, end, step))
    dt = _dtype(dtype, _dt.default_float if floating else _dt.int64)
    n = max(0, math.ceil((end - start) / step))
    arr = start + np.arange(n, dtype=np.float64 if floating or dt.is_floating else np.int64) * step
    return _make(arr.astype(dt.np), dt, device, requires_grad)


def _steps(fn: str, steps) -> int:
    if not _is_int(steps):
        raise TypeError(f"{fn}(): steps must be a whole number, got {steps!r} ({type(steps).__name__})")
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"{fn}(): steps must be ≥ 0, got {steps}")
    return steps


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive, computed as torch does (in the
    output dtype, the first half counting up from ``start``, the second half down from ``end``, so both
    ends are exact)."""
    start, end = _number("linspace", "start", start), _number("linspace", "end", end)
    steps = _steps("linspace", steps)
    dt = _dtype(dtype, _dt.default_float)
    work = dt.np if dt.is_floating else np.dtype(np.float64)
    if steps == 1:
        arr = np.array([start], work)
    else:
        a, b = work.type(start), work.type(end)
        step = (b - a) / work.type(steps - 1)
        i = np.arange(steps)
        half = steps // 2
        arr = np.where(i < half, a + step * i.astype(work), b - step * (steps - 1 - i).astype(work)).astype(work)
    return _make(arr.astype(dt.np), dt, device, requires_grad)


def logspace(start, end, steps, base: float = 10.0, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``base`` raised to ``linspace(start, end, steps)``."""
    exps = linspace(start, end, steps, dtype=_dt.float64)._data
    dt = _dtype(dtype, _dt.default_float)
    return _make(np.power(float(_number("logspace", "base", base)), exps).astype(dt.np), dt, device, requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    n, m = size_arg("eye", (n, n if m is None else m))
    dt = _dtype(dtype, _dt.default_float)
    return _make(np.eye(n, m, dtype=dt.np), dt, device, requires_grad)


# ---- random ----------------------------------------------------------------------------------------------
class Generator:
    """A random generator of its own (``generator=`` in the random factories), as torch.Generator."""

    def __init__(self, device="cpu"):
        as_device(device)
        self.rng = np.random.default_rng(0)
        self._seed = 0

    def manual_seed(self, seed: int) -> "Generator":
        self._seed = int(seed)
        self.rng = np.random.default_rng(self._seed)
        return self

    def initial_seed(self) -> int:
        return self._seed


def _rng(generator):
    if generator is None:
        return _Generator.rng
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be an aisys.Generator, got {type(generator).__name__}")
    return generator.rng


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dt = _dtype(dtype, _dt.default_float)
    return _make(_rng(generator).standard_normal(size_arg("randn", size)).astype(dt.np), dt, device, requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dt = _dtype(dtype, _dt.default_float)
    return _make(_rng(generator).random(size_arg("rand", size)).astype(dt.np), dt, device, requires_grad)


def randn_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return randn(*input.shape, dtype=dtype or input.dtype, device=device, requires_grad=requires_grad)


def rand_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return rand(*input.shape, dtype=dtype or input.dtype, device=device, requires_grad=requires_grad)


def randint(*args, size=None, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Integers in [low, high): ``randint(high, size)`` or ``randint(low, high, size)`` (``size`` may also be
    a keyword), int64 unless ``dtype`` says otherwise, as torch."""
    if size is None and args and isinstance(args[-1], (tuple, list)):
        args, size = args[:-1], args[-1]
    if size is None or len(args) not in (1, 2):
        raise TypeError("randint(): call it as randint(high, size) or randint(low, high, size), with size a tuple "
                        "such as (3,) or (2, 4)")
    low, high = (0, args[0]) if len(args) == 1 else args
    for name, v in (("low", low), ("high", high)):
        if not _is_int(v):
            raise TypeError(f"randint(): {name} must be a whole number, got {v!r} ({type(v).__name__})")
    low, high = int(low), int(high)
    if high <= low:
        raise ValueError(f"randint(): the range [{low}, {high}) is empty; high must exceed low")
    dt = _dtype(dtype, _dt.int64)
    shape = size_arg("randint", (size,) if isinstance(size, numbers.Integral) else tuple(size))
    return _make(_rng(generator).integers(low, high, size=shape).astype(dt.np), dt, device, requires_grad)


def randint_like(input: Tensor, low=0, high=None, *, dtype=None, device=None) -> Tensor:
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype, device=device)


def randperm(n: int, *, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A random permutation of 0..n-1."""
    (n,) = size_arg("randperm", (n,))
    dt = _dtype(dtype, _dt.int64)
    return _make(_rng(generator).permutation(n).astype(dt.np), dt, device, requires_grad)


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """Indices drawn in proportion to the non-negative weights in each row of ``input`` (1-D or 2-D);
    without replacement each index is drawn at most once, as torch.multinomial."""
    w = np.asarray(input._data if isinstance(input, Tensor) else input, dtype=np.float64)
    if w.ndim not in (1, 2):
        raise ValueError(f"multinomial(): input must be 1-D or 2-D weights, got shape {w.shape}")
    (num_samples,) = size_arg("multinomial", (num_samples,))
    rows = w.reshape(-1, w.shape[-1])
    if not np.all(np.isfinite(rows)) or (rows < 0).any():
        raise ValueError("multinomial(): weights must be finite and non-negative (pass probabilities or "
                         "softmax(logits), not logits)")
    rng = _rng(generator)
    out = np.empty((rows.shape[0], num_samples), np.int64)
    for r, row in enumerate(rows):
        total = row.sum()
        if total <= 0:
            raise ValueError(f"multinomial(): row {r} has no positive weight, so nothing can be drawn")
        if not replacement and num_samples > np.count_nonzero(row):
            raise ValueError(f"multinomial(): cannot draw {num_samples} samples without replacement from "
                             f"{np.count_nonzero(row)} categories with positive weight (pass replacement=True)")
        out[r] = rng.choice(row.size, size=num_samples, replace=replacement, p=row / total)
    return Tensor._wrap(out.reshape(w.shape[:-1] + (num_samples,)))


# what Tensor's constructor and methods call (tensor.py cannot import this module: it imports Tensor)
vars(_tensor_methods).update(array_of=_array_of, python_dtype=_python_dtype, tensor=tensor, multinomial=multinomial)
