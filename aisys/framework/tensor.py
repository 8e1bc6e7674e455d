"""Tensor: a numpy array plus what autodiff, forward mode and tracing need to know about it.

Every operation goes through :func:`apply`, which reads the op registry: shape/dtype inference
first (so errors teach before numpy fails), then the kernel (``op.eager``: the op's numpy reference,
or the dispatcher, which picks one, once kernels are registered for the op), then the tape record, the
forward-mode tangent, and any observers (the tracer, the anomaly detector).

Tensor's methods (``x.exp()``, ``x + y``, ``x.backward()``) call the public functions of
``aisys.framework.ops``, ``.autograd`` and ``.factories`` through ``_ops``, a namespace those modules fill when they
load: they import Tensor, so Tensor does not import them (the import points one way, the call the other).
"""
from __future__ import annotations

import contextlib
import math
import types

import numpy as np

from . import device as _device
from . import dtypes as _dt
from .errors import AnomalyError, user_location
from .registry import OPS as _OPS, OpDef, Spec, get as _get_op


_DTYPE_OF_NP = dict(_dt._BY_NP)          # the eager dtypes; bfloat16 (ml_dtypes, loaded lazily) via from_numpy


class _Mode:
    """Global switches read on every op (module-level for speed)."""
    grad_enabled = True
    forward_ad = 0          # depth of active aisys.jvp calls
    anomaly = 0
    observers: list = []    # callables (op, inputs, attrs, out) — the tracer hooks in here
    epoch = 0               # in-place writes so far: a recorded op keeps the count it ran at (see inplace.py)
    rebases = 0             # in-place ops that gave a tensor a new history (backward then resolves old readers)


@contextlib.contextmanager
def observe_ops(observer):
    """Call ``observer(op, inputs, attrs, out)`` after every op that runs inside the ``with`` block.

    The public hook for watching a program op by op — a tracer (lab 03 writes one), a profiler, a
    logger: ``op.name`` is the op's registry name, ``inputs`` and ``out`` are the op's tensors, ``attrs``
    its keyword attributes. The observer is removed when the block ends, also when it raises, so nothing
    keeps recording after it::

        seen = []
        with aisys.observe_ops(lambda op, inputs, attrs, out: seen.append(op.name)):
            (x @ w + b).relu()
        # seen == ["matmul", "add", "relu"]
    """
    if not callable(observer):
        raise TypeError(f"observe_ops(observer): the observer must be callable as observer(op, inputs, attrs, "
                        f"out), got {type(observer).__name__}")
    _Mode.observers.append(observer)
    try:
        yield observer
    finally:
        _Mode.observers.remove(observer)


def apply(op: OpDef | str, *inputs: "Tensor", **attrs) -> "Tensor":
    """Run one registered op eagerly and record it for autodiff / tracing."""
    if type(op) is str:
        op = _OPS.get(op) or _get_op(op)         # _get_op only to raise its "did you mean" KeyError
    spec = op.infer(*inputs, **attrs)
    n = len(inputs)                               # the common arities without building a list
    if n == 2:                                    # op.eager: the reference, or the dispatcher when kernels are
        data = op.eager(inputs[0]._data, inputs[1]._data, **attrs)            # registered for the op
    elif n == 1:
        data = op.eager(inputs[0]._data, **attrs)
    else:
        data = op.eager(*[t._data for t in inputs], **attrs)
    if type(data) is not np.ndarray:
        data = np.asarray(data)
    want = spec[1].np                             # spec.dtype (a tuple index: this runs on every op)
    if data.dtype is not want and data.dtype != want:   # identity first: numpy's builtin dtypes are singletons
        data = data.astype(want)
    out = Tensor.__new__(Tensor)
    out._data = data
    out.grad = None
    out._ctx = None
    out._tangent = None
    out._trace = None
    out.requires_grad = False
    if _Mode.grad_enabled and op.vjp is not None:
        for t in inputs:
            if t.requires_grad:
                out.requires_grad = True
                out._ctx = (op, inputs, attrs)
                out._epoch = _Mode.epoch
                break
    if _Mode.forward_ad and op.jvp is not None:
        tans = tuple(t._tangent for t in inputs)
        if any(x is not None for x in tans):
            depth, _Mode.forward_ad = _Mode.forward_ad, 0     # tangent arithmetic is not itself tangent-tracked
            try:
                out._tangent = op.jvp(tans, out, *inputs, **attrs)
            finally:
                _Mode.forward_ad = depth
    if _Mode.observers:
        for ob in list(_Mode.observers):
            ob(op, inputs, attrs, out)
    if _Mode.anomaly and spec.dtype.is_floating and not np.all(np.isfinite(data)):
        _report_anomaly(op, inputs, data)
    return out


