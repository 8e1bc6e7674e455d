"""A kernel dispatcher keyed by (op, device, dtype), with a fallback order.

An op (算子) in the graph is a *function*; what runs is a *kernel* (核) for one device and one element
type (ZOMI's lecture 03DataFlow/04Dispatch: PyTorch dispatches twice — first on the tensor's device
and layout, then on its dtype — to pick the kernel). A real framework rarely has a kernel for every
combination, so the dispatcher walks a *fallback order* until it finds one:

    for each device in (device, its fallback device, …):
        (device, dtype)                  an exact kernel
        (device, "*")                    a kernel for any dtype on this device
        (device, wider dtype), …         compute in a wider dtype (bf16 → f32), cast the result back
    ("*", "*")                           the op registry's numpy reference: always there

:func:`dispatch_order` is that order (exercise 3.3 re-implements it); :class:`Dispatcher` registers
kernels and resolves ``(op, device, dtype)`` through it; :meth:`Dispatcher.table` prints the
resolution table a learner checks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..framework import dtypes as _dt
from ..framework.registry import get as get_op
from ..framework.tensor import Tensor

__all__ = ["dispatch_order", "Dispatcher", "Resolution", "demo_dispatcher", "DEVICE_FALLBACK", "DTYPE_FALLBACK", "ANY"]

ANY = "*"
DEVICE_FALLBACK = {"npu": "cpu", "gpu": "cpu"}
DTYPE_FALLBACK = {"bfloat16": "float32", "float16": "float32", "int8": "int32", "int32": "int64",
                  "bool": "int32"}


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


@dataclass
class Resolution:
    """How one (op, device, dtype) request was served."""
    op: str
    device: str
    dtype: str
    key: tuple[str, str]            # the (device, dtype) of the kernel found
    kernel_name: str
    tried: list[tuple[str, str]]    # keys tried before it, in order
    compute_dtype: str              # the dtype the kernel computes in (differs when up-cast)

    @property
    def fallback(self) -> str:
        if self.key == (self.device, self.dtype):
            return "exact"
        if self.key == (ANY, ANY):
            return "reference"
        parts = []
        if self.key[0] != self.device:
            parts.append(f"device {self.device}→{self.key[0]}")
        if self.key[1] == ANY:
            parts.append("any-dtype kernel")
        elif self.key[1] != self.dtype:
            parts.append(f"upcast {self.dtype}→{self.key[1]}")
        return ", ".join(parts)


@dataclass
class _Kernel:
    fn: Callable
    name: str


@dataclass
class Dispatcher:
    """Kernels by (op, device, dtype); ``resolve`` walks ``order`` (default :func:`dispatch_order`)."""
    order: Callable = dispatch_order
    device_fallback: dict = field(default_factory=lambda: dict(DEVICE_FALLBACK))
    dtype_fallback: dict = field(default_factory=lambda: dict(DTYPE_FALLBACK))
    kernels: dict = field(default_factory=dict)       # (op, device, dtype) -> _Kernel

    def register(self, op: str, device: str = "cpu", dtype: str = ANY, name: str | None = None):
        """Decorator: ``@d.register("matmul", "npu", "bfloat16")`` registers a kernel ``fn(*arrays, **attrs)``."""
        get_op(op)                                       # the op must exist in the registry
        if dtype != ANY:
            dtype = _dt.as_dtype(dtype).name

        def deco(fn):
            self.kernels[(op, device, dtype)] = _Kernel(fn, name or getattr(fn, "__name__", "kernel"))
            return fn
        return deco

    def resolve(self, op: str, device: str, dtype) -> Resolution:
        dtype = _dt.as_dtype(dtype).name
        keys = self.order(device, dtype, device_fallback=self.device_fallback, dtype_fallback=self.dtype_fallback)
        tried = []
        for dev, dt in keys:
            if (dev, dt) == (ANY, ANY):
                return Resolution(op, device, dtype, (ANY, ANY), "reference (numpy)", tried, dtype)
            k = self.kernels.get((op, dev, dt))
            if k is not None:
                return Resolution(op, device, dtype, (dev, dt), k.name, tried, dtype if dt == ANY else dt)
            tried.append((dev, dt))
        raise LookupError(f"no kernel for {op} on {device} with {dtype}: tried {tried}, and the order does not end "
                          f"with the reference key ('*', '*')")

    def __call__(self, op: str, *inputs, device: str = "cpu", **attrs) -> Tensor:
        """Run ``op`` with the kernel the dispatcher picks (casting to the compute dtype and back)."""
        arrays = [x._data if isinstance(x, Tensor) else np.asarray(x) for x in inputs]
        dtype = _dt.from_numpy(arrays[0].dtype)
        r = self.resolve(op, device, dtype)
        if r.key == (ANY, ANY):
            fn = get_op(op).ref
        else:
            fn = self.kernels[(op, *r.key)].fn
        if r.compute_dtype != dtype.name:
            arrays = [a.astype(_dt.as_dtype(r.compute_dtype).np) if a.dtype == dtype.np else a for a in arrays]
        out = np.asarray(fn(*arrays, **attrs))
        spec = get_op(op).infer(*[Tensor._wrap(a) for a in
                                  (x._data if isinstance(x, Tensor) else np.asarray(x) for x in inputs)], **attrs)
        return Tensor._wrap(out.astype(spec.dtype.np, copy=False))

    def table(self, ops, devices, dtypes) -> str:
        """The resolution table: for each request, the kernel found and how (exact / which fallback)."""
        rows = [("op", "device", "dtype", "kernel", "found at", "how")]
        for op in ops:
            for dev in devices:
                for dt in dtypes:
                    r = self.resolve(op, dev, dt)
                    rows.append((op, dev, r.dtype, r.kernel_name, f"({r.key[0]}, {r.key[1]})", r.fallback))
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def resolutions(self, ops, devices, dtypes) -> list[tuple[str, str, str, tuple[str, str]]]:
        """The table as data: (op, device, dtype, key found)."""
        return [(op, dev, _dt.as_dtype(dt).name, self.resolve(op, dev, dt).key)
                for op in ops for dev in devices for dt in dtypes]


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
