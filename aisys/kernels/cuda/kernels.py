"""The kernels, written once with ``numba.cuda`` (simulator on a CPU, machine code on a GPU), and their host
functions: each copies its operands to the device, checks and launches its grid, and copies the result back.

    kernel             threads                                   memory
    vector_add         one per element                           1 + 1 global loads, 1 store each
    reduce_sum         a block sums 2·block values as a tree     shared memory, log2(block) barrier rounds
    matmul             one per output element                    naive: 2K global loads per thread
    matmul(tile=T)     T×T block per T×T output tile             2K/T global + 2K shared loads per thread
    softmax_rows       one block per row, threads stride columns max and sum reduced in shared memory
    conv2d             one per output pixel                      C·KH·KW weights and inputs from global

Tile and block sizes are compile-time constants of a kernel (shared arrays need a constant shape), so the kernels
that take one are made per size by a small factory and kept (``KERNELS``); the fixed-size ones are compiled with
``cache=True``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import float32

from .backend import numba_cuda as cuda
from .trace import launch, to_device

__all__ = ["vector_add", "reduce_sum", "matmul", "softmax_rows", "conv2d", "KERNELS", "tiled_matmul_kernel"]

KERNELS: dict = {}        # (kind, size) -> compiled kernel


@cuda.jit(cache=True)
def _vector_add(a, b, out):
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = a[i] + b[i]


@cuda.jit(cache=True)
def _matmul_naive(A, B, C):
    row, col = cuda.grid(2)[1], cuda.grid(2)[0]
    if row < C.shape[0] and col < C.shape[1]:
        acc = 0.0
        for k in range(A.shape[1]):
            acc += A[row, k] * B[k, col]
        C[row, col] = acc


@cuda.jit(cache=True)
def _conv2d(x, w, out, pad_h, pad_w):
    ow = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    oh = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    no = cuda.blockIdx.z
    O = out.shape[1]
    n, o = no // O, no % O
    if oh < out.shape[2] and ow < out.shape[3]:
        acc = 0.0
        for c in range(x.shape[1]):
            for kh in range(w.shape[2]):
                ih = oh - pad_h + kh
                if ih >= 0 and ih < x.shape[2]:
                    for kw in range(w.shape[3]):
                        iw = ow - pad_w + kw
                        if iw >= 0 and iw < x.shape[3]:
                            acc += x[n, c, ih, iw] * w[o, c, kh, kw]
        out[n, o, oh, ow] = acc


def tiled_matmul_kernel(T: int):
    """The shared-memory tiled matmul kernel for T×T tiles (launch it with T×T blocks over the output)."""
    key = ("matmul_tiled", T)
    if key not in KERNELS:
        @cuda.jit
        def matmul_tiled(A, B, C):
            sA = cuda.shared.array((T, T), float32)
            sB = cuda.shared.array((T, T), float32)
            tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
            row = cuda.blockIdx.y * T + ty
            col = cuda.blockIdx.x * T + tx
            M, K, N = A.shape[0], A.shape[1], B.shape[1]
            acc = 0.0
            for p in range((K + T - 1) // T):
                if row < M and p * T + tx < K:
                    sA[ty, tx] = A[row, p * T + tx]
                else:
                    sA[ty, tx] = 0.0
                if col < N and p * T + ty < K:
                    sB[ty, tx] = B[p * T + ty, col]
                else:
                    sB[ty, tx] = 0.0
                cuda.syncthreads()
                for k in range(T):
                    acc += sA[ty, k] * sB[k, tx]
                cuda.syncthreads()
            if row < M and col < N:
                C[row, col] = acc
        KERNELS[key] = matmul_tiled
    return KERNELS[key]


@cuda.jit(device=True)
def _tree(s, t, T, take_max):
    """Halve the active threads each round: s[t] ⊕= s[t + stride]; afterwards s[0] holds the block's result."""
    stride = T // 2
    while stride > 0:
        if t < stride:
            if take_max:
                s[t] = max(s[t], s[t + stride])
            else:
                s[t] += s[t + stride]
        cuda.syncthreads()
        stride //= 2


def _reduce_kernel(T: int):
    key = ("reduce_sum", T)
    if key not in KERNELS:
        @cuda.jit
        def reduce_tree(x, partial):
            s = cuda.shared.array(T, float32)
            t = cuda.threadIdx.x
            i = cuda.blockIdx.x * 2 * T + t
            v = 0.0
            if i < x.shape[0]:
                v = x[i]
            if i + T < x.shape[0]:
                v += x[i + T]
            s[t] = v
            cuda.syncthreads()
            _tree(s, t, T, False)
            if t == 0:
                partial[cuda.blockIdx.x] = s[0]
        KERNELS[key] = reduce_tree
    return KERNELS[key]


def _softmax_kernel(T: int):
    key = ("softmax_rows", T)
    if key not in KERNELS:
        @cuda.jit
        def softmax_rows(x, out):
            s = cuda.shared.array(T, float32)
            row, t, n = cuda.blockIdx.x, cuda.threadIdx.x, x.shape[1]
            m = -math.inf
            for j in range(t, n, T):
                m = max(m, x[row, j])
            s[t] = m
            cuda.syncthreads()
            _tree(s, t, T, True)
            mx = s[0]
            cuda.syncthreads()
            acc = 0.0
            for j in range(t, n, T):
                acc += math.exp(x[row, j] - mx)
            s[t] = acc
            cuda.syncthreads()
            _tree(s, t, T, False)
            total = s[0]
            for j in range(t, n, T):
                out[row, j] = math.exp(x[row, j] - mx) / total
        KERNELS[key] = softmax_rows
    return KERNELS[key]


