"""The dispatcher: which kernel runs an op, keyed by (op, device, dtype, layout), with a fallback order.

An op (算子) in the graph is a *function*; what runs is a *kernel* (核) for one device, one element type
and one memory layout (ZOMI's lecture 03DataFlow/04Dispatch: PyTorch dispatches on the tensor's device
and layout, then on its dtype). Every eager op goes through here: :func:`aisys.framework.tensor.apply`
asks the dispatcher for the op's kernel, and runs the op registry's numpy reference when none is
registered — the reference is always there, so an op never lacks a kernel. A real kernel library is
sparse, so the dispatcher walks a *fallback order* until it finds one:

    for each device in (device, its fallback device, …):                 dispatch_order (exercise 3.3)
        (device, dtype)                  an exact kernel
        (device, "*")                    a kernel for any dtype on this device
        (device, wider dtype), …         compute in a wider dtype (bf16 → f32), the result cast back
    ("*", "*")                           the op registry's numpy reference

and, inside each (device, dtype) key, the layout: the input's own ("contiguous", "channels_last",
"strided"), then "*" (any layout), then "contiguous" after making a copy.

Registering a kernel (for the kernels of ``aisys.kernels``; a kernel takes the op's numpy arrays and
attrs, like the op's ``ref``)::

    from aisys.framework.dispatch import register_kernel

    @register_kernel("conv2d", device="cpu", dtype="float32", layout="contiguous", name="conv2d_direct")
    def conv2d_direct(x, w, b=None, *, stride, padding, dilation, groups): ...

``DISPATCHER.table(ops, devices, dtypes)`` is the resolution table (a :class:`ResolutionTable`);
``DISPATCHER.recording()`` logs what eager ops resolved to. Eager tensors live in host memory, so an eager
request's device is ``"cpu"``; ``DISPATCHER(op, *tensors, device="npu")`` asks for another device. An op
with no kernel registered costs nothing extra: ``apply`` calls ``OpDef.eager``, which is the reference
until a kernel is registered for the op.
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import dtypes as _dt
from .registry import OPS, Spec, get as get_op

__all__ = ["ANY", "DEVICE_FALLBACK", "DTYPE_FALLBACK", "LAYOUT_FALLBACK", "LAYOUTS", "dispatch_order", "layout_of",
           "Kernel", "Resolution", "ResolutionTable", "Dispatcher", "DISPATCHER", "register_kernel",
           "demo_dispatcher"]

ANY = "*"
DEVICE_FALLBACK = {"npu": "cpu", "gpu": "cpu", "cuda": "cpu"}
DTYPE_FALLBACK = {"bfloat16": "float32", "float16": "float32", "int8": "int32", "int32": "int64",
                  "bool": "int32"}
LAYOUTS = ("contiguous", "channels_last", "strided")
LAYOUT_FALLBACK = {"channels_last": "contiguous", "strided": "contiguous"}    # via a copy


def _chain(start: str, fallback: dict[str, str]) -> list[str]:
    """start, fallback[start], fallback[fallback[start]], … (stops at a repeat)."""
    out = [start]
    while out[-1] in fallback and fallback[out[-1]] not in out:
        out.append(fallback[out[-1]])
    return out


def dispatch_order(device: str, dtype: str, *, device_fallback: dict[str, str] | None = None,
                   dtype_fallback: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """The (device, dtype) keys to try, best first, ending with the reference ("*", "*")."""
    device_fallback = DEVICE_FALLBACK if device_fallback is None else device_fallback
    dtype_fallback = DTYPE_FALLBACK if dtype_fallback is None else dtype_fallback
    order: list[tuple[str, str]] = []
    wider = _chain(dtype, dtype_fallback)[1:]
    for dev in _chain(device, device_fallback):
        order.append((dev, dtype))
        order.append((dev, ANY))
        order.extend((dev, w) for w in wider)
    order.append((ANY, ANY))
    return order


def layout_of(a: np.ndarray) -> str:
    """"contiguous" (row-major), "channels_last" (a 4-D array whose channels vary fastest: NHWC strides
    under NCHW indices), or "strided" (any other view)."""
    if a.flags.c_contiguous:
        return "contiguous"
    if a.ndim == 4 and np.transpose(a, (0, 2, 3, 1)).flags.c_contiguous:
        return "channels_last"
    return "strided"


@dataclass(frozen=True)
class Kernel:
    """A registered kernel: ``fn(*arrays, **attrs) -> array`` for ``op`` on (device, dtype, layout)."""
    fn: Callable
    name: str
    op: str
    device: str
    dtype: str
    layout: str


@dataclass(frozen=True)
class Resolution:
    """How one (op, device, dtype, layout) request was served."""
    op: str
    device: str
    dtype: str
    key: tuple                      # the (device, dtype) of the kernel found; ("*", "*"): the reference
    kernel_name: str
    tried: tuple                    # (device, dtype, layout) keys tried before it, in order
    compute_dtype: str              # the dtype the kernel computes in (differs when up-cast)
    layout: str = "contiguous"
    compute_layout: str = ANY       # the layout the kernel reads ("contiguous" after a copy)
    kernel: Kernel | None = None    # None: the registry's reference

    @property
    def fallback(self) -> str:
        if self.key == (ANY, ANY):
            return "reference"
        parts = []
        if self.key[0] != self.device:
            parts.append(f"device {self.device}→{self.key[0]}")
        if self.key[1] == ANY:
            parts.append("any-dtype kernel")
        elif self.key[1] != self.dtype:
            parts.append(f"upcast {self.dtype}→{self.key[1]}")
        if self.compute_layout not in (ANY, self.layout):
            parts.append(f"copy {self.layout}→{self.compute_layout}")
        return ", ".join(parts) or "exact"

    def __str__(self) -> str:
        return f"{self.op} on ({self.device}, {self.dtype}, {self.layout}) -> {self.kernel_name} [{self.fallback}]"


@dataclass
class ResolutionTable:
    """The record of a set of requests and how each resolved (what the lab prints and checks)."""
    rows: list

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        head = ("op", "device", "dtype", "kernel", "found at", "how")
        rows = [head] + [(r.op, r.device, r.dtype, r.kernel_name, f"({r.key[0]}, {r.key[1]})", r.fallback)
                         for r in self.rows]
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    summary = __str__

    def __repr__(self) -> str:
        return f"<ResolutionTable: {len(self.rows)} requests>"


class _OwnKernels(dict):
    """A dispatcher's own kernels: op name -> {(device, dtype, layout): Kernel}."""

    def changed(self, op: str) -> None:
        pass


