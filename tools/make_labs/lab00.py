"""Write labs/00_tour.ipynb (lab 00 — a tour of the whole stack, one picture per layer) with nbformat.

Usage:  .venv/bin/python tools/make_labs/lab00.py [OUT.ipynb]
Then execute it solved:  .venv/bin/python tools/run_labs.py 00_tour
The tour grows as layers land; it must always run (nbval checks it in `make test`).
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

import labcells  # tools/make_labs/labcells.py (this folder is on sys.path when run as a script)
from labcells import CODE, MD

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "labs" / "00_tour.ipynb"

CELLS = [
    (MD, """\
# Lab 00 — A tour of the stack (AI 系统组成&生态)

An AI system is a stack of layers, each turning the program above it into something the layer below can
run. ZOMI's *AISystem* course draws it in the lecture **"AI 系统组成&生态"** (`01Introduction/03Architecture`):

| layer | what it does | here, in `aisys` | deeper in |
|---|---|---|---|
| application (应用层) | a model that solves a task | `aisys.models` (MLP, LeNet, TinyGPT, …) | this tour |
| development / frontend (开发层) | how you *express* the program: eager, traced, scripted | `aisys.trace`, `aisys.script` | lab 03 |
| framework (框架层) | tensors, automatic differentiation, the computation graph | `aisys.Tensor`, `backward`, `Graph` | labs 01, 02 |
| compiler & runtime (编译与运行时) | graph passes, fusion, memory planning, execution | `aisys.compile`, `plan_memory` | labs 04, 05 |
| hardware (硬件层) | the chip: matrix unit, vector unit, on-chip buffers, DRAM | `aisys.chip` (a simulated NPU) | labs 08, 09 |

In this tour one small model — a multilayer perceptron (多层感知机) that reads 8×8 handwritten digits — goes
down the whole stack, and each layer works on what the layer above produced: the graph the compiler
optimizes is the one the runtime plans memory for, and the one that runs on the chip. Each section shows
one picture and points to the lab that takes that layer apart. Everything runs on a laptop CPU in a few
seconds; every number is computed, none is typed in."""),
    (CODE, """\
import numpy as np

import aisys
import aisys.nn.functional as F
from aisys.models import MLP
from aisys.models.datasets import DIGITS_MEAN, DIGITS_STD, digits
from aisys.models.training import train_classifier, accuracy
from aisys.data import DataLoader

aisys.manual_seed(0)
print("aisys", aisys.__version__, "—", len(aisys.ops_registry), "ops in the registry")"""),
    (MD, """\
## 1. Application layer (应用层): a model that learns

The UCI handwritten digits (8×8 pixels, shipped with `aisys`; the cell prints how many) and an MLP with one
hidden layer: 64 inputs → 128 → 10 classes, trained with Adam for a few epochs (the cell says how many and
how much of the test set it then gets right)."""),
    (CODE, """\
train, test = digits("train", flatten=True), digits("test", flatten=True)
print(f"{len(train):,} training and {len(test):,} test images: {len(train) + len(test):,} images of 8x8 pixels")
model = MLP((64, 128, 10))
history = train_classifier(model, DataLoader(train, batch_size=64, shuffle=True, generator=0), epochs=3, lr=3e-3,
                           test_loader=DataLoader(test, batch_size=360), progress=False)
print(model)
print(f"test accuracy after {len(history.loss)} epochs: {history.test_acc[-1]:.1%}")"""),
    (MD, """\
## 2. Development layer (开发层): eager code becomes a graph

What we deploy is a function from raw pixels (0 to 1) to class scores: it standardizes the pixels the way the
training data was, then runs the model. You write it as ordinary Python; the framework runs each op at once
(**eager**, 动态图). To optimize the whole program, a compiler needs it as a **graph** (静态图).
`aisys.trace` runs it once on an example batch and records every op it performs. The printed form is the
graph IR every later layer reads: one line per value, `%id = op(inputs) : dtype[shape]`. Lab 03 compares
tracing with *scripting* from the source code, and shows where tracing silently goes wrong (Python `if` on a
tensor)."""),
    (CODE, """\
