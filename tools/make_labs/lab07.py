"""Write labs/07_loops.ipynb (lab 07 — loop optimization, caches, auto-tuning) with nbformat.

Usage:  .venv/bin/python tools/make_labs/lab07.py [OUT.ipynb]
Then execute it solved (the committed outputs come from that run):  make run-labs ONLY=07
"""

from __future__ import annotations

import sys
from pathlib import Path

import labcells  # tools/make_labs/labcells.py (this folder is on sys.path when run as a script)
from labcells import CODE, EXERCISE_DEPENDENT, MD

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "labs" / "07_loops.ipynb"

# Quantities the text states that no cell prints (tests/labs/test_lab_content.py checks them).
QUOTED = {"10 %": "a setting of this lab's check 7.2: a prediction within 10 % of the simulator passes"}


CELLS: list[tuple[str, str]] = [
    (MD, """\
# Lab 07 — Loop optimization, caches, auto-tuning (循环优化、缓存与自动调优)

Lab 04 left the compiler with fused groups of operators. This lab is the step from a graph to *code that runs
fast*: the compiler's back end (后端). An operator is first written as **what** each output element is — a tensor
expression (张量表达式) — and then given a **schedule** (调度) that says **how** to loop over it: in which order, in
which tiles, unrolled, vectorized, with which data packed close to the core. The two are kept apart (Halide's
*algorithm/schedule separation*, which TVM adopted), so a schedule can change the speed but never the result.

**Lectures followed** (ZOMI's *AISystem* course, `03Compiler/04Backend`): `02OPSCompute` (算子计算与调度),
`03Optimization` (算子手工优化), `04LoopOpt` (循环优化: tiling, unrolling, reordering, fusion), `05OtherOpt`
(指令与存储优化: vectorization, packing), `06AutoTuning` (自动调优). Published work used: Halide (Ragan-Kelley et
al., PLDI 2013), TVM (Chen et al., OSDI 2018), the anatomy of a high-performance GEMM (Goto & van de Geijn, 2008),
simulated annealing (Kirkpatrick et al., 1983).

**Goals.** After this lab you can
- write an operator as a tensor expression and print the loop nest it lowers to;
- transform the nest with schedule primitives (split, tile, reorder, fuse, unroll, vectorize, compute_at,
  cache_read/cache_write) and read why an illegal one is refused;
- run a nest in the interpreter (the executable spec) and as a numba kernel, and see `vectorize` become SIMD
  instructions in the machine code;
- count the cache misses a nest makes with a cache simulator, and predict them with a formula;
- let a tuner search a schedule's knobs.

**Exercises.** 7.1 `tiled_matmul` · 7.2 `predict_misses` · 7.3 `tune`. Each stub raises `NotImplementedError`
until you write it; the cell after it checks your function and prints PASS or what went wrong."""),
    (CODE, """\
import random

import numpy as np

from aisys.compiler import loops
from aisys.labkit import check, exercise
from widgets.loops import CacheHeatmap, LoopNestView, ScheduleExplorer, TuningCurve

print("ready")"""),
    (MD, """\
## 1. What to compute: a tensor expression

A matrix product says, for every output position (i, j), "sum over k of A[i, k]·B[k, j]". `placeholder` declares
an input, `reduce_axis` a summation index, `compute` the output; `lower` turns it into loops. The unscheduled nest
is the textbook one, with the dot product accumulated in a one-element local buffer (a register):"""),
    (CODE, """\
M, N, K = 32, 48, 16
A = loops.placeholder((M, K), "float32", name="A")
B = loops.placeholder((K, N), "float32", name="B")
k = loops.reduce_axis(K, name="k")
C = loops.compute((M, N), lambda i, j: loops.sum(A[i, k] * B[k, j], axis=k), name="C")
print(loops.lower(C))"""),
    (MD, """\
Elementwise operators are not re-typed here: each op of the framework's registry carries its per-element
expression (lab 04's fusion pass reads the same one), and `loops.elementwise` builds the compute from it. GELU's
expression, as the registry defines it, inside a loop:"""),
    (CODE, """\
X = loops.placeholder((4, 8), "float32", name="X")
print(loops.lower(loops.elementwise("gelu", X)))"""),
    (MD, """\
## 2. How to compute it: schedule primitives

A `Schedule` records steps. `split` cuts a loop in two (an outer loop over blocks and an inner one inside a
block), `reorder` permutes loops, `tile` is two splits and a reorder (a 2-D block), `vectorize` marks the innermost
loop as SIMD lanes, `unroll` copies a loop's body. A factor that does not divide the extent adds a guard (`if`):"""),
    (CODE, """\
s = loops.Schedule(C)
io, jo, ii, ji = s.tile("i", "j", 16, 20)
s.reorder(io, jo, ii, "k", ji)
s.vectorize(ji)
print(loops.lower(s))
print("\\nsteps:", ", ".join(str(step) for step in s.steps))"""),
    (MD, """\
Every step is checked before it changes anything. Vectorizing the k loop would run iterations that all update the
same C element as parallel lanes — a loop-carried dependence — so it is refused, and the schedule is left as it
was:"""),
    (CODE, """\
try:
    s.vectorize("k")
except loops.ScheduleError as err:
    print("ScheduleError:", err)
print("steps still:", len(s.steps))"""),
    (MD, """\
The library's fast GEMM recipe goes further: it packs a strip of B into a contiguous local buffer
(`cache_read` + `compute_at`) and accumulates a small block of C in registers (`cache_write`, with the block's
loops unrolled and vectorized: the *micro-kernel* of GotoBLAS and BLIS). Step through it — each step's changes are
highlighted:"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
recipe = loops.gemm(M, N, K, "tuned", mr=4, nr=16)
LoopNestView(recipe)"""),
    (CODE, """\
print(LoopNestView(recipe).summary())"""),
    (MD, """\
## 3. The interpreter and the compiled kernel

`interpret` runs the nest statement by statement in Python — the executable specification (slow; small sizes).
`build` writes the nest as numba source and compiles it. A schedule changes the order of the arithmetic, not its
result, so both agree with numpy to rounding:"""),
    (CODE, """\
rng = np.random.default_rng(0)
a = rng.standard_normal((M, K)).astype(np.float32)
b = rng.standard_normal((K, N)).astype(np.float32)
kernel = loops.build(recipe)
print("interpreter vs numpy:", np.abs(loops.interpret(recipe, a, b) - a @ b).max())
print("numba kernel vs numpy:", np.abs(kernel(a, b) - a @ b).max())
print("\\n".join(kernel.source.splitlines()[-12:]))"""),
    (MD, """\
## 4. Counting cache misses

A CPU core reads memory through caches: small, fast copies of recently used **lines** (64-byte blocks), organized
in *sets* of a few *ways*, evicting the least recently used line (LRU). `CacheSim` models such a hierarchy;
`trace_addresses` lists the byte addresses a nest touches, in order. A simple stream reads each line once, so it
misses once every 16 floats:"""),
    (CODE, """\
zen4 = loops.CacheSim.preset("zen4")
for n, lv in enumerate(zen4.levels):
    print(f"L{n + 1}: {lv['size'] // 1024} KiB, {lv['ways']}-way, {lv['line']} B lines, {lv['latency']} cycles")
n_stream = 4096
V = loops.placeholder((n_stream,), name="V")
stream = loops.compute((n_stream,), lambda i: V[i] + 1.0, name="W")
rep = zen4.run(loops.trace_addresses(loops.Schedule(stream)))
print(f"\\nstream of {n_stream} floats: {rep.misses(0, 'V')} L1 misses on V = {n_stream} / 16")"""),
    (MD, """\
The heat map shows *when* (left to right) and *where* (top to bottom, by element) each array missed L1. The naive
matrix product walks B down a column for every C element, and a column touches a new line per element:"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
big = loops.gemm_compute(128, 96, 112)
naive_report = zen4.run(loops.trace_addresses(loops.Schedule(big)), record=True)
CacheHeatmap(naive_report)"""),
    (CODE, """\
print(naive_report.summary())"""),
    (MD, """\
### Exercise 7.1 — a tiled matmul

Write `tiled_matmul(C, tile_i, tile_j)`: return a schedule of the matmul compute `C` (axes `i`, `j`, reduction
`k`) that tiles i by `tile_i` and j by `tile_j` and orders the loops so that a tile of C and the strip of B it needs
stay in the cache while k sweeps. The check runs it on shapes and tiles of its own (including tiles that do not
divide the shape) and wants the right result and at most a quarter of the naive nest's L1 misses on the Zen 4
preset."""),
    (CODE, """\
@exercise("7.1")
def tiled_matmul(C, tile_i, tile_j):
    \"\"\"A schedule of C: (i, j) tiled by (tile_i, tile_j), loops ordered for cache reuse.\"\"\"
    raise NotImplementedError("exercise 7.1: tile i and j, then reorder so the tile loops are outermost")"""),
    (EXERCISE_DEPENDENT, """\
check("7.1", tiled_matmul)"""),
    (MD, """\
Your schedule, step by step, and where its misses went (the same matrices as the heat map above):"""),
    (EXERCISE_DEPENDENT, """\
# NBVAL_IGNORE_OUTPUT
mine = tiled_matmul(big, 16, 32)
LoopNestView(mine)"""),
    (EXERCISE_DEPENDENT, """\
tiled_report = zen4.run(loops.trace_addresses(mine), record=True)
print(f"L1 misses: naive {naive_report.misses(0)}, yours {tiled_report.misses(0)} "
      f"({naive_report.misses(0) / tiled_report.misses(0):.1f}x fewer)")"""),
    (EXERCISE_DEPENDENT, """\
# NBVAL_IGNORE_OUTPUT
CacheHeatmap(tiled_report)"""),
    (MD, """\
## 5. The lecture's loop tiling, measured

`04LoopOpt` analyses `for i: for j: A[i] += B[j]` with lines of b elements in a fully associative cache. Tiling j
by T and moving j_o outside makes B hit in the cache; tiling i by W too, the lecture concludes, keeps B's misses at
m/b. `loops.lecture_tiling` writes that nest in our language — a sum over j, split and reordered as the lecture
does (A is zeroed first, as the lowering prints):"""),
    (CODE, """\
def simulate_tiled(n, m, W, T, b, lines):
    cache = loops.CacheSim([dict(size=lines * 4 * b, ways=lines, line=4 * b)])   # fully associative LRU
    rep = cache.run(loops.trace_addresses(loops.lecture_tiling(n, m, W, T)))
    return {"A": rep.misses(0, "A"), "B": rep.misses(0, "B")}


n, m, W, T, b, lines = 256, 4096, 64, 256, 8, 128
print(loops.lower(loops.lecture_tiling(n, m, W, T)))
print(f"\\nsimulated: {simulate_tiled(n, m, W, T, b, lines)}; the lecture's m/b for B = {m // b}")"""),
    (MD, """\
### Exercise 7.2 — a closed-form miss predictor

The simulator disagrees with the lecture. Work out why, and write `predict_misses(n, m, W, T, b, lines)` returning
`{"A": misses, "B": misses}` for this tiled nest on a fully associative LRU cache of `lines` lines of `b` elements
that holds a tile of A and a tile of B, but not all of B. Think about which loop re-reads B, and what happens to
A's lines while B streams past. The check compares with the simulator (within 10 %) for four parameter sets,
some where all of A fits in the cache and some where it does not."""),
    (CODE, """\
@exercise("7.2")
def predict_misses(n, m, W, T, b, lines):
    \"\"\"{'A': misses, 'B': misses} of the tiled A[i] += B[j] nest on a fully associative LRU cache.\"\"\"
    raise NotImplementedError("exercise 7.2: count how often each line of A and of B is brought into the cache")"""),
    (EXERCISE_DEPENDENT, """\
check("7.2", predict_misses)"""),
    (EXERCISE_DEPENDENT, """\
for params in [(256, 4096, 64, 256, 8, 128), (1024, 1024, 32, 128, 16, 48)]:
    print(f"n, m, W, T, b, lines = {params}: simulated {simulate_tiled(*params)}, yours {predict_misses(*params)}, "
          f"the lecture's B = m/b = {params[1] // params[4]}")"""),
    (MD, """\
## 6. The visual moment: drag the tiles

The explorer tiles a 128×96×112 matrix product. Move the tile sliders and pick the loop order: each change lowers
the schedule again, traces it and runs the cache simulator. With 1×1 tiles the heat map is red (every access to B
misses); as the tiles grow the misses fall and the map turns green — until the tiles outgrow the cache."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
explorer = ScheduleExplorer(big, sim=zen4, ti=1, tj=1)
explorer"""),
    (CODE, """\
print(explorer.summary())"""),
    (MD, """\
## 7. Auto-tuning

Which tile sizes and which order are best depends on the cache sizes, the shapes and the core — hand analysis
(section 5) gets it roughly, search gets it exactly. A tuner evaluates *knobs* of a schedule template. Here the
cost is the simulated cycles of a 64×64×64 product on a small two-level cache (so the differences are large): each
access pays the latency of the level that served it."""),
    (CODE, """\
ORDERS = {"io jo ii k ji": ("io", "jo", "ii", "k", "ji"), "io jo k ii ji": ("io", "jo", "k", "ii", "ji"),
          "io jo ii ji k": ("io", "jo", "ii", "ji", "k"), "k io jo ii ji": ("k", "io", "jo", "ii", "ji")}
space = {"tile_i": [1, 2, 4, 8, 16, 32, 64], "tile_j": [1, 2, 4, 8, 16, 32, 64], "order": list(ORDERS)}
small_cache = loops.CacheSim([dict(size=1024, ways=4, line=64, latency=4), dict(size=8192, ways=8, line=64, latency=14)],
                             memory_latency=200)
mm64 = loops.gemm_compute(64, 64, 64)


def cycles(knobs):
    s = loops.Schedule(mm64)
    s.tile("i", "j", knobs["tile_i"], knobs["tile_j"])
    s.reorder(*ORDERS[knobs["order"]])
    return small_cache.run(loops.trace_addresses(s)).cycles


default = {"tile_i": 1, "tile_j": 1, "order": "io jo ii ji k"}
print(f"default (the unscheduled i, j, k nest): {cycles(default)} cycles; "
      f"{len(space['tile_i']) * len(space['tile_j']) * len(space['order'])} points in the space")"""),
    (MD, """\
### Exercise 7.3 — a tuner

Write `tune(space, cost, trials=50, seed=0)`: search `space` (`{knob: [choices]}`) with at most `trials` calls of
`cost(knobs)` and return the cheapest knobs found. Random search is a fine start; an evolutionary or annealing
search (change one knob of a good point at a time) does better on a budget. Use `random.Random(seed)`, so the same
seed gives the same search. The check wants at least 3× fewer cycles than the default within 50 trials, for two
seeds."""),
    (CODE, """\
@exercise("7.3")
def tune(space, cost, trials=50, seed=0):
    \"\"\"The cheapest knobs found in at most `trials` evaluations of cost(knobs).\"\"\"
    raise NotImplementedError("exercise 7.3: sample knobs from space, evaluate them, keep the cheapest")"""),
    (EXERCISE_DEPENDENT, """\
check("7.3", tune)"""),
    (MD, """\
Your tuner's search as a tuning curve — each trial's cost and the best so far, against the default:"""),
    (EXERCISE_DEPENDENT, """\
log = loops.TuningLog("simulated cycles")
best = tune(space, lambda kn: log.trials.append(loops.Trial(dict(kn), cycles(kn))) or log.trials[-1].cost,
            trials=50, seed=0)
print(f"best {best}: {cycles(best)} cycles, {cycles(default) / cycles(best):.1f}x fewer than the default; "
      f"cost evaluated {len(log.trials)} times")"""),
    (EXERCISE_DEPENDENT, """\
# NBVAL_IGNORE_OUTPUT
TuningCurve(log, baseline=cycles(default))"""),
    (MD, """\
## 8. Down to the machine

The recipe's micro-kernel becomes vector instructions. `loop_asm()` shows the machine code of the kernel's hottest
loop, with SIMD instructions marked ▶: fused multiply-adds on whole vector registers (`vfmadd…ps` on `ymm`/`zmm`).
The naive nest's inner loop stays scalar (`…ss`: one float at a time):"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
size = 256
fast = loops.build(loops.gemm(size, size, size, "tuned", mr=4, nr=16))
slow = loops.build(loops.gemm(size, size, size, "naive"))
print(fast.loop_asm().text(16))
print("...")
print(slow.loop_asm().text(8))"""),
    (CODE, """\
print("tuned loop: vector instructions", fast.loop_asm().n_vector > 0, "; naive loop: vector instructions",
      slow.loop_asm().n_vector > 0)"""),
    (MD, """\
And the real speed on this machine, one thread, next to numpy's BLAS (timings vary between runs and machines, so
they are shown, not checked; `benchmarks/bench_loops.py` measures at 512 and 1024):"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
import timeit

xa = rng.standard_normal((size, size)).astype(np.float32)
xb = rng.standard_normal((size, size)).astype(np.float32)
flop = 2 * size ** 3
for name, fn in [("naive loops", lambda: slow(xa, xb)), ("tuned loops", lambda: fast(xa, xb)),
                 ("numpy (BLAS)", lambda: xa @ xb)]:
    fn()                                                              # warm up
    print(f"{name:13s} {flop / min(timeit.repeat(fn, number=1, repeat=5)) / 1e9:7.1f} GFLOP/s")"""),
    (MD, """\
## What to take away

- An operator is *what* (a tensor expression) plus *how* (a schedule); the schedule never changes the result, and
  a primitive that would is refused.
- Tiling and reordering keep the data a loop reuses in the cache; the misses they save can be counted — and
  predicted, if you read the loop nest that actually runs (the lecture's formula for B forgot that B is streamed
  again for every tile of i).
- Packing and register blocking turn a matrix product into a micro-kernel of vector FMAs, close to a BLAS
  library's speed.
- The best knobs depend on the machine; a tuner finds them by measuring, on a simulator or on the real core.

Lab 04 built the fused groups a back end receives; lab 08 looks at the same arithmetic on an AI chip, where
tiling is explicit (buffers instead of caches)."""),
]


def build():
    return labcells.build(CELLS, "lab07")


if __name__ == "__main__":
    labcells.main(CELLS, "lab07", DEFAULT_OUT, sys.argv)