def _f32(a, what, ndim):
    a = np.asarray(getattr(a, "_data", a))
    if a.ndim != ndim or a.dtype.kind not in "fiu":
        raise ValueError(f"cuda.{what}: expects a {ndim}-D numeric array, got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a, np.float32)


def _power_of_two(v, what, name):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1 or v & (v - 1):
        raise ValueError(f"cuda.{what}: {name}={v!r} must be a power of two (the tree halves it each round)")


def vector_add(a, b, block: int = 128) -> np.ndarray:
    """out[i] = a[i] + b[i], one thread per element (ceil(n / block) blocks)."""
    a, b = _f32(a, "vector_add", 1), _f32(b, "vector_add", 1)
    if a.shape != b.shape:
        raise ValueError(f"cuda.vector_add: shapes differ, {a.shape} and {b.shape}")
    da, db, dout = to_device(a, "a"), to_device(b, "b"), to_device(np.empty_like(a), "out")
    launch(_vector_add, -(-a.size // block), block, da, db, dout, name="vector_add")
    return dout.copy_to_host()


def reduce_sum(x, block: int = 64) -> float:
    """Σ x by a tree in shared memory: each block adds 2·block values (two per thread), then halves the active
    threads every round; the per-block partial sums are reduced again by the same kernel until one is left."""
    _power_of_two(block, "reduce_sum", "block")
    x = _f32(x, "reduce_sum", 1)
    if x.size == 0:
        return 0.0
    kernel = _reduce_kernel(block)
    level, n = 0, x.size
    cur = to_device(x, "x")
    while True:
        blocks = -(-n // (2 * block))
        part = to_device(np.zeros(blocks, np.float32), f"partial{level}")
        launch(kernel, blocks, block, cur, part, shared_bytes=4 * block, name="reduce_tree")
        if blocks == 1:
            return float(part.copy_to_host()[0])
        cur, n, level = part, blocks, level + 1


def matmul(A, B, tile: int | None = None, block: int = 16) -> np.ndarray:
    """C = A @ B (float32). ``tile=None``: one thread per output element reading its row of A and column of B
    from global memory (blocks of block×block threads). ``tile=T``: T×T blocks stage T×T tiles of A and B in
    shared memory, so each global value is loaded once per tile instead of once per thread that needs it."""
    A, B = _f32(A, "matmul", 2), _f32(B, "matmul", 2)
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"cuda.matmul: inner dimensions differ, A {A.shape} and B {B.shape}")
    M, N = A.shape[0], B.shape[1]
    dA, dB, dC = to_device(A, "A"), to_device(B, "B"), to_device(np.zeros((M, N), np.float32), "C")
    if tile is None:
        launch(_matmul_naive, (-(-N // block), -(-M // block)), (block, block), dA, dB, dC, name="matmul_naive")
    else:
        if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
            raise ValueError(f"cuda.matmul: tile={tile!r} must be a positive int (or None for the naive kernel)")
        launch(tiled_matmul_kernel(tile), (-(-N // tile), -(-M // tile)), (tile, tile), dA, dB, dC,
               shared_bytes=2 * tile * tile * 4, name=f"matmul_tiled{tile}")
    return dC.copy_to_host()


def softmax_rows(x, block: int = 32) -> np.ndarray:
    """softmax over each row: one block per row; its threads stride over the columns, and the row's maximum and
    sum are reduced as trees in shared memory."""
    _power_of_two(block, "softmax_rows", "block")
    x = _f32(x, "softmax_rows", 2)
    dx, dout = to_device(x, "x"), to_device(np.empty_like(x), "out")
    launch(_softmax_kernel(block), x.shape[0], block, dx, dout, shared_bytes=4 * block, name="softmax_rows")
    return dout.copy_to_host()


def conv2d(x, w, padding: int = 0, block: tuple = (8, 8)) -> np.ndarray:
    """NCHW convolution (stride 1, groups 1): one thread per output pixel, blocks of block[0]×block[1] pixels of
    one (image, output channel) plane."""
    x, w = _f32(x, "conv2d", 4), _f32(w, "conv2d", 4)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"cuda.conv2d: weight {w.shape} expects {w.shape[1]} input channels, the input has "
                         f"{x.shape[1]}")
    ph = pw = int(padding)
    N, O = x.shape[0], w.shape[0]
    OH, OW = x.shape[2] + 2 * ph - w.shape[2] + 1, x.shape[3] + 2 * pw - w.shape[3] + 1
    if OH < 1 or OW < 1:
        raise ValueError(f"cuda.conv2d: a {w.shape[2]}×{w.shape[3]} kernel does not fit the {x.shape[2]}×"
                         f"{x.shape[3]} input with padding {padding}")
    dx, dw = to_device(x, "x"), to_device(w, "w")
    dout = to_device(np.zeros((N, O, OH, OW), np.float32), "out")
    bx, by = block
    launch(_conv2d, (-(-OW // bx), -(-OH // by), N * O), (bx, by), dx, dw, dout, ph, pw, name="conv2d")
    return dout.copy_to_host()