def classify(pixels):
    \"\"\"Raw pixels in [0, 1] -> class scores: standardize as the training data was, then the MLP.\"\"\"
    return model((pixels - DIGITS_MEAN) / DIGITS_STD)

model.eval()
raw = digits("test", flatten=True, normalize=False)
x, y = raw.tensors[0][:32], raw.tensors[1][:32]
graph = aisys.trace(classify, x)
print(graph)
eager = classify(x).numpy()
replayed = aisys.graph.interpret(graph, x)[0]
print("the graph computes what eager code computed:", np.allclose(eager, replayed, atol=1e-6))"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
from widgets import GraphView
GraphView(graph)"""),
    (MD, """\
## 3. Framework layer (框架层): the tape and automatic differentiation

Training needs gradients. Each eager op is recorded on a *tape* (its op, inputs and attributes); `backward()`
walks the tape in reverse and applies each op's vector–Jacobian product (反向模式自动微分). Because every
VJP in `aisys` is written with ops itself, the backward pass is a graph too — here is the loss's graph,
forward and backward. Lab 02 builds this from scratch on the course's example f = ln x₁ + x₁x₂ − sin x₂.

Compare the ops with the traced graph above: eagerly, each `nn.Linear` is *one* `linear` op on the tape (one
record, one backward step — PyTorch's eager `addmm` plays the same role), while the tracer was shown its
decomposition `permute → matmul → add`, the form the compiler fuses and the chip lowers. Both give the same bits."""),
    (CODE, """\
loss = F.cross_entropy(classify(x), y)
print(f"loss = {loss.item():.4f}")
print("ops on the tape:", sorted({n for n in aisys.frontend.graph_of_tape(loss).count_ops()}))"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
GraphView(loss, backward=True)"""),
    (MD, """\
## 4. Compiler layer (编译层): passes rewrite the graph

`aisys.compile` takes **the graph above** and runs a pipeline of graph passes: constant folding, dead-code and
common-subexpression elimination, algebraic simplification, and **operator fusion** (算子融合), which merges
chains of ops into one generated kernel so intermediate tensors never go to memory. Here fusion merges the
standardization (`sub`, `div`) into an elementwise kernel, and each layer's `matmul → add → relu` into a
kernel with an *epilogue*; the summary's last rows count what is left. Drag the slider to step through the
passes: the view
shows what each pass changed — removed nodes red, new ones green, fused ones purple. Lab 04 watches a
Conv-BN-ReLU residual block shrink this way, and you write three of the passes."""),
    (CODE, """\
compiled = aisys.compile(classify, x)
print(compiled.pass_log.summary())
print("compiled output equals eager:", np.allclose(compiled(x).numpy(), eager, atol=1e-5))"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
from widgets import PassStepper
PassStepper(compiled, skip_unchanged=False)"""),
    (MD, """\
### Inside one fused kernel: the loop back end (后端: 算子计算与循环优化)

A fused kernel is still only a name in the graph: `fused(...) {kind='epilogue', ops=('matmul', 'add', 'relu')}`,
the first layer. The compiler's back end turns it into loops in three steps (lectures `03Compiler/04Backend`,
TVM's tensor expressions, Halide's algorithm/schedule split):

1. a **compute** says *what* each element is — here the product `y` (a sum over `k`) and `h = relu(y + bias)`,
   whose `add` and `relu` are read from the op registry's definitions, not re-typed;
2. a **schedule** says *how* to loop — it never changes the result;
3. **lowering** prints the loop nest, which numba compiles to machine code.

As written, `y` is a whole matrix that goes through memory before `h` reads it:"""),
    (CODE, """\
from aisys.compiler import loops

layer = model.net[0]                                   # Linear(64, 128): the first fused kernel's weights
batch, (d_out, d_in) = x.shape[0], layer.weight.shape
z = loops.placeholder((batch, d_in), "float32", name="z")          # the standardized pixels (the kernel before)
w_t = loops.placeholder((d_in, d_out), "float32", name="w_t")      # the weight, transposed (the permute)
bias = loops.placeholder((d_out,), "float32", name="bias")
k = loops.reduce_axis(d_in, "k")
y = loops.compute((batch, d_out), lambda n, c: loops.sum(z[n, k] * w_t[k, c], axis=k), name="y")
h = loops.compute((batch, d_out), lambda i, j: loops.apply("relu", loops.apply("add", y[i, j], bias[j])), name="h")
print(loops.lower(h))"""),
    (MD, """\