class _RegistryKernels:
    """The eager dispatcher's kernels live on the ops themselves (``OpDef.kernels``). An op with none runs its
    reference directly (``OpDef.eager`` is ``ref``: no cost on the hot path); registering the first kernel
    points ``eager`` at the dispatcher, removing the last points it back."""

    def changed(self, op: str) -> None:
        d = get_op(op)
        d.eager = functools.partial(DISPATCHER.eager, d) if d.kernels else d.ref

    def get(self, op: str, default=None):
        d = OPS.get(op)
        return default if d is None else _loaded(d).kernels

    def setdefault(self, op: str, default):
        return _loaded(get_op(op)).kernels

    def items(self):
        return [(name, _loaded(d).kernels) for name, d in OPS.items() if _loaded(d).kernels]


def _loaded(d):
    """``d`` with its kernels registered: an op whose kernels module loads on first use (its ``eager`` carries
    ``loads_kernels``, e.g. conv2d's aisys.kernels.conv) loads it now, so a lookup sees what a call would run."""
    load = getattr(d.eager, "loads_kernels", None)
    if load is not None:
        load()
    return d


@dataclass
class Dispatcher:
    """Kernels by (op, device, dtype, layout); ``resolve`` walks ``order`` (default :func:`dispatch_order`).

    ``DISPATCHER`` is the one the eager path uses; ``Dispatcher()`` makes a private one (a lab's kernel set).
    """
    order: Callable = dispatch_order
    device_fallback: dict = field(default_factory=lambda: dict(DEVICE_FALLBACK))
    dtype_fallback: dict = field(default_factory=lambda: dict(DTYPE_FALLBACK))
    layout_fallback: dict = field(default_factory=lambda: dict(LAYOUT_FALLBACK))
    store: object = field(default_factory=_OwnKernels)
    _cache: dict = field(default_factory=dict, repr=False)
    _log: list | None = field(default=None, repr=False)

    # ---- registering ---------------------------------------------------------------------------------
    def register(self, op: str, device: str = "cpu", dtype: str = ANY, layout: str = ANY, name: str | None = None):
        """Decorator: ``@d.register("matmul", "npu", "bfloat16")`` registers ``fn(*arrays, **attrs)``."""
        get_op(op)                                       # the op must exist in the registry
        if dtype != ANY:
            dtype = _dt.as_dtype(dtype).name
        if layout != ANY and layout not in LAYOUTS:
            raise ValueError(f"register {op!r}: layout must be one of {', '.join(LAYOUTS)} or '*', got {layout!r}")

        def deco(fn):
            if not callable(fn):
                raise TypeError(f"register {op!r}: a kernel is a function fn(*arrays, **attrs), got {fn!r}")
            self.store.setdefault(op, {})[(device, dtype, layout)] = Kernel(
                fn, name or getattr(fn, "__name__", "kernel"), op, device, dtype, layout)
            self._cache.clear()
            self.store.changed(op)
            return fn
        return deco

    def unregister(self, op: str, device: str = "cpu", dtype: str = ANY, layout: str = ANY) -> None:
        if dtype != ANY:
            dtype = _dt.as_dtype(dtype).name
        per_op = self.store.get(op) or {}
        if (device, dtype, layout) not in per_op:
            raise KeyError(f"no kernel for {op} registered at ({device}, {dtype}, {layout})")
        del per_op[(device, dtype, layout)]
        self._cache.clear()
        self.store.changed(op)

    @contextlib.contextmanager
    def registered(self, op: str, fn: Callable, device: str = "cpu", dtype: str = ANY, layout: str = ANY,
                   name: str | None = None):
        """Register ``fn`` for the duration of a ``with`` block (what was there before comes back)."""
        key_dtype = dtype if dtype == ANY else _dt.as_dtype(dtype).name
        before = (self.store.get(op) or {}).get((device, key_dtype, layout))
        self.register(op, device, dtype, layout, name)(fn)
        try:
            yield self
        finally:
            per_op = self.store.get(op) or {}
            if before is None:
                per_op.pop((device, key_dtype, layout), None)
            else:
                per_op[(device, key_dtype, layout)] = before
            self._cache.clear()
            self.store.changed(op)

    @contextlib.contextmanager
    def using_order(self, order: Callable):
        """Resolve with another fallback order for the duration of a ``with`` block (a learner's, say)."""
        prev, self.order = self.order, order
        self._cache.clear()
        try:
            yield self
        finally:
            self.order = prev
            self._cache.clear()

    @property
    def kernels(self) -> dict:
        """{(op, device, dtype, layout): Kernel} for every registered kernel."""
        return {(op, *key): k for op, per_op in self.store.items() for key, k in per_op.items()}

    # ---- resolving -----------------------------------------------------------------------------------
    def resolve(self, op: str, device: str, dtype, layout: str = "contiguous") -> Resolution:
        dtype = _dt.as_dtype(dtype).name
        key = (op, device, dtype, layout)
        r = self._cache.get(key)
        if r is None:
            r = self._cache[key] = self._resolve(op, device, dtype, layout)
        if self._log is not None:
            self._log.append(r)
        return r

    def _resolve(self, op: str, device: str, dtype: str, layout: str) -> Resolution:
        per_op = self.store.get(op) or {}
        keys = self.order(device, dtype, device_fallback=self.device_fallback, dtype_fallback=self.dtype_fallback)
        layouts = list(dict.fromkeys([layout, ANY] + [x for x in _chain(layout, self.layout_fallback)[1:]]))
        tried = []
        for dev, dt in keys:
            if (dev, dt) == (ANY, ANY):
                return Resolution(op, device, dtype, (ANY, ANY), "reference (numpy)", tuple(tried), dtype, layout)
            for lay in layouts:
                k = per_op.get((dev, dt, lay))
                if k is not None:
                    return Resolution(op, device, dtype, (dev, dt), k.name, tuple(tried),
                                      dtype if dt == ANY else dt, layout, lay, k)
                tried.append((dev, dt, lay))
        raise LookupError(f"no kernel for {op} on {device} with {dtype}: tried {[t[:2] for t in tried]}, and the "
                          f"order does not end with the reference key ('*', '*')")

    def run(self, op, arrays: list, attrs: dict, device: str = "cpu") -> np.ndarray:
        """Run ``op`` on numpy arrays with the kernel it resolves to (converting dtype and layout first)."""
        opdef = get_op(op) if isinstance(op, str) else op
        first = _dispatch_operand(arrays)
        r = self.resolve(opdef.name, device, _dt.from_numpy(first.dtype), layout_of(first))
        if r.kernel is None:
            return opdef.ref(*arrays, **attrs)
        if r.compute_dtype != r.dtype:
            want, src = _dt.as_dtype(r.compute_dtype).np, first.dtype
            arrays = [a.astype(want) if a.dtype == src else a for a in arrays]
        if r.compute_layout == "contiguous" and r.layout != "contiguous":
            arrays = [np.ascontiguousarray(a) for a in arrays]
        return r.kernel.fn(*arrays, **attrs)

    def eager(self, opdef, *arrays, **attrs) -> np.ndarray:
        """What ``apply`` runs for an op with registered kernels (eager tensors live in host memory: "cpu")."""
        return self.run(opdef, list(arrays), attrs, "cpu")

    def __call__(self, op: str, *inputs, device: str = "cpu", **attrs) -> np.ndarray:
        """Run ``op`` on tensors or arrays on ``device`` with the kernel this dispatcher picks; returns the
        result as an array of the op's inferred dtype (``aisys.tensor(...)`` makes it a tensor)."""
        arrays = [np.asarray(getattr(x, "_data", x)) for x in inputs]
        out = np.asarray(self.run(op, arrays, attrs, device))
        spec = get_op(op).infer(*[Spec(a.shape, _dt.from_numpy(a.dtype)) for a in arrays], **attrs)
        return out.astype(spec.dtype.np, copy=False)

    @contextlib.contextmanager
    def recording(self):
        """Log every resolution made in a ``with`` block: ``with DISPATCHER.recording() as log: …``."""
        prev, self._log = self._log, []
        log = self._log
        try:
            yield log
        finally:
            self._log = prev

    # ---- the resolution table --------------------------------------------------------------------------
    def table(self, ops, devices, dtypes, layout: str = "contiguous") -> ResolutionTable:
        """For each (op, device, dtype) request: the kernel found and how (exact / which fallback)."""
        return ResolutionTable([self.resolve(op, dev, dt, layout) for op in ops for dev in devices for dt in dtypes])

    def resolutions(self, ops, devices, dtypes) -> list[tuple[str, str, str, tuple[str, str]]]:
        """The table as data: (op, device, dtype, key found)."""
        return [(r.op, r.device, r.dtype, r.key) for r in self.table(ops, devices, dtypes)]


