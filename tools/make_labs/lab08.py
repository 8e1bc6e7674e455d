"""Write labs/08_chips.ipynb (lab 08 — AI chips: roofline, systolic array, cube) with nbformat.

Usage:  .venv/bin/python tools/make_labs/lab08.py [OUT.ipynb]
Then execute it solved (the committed outputs come from that run):
  .venv/bin/python tools/run_labs.py 08
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

import labcells  # tools/make_labs/labcells.py (this folder is on sys.path when run as a script)
from labcells import CODE, EXERCISE_DEPENDENT, MD

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "labs" / "08_chips.ipynb"


def _cnn0_batch() -> int:
    from aisys.chip import tpu_v1_apps
    return next(a for a in tpu_v1_apps() if a.name == "CNN0").layer.batch


def _cube_macs() -> int:
    from aisys.chip import preset
    return preset("davinci").matrix.macs_per_cycle


def _horowitz(field: str) -> float:
    from aisys.chip import horowitz_45nm
    return getattr(horowitz_45nm("fp16"), field)


# Quantities the text states that no cell prints (tests/labs/test_lab_content.py checks them against the library).
QUOTED = {
    "8 images": _cnn0_batch,
    "4096 MACs": _cube_macs,
    "1.5 pJ": lambda: _horowitz("mac_pj"),
    "160 pJ": lambda: _horowitz("dram_pj_per_byte"),
}


CELLS: list[tuple[str, str]] = [
    (MD, """\
# Lab 08 — AI chips: roofline, systolic array, cube (AI 芯片：Roofline、脉动阵列与 Cube)

Every layer of the stack above ends here: a matrix engine fed by memories that are never quite fast
enough. This lab answers three questions with a simulated accelerator you can take apart:

1. **Is an operator limited by arithmetic or by memory?** — arithmetic intensity (算术强度) and the
   roofline model (Roofline 模型), with the TPU v1 paper's famous plot.
2. **How does a systolic array (脉动阵列) multiply matrices, and what does it cost?** — the skewed
   wavefront, folds, the three dataflows (数据流: 输出驻留 OS / 权重驻留 WS / 输入驻留 IS), and the exact
   cycle counts of the SCALE-Sim simulator.
3. **What does a cube / Tensor Core (矩阵计算单元) do differently?** — fixed 16×16×16 blocks, and the
   padding they waste on unaligned shapes.