The schedule splits `h`'s columns into strips of 16, computes the 16 values of `y` a strip needs right inside the
strip's loop (`compute_at`: fusion at the level of loops — `y` shrinks to a 16-element local buffer) and
vectorizes the strip. The slider replays the schedule step by step, lighting up the lines each step changed.
Lab 07 takes this apart: tiling, caches and their misses, a tuner that searches schedules."""),
    (CODE, """\
s = loops.Schedule(h)
strip, lane = s.split("j", 16)
s.compute_at(y, h, strip)
s.vectorize(lane)
print(loops.lower(s))
kernel = loops.build(s)
zs = ((x.numpy() - DIGITS_MEAN) / DIGITS_STD).astype(np.float32)
W1, b1 = layer.weight.numpy(), layer.bias.numpy()
print("the scheduled loop nest computes the fused kernel's result:",
      np.allclose(kernel(zs, np.ascontiguousarray(W1.T), b1), np.maximum(zs @ W1.T + b1, 0), atol=1e-5))"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
from widgets import LoopNestView
LoopNestView(s)"""),
    (MD, """\
How fast can loops written this way be? The library's GEMM recipes are schedules of the same matrix-product
compute: `naive` (the loops as written) and `tuned` (B packed into a contiguous buffer, a 4×32 block of the
result held in vector registers: the micro-kernel of BLAS libraries). The cell times both on this machine, one
thread, next to numpy's BLAS (timings vary between runs and machines: shown, not checked)."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
import timeit

size = 256
ga, gb = (np.random.default_rng(seed).standard_normal((size, size)).astype(np.float32) for seed in (0, 1))
gemms = {name: loops.build(loops.gemm(size, size, size, name)) for name in ("naive", "tuned")}
timed = {"naive loops": lambda: gemms["naive"](ga, gb), "tuned loops": lambda: gemms["tuned"](ga, gb),
        "numpy (BLAS)": lambda: ga @ gb}
gflops = {}
for name, fn in timed.items():
    fn()                                                              # warm up (and compile)
    gflops[name] = 2 * size ** 3 / min(timeit.repeat(fn, number=1, repeat=5)) / 1e9
    print(f"{name:13s} {gflops[name]:7.1f} GFLOP/s")
print(f"tuned: {gflops['tuned loops'] / gflops['naive loops']:.0f}x the naive loops, "
      f"{gflops['tuned loops'] / gflops['numpy (BLAS)']:.2f}x numpy's BLAS ({size}×{size}×{size}, float32)")"""),
    (CODE, """\
print("the tuned loops compute a @ b:", np.allclose(gemms["tuned"](ga, gb), ga @ gb, rtol=1e-4, atol=1e-3))"""),
    (MD, """\
## 5. Runtime (运行时): where every byte of *the compiled graph* lives

Before running, the runtime plans memory for the graph the compiler produced: each intermediate tensor is
*live* from the op that writes it to the last op that reads it, and tensors whose lifetimes do not overlap
can share addresses. The memory planner packs them like Tetris into one arena. The compiler's decision
shows up here first: every intermediate a fused kernel keeps to itself is a buffer the runtime never has to
place. The cell plans both graphs with the same planner and schedule. Lab 05 compares four planners and plans
a training step, where activations stay alive until the backward pass reads them."""),
    (CODE, """\
from aisys.compiler import plan_memory
from aisys.compiler.memory import live_bytes_profile

plans = {name: plan_memory(g, planner="greedy_by_size", schedule="best")
         for name, g in (("traced", graph), ("compiled", compiled.graph))}