def _report_anomaly(op, inputs, data):
    def rng(t):
        d = t._data
        if d.size == 0:
            return f"{tuple(d.shape)} empty"
        if t.dtype.is_floating:
            finite = d[np.isfinite(d)]
            lo, hi = (finite.min(), finite.max()) if finite.size else (np.nan, np.nan)
            bad = d.size - finite.size
            return f"{t.dtype.short}{list(d.shape)} range [{lo:.4g}, {hi:.4g}]" + (f", {bad} non-finite" if bad else "")
        return f"{t.dtype.short}{list(d.shape)} range [{d.min()}, {d.max()}]"
    kind = "NaN" if np.isnan(data).any() else "Inf"
    desc = "; ".join(f"input {i}: {rng(t)}" for i, t in enumerate(inputs))
    where = _Mode.backward_of if getattr(_Mode, "backward_of", None) else None
    phase = f" (in the backward of {where})" if where else ""
    raise AnomalyError(f"detect_anomaly: {op.name}{phase} produced {kind} "
                       f"({int((~np.isfinite(data)).sum())} of {data.size} elements); {desc} "
                       f"(at {user_location()})")


class Tensor:
    """An n-dimensional array with autodiff. Mirrors torch.Tensor where the concept exists."""

    __slots__ = ("_data", "requires_grad", "grad", "_ctx", "_tangent", "_trace", "_epoch", "_prior", "__weakref__")
    __array_priority__ = 1000   # numpy scalars on the left defer to Tensor's reflected operators

    def __init__(self, data, dtype=None, requires_grad: bool = False):
        if isinstance(data, Tensor):
            data = data._data
        if not isinstance(data, (np.ndarray, np.generic)):
            data, numpy_typed = _ops.array_of(data)      # aisys.framework.factories: errors that say why
            if dtype is None and not numpy_typed:
                dtype = _ops.python_dtype(data)
        dt = _dt.as_dtype(dtype) if dtype is not None else _dt.infer_from_data(data)
        arr = np.asarray(data, dtype=dt.np)
        if requires_grad and not dt.is_floating:
            raise TypeError(f"only floating-point tensors can require gradients, got {dt.name}; "
                            f"pass dtype=aisys.float32")
        self._data = arr
        self.requires_grad = requires_grad
        self.grad = None
        self._ctx = None
        self._tangent = None
        self._trace = None

    @staticmethod
    def _wrap(arr: np.ndarray) -> "Tensor":
        t = Tensor.__new__(Tensor)
        t._data = arr
        t.requires_grad = False
        t.grad = None
        t._ctx = None
        t._tangent = None
        t._trace = None
        return t

    # ---- basic properties -------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def dtype(self) -> _dt.DType:
        # hot path (every shape inference reads it): a direct table lookup, from_numpy only for the error
        return _DTYPE_OF_NP.get(self._data.dtype) or _dt.from_numpy(self._data.dtype)

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def size(self, dim: int | None = None):
        return self._data.shape if dim is None else self._data.shape[dim]

    def numel(self) -> int:
        return self._data.size

    @property
    def spec(self) -> Spec:
        return Spec(self._data.shape, self.dtype)

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    def stride(self, dim: int | None = None):
        """Strides in elements (like torch), read from the numpy view underneath."""
        st = tuple(s // self._data.itemsize for s in self._data.strides)
        return st if dim is None else st[dim]

    def is_contiguous(self) -> bool:
        return self._data.flags["C_CONTIGUOUS"]

    def numpy(self) -> np.ndarray:
        """The underlying numpy array (shares memory, like torch's .numpy())."""
        if _Mode.observers:
            _escaped(self, ".numpy()")
        return self._data

    def item(self):
        if _Mode.observers:
            for ob in list(_Mode.observers):
                if hasattr(ob, "on_item"):
                    ob.on_item(self)
        if self._data.size != 1:
            raise ValueError(f"item(): tensor has {self._data.size} elements {tuple(self.shape)}; "
                             f"only one-element tensors convert to a Python number")
        return self._data.reshape(()).item()

    def tolist(self):
        if _Mode.observers:
            _escaped(self, ".tolist()")
        return self._data.tolist()

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self):
        """The node of the backward graph that made this tensor (None for leaves): ``.name()`` as PyTorch spells
        it, ``.op`` the registry op, ``.next_functions`` its inputs' nodes (see aisys.autograd.Node)."""
        if self._ctx is None:
            return None
        return _ops.Node(self)

    def detach(self) -> "Tensor":
        """Same data, cut from the tape (no gradient flows back through it). Shares the storage, so an
        in-place write through it bumps the version autograd checks (as in PyTorch)."""
        return Tensor._wrap(self._data)

    @property
    def data(self) -> "Tensor":
        """The values without history (as ``detach()``); ``t.data = other`` replaces the values."""
        return Tensor._wrap(self._data)

    @data.setter
    def data(self, value) -> None:
        self._data = value._data if isinstance(value, Tensor) else np.asarray(value, dtype=self._data.dtype)

    @property
    def _version(self) -> int:
        """How many in-place writes this tensor's storage has had (PyTorch's ``_version``)."""
        return _inplace.version(self._data)

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        if flag and not self.dtype.is_floating:
            raise TypeError(f"only floating-point tensors can require gradients, got {self.dtype.name}")
        if not flag and self._ctx is not None:
            raise RuntimeError("requires_grad_(False) on a tensor computed from others: only a leaf can stop "
                               "requiring grad; use .detach() to get a copy without history")
        self.requires_grad = flag
        return self

    def multinomial(self, num_samples: int, replacement: bool = False, *, generator=None) -> "Tensor":
        return _ops.multinomial(self, num_samples, replacement, generator=generator)

    def clone(self) -> "Tensor":
        """A copy with its own storage; gradients flow back to this tensor (as torch.clone)."""
        return apply("clone", self)

    # ---- in-place ops (PyTorch's rules, version counters: see aisys.framework.inplace) ---------------
    def _inplace(self, name, compute, *operands, reads_self=True):
        return _inplace.update(self, name, compute, *operands, reads_self=reads_self)

    def add_(self, other, alpha=1):
        return self._inplace("add_", (lambda s, o: s + o) if alpha == 1 else (lambda s, o: s + o * alpha), other,
                             reads_self=False)

    def sub_(self, other, alpha=1):
        return self._inplace("sub_", (lambda s, o: s - o) if alpha == 1 else (lambda s, o: s - o * alpha), other,
                             reads_self=False)

    def mul_(self, other): return self._inplace("mul_", lambda s, o: s * o, other)
    def div_(self, other): return self._inplace("div_", lambda s, o: s / o, other, reads_self=False)
    def pow_(self, exponent): return self._inplace("pow_", lambda s, e: s ** e, exponent)
    def neg_(self): return self._inplace("neg_", lambda s: -s, reads_self=False)
    def exp_(self): return self._inplace("exp_", lambda s: s.exp(), reads_self=False)
    def log_(self): return self._inplace("log_", lambda s: s.log())
    def sqrt_(self): return self._inplace("sqrt_", lambda s: s.sqrt(), reads_self=False)
    def abs_(self): return self._inplace("abs_", lambda s: s.abs())
    def sin_(self): return self._inplace("sin_", lambda s: s.sin())
    def cos_(self): return self._inplace("cos_", lambda s: s.cos())
    def tanh_(self): return self._inplace("tanh_", lambda s: s.tanh(), reads_self=False)
    def sigmoid_(self): return self._inplace("sigmoid_", lambda s: s.sigmoid(), reads_self=False)
    def relu_(self): return self._inplace("relu_", lambda s: s.relu())
    def clamp_(self, min=None, max=None): return self._inplace("clamp_", lambda s: s.clamp(min, max))
    def clamp_min_(self, min): return self._inplace("clamp_min_", lambda s: s.clamp(min, None))
    def clamp_max_(self, max): return self._inplace("clamp_max_", lambda s: s.clamp(None, max))

    def masked_fill_(self, mask, value):
        return self._inplace("masked_fill_", lambda s, m: _ops.where(m, _fill_value(value, s), s),
                             _as_mask("masked_fill_", mask), reads_self=False)

    def masked_fill(self, mask, value):
        """A copy with ``value`` where ``mask`` is True (mask broadcasts, as torch.masked_fill)."""
        return _ops.where(_as_mask("masked_fill", mask), _fill_value(value, self), self)

    def fill_(self, value):
        return self._inplace("fill_", lambda s: _ops.where(_TRUE, _fill_value(value, s), s), reads_self=False)

    def zero_(self) -> "Tensor":
        return self.fill_(0)

    def copy_(self, src) -> "Tensor":
        """Copy ``src``'s values in (broadcast to this shape, converted to this dtype), as torch's copy_.
        Recorded when ``src`` requires grad, so gradients flow back to it."""
        src = src if isinstance(src, Tensor) else Tensor(np.asarray(src))
        return self._inplace("copy_", lambda s, o: _ops.broadcast_to(_ops.cast(o, s.dtype), s.shape), src,
                             reads_self=False)

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> "Tensor":
        return _inplace.fill_random(self, "uniform_", lambda shape: _Generator.rng.uniform(a, b, shape))

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> "Tensor":
        return _inplace.fill_random(self, "normal_", lambda shape: _Generator.rng.normal(mean, std, shape))

    def __iadd__(self, o): return self.add_(o)
    def __isub__(self, o): return self.sub_(o)
    def __imul__(self, o): return self.mul_(o)
    def __itruediv__(self, o): return self.div_(o)
    def __ipow__(self, o): return self.pow_(o)

    def assign_(self, value) -> "Tensor":
        """Replace this tensor's values in place with ``value`` (same shape). This is how optimizers and
        running statistics update state: not recorded on the tape, but observers (the tracer) see it, so
        a traced training step knows which parameter each update writes."""
        _inplace.check_leaf(self, "assign_")
        arr = value._data if isinstance(value, Tensor) else np.asarray(value)
        if tuple(arr.shape) != tuple(self._data.shape):
            raise ValueError(f"assign_: new value has shape {tuple(arr.shape)}, tensor has {tuple(self.shape)}")
        if _Mode.observers:
            for ob in list(_Mode.observers):
                if hasattr(ob, "on_assign"):
                    ob.on_assign(self, value)
        self._data[...] = arr
        _inplace.bump(self._data, "assign_")
        return self

    def backward(self, gradient=None, retain_graph: bool | None = None, create_graph: bool = False):
        _ops.backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph)

    def __repr__(self) -> str:
        body = np.array2string(self._data, precision=4, separator=", ", threshold=50)
        extra = ""
        if self.dtype is not _dt.float32 and self.dtype is not _dt.int64 and self.dtype is not _dt.bool_:
            extra += f", dtype={self.dtype!r}"
        if self._ctx is not None:
            extra += f", grad_fn=<{self._ctx[0].name}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise ValueError(f"the truth value of a tensor with {self._data.size} elements is ambiguous; "
                             f"use .any() or .all()")
        if _Mode.observers:
            for ob in list(_Mode.observers):
                if hasattr(ob, "on_bool"):
                    ob.on_bool(self)
        return bool(self._data.reshape(()))

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.is_floating or self._data.size != 1:
            raise TypeError("only integer one-element tensors can be used as an index")
        return int(self.item())

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    __hash__ = object.__hash__

    # ---- conversions -------------------------------------------------------------------
    def to(self, *args, **kwargs) -> "Tensor":
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other_tensor)``, or the keywords ``dtype=``,
        ``device=``, ``copy=`` (``non_blocking=`` is accepted and ignored), as torch. Every device is the CPU
        (see aisys.device); a dtype change is a recorded cast, so gradients flow through it."""
        dtype, dev = parse_to(args, kwargs)
        if dev is not None:
            _device.as_device(dev)
        out = self if dtype is None else _ops.cast(self, dtype)
        return out.clone() if kwargs.get("copy") and out is self else out

    type = to

    @property
    def device(self):
        """Always the CPU (aisys tensors are numpy arrays)."""
        return _device.CPU

    @property
    def is_cuda(self) -> bool:
        return False

    def cpu(self) -> "Tensor":
        return self

    def cuda(self, *args, **kwargs):
        raise RuntimeError("Tensor.cuda(): " + _device.NO_ACCELERATOR.format(what="CUDA"))

    def float(self):
        return self.to(_dt.float32)

    def double(self):
        return self.to(_dt.float64)

    def half(self):
        return self.to(_dt.float16)

    def bfloat16(self):
        return self.to(_dt.bfloat16)

    def long(self):
        return self.to(_dt.int64)

    def int(self):
        return self.to(_dt.int32)

    def bool(self):
        return self.to(_dt.bool_)

    # ---- operators (each is one registry op; tensor ⊕ tensor goes straight to apply) -------------
    def _other(self, o):
        """The other operand as a tensor when that is quick (a tensor, or a float next to a float tensor:
        PyTorch's weak scalar, taking this tensor's dtype); None sends the call through the general path."""
        if isinstance(o, Tensor):
            return o
        if type(o) is float:
            dt = self.dtype
            if dt.is_floating:
                return Tensor._wrap(_scalar_array(o, dt.np))
        return None

    def __add__(self, o):
        t = self._other(o)
        return _ops.add(self, o) if t is None else apply("add", self, t)

    def __radd__(self, o):
        t = self._other(o)
        return _ops.add(o, self) if t is None else apply("add", t, self)

    def __sub__(self, o):
        t = self._other(o)
        return _ops.sub(self, o) if t is None else apply("sub", self, t)

    def __rsub__(self, o): return _ops.sub(o, self)

    def __mul__(self, o):
        t = self._other(o)
        return _ops.mul(self, o) if t is None else apply("mul", self, t)

    def __rmul__(self, o):
        t = self._other(o)
        return _ops.mul(o, self) if t is None else apply("mul", t, self)

    def __truediv__(self, o):
        t = self._other(o)
        return _ops.div(self, o) if t is None else apply("div", self, t)
    def __rtruediv__(self, o): return _ops.div(o, self)
    def __pow__(self, o): return _ops.pow(self, o)
    def __rpow__(self, o): return _ops.pow(o, self)
    def __matmul__(self, o):
        if isinstance(o, Tensor) and self._data.ndim >= 2 and o._data.ndim >= 2:
            return apply("matmul", self, o)
        return _ops.matmul(self, o)
    def __rmatmul__(self, o): return _ops.matmul(o, self)
    def __neg__(self): return _ops.neg(self)
    def __abs__(self): return _ops.abs(self)
    def __eq__(self, o): return _ops.eq(self, o)
    def __ne__(self, o): return _ops.ne(self, o)
    def __lt__(self, o): return _ops.lt(self, o)
    def __le__(self, o): return _ops.le(self, o)
    def __gt__(self, o): return _ops.gt(self, o)
    def __ge__(self, o): return _ops.ge(self, o)
    def __getitem__(self, key): return _ops.index(self, key)

    def __setitem__(self, key, value):
        """In-place assignment ``x[key] = value`` (numpy's indexing rules). Recorded when grad mode is on and
        this tensor or ``value`` requires grad, so gradients flow to both (PyTorch's rules otherwise apply:
        see aisys.framework.inplace)."""
        key = _ops.shape._norm_key(key)
        if _Mode.grad_enabled and (self.requires_grad or (isinstance(value, Tensor) and value.requires_grad)) \
                or _Mode.observers:
            value = value if isinstance(value, Tensor) else as_tensor(value, like=self)
            return self._inplace("setitem", lambda s, v: _ops.shape.index_put(s, key, v), value, reads_self=False)
        _inplace.check_leaf(self, "setitem")
        if not self._data.flags.writeable:
            raise RuntimeError(f"setitem: this tensor is a read-only view of shape {tuple(self.shape)}; .clone() it "
                               f"first")
        self._data[key] = value._data if isinstance(value, Tensor) else value
        _inplace.bump(self._data, user_location())

    # ---- methods mirroring torch.Tensor --------------------------------------------------
    def exp(self): return _ops.exp(self)
    def log(self): return _ops.log(self)
    def sqrt(self): return _ops.sqrt(self)
    def rsqrt(self): return _ops.div(1.0, _ops.sqrt(self))
    def abs(self): return _ops.abs(self)
    def sign(self): return _ops.sign(self)
    def neg(self): return _ops.neg(self)
    def tanh(self): return _ops.tanh(self)
    def sigmoid(self): return _ops.sigmoid(self)
    def relu(self): return _ops.relu(self)
    def erf(self): return _ops.erf(self)
    def sin(self): return _ops.sin(self)
    def cos(self): return _ops.cos(self)
    def square(self): return _ops.mul(self, self)
    def pow(self, e): return _ops.pow(self, e)
    def maximum(self, o): return _ops.maximum(self, o)
    def minimum(self, o): return _ops.minimum(self, o)
    def clamp(self, min=None, max=None): return _ops.clamp(self, min, max)
    def matmul(self, o): return _ops.matmul(self, o)
    def sum(self, dim=None, keepdim=False, *, dtype=None): return _ops.sum(self, dim, keepdim, dtype=dtype)
    def mean(self, dim=None, keepdim=False, *, dtype=None): return _ops.mean(self, dim, keepdim, dtype=dtype)
    def var(self, dim=None, keepdim=False, *, correction=1, unbiased=None):
        return _ops.var(self, dim, keepdim, correction=correction, unbiased=unbiased)

    def std(self, dim=None, keepdim=False, *, correction=1, unbiased=None):
        return _ops.std(self, dim, keepdim, correction=correction, unbiased=unbiased)

    def max(self, dim=None, keepdim=False):
        """As torch: the maximum (a tensor), or with ``dim`` the (values, indices) named tuple."""
        return _ops.max(self, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        """As torch: the minimum (a tensor), or with ``dim`` the (values, indices) named tuple."""
        return _ops.min(self, dim, keepdim)

    def amax(self, dim=None, keepdim=False): return _ops.amax(self, dim, keepdim)
    def amin(self, dim=None, keepdim=False): return _ops.amin(self, dim, keepdim)
    def sort(self, dim=-1, descending=False, stable=False): return _ops.sort(self, dim, descending, stable)
    def argsort(self, dim=-1, descending=False, stable=False): return _ops.argsort(self, dim, descending, stable)
    def topk(self, k, dim=-1, largest=True, sorted=True): return _ops.topk(self, k, dim, largest, sorted)
    def kthvalue(self, k, dim=-1, keepdim=False): return _ops.kthvalue(self, k, dim, keepdim)
    def median(self, dim=None, keepdim=False): return _ops.median(self, dim, keepdim)
    def mode(self, dim=-1, keepdim=False): return _ops.mode(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False): return _ops.argmax(self, dim, keepdim)
    def argmin(self, dim=None, keepdim=False): return _ops.argmin(self, dim, keepdim)
    def any(self, dim=None, keepdim=False):
        """A bool tensor, as torch (``if x.any():`` works too): composed of cast, sum and ne, so it traces."""
        return _ops.ne(_ops.sum(_ops.cast(self, _dt.bool_), dim, keepdim), 0)

    def all(self, dim=None, keepdim=False):
        return _ops.eq(_ops.sum(_ops.logical_not(_ops.cast(self, _dt.bool_)), dim, keepdim), 0)
    def softmax(self, dim): return _ops.softmax(self, dim)
    def log_softmax(self, dim): return _ops.log_softmax(self, dim)
    def reshape(self, *shape): return _ops.reshape(self, *shape)
    def view(self, *shape): return _ops.reshape(self, *shape)
    def flatten(self, start_dim=0, end_dim=-1): return _ops.flatten(self, start_dim, end_dim)
    def transpose(self, dim0, dim1): return _ops.transpose(self, dim0, dim1)
    def permute(self, *dims): return _ops.permute(self, *dims)
    def expand(self, *shape): return _ops.expand(self, *shape)
    def broadcast_to(self, shape): return _ops.broadcast_to(self, shape)
    def squeeze(self, dim=None): return _ops.squeeze(self, dim)
    def unsqueeze(self, dim): return _ops.unsqueeze(self, dim)
    def contiguous(self): return _ops.contiguous(self)
    def sum_to(self, shape): return _ops.sum_to(self, shape)
    def gather(self, dim, index): return _ops.gather(self, dim, index)
    def where(self, cond, other): return _ops.where(cond, self, other)

    # PyTorch's method spellings of the ops (x.add(y), x.eq(y), x.view_as(y) ...)
    def add(self, other, *, alpha=1): return _ops.add(self, other, alpha=alpha)
    def sub(self, other, *, alpha=1): return _ops.sub(self, other, alpha=alpha)
    def mul(self, other): return _ops.mul(self, other)
    def div(self, other): return _ops.div(self, other)
    def eq(self, other): return _ops.eq(self, other)
    def ne(self, other): return _ops.ne(self, other)
    def lt(self, other): return _ops.lt(self, other)
    def le(self, other): return _ops.le(self, other)
    def gt(self, other): return _ops.gt(self, other)
    def ge(self, other): return _ops.ge(self, other)
    def mm(self, other): return _ops.matmul(self, other)
    def bmm(self, other): return _ops.matmul(self, other)
    def view_as(self, other): return _ops.reshape(self, *other.shape)
    def reshape_as(self, other): return _ops.reshape(self, *other.shape)
    def expand_as(self, other): return _ops.broadcast_to(self, tuple(other.shape))
    def type_as(self, other): return _ops.cast(self, other.dtype)
    def split(self, split_size, dim=0): return _ops.split(self, split_size, dim)
    def chunk(self, chunks, dim=0): return _ops.chunk(self, chunks, dim)
    def tril(self, diagonal=0): return _ops.tril(self, diagonal)
    def triu(self, diagonal=0): return _ops.triu(self, diagonal)
    def is_floating_point(self) -> bool: return self.dtype.is_floating
    def element_size(self) -> int: return self._data.itemsize

    def __format__(self, spec: str) -> str:
        """``f"{loss:.4f}"`` formats a 0-d tensor as its number (as torch); other tensors only with an empty spec."""
        if self._data.ndim == 0:
            return format(self.item(), spec)
        if spec:
            raise TypeError(f"unsupported format string {spec!r} for a tensor of shape {tuple(self.shape)}: only "
                            f"0-d tensors format as numbers (as in torch); format t.item() or t.tolist() instead")
        return str(self)

    @property
    def T(self):
        if self.ndim != 2:
            raise ValueError(f".T expects a 2-D tensor, got {self.ndim}-D {tuple(self.shape)}; use permute")
        return _ops.transpose(self, 0, 1)

    @property
    def mT(self):
        return _ops.transpose(self, -2, -1)


# ---- grad mode ---------------------------------------------------------------------------
class no_grad(contextlib.ContextDecorator):
    """Ops run inside are not recorded on the tape (inference, optimizer updates). On exit the mode is what it
    was on entry (a stack, so one instance used as a decorator of a recursive function nests correctly)."""
    _mode = False

    def __enter__(self):
        self.__dict__.setdefault("_prev", []).append(_Mode.grad_enabled)
        _Mode.grad_enabled = self._mode

    def __exit__(self, *exc):
        _Mode.grad_enabled = self._prev.pop()
        return False


class enable_grad(no_grad):
    _mode = True


class set_grad_enabled(no_grad):
    def __init__(self, mode: bool):
        self._mode = bool(mode)


def is_grad_enabled() -> bool:
    return _Mode.grad_enabled


class detect_anomaly(contextlib.ContextDecorator):
    """Stop at the first op whose output contains NaN or Inf, naming the op, its inputs' ranges and
    your source line (forward and backward)."""

    def __enter__(self):
        _Mode.anomaly += 1

    def __exit__(self, *exc):
        _Mode.anomaly -= 1
        return False


# ---- factories ---------------------------------------------------------------------------
_SCALARS: dict = {}


def _scalar_array(value: float, np_dtype) -> np.ndarray:
    """A read-only 0-d array holding a Python float in a tensor's dtype, made once per (value, dtype): the
    constants of ``x * 0.5`` or ``lr * g`` recur on every step, and numpy takes longer to build one than the
    arithmetic takes. Read-only, so a shared constant can never be changed through one of its uses."""
    key = (value, np_dtype)
    arr = _SCALARS.get(key)
    if arr is None:
        if len(_SCALARS) >= 1024:
            _SCALARS.clear()
        arr = np.asarray(value, dtype=np_dtype)
        arr.flags.writeable = False
        _SCALARS[key] = arr
    return arr


def as_tensor(x, dtype=None, device=None, like: Tensor | None = None) -> Tensor:
    """Lift Python scalars/arrays into tensors, sharing memory when possible (torch.as_tensor). Inside the
    library, a Python scalar takes ``like``'s dtype (a "weak" scalar), except a float scalar next to an
    integer tensor, which becomes the default float."""
    if dtype is not None or device is not None:
        t = x if isinstance(x, Tensor) else _ops.tensor(x, device=device)
        return t if dtype is None or t.dtype is _dt.as_dtype(dtype) else _ops.cast(t, dtype)
    if isinstance(x, Tensor):
        return x
    if type(x) is float and like is not None:            # x * 0.5 on a float tensor: the common case, first
        ld = like.dtype
        if ld.is_floating:
            return Tensor._wrap(_scalar_array(x, ld.np))
    if like is not None and isinstance(x, (int, float, bool, np.number, np.bool_)) and not isinstance(x, np.ndarray):
        ld = like.dtype
        if isinstance(x, (bool, np.bool_)):
            dt = ld
        elif isinstance(x, (float, np.floating)) and not ld.is_floating:
            dt = _dt.default_float
        elif ld is _dt.bool_:                   # bool tensor + 1 -> int64, as torch
            dt = _dt.int64
        else:
            dt = ld
        return Tensor._wrap(np.asarray(x, dtype=dt.np))
    return Tensor(x)


class _SeededOnFirstUse:
    """``_Generator.rng`` before any ``manual_seed``: ``default_rng(0)``, made on first read (numpy.random takes
    a tenth of ``import aisys``'s time; a session that draws no random numbers never loads it)."""

    def __get__(self, obj, owner):
        owner.rng = np.random.default_rng(0)       # replaces this descriptor: later reads are a plain attribute
        return owner.rng


class _Generator:
    """The global random generator (seed with aisys.manual_seed)."""
    rng = _SeededOnFirstUse()


def manual_seed(seed: int) -> None:
    _Generator.rng = np.random.default_rng(seed)


def parse_to(args, kwargs):
    """(dtype or None, device or None) from the arguments of Tensor.to / Module.to."""
    extra = set(kwargs) - {"dtype", "device", "copy", "non_blocking", "memory_format"}
    if extra:
        raise TypeError(f"to(): unexpected keyword argument(s) {', '.join(sorted(extra))}")
    dtype, dev = kwargs.get("dtype"), kwargs.get("device")
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, _device.device) or isinstance(a, int) and not isinstance(a, bool):
            dev = a
        elif isinstance(a, str) and a.partition(":")[0] in _device._KNOWN:
            dev = a
        elif a is not None:
            dtype = a
    return (None if dtype is None else _dt.as_dtype(dtype)), dev


def _escaped(t: Tensor, how: str) -> None:
    for ob in list(_Mode.observers):
        hook = getattr(ob, "on_escape", None)
        if hook is not None:
            hook(t, how)


def _fill_value(value, like: Tensor) -> Tensor:
    """A fill value in ``like``'s dtype (a float fill of an integer tensor truncates, as in torch)."""
    if isinstance(value, Tensor):
        if value._data.size != 1:
            raise ValueError(f"fill value must be a number or a one-element tensor, got shape {tuple(value.shape)}")
        return _ops.cast(value.reshape(()), like.dtype)
    return Tensor._wrap(np.asarray(value, dtype=like._data.dtype))


def _as_mask(name: str, mask) -> Tensor:
    mask = mask if isinstance(mask, Tensor) else Tensor(np.asarray(mask))
    if mask.dtype is not _dt.bool_:
        raise TypeError(f"{name}: mask must be a bool tensor, got {mask.dtype.name}; compare first (e.g. x > 0)")
    return mask


_ops = types.SimpleNamespace()   # the public functions Tensor's methods call: filled by aisys.framework.ops and
                                 # .autograd when they load (see the module docstring)
_inplace = types.SimpleNamespace()   # version counters and PyTorch's in-place rules, for Tensor's in-place
                                     # methods: filled by aisys.framework.inplace when it loads

_TRUE = Tensor._wrap(np.ones((), np.bool_))
_TRUE._data.flags.writeable = False