**Lectures followed** (ZOMI's *AISystem* course, Apache-2.0): `02Hardware/01Foundation/04Metrics`
(关键设计指标, still a placeholder in the course), `03GPUBase/02Principle` (the intensity of a matmul),
`04NVIDIA/01BasicTC` (Tensor Core, D = A·B + C), `05Abroad/05TPU1` (the TPU v1 and its 3×3 systolic
walk-through) and `06Domestic` (Ascend's Da Vinci cube). The cycle model follows SCALE-Sim
(`scalesim-project/scale-sim-v3`); the TPU numbers are from Jouppi et al., ISCA 2017.

**Goals.** After this lab you can
- compute an op's FLOPs, bytes and intensity, and say whether it is memory- or compute-bound on a chip;
- trace a matrix product through a systolic array cycle by cycle and predict its cycle count;
- count the MMA instructions of a tiled GEMM and the work lost to padding;
- read a per-unit utilization timeline (busy, stalled — and why — or idle).

**Exercises.** 8.1 `classify_op` · 8.2 `os_compute_cycles` · 8.3 `mma_count`. Each stub raises
`NotImplementedError` until you write it; the cell after it checks your function and prints PASS or
what went wrong."""),
    (CODE, """\
import numpy as np

import aisys.chip as chip
from aisys.models import lenet_layers
from aisys.chip import preset
from aisys.labkit import check, exercise
from widgets.chip import RooflinePlot, SystolicAnimator, UtilizationView

np.set_printoptions(linewidth=100)
print(preset("tpu_v1").summary())"""),
    (MD, """\
The simulated chip is one `ChipConfig`: a matrix unit, a vector unit, a scalar unit that issues
instructions, on-chip buffers and DRAM. Four presets ship with aisys — `tiny` (4×4, for drawing),
`scalesim32` (SCALE-Sim's sample machine), `tpu_v1` and `davinci` (an Ascend-like core). Each one
records where every number comes from (`preset("tpu_v1").sources`).

## 1. Arithmetic intensity and the roofline (算术强度与 Roofline 模型)

An operator does some **work** (FLOPs; a multiply-add counts as 2) and moves some **bytes** to and
from DRAM. Their ratio is its *arithmetic* (or operational) *intensity* $I$ in FLOP/B. A chip can at
best compute at its peak $P$ and stream at its bandwidth $B$, so (Williams, Waterman & Patterson 2009)

$$\\text{attainable} = \\min(P,\\; B \\cdot I), \\qquad \\text{ridge point} = P / B .$$

Below the ridge the op is **memory-bound** (访存受限): more compute units would not help. Above it the
op is **compute-bound** (计算受限). Two classic examples from the course:

- `c = a + b` in fp32: 1 FLOP per element, 12 bytes moved (read 4 + 4, write 4) → **1/12 FLOP/B**.
- an N×N matmul: $2N^3$ FLOPs over $3N^2$ elements → $2N/3$ FLOP per element, in fp32
  $N/6$ FLOP/B → **≈171 FLOP/B for N = 1024**. (The lecture writes $(2N^3-N^2)/3N^2$: it counts
  $N-1$ additions per dot product instead of $N$ — the same ≈171 at this size.)"""),
    (CODE, """\
for op, dims, nbytes in [("add", {"n": 1 << 20}, 4),
                         ("matmul", {"M": 1024, "N": 1024, "K": 1024}, 4),
                         ("conv2d", {"batch": 1, "C": 64, "H": 56, "W": 56, "F": 64, "k": 3, "stride": 1,
                                     "padding": 1}, 4)]:
    flops, moved = chip.op_flops_bytes(op, dims, nbytes)
    print(f"{op:<7} {flops:>14,} FLOPs  {moved:>13,} B  ->  {flops / moved:9.4f} FLOP/B")
print()
for name in chip.PRESETS:
    c = preset(name)
    print(f"{name:<11} peak {c.peak_tops:8.4g} TOPS   DRAM {c.dram_bytes_per_s / 1e9:6.4g} GB/s   "
          f"ridge {c.ridge_point:7.1f} FLOP/B")"""),
    (MD, """\
### Exercise 8.1 — memory- or compute-bound?

Write `classify_op(op, dims, chip, bytes_per_element=4)`. It returns `(intensity, bound)`: the
intensity in FLOP per DRAM byte, and `"memory"` or `"compute"` by comparing it with the chip's ridge
point (`preset(chip).ridge_point`, in FLOP/B).

- `op="add"`, `dims={"n"}`: elementwise `c = a + b` over n elements.
- `op="matmul"`, `dims={"M", "N", "K"}`: `[M,K] @ [K,N]`.
- `op="conv2d"`, `dims={"batch", "C", "H", "W", "F", "k", "stride", "padding"}`: F filters of C×k×k,
  output size `(H + 2·padding − k) // stride + 1` per side.

Every operand is read once and the result written once (a perfect cache). The check uses the course's
examples, ResNet's layers (a 3×3 conv, and its strided 7×7 stem on a batch of images) in fp32, fp16 and
int8, on several chips."""),
    (CODE, """\
@exercise("8.1")
def classify_op(op, dims, chip, bytes_per_element=4):
    \"\"\"(FLOP per DRAM byte, "memory" or "compute") of one op on a chip preset.\"\"\"
    raise NotImplementedError("exercise 8.1: count FLOPs and bytes, then compare with the ridge point")"""),
    (EXERCISE_DEPENDENT, """\
check("8.1", classify_op)"""),
    (EXERCISE_DEPENDENT, """\
# your function at work: the same matmul on every preset, in fp32 and fp16
for name in chip.PRESETS:
    row = []
    for nbytes in (4, 2):
        intensity, bound = classify_op("matmul", {"M": 1024, "N": 1024, "K": 1024}, name, nbytes)
        row.append(f"{'fp32' if nbytes == 4 else 'fp16'} {intensity:6.1f} FLOP/B {bound:<7}")
    print(f"{name:<11}", " | ".join(row))"""),
    (MD, """\
Your `classify_op` also draws a roofline: each op below sits at the intensity *you* computed, under the
Da Vinci-like core's roof, labelled with the bound you gave it. (A point's height is what the roof allows at
that intensity.) Drag the bandwidth slider and watch which of your ops change sides."""),
    (EXERCISE_DEPENDENT, """\
# NBVAL_IGNORE_OUTPUT
resnet_conv = {"batch": 1, "C": 64, "H": 56, "W": 56, "F": 64, "k": 3, "stride": 1, "padding": 1}
ops = [("add fp32", "add", {"n": 1 << 20}, 4), ("add fp16", "add", {"n": 1 << 20}, 2),
       ("matmul 1024 fp32", "matmul", {"M": 1024, "N": 1024, "K": 1024}, 4),
       ("matmul 1024 fp16", "matmul", {"M": 1024, "N": 1024, "K": 1024}, 2),
       ("matmul 64x4096x64 fp16", "matmul", {"M": 64, "N": 4096, "K": 64}, 2),
       ("ResNet 3x3 conv fp16", "conv2d", resnet_conv, 2)]
your_points = []
for label, op, dims, nbytes in ops:
    intensity, bound = classify_op(op, dims, "davinci", nbytes)
    your_points.append(chip.roofline_point(f"{label} ({bound})", intensity, 1.0, "davinci"))
your_roof = RooflinePlot(your_points, "davinci")
your_roof"""),
    (EXERCISE_DEPENDENT, """\
print(your_roof.summary())"""),
    (MD, """\
### The TPU v1 roofline (lecture 05TPU1)

Google's TPU v1 (Jouppi et al., ISCA 2017) is a 256×256 array of 8-bit MACs at 700 MHz — 92 TOPS — fed
by a DDR3 weight memory of only 34 GB/s. Activations stay on chip in a 24 MiB Unified Buffer, so the
only DRAM traffic is weights, and the paper draws its roofline in **multiply-accumulates per weight
byte**. The ridge sits at 92 T / 2 / 34 GB/s ≈ **1350 MAC/B**. For an MLP or LSTM every weight is used
once per example in the batch, so its intensity is just the batch size (64–200): far left of the ridge.
A CNN reuses each weight at every output pixel too.

Below, the six production apps of the paper (its Table 1), and then a representative layer of each
run through our simulator, which recomputes the intensity from its own DRAM counters."""),
    (CODE, """\
tpu = preset("tpu_v1")
print(f"TPU v1 ridge point: {tpu.ridge_point_macs:.0f} MAC per weight byte\\n")
print(f"{'app':<6} {'paper MAC/B':>11} {'simulated MAC/B':>16}  bound    achieved   layer")
for app in chip.tpu_v1_apps():
    point = chip.layer_roofline(app.layer, tpu)
    print(f"{app.name:<6} {app.macs_per_weight_byte:>11} {point.macs_per_byte:>16.0f}  {point.bound:<7}"
          f"{point.achieved_ops_per_s / 1e12:6.1f} TOPS  {app.layer.describe()}")"""),
    (MD, """\
The simulated MLP and LSTM layers land exactly on the paper's figures (intensity = batch size). The CNN
layers are one representative convolution each (our choice of sizes): CNN0's 8 images × 19×19 outputs
give exactly its 2888 MAC/B; CNN1's figure in the paper averages all its layers, FC ones included."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
roof = RooflinePlot(chip.tpu_v1_paper_points(), "tpu_v1", per="mac")
roof"""),
    (CODE, """\
print(roof.summary())"""),
    (MD, """\
Four of the six apps sit on the slanted, memory-bound part of the roof: the paper's main finding. More
bandwidth moves the ridge (peak ÷ bandwidth) to the left, and a memory-bound app crosses it once the
ridge drops below its intensity. The next cell computes, for each app, the bandwidth at which that
happens; **drag the slider** past one of them and watch the app change colour."""),
    (CODE, """\
peak_macs = tpu.peak_ops_per_s / 2
have_gbs = tpu.dram_bytes_per_s / 1e9
for app in chip.tpu_v1_apps():
    cross = peak_macs / app.macs_per_weight_byte / 1e9      # the bandwidth whose ridge equals its intensity
    verdict = "already compute-bound" if cross <= have_gbs else f"{cross / have_gbs:4.1f}x today's {have_gbs:g} GB/s"
    print(f"{app.name:<6} {app.macs_per_weight_byte:>5} MAC/B: crosses the ridge at {cross:6.1f} GB/s ({verdict})")"""),
    (MD, """\
So MLP0 and MLP1 need several times the TPU v1's weight bandwidth before they stop being memory-bound,
and the LSTMs more still: the lesson that sent later TPUs to high-bandwidth memory.

## 2. The systolic array (脉动阵列)

A systolic array is a grid of multiply-accumulate PEs that pass operands to their neighbours every
cycle, so each value fetched from SRAM is used many times without going back to memory. For
`C = A @ B` (M×K times K×N) the **dataflow** decides what stays put in the PEs:

| dataflow | stays in the PEs | on the rows (Sr) | on the columns (Sc) | streamed in time (T) |
|---|---|---|---|---|
| OS, output-stationary (输出驻留) | the outputs C | M | N | K |
| WS, weight-stationary (权重驻留, TPU v1) | the weights B | K | N | M |
| IS, input-stationary (输入驻留) | the inputs A | K | M | N |

In OS, row *i* of A enters the left edge *i* cycles late and column *j* of B enters the top *j* cycles
late, so PE(*i*, *j*) sees the *k*-th pair at cycle *k + i + j*: a **diagonal wavefront**. Here is the
lecture's 3×3 example, simulated PE by PE (operands really move one hop per cycle). Press Play or drag
the slider through T = 1…7."""),
    (CODE, """\
A = np.arange(1, 10).reshape(3, 3)
B = np.arange(10, 19).reshape(3, 3)
run3 = chip.run_systolic(A, B, rows=3, cols=3, dataflow="os")
print(run3.summary())
print("C =", run3.result.tolist(), "  numpy:", (A @ B).tolist())"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
anim = SystolicAnimator(run3, start=3)
anim"""),
    (CODE, """\
print(anim.summary())"""),
    (MD, """\
PE(0,0) starts at T=1; the wavefront fills the array (fill, T=1…3), the anti-diagonal is full at T=4
(steady), and it drains out of the bottom-right corner (T=5…7). Outputs leave each PE on the cycle of
its last MAC. Which PE finishes last, and on which cycle — for any K, R and C?

### Folds, and how SCALE-Sim counts

A problem larger than the array is cut into **folds**: in output-stationary each fold maps an R×C block
of the output onto the array — M is spread over the rows, N over the columns — while K streams through
in time. SCALE-Sim v2/v3 runs the folds strictly one after another: each one pays its own fill and
drain, and a fold at the edge that is only partly used (padding) costs as much as a full one.
Output-stationary loads nothing into the PEs before the first MAC (weight- and input-stationary arrays
must first shift their stationary tile in). SCALE-Sim counts cycles from 0 and reports the *index* of
the last cycle.

### Exercise 8.2 — derive the output-stationary cycle count

Write `os_compute_cycles(M, N, K, rows, cols)`, the cycle count SCALE-Sim reports for `[M,K] @ [K,N]`
on a `rows × cols` output-stationary array. Derive it from the wavefront above: when does the last PE
of one fold finish, and how many folds are there? The check builds up the same way — the lecture's
3×3 example (seven cycles above, so SCALE-Sim reports 6), one fold on a non-square array, whole folds,
partial folds — then compares with numbers SCALE-Sim 3.0.0 itself produced and with random shapes."""),
    (CODE, """\
@exercise("8.2")
def os_compute_cycles(M, N, K, rows, cols):
    \"\"\"Cycles SCALE-Sim reports for an output-stationary GEMM on a rows x cols array.\"\"\"
    raise NotImplementedError("exercise 8.2: count the cycles of the output-stationary array")"""),
    (EXERCISE_DEPENDENT, """\
check("8.2", os_compute_cycles)"""),
    (EXERCISE_DEPENDENT, """\
# your formula against the cycle-level array: the same count, cycle by cycle
rng = np.random.default_rng(8)
for M, N, K, R, C in [(7, 5, 6, 3, 3), (10, 4, 3, 4, 2), (5, 9, 12, 2, 4)]:
    run = chip.run_systolic(rng.integers(-9, 9, (M, K)), rng.integers(-9, 9, (K, N)), R, C, "os")
    print(f"{M}x{N}x{K} on {R}x{C}: yours {os_compute_cycles(M, N, K, R, C):4d}, simulated {run.compute_cycles:4d}, "
          f"product correct: {run.matches_numpy}")"""),
    (MD, """\
### Comparing dataflows, and doing better than serialized folds

The same GEMM costs very different cycles in each dataflow: the dataflow decides which dimension is
spread over the PEs and which one streams. And SCALE-Sim's serialized folds leave the array half
empty at every fold boundary. TPU v1 **double-buffers the weights**: the next tile shifts in while the
current one streams, so in steady state a fold costs only max(T, R) cycles, and fill/drain is paid
once. With **accumulation across K-folds** partial sums stay in accumulators instead of going back to
SRAM. The modes: `scalesim` (serialized, exact SCALE-Sim), `accumulate`, `overlapped`, `tpu` (both)."""),
    (CODE, """\
M, N, K = 100, 16, 150   # LeNet's second convolution as a GEMM (10x10 output pixels, 16 filters, 5x5x6 window)
print(f"GEMM {M}x{N}x{K} on a 32x32 array")
print(f"{'dataflow':<9} {'folds':>5} {'mapping':>8} | {'cycles: scalesim':>16} {'tpu':>5} {'saving':>7} | "
      f"{'SRAM reads A':>12} {'B':>6} | {'C writes: scalesim':>18} {'tpu':>5}")
for df in ("os", "ws", "is"):
    base = chip.systolic_gemm(M, N, K, 32, 32, df, "scalesim")
    best = chip.systolic_gemm(M, N, K, 32, 32, df, "tpu")
    print(f"{df:<9} {base.folds:>5} {100 * base.mapping_efficiency:7.1f}% | {base.compute_cycles:>16} "
          f"{best.compute_cycles:>5} {1 - best.compute_cycles / base.compute_cycles:7.0%} | "
          f"{base.sram_reads['ifmap']:>12} {base.sram_reads['filter']:>6} | {base.sram_writes['ofmap']:>18} "
          f"{best.sram_writes['ofmap']:>5}")"""),
    (MD, """\
Reading the table: OS keeps the 100×16 outputs in place and streams the K=150 window, but only 16 of
32 columns have a filter (mapping 39%). WS spreads the 150-deep window over the rows: fewer filter
re-reads (B read once), and overlapping its five folds saves 39%. IS puts the 100 output pixels on the
columns and streams the 16 filters: many short folds, so serialized folds waste the most and overlap
helps the most. SCALE-Sim's OS count also includes F·(R+C) extra "writes" its trace generator makes."""),
    (MD, """\
Watch the weight-stationary array with double-buffered weights: yellow PEs are loading the next
tile's weights, coloured PEs multiply (one colour per fold), and at a fold boundary two folds are in
the array at once."""),
    (CODE, """\
run_ws = chip.run_systolic(np.ones((6, 5), dtype=int), np.ones((5, 6), dtype=int), rows=3, cols=3,
                           dataflow="ws", mode="overlapped")
print(run_ws.summary())
print("phases:", " ".join(p.split()[0] for p in run_ws.phases()))"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
anim_ws = SystolicAnimator(run_ws, start=9)
anim_ws"""),
    (CODE, """\
print(anim_ws.summary())"""),
    (MD, """\
## 3. The cube: fixed 16×16×16 blocks (Cube 单元与 Tensor Core)

Ascend's Da Vinci core has no visible wavefront: one **cube** instruction multiplies a 16×16 fp16 tile
of A (from buffer L0A) by a 16×16 tile of B (L0B) and accumulates into L0C — 4096 MACs per cycle.
NVIDIA's Tensor Cores work the same way through 16×16×16 WMMA fragments. A GEMM is cut into such
blocks, and anything that does not fill a block is **padding** the unit multiplies anyway.

### Exercise 8.3 — tile a GEMM into MMA instructions

Write `mma_count(M, N, K, tile=(16, 16, 16))`. It returns `(instructions, waste)`: how many
`m0×n0×k0` MMA instructions (`tile = (m0, n0, k0)`) cover `[M,K] @ [K,N]`, and the share of the work the
unit multiplies that is padding (0 for aligned shapes, close to 1 when a tiny GEMM fills one block). The
check starts with an aligned GEMM, then a single multiply-add, a partial tile, the int8 tile 16×16×32,
and general shapes."""),
    (CODE, """\
@exercise("8.3")
def mma_count(M, N, K, tile=(16, 16, 16)):
    \"\"\"(number of m0 x n0 x k0 MMA instructions, padding waste) for a GEMM.\"\"\"
    raise NotImplementedError("exercise 8.3: count the 16x16x16 tiles and the padding")"""),
    (EXERCISE_DEPENDENT, """\
check("8.3", mma_count)"""),
    (EXERCISE_DEPENDENT, """\
# your function on LeNet's GEMMs: tiny layers waste most of a 16x16x16 cube
for layer in lenet_layers():
    if layer.macs:
        M, N, K = layer.gemm
        n, waste = mma_count(M, N, K)
        print(f"{layer.name:<6} M={M:<4} N={N:<4} K={K:<4} {n:>5} MMAs  padding {waste:6.1%}")"""),
    (MD, """\
## 4. The whole core: tiles, DMA, stalls (流水线利用率)

A real layer is more than one matrix product. Its tiles must be copied from DRAM into on-chip
buffers (DMA), multiplied, passed through the vector unit (ReLU, pooling, softmax) and written back;
the scalar unit issues every instruction. `lower_layers` turns LeNet (traced from `aisys.models.LeNet` and
mapped op by op by the op registry: `lenet_layers()`) into such a tile program for the
Da Vinci-like core — MTE2 brings tiles from DRAM into L1, MTE1 into L0A/L0B, the cube multiplies,
FixPipe moves results to the Unified Buffer, MTE3 writes them out — with **ping-pong** (double)
buffers so the next tile loads while this one computes. An event-driven simulation then shows, per
unit, when it is busy, when it is stalled and why, and when it is idle: the view Ascend's profiler
gives as *PipeUtilization*."""),
    (CODE, """\
res = chip.simulate_layers(lenet_layers(), "davinci")
print(res.program.summary())
print()
print(res.summary())"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
util = UtilizationView(res)
util"""),
    (CODE, """\
print(util.summary())"""),
    (MD, """\
LeNet is tiny: the cube is busy only a few percent of the time. Between layers it waits for the
previous layer to drain and the next one's first tiles to arrive (`layer start`); inside a layer it
waits for data (`data <- mte1`) while the DMA engines wait on DRAM. How much bandwidth would each
layer need to keep its compute unit busy? (`bandwidth_demand`: the bytes a layer moves ÷ the cycles
it computes, the rate SCALE-Sim's CALC mode reports.)"""),
    (CODE, """\
have = preset("davinci").dram.bytes_per_cycle
demand = chip.bandwidth_demand(res.program)
for layer, need in demand.items():
    print(f"{layer:<16} needs {need:7.1f} B/cycle  ({need / have:5.1f}x the {have:g} B/cycle the core has)")"""),
    (MD, """\
Every layer wants several times the bandwidth the core has: at batch size 1 LeNet is memory-bound,
just as the roofline predicts (the FC layers most of all: each weight is used once). A bigger layer
has a steady state, where double buffering can hide the loads completely. `bandwidth_for_zero_stalls`
searches (by bisection over simulated runs) for the smallest bandwidth at which no stall inside the
layer is left; it is higher than the average, because bursts — a finished output tile written back
while the next inputs load — must fit too. Finally, where does the energy go? (Energy per action from
Horowitz, ISSCC 2014: an fp16 MAC about 1.5 pJ, a DRAM byte about 160 pJ.)"""),
    (CODE, """\
conv = chip.Conv("conv", 28, 28, 64, 64, 3, padding=1)
prog = chip.lower_layers([conv], "davinci")
print(prog.plans["conv"].summary())
need = chip.bandwidth_for_zero_stalls(prog)
for bw in (have, chip.bandwidth_demand(prog)["conv"], need):
    run = chip.simulate(prog, chip=preset("davinci").with_(dram_bytes_per_cycle=bw))
    print(f"DRAM {bw:6.1f} B/cycle: {run.cycles:6,} cycles, cube busy {100 * run.unit_stats['matrix'].busy / run.cycles:4.1f}%, "
          f"stalled {run.unit_stats['matrix'].stall:5,} cycles")
print()
print(chip.energy_breakdown(res).summary())"""),
    (MD, """\
## Summary

- The **roofline** says which resource limits an op: intensity (FLOP/B) against the ridge point
  (peak / bandwidth). The TPU v1's ridge of ~1350 MAC/B left its MLPs and LSTMs memory-bound.
- A **systolic array** reuses each operand across a row or column of PEs; its cost is folds × (fill +
  stream + drain), which you derived exactly for SCALE-Sim's output-stationary model. Overlapping folds
  with double-buffered weights, as the TPU does, pays the fill once.
- A **cube** multiplies fixed 16×16×16 blocks; unaligned shapes pay in padding.
- Whole layers add DMA, buffers, vector work and issue overheads: the per-unit timeline shows which
  one is the bottleneck, and how much bandwidth would remove memory stalls.

The tour (lab 00) lowers a compiled model onto this chip and shows what the compiler's fusion saves here."""),
]


def build() -> nbformat.NotebookNode:
    return labcells.build(CELLS, "lab08")


if __name__ == "__main__":
    labcells.main(CELLS, "lab08", DEFAULT_OUT, sys.argv)