for name, p in plans.items():
    print(f"{name:>8}: {len(p.buffers)} buffers, {sum(b.size for b in p.buffers) / 1024:5.1f} KiB if none shared, "
          f"arena {p.peak_bytes / 1024:5.1f} KiB (lower bound {p.lower_bound_bytes / 1024:.1f} KiB)")
plan = plans["compiled"]
live = live_bytes_profile(plan.buffers)                 # bytes alive at each step of the schedule
busiest = int(np.argmax(live))
alive = sorted((b for b in plan.buffers if b.start <= busiest <= b.end), key=lambda b: -b.size)
print(f"the compiled arena is set by step {busiest}:", ", ".join(f"{b.name} ({b.op}, {b.size / 1024:.1f} KiB)"
                                                          for b in alive))"""),
    (MD, """\
Fusion took buffers off the plan (the standardized pixels and each layer's pre-activation never leave their
kernel). Whether the arena shrinks too depends on the busiest step, which the last line names: when the
largest tensors there are ones fusion cannot remove — a weight in the transposed layout the matmul wants,
a layer's output — the peak stays where it was, even though there is less to place."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
from widgets import MemoryTimeline
MemoryTimeline(plan)"""),
    (MD, """\
## 6. Hardware layer (硬件层): the compiled graph on a simulated AI chip

Finally **the compiled graph** is lowered to a tile program for a simulated Ascend-DaVinci-like core (a
16×16×16 *cube* matrix unit, a vector unit, on-chip buffers and DMA engines) and played out cycle by cycle.
Each fused kernel becomes one step on the chip: the standardization is one pass of the vector unit over
data loaded once, and each bias and ReLU is applied as results drain from the cube's accumulators. The
cell lowers the traced graph too, so the compiler's payoff is measured on the chip: cycles and DRAM bytes.
Lab 08 derives those numbers from the systolic array up."""),
    (CODE, """\
from aisys import chip

davinci = chip.preset("davinci")
runs = {name: chip.simulate(chip.lower_graph(g, davinci)) for name, g in (("traced", graph), ("compiled", compiled.graph))}
for name, r in runs.items():
    moved = r.dram_bytes["read"] + r.dram_bytes["write"]
    print(f"{name:>8}: {len(r.program.instructions):3d} instructions, {r.cycles:6,} cycles, {moved:7,} DRAM bytes")
saved = 1 - runs["compiled"].cycles / runs["traced"].cycles
print(f"fusion saves {saved:.0%} of the cycles on the chip")
result = runs["compiled"]
print()
print(result.summary())"""),
    (MD, """\
The memory plan meets the chip here too: the arena the runtime planned is the working set of activations.
The cell compares it with the core's on-chip buffers; when it fits, a core that keeps activations on chip
between layers (as TPU v1 does in its Unified Buffer) need only stream the weights from DRAM."""),
    (CODE, """\
largest = max(davinci.buffers, key=lambda b: b.size_bytes)
fits = plan.peak_bytes <= largest.size_bytes
print(f"compiled arena {plan.peak_bytes / 1024:.1f} KiB vs the core's largest buffer {largest.name} "
      f"({largest.size_bytes / 1024:.0f} KiB): {'fits' if fits else 'does not fit'}")
if fits:
    resident = chip.simulate(chip.lower_graph(compiled.graph, davinci.with_(resident_activations=True)))
    print(f"activations kept on chip: {resident.cycles:,} cycles, {sum(resident.dram_bytes.values()):,} DRAM bytes "
          f"(weights only), vs {result.cycles:,} cycles streaming activations through DRAM")"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
from widgets import UtilizationView
UtilizationView(result)"""),
    (MD, """\
The timeline shows each unit busy (blue), stalled waiting for data (red) or idle; the PE map under it says
how the cube's PEs shared the work. With a batch this small the chip spends most of its time moving
data, not computing: the lesson of the roofline model (lab 08)."""),
    (MD, """\