def _dispatch_operand(arrays) -> np.ndarray:
    """The operand whose dtype and layout pick the kernel: the first floating one (where's condition and
    embedding's indices do not decide), else the first."""
    for a in arrays:
        if a.dtype.kind == "f" or a.dtype.kind == "V":
            return a
    return arrays[0]


#: the dispatcher of the eager path (``aisys.framework.tensor.apply``)
DISPATCHER = Dispatcher(store=_RegistryKernels())


def register_kernel(op: str, device: str = "cpu", dtype: str = ANY, layout: str = ANY, name: str | None = None):
    """Register a kernel with the eager dispatcher (a decorator); see the module docstring."""
    return DISPATCHER.register(op, device, dtype, layout, name)


def demo_dispatcher(order: Callable = dispatch_order) -> Dispatcher:
    """The lab's kernel set: a CPU float32 matmul, an NPU bfloat16 matmul, an NPU any-dtype relu, a CPU
    float32 add. Everything else falls back."""
    d = Dispatcher(order=order)

    @d.register("matmul", "cpu", "float32", name="cpu_sgemm")
    def cpu_sgemm(a, b):
        return np.matmul(a, b)

    @d.register("matmul", "npu", "bfloat16", name="npu_cube_bf16")
    def npu_cube_bf16(a, b):            # a cube unit: bf16 operands, f32 accumulation, bf16 result
        return np.matmul(a.astype(np.float32), b.astype(np.float32)).astype(a.dtype)

    @d.register("relu", "npu", ANY, name="npu_vector_relu")
    def npu_vector_relu(x):
        return np.maximum(x, np.zeros((), x.dtype))

    @d.register("add", "cpu", "float32", name="cpu_add_f32")
    def cpu_add_f32(a, b):
        return np.add(a, b)

    return d
