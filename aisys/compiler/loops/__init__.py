"""The compiler's back end: tensor expressions, loop schedules, numba code, a cache simulator, a tuner.

    from aisys.compiler import loops
    A = loops.placeholder((M, K), "float32", name="A"); B = loops.placeholder((K, N), "float32", name="B")
    k = loops.reduce_axis(K, name="k")
    C = loops.compute((M, N), lambda i, j: loops.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = loops.Schedule(C); io, jo, ii, ji = s.tile("i", "j", 32, 32)
    print(loops.lower(s))             # the loop nest as pseudocode
    f = loops.build(s); f(a, b)       # numba kernel (source: f.source, machine code: f.loop_asm())
    loops.interpret(s, a, b)          # the executable spec
    rep = loops.CacheSim.preset("zen4").run(loops.trace_addresses(s))
    g = loops.from_group(fused_node.attrs["_body"])          # a fused group of aisys.compile as computes
    s = loops.default_schedule(g)                            # the schedule its kernel is built with

Imports no numba until a kernel is built.
"""
from .te import (IterVar, LoopsError, Node, Tensor, apply, cast, compute, conv2d, elementwise, matmul, max_, min_,
                 placeholder, reduce_axis, reduce_op, sum, where)
from .ir import Allocate, Buffer, For, If, Let, LoweredFunc, Seq, Store
from .schedule import PRIMITIVES, Schedule, ScheduleError, Stage, Step
from .lower import lower, placeholders
from .interp import interpret
from .kernel import Kernel, LoopCode, Trace, build, source, trace_addresses
from .group import Group, default_schedule, from_group
from .cachesim import PRESETS, CacheReport, CacheSim, LevelStats
from .recipes import gemm, gemm_compute, lecture_tiling
from .tune import Trial, Tuner, TuningLog, real_time, simulated_cost

__all__ = ["IterVar", "LoopsError", "Node", "Tensor", "apply", "cast", "compute", "conv2d", "elementwise", "matmul",
           "max_", "min_", "placeholder", "reduce_axis", "reduce_op", "sum", "where", "Allocate", "Buffer", "For",
           "If", "Let", "LoweredFunc", "Seq", "Store", "PRIMITIVES", "Schedule", "ScheduleError", "Stage", "Step",
           "lower", "placeholders", "interpret", "Kernel", "LoopCode", "Trace", "build", "source",
           "trace_addresses", "Group", "default_schedule", "from_group", "PRESETS", "CacheReport", "CacheSim", "LevelStats", "gemm", "gemm_compute", "lecture_tiling", "Trial",
           "Tuner", "TuningLog", "real_time", "simulated_cost"]