The same model in **int8** (模型压缩: 量化): `compress.quantize` calibrates it on a few images and the compiler
folds its quantize/dequantize ops into integer-only kernels (int8 × int8 → int32). On a systolic array with a
32-bit datapath (SCALE-Sim's 32×32, `with_datapath(4)`), each PE does four int8 multiply-adds where it does
one in fp32, and every tensor is a quarter of the bytes. Lab 09 adds calibration, QAT, pruning and
distillation, and what each buys on the chip."""),
    (CODE, """\
from aisys.framework import compress
xs = (x - DIGITS_MEAN) / DIGITS_STD            # the model's own input: the standardized pixels
qmodel = compress.quantize(model, [xs], activations="minmax")
int8 = aisys.compile(qmodel, xs, passes=["fold_quantization", "dce"], backend="reference")
runs = chip.compare_graphs({"fp32": aisys.trace(model, xs), "int8": int8.graph},
                           chip.preset("scalesim32").with_datapath(4))
print(f"test accuracy: fp32 {accuracy(model, DataLoader(test, batch_size=360)):.1%}, "
      f"int8 {accuracy(qmodel, DataLoader(test, batch_size=360)):.1%}")
print(f"on the 32-bit array: int8 takes {runs.speedup('int8'):.2f}x fewer cycles and {runs.energy_ratio('int8'):.2f}x "
      f"less energy")"""),
    (MD, """\
## 7. Beyond one chip (互联与集合通信): the same model on eight GPUs

Trained data-parallel on several devices, every step ends by summing the model's gradients across them — an
**all-reduce** over the interconnect. `aisys.dist` simulates it on real topologies (and runs it on real MPI
processes): here a ring all-reduce of this MLP's gradients on eight GPUs, over NVLink and over PCIe. Labs 10
and 11 take it apart."""),
    (CODE, """\
from aisys import dist
grad_bytes = sum(p.numpy().nbytes for p in model.parameters())
for name in ("dgx_a100", "pcie_gen4"):
    rep = dist.simulate("allreduce", "ring", topology=name, nbytes=grad_bytes)
    print(f"{rep.topology.name:<32} {rep.summary().splitlines()[1].strip()}")"""),
    (MD, """\
## Where next

- **Lab 01** — tensors, bits and layouts: strides and views, NCHW/NHWC/NC1HWC0/NZ, FP32/BF16/FP16/FP8 bits.
- **Lab 02** — automatic differentiation: forward and reverse mode on the course's example, grad-of-grad.
- **Lab 03** — graph capture: eager vs traced vs scripted, control flow, dispatch.
- **Lab 04** — graph passes: constant folding, CSE, DCE, Conv+BN folding, fusion, layout.
- **Lab 05** — memory planning: liveness, planners, the arena executor, checkpointing.
- **Lab 06** — kernels: convolution as direct loops, im2col + GEMM and Winograd, a kernel-selection rule, and the
  CUDA thread/memory hierarchy (a shared-memory tiled matmul under numba's CUDA simulator).
- **Lab 07** — loop optimization: tensor expressions and schedules, a cache simulator, an auto-tuner, down to the
  vector instructions.
- **Lab 08** — AI chips: arithmetic intensity, systolic dataflows, the TPU v1 roofline.
- **Lab 09** — compression: one quantization convention, calibration, integer-only inference, QAT, pruning,
  distillation, and what each buys on the chip.
- **Lab 10** — collectives and interconnects: ring vs tree, NVLink vs PCIe vs InfiniBand, a real MPI run.
- **Lab 11** — parallel training: data parallel with overlap, ZeRO, tensor and pipeline parallel, the planner.
- **Lab 12** — the capstone: TinyGPT served the way LLM inference engines do it (KV cache, fused attention,
  paged memory, continuous batching), then walked through every layer of this stack down to the chip.
- **Lab 13** — cluster scheduling and multi-tenancy: FIFO vs backfilling, Tiresias, DRF and quotas, placement on the α-β model.

`labs/README.md` lists every lab with its goals and exercises. Sources: ZOMI, *AISystem* (Apache-2.0),
lecture "AI 系统组成&生态"; the digits are the UCI "Optical Recognition of Handwritten Digits" data set."""),
]


def build() -> nbformat.NotebookNode:
    return labcells.build(CELLS, "lab00")


if __name__ == "__main__":
    labcells.main(CELLS, "lab00", DEFAULT_OUT, sys.argv)
