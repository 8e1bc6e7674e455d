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
         mr: int = 4, nr: int = 32) -> Schedule:
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


def tile_matmul(C, tile_i: int, tile_j: int) -> Schedule:
    """Lab 07.1's reference: tile C's (i, j) loops by (tile_i, tile_j) and run k between the tile's rows and
    columns (io, jo, ii, k, ji): a tile of C and a tile_j-wide strip of B stay in the cache while k sweeps."""
    s = Schedule(C)
    io, jo, ii, ji = s.tile(C.axis[0], C.axis[1], tile_i, tile_j)
    s.reorder(io, jo, ii, C.reduce_axis[0], ji)
    return s


def lecture_tiling(n: int, m: int, W: int, T: int) -> Schedule:
    """The loop-tiling example of the course's 04LoopOpt: ``for i: for j: A[i] += B[j]`` with i tiled by W and j
    by T, loops ordered i_o, j_o, i_i, j_i (A has n elements, B m)."""
    B = placeholder((m,), "float32", name="B")
    j = reduce_axis(m, "j")
    A = compute((n,), lambda i: sum(B[j], axis=j), name="A")
    s = Schedule(A)
    i_o, i_i = s.split("i", W)
    j_o, j_i = s.split("j", T)
    s.reorder(i_o, j_o, i_i, j_i)
    return s


def tiled_sum_misses(n: int, m: int, W: int, T: int, b: int, lines: int) -> dict:
    """Lab 07.2's reference: cache misses of the lecture's ``A[i] += B[j]`` (04LoopOpt) with both loops tiled
    (i by W, j by T, order i_o, j_o, i_i, j_i), as the lowered nest runs it — A zeroed first — on a fully
    associative LRU cache of ``lines`` lines of ``b`` elements that holds an A tile and a B tile but not B.

    B: each of the n/W tiles of i streams all of B again: n·m/(W·b) (the lecture says m/b).
    A: the zeroing pass misses n/b; every i tile is then reloaded (W/b lines each), except the first when
    all of A still fits in the cache after zeroing: 2n/b, or 2n/b − W/b."""
    a_fits = n // b <= lines
    return {"A": 2 * n // b - (W // b if a_fits else 0), "B": n * m // (W * b)}
