"""Scratch arrays the CPU kernels reuse from call to call.

Why: a fresh multi-megabyte ``np.empty`` is new memory from the OS, and the first write to each of its pages
is a page fault; on the machines this was measured on, faulting in a convolution's workspace (im2col columns,
Winograd's transformed tiles) cost as much as the GEMM that used it. Reusing one buffer per (purpose, dtype)
and thread pays that once. The buffers only grow; :func:`release` drops them.
"""
from __future__ import annotations

import threading

import numpy as np

_LOCAL = threading.local()


def scratch(purpose: str, shape, dtype) -> np.ndarray:
    """A C-contiguous array of ``shape`` for ``purpose`` whose contents are undefined (a previous call's data):
    the caller writes every element it reads. Two live scratch arrays need two purposes."""
    bufs = getattr(_LOCAL, "bufs", None)
    if bufs is None:
        bufs = _LOCAL.bufs = {}
    dtype = np.dtype(dtype)
    n = 1
    for s in shape:
        n *= int(s)
    buf = bufs.get((purpose, dtype))
    if buf is None or buf.size < n:
        buf = bufs[(purpose, dtype)] = np.empty(max(n, 1), dtype)
    return buf[:n].reshape(shape)


#: elements between consecutive planes of :func:`planes` beyond their size: planes a multiple of 4 KiB apart
#: map their rows to the same cache sets, and a loop writing one row of each of 16 or 36 planes then runs
#: several times slower (measured: Winograd's filter transform 5.8 ms unpadded vs 0.3 ms padded)
PLANE_PAD = 32


def planes(purpose: str, count: int, rows: int, cols: int, dtype) -> np.ndarray:
    """A scratch (count, rows, cols) array whose planes are each C-contiguous but :data:`PLANE_PAD` elements
    further apart than their size (a plane's rows start at different cache sets than the next plane's)."""
    stride = rows * cols + PLANE_PAD
    flat = scratch(purpose, (count * stride,), dtype)
    return flat.reshape(count, stride)[:, :rows * cols].reshape(count, rows, cols)


def held_bytes() -> int:
    """Bytes this thread's scratch buffers hold."""
    return sum(b.nbytes for b in getattr(_LOCAL, "bufs", {}).values())


def release() -> None:
    """Drop this thread's scratch buffers (their memory goes back when nothing else refers to them)."""
    _LOCAL.bufs = {}
