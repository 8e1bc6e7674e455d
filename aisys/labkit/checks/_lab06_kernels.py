"""Plausible wrong tiled-matmul kernels for exercise 6.3 (a module of its own: it imports numba.cuda, which the
light check module lab06 must not do at registration). Each is a factory ``make(T) -> kernel(A, B, C)``.

``cuda`` must be a module global here: numba's simulator swaps it for its fake module inside kernels."""
from __future__ import annotations

import aisys.kernels.cuda  # noqa: F401  (switches numba to its simulator on a machine without a GPU)
from numba import cuda, float32


def naive(T):
    """Correct, but every operand from global memory: no tiles."""
    @cuda.jit
    def kernel(A, B, C):
        row = cuda.blockIdx.y * T + cuda.threadIdx.y
        col = cuda.blockIdx.x * T + cuda.threadIdx.x
        if row < C.shape[0] and col < C.shape[1]:
            acc = 0.0
            for k in range(A.shape[1]):
                acc += A[row, k] * B[k, col]
            C[row, col] = acc
    return kernel


def whole_row_per_thread(T):
    """Correct, but each thread loads its whole tile row of A and column of B (T values each) per phase."""
    return _tiled(T, whole_row=True)


def _tiled(T, phases_ceil=True, zero_fill=True, swap_a=False, b_by_tx=False, whole_row=False):
    @cuda.jit
    def kernel(A, B, C):
        sA = cuda.shared.array((T, T), float32)
        sB = cuda.shared.array((T, T), float32)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        row, col = cuda.blockIdx.y * T + ty, cuda.blockIdx.x * T + tx
        M, K, N = A.shape[0], A.shape[1], B.shape[1]
        phases = (K + T - 1) // T if phases_ceil else K // T
        acc = 0.0
        for p in range(phases):
            if whole_row:
                for k in range(T):
                    sA[ty, k] = A[row, p * T + k] if row < M and p * T + k < K else 0.0
                    sB[k, tx] = B[p * T + k, col] if col < N and p * T + k < K else 0.0
            elif row < M and p * T + tx < K:
                if swap_a:
                    sA[tx, ty] = A[row, p * T + tx]
                else:
                    sA[ty, tx] = A[row, p * T + tx]
            elif zero_fill:
                sA[ty, tx] = 0.0
            if whole_row:
                pass
            elif col < N and p * T + ty < K:
                sB[ty, tx] = B[p * T + tx, col] if b_by_tx else B[p * T + ty, col]
            elif zero_fill:
                sB[ty, tx] = 0.0
            cuda.syncthreads()
            for k in range(T):
                acc += sA[ty, k] * sB[k, tx]
            cuda.syncthreads()
        if row < M and col < N:
            C[row, col] = acc
    return kernel


def floor_phases(T):
    """K // T phases: the last, partial tile of K is never added."""
    return _tiled(T, phases_ceil=False)


def no_zero_fill(T):
    """Out-of-range tile entries keep whatever the previous phase left there."""
    return _tiled(T, zero_fill=False)


def swapped_a_tile(T):
    """A's value stored at sA[tx, ty]: the tile transposed."""
    return _tiled(T, swap_a=True)


def b_tile_by_tx(T):
    """B's tile read with the column thread index as its row: B[p·T + tx, col]."""
    return _tiled(T, b_by_tx=True)
