"""The library's GEMM recipes: one compute, three schedules — the lab's journey from textbook loops to a
packed, register-blocked micro-kernel in the style of GotoBLAS/BLIS (Goto & van de Geijn, "Anatomy of
High-Performance Matrix Multiplication", 2008)."""
from __future__ import annotations

from .schedule import Schedule
from .te import LoopsError, compute, placeholder, reduce_axis, sum

SCHEDULES = ("naive", "blocked", "tuned")


def gemm_compute(M: int, N: int, K: int, dtype="float32"):
    """C = A·B for A (M, K), B (K, N)."""
    A = placeholder((M, K), dtype, name="A")
    B = placeholder((K, N), dtype, name="B")
    k = reduce_axis(K, "k")
    return compute((M, N), lambda i, j: sum(A[i, k] * B[k, j], axis=k), name="C")


def gemm(M: int, N: int, K: int, schedule: str = "naive", dtype="float32", *, tile=(32, 32), kc=None,
         mr: int = 6, nr: int = 32) -> Schedule:
    """A GEMM schedule. "naive": i, j, k with the dot product in a register. "blocked": ``tile`` (i, j)
    tiles, the k loop moved outside the tile's rows, the innermost j loop vectorized (16 lanes), ``kc``
    splitting k if given. "tuned": B packed per ``nr``-column panel into a contiguous buffer, an
    ``mr``×``nr`` block of C accumulated in registers (cache_write + unroll + vectorize: the micro-kernel)."""
    if schedule not in SCHEDULES:
        raise LoopsError(f"loops.gemm: schedule must be one of {SCHEDULES}, got {schedule!r}")
    C = gemm_compute(M, N, K, dtype)
    s = Schedule(C)
    if schedule == "naive":
        return s
    if schedule == "blocked":
        ti, tj = tile
        io, jo, ii, ji = s.tile("i", "j", ti, tj)
        jio, jii = s.split(ji, min(16, tj))
        if kc:
            ko, ki = s.split("k", kc)
            s.reorder(io, jo, ko, ii, ki, jio, jii)
        else:
            s.reorder(io, jo, ii, "k", jio, jii)
        s.vectorize(jii)
        return s
    CL = s.cache_write(C)
    io, jo, ii, ji = s.tile("i", "j", mr, nr)
    s.reorder(jo, io, ii, ji)
    s.unroll(ii)
    s.vectorize(ji)
    s.compute_at(CL, C, io)
    s.reorder("k", "i", "j", tensor=CL)
    s.unroll("i", tensor=CL)
    s.vectorize("j", tensor=CL)
    BL = s.cache_read("B", [CL])
    s.compute_at(BL, C, jo)
    s.vectorize("b1", tensor=BL)
    return s
