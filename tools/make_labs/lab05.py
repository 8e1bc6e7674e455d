"""Write labs/05_memory.ipynb (lab 05 — memory planning and the executor) with nbformat.

Usage:  .venv/bin/python tools/make_labs/lab05.py [OUT.ipynb]
Then execute it solved (the committed outputs come from that run):
  AISYS_LAB_SOLUTIONS=1 .venv/bin/jupyter nbconvert --to notebook --execute --inplace \
      --ExecutePreprocessor.store_widget_state=False labs/05_memory.ipynb
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

import labcells  # tools/make_labs/labcells.py (this folder is on sys.path when run as a script)
from labcells import CODE, EXERCISE_DEPENDENT, MD

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "labs" / "05_memory.ipynb"


def _alignment() -> int:
    from aisys.compiler.memory import DEFAULT_ALIGNMENT
    return DEFAULT_ALIGNMENT


# Quantities the text states that no cell prints (tests/labs/test_lab_content.py checks them against the library).
QUOTED = {"64 bytes": _alignment}


CELLS: list[tuple[str, str]] = [
    (MD, """\
# Lab 05 — Memory planning and the executor (内存规划与执行器)

A network's intermediate tensors (中间张量) need memory only from the op that writes them to the last op
that reads them. An inference engine or a training framework that knows the whole graph in advance can
therefore plan, once, where every tensor lives inside **one** block of memory (an *arena*), and reuse the
same bytes again and again — no `malloc` per tensor, and a fraction of the memory.

**Lectures followed** (ZOMI's *AISystem* course, Apache-2.0): `03Compiler/03Frontend/06Memory` (内存优化 —
its text is still a placeholder in the course, so this lab fills it in), `04Inference/01Inference/04System`
(推理系统: the runtime and its memory), and `06Foundation/02AICluster` (training memory, 重计算).
Published results used: the "greedy by size" offset planner of Pisarchyk & Lee, *Efficient Memory
Management for Deep Neural Net Inference* (2020), and activation checkpointing from Chen, Xu, Zhang &
Guestrin, *Training Deep Nets with Sublinear Memory Cost* (2016).

**Goals.** After this lab you can
- compute each tensor's live interval (生命周期 / 活跃区间) from a graph and an execution order;
- explain the lower bound on memory, and why a planner's arena can exceed it (内存碎片, fragmentation);
- place tensors in an arena with a greedy best-fit planner, reuse an input in place (原地操作), and run the
  graph inside the arena;
- trade memory for compute in training with activation checkpointing (激活检查点 / 重计算), at k ≈ √L.

**Exercises.** 5.1 `liveness` · 5.2 `plan_offsets` · 5.3 `checkpoint_cost`. Each stub raises
`NotImplementedError` until you write it; the cell after it checks your function and prints PASS or
what went wrong."""),
    (CODE, """\
import numpy as np

import aisys
from aisys.compiler import memory as mem
from aisys.compiler.memory import Buffer, LayeredModel
from aisys.compiler.memory.workloads import (deep_training_graph, lenet_training_graph, mlp_graph)
from aisys.framework.graph import interpret
from aisys.labkit import check, exercise
from widgets.memory import MemoryTimeline

print("ready")"""),
    (MD, """\
## 1. Tensors have lifetimes (生命周期)

Here is a three-layer MLP for inference (batch 32, 784 → 256 → 128 → 10) as a graph. Every op node `%i`
produces one tensor. Inputs and weights belong to the caller; the arena holds the op results."""),
    (CODE, """\
g = mlp_graph(32, (784, 256, 128, 10))
print(g)
sizes = {f"%{n.id}": n.nbytes for n in g.op_nodes}
print("\\nop results:", sizes)
print("no reuse at all would need", sum(sizes.values()), "bytes")"""),
    (MD, """\
Run the ops in a **schedule** (an order; here the order the graph was written). Step *s* runs the
*s*-th op. A tensor is **live** from the step that writes it to the last step that reads it — a closed
interval `[start, end]`. Two rules need a decision, and this lab takes the common one:

- a **graph output** stays live to the last step: the caller reads it after the run;
- a tensor **nobody reads** still occupies memory at the step that writes it: `[s, s]`.

The memory planner works from these intervals: each buffer of a plan carries the steps its tensor is
live (`plan_memory(graph, schedule=...).buffers`):"""),
    (CODE, """\
order = mem.default_schedule(g)
print("schedule:", order)
for b in mem.plan_memory(g, "naive", schedule=order).buffers:
    print(f"  {b.name:<4} {b.op:8s} live steps {b.start}..{b.end}   {b.size:6d} B")"""),
    (MD, """\
### Exercise 5.1 — liveness (活跃性分析)

Write `liveness(graph, schedule)`: `schedule` is a list of op-node ids; return `{node id: (first step,
last step)}` for every node in the schedule. `graph.nodes[i].inputs` lists the ids node `i` reads,
`graph.outputs` the ids the caller gets back. Do not include graph inputs or parameters (they are not
in the arena). The check uses small graphs with golden intervals (a skip connection, a dead value,
two schedules of a two-branch graph) and 12 random graphs."""),
    (CODE, """\
@exercise("5.1")
def liveness(graph, schedule):
    \"\"\"{node id: (step that writes it, last step that reads it)}; outputs live to the last step.\"\"\"
    raise NotImplementedError("exercise 5.1: walk the schedule, remember each value's last reader")"""),
    (EXERCISE_DEPENDENT, """\
check("5.1", liveness)"""),
    (EXERCISE_DEPENDENT, """\
print("your intervals for the MLP:", liveness(g, order))
print("the planner's buffers:     ", {int(b.name[1:]): (b.start, b.end)
                                     for b in mem.plan_memory(g, "naive", schedule=order).buffers})"""),
    (MD, """\
## 2. The lower bound, and the picture

Add up the bytes of the tensors live at each step: that curve's maximum is a **lower bound** (下界) on
the arena. At that step all those tensors are alive at once, so they need disjoint bytes — no placement
can use less. (Every tensor's size is rounded up to 64 bytes, a cache line; offsets are multiples of 64.)"""),
    (CODE, """\
live = mem.simulate_live_bytes(g)
for s, b in enumerate(live):
    print(f"step {s} ({g.nodes[order[s]].op:7s}) {b:7d} B  " + "#" * (b // 4096))
print("lower bound:", max(live), "B   vs no reuse:", sum(sizes.values()), "B")"""),
    (MD, """\
A **planner** chooses each tensor's offset. Four planners, one interface (`buffers -> {name: offset}`):

| planner | idea | reuse |
|---|---|---|
| `naive` | every tensor its own bytes | none: arena = sum of sizes |
| `exact_size` | a pool of freed blocks, reused only by a tensor of exactly the same size (内存池) | same size only |
| `linear_scan` | walk the program in order; free dead blocks; put each new tensor in the smallest hole that fits | online best fit |
| `greedy_by_size` | largest tensor first; each goes into the smallest gap between already-placed tensors that live at the same time, else on top | offline best fit |

The gap between a planner's arena and the lower bound is **fragmentation** (内存碎片):
`1 − lower bound / peak`. A training step is a better test than the MLP: here is one traced step of
LeNet-5 (forward, `loss.backward()`, gradients); the first line says how many ops it has."""),
    (CODE, """\
lenet = lenet_training_graph(batch=32)
print(lenet.summary())
for name in mem.PLANNERS:
    p = mem.plan_memory(lenet, name)
    print(f"{name:15s} arena {p.peak_bytes:9d} B   lower bound {p.lower_bound_bytes} B   "
          f"fragmentation {p.fragmentation:6.1%}")"""),
    (MD, """\
### The visual moment: Tetris with tensors

Each rectangle is one tensor: across, the steps it is alive; up, the bytes it occupies. The red dashed
line is the arena the planner needs, the green dotted line the lower bound; the bottom panel is the
live-bytes curve. Hover a rectangle to see the tensor, the op that made it, its size and offset. Click
the planners: `naive` stacks a tower, `greedy_by_size` packs the same rectangles down to the green line.
Tick **in-place** to let elementwise ops write over an input that dies there (purple). Whether that helps
here is a question for the numbers: the cell after the picture plans this training step both ways."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
lenet_view = MemoryTimeline(lenet)
lenet_view"""),
    (CODE, """\
lenet_view.planner_picker.value = "naive"      # what clicking "naive" does
print(lenet_view.summary())
lenet_view.planner_picker.value = "greedy_by_size"
print()
print(lenet_view.summary())"""),
    (CODE, """\
off, on = (mem.plan_memory(lenet, "greedy_by_size", inplace=flag) for flag in (False, True))
print(f"in-place off: arena {off.peak_bytes:,} B, lower bound {off.lower_bound_bytes:,} B")
print(f"in-place on:  arena {on.peak_bytes:,} B, lower bound {on.lower_bound_bytes:,} B, {len(on.inplace)} pairs")
bound = on.lower_bound_bytes - off.lower_bound_bytes
arena = on.peak_bytes - off.peak_bytes
print("lower bound:", "unchanged" if bound == 0 else f"{bound:+,} B", "| arena:", "unchanged" if arena == 0 else f"{arena:+,} B")"""),
    (MD, """\
In a training step in-place reuse buys little or nothing: the backward pass reads most forward values
again, so few inputs die at the op that could overwrite them, and the busiest step — the one that sets
the lower bound — keeps all its tensors. The pairs it does find change which buffers share a block, so
a heuristic packer such as greedy-by-size can land a little above *or* below its plan without them:
compare the two arenas printed above. Section 3 shows where in-place pays: inference, where an
activation dies as soon as the next layer has read it."""),
    (MD, """\
### Exercise 5.2 — greedy best-fit offsets (`plan_offsets`)

Write `plan_offsets(buffers)`: each buffer has `.name`, `.size` (bytes, already rounded up to the
alignment), `.start` and `.end` (inclusive steps). Return `{name: offset}` such that any two buffers
alive at a common step occupy disjoint bytes `[offset, offset + size)`, using as little memory as you can.

Suggested algorithm (greedy by size): sort by size, largest first. For each buffer, collect the
already-placed buffers whose lifetimes overlap its own, sorted by offset; walk the gaps between them
and take the smallest gap that fits; if none fits, place it above the highest of them.

The check: the 5-buffer example below must reach its lower bound (7 bytes); a small trap where
placing in program order fails; 40 random sets (hypothesis) must be placed safely; and on 20 seeded
sets of 30 buffers your arena must stay within **1.25×** the lower bound. Stacking everything (the
naive sum) fails."""),
    (CODE, """\
example = [Buffer("A", 4, 0, 1), Buffer("B", 2, 1, 2), Buffer("C", 4, 2, 3), Buffer("D", 2, 3, 4),
           Buffer("E", 1, 0, 4)]
print("live bytes per step:", mem.live_bytes_profile(example))
print(mem.plan_buffers(example, "naive", alignment=1).summary())"""),
    (CODE, """\
@exercise("5.2")
def plan_offsets(buffers):
    \"\"\"{buffer name: offset}; buffers alive at a common step must not share bytes.\"\"\"
    raise NotImplementedError("exercise 5.2: largest first, smallest gap among overlapping placed buffers")"""),
    (EXERCISE_DEPENDENT, """\
check("5.2", plan_offsets)"""),
    (MD, """\
Your planner plugs straight into `plan_memory`, and the timeline draws *your* plan next to the
library's planners (its name is the first button):"""),
    (EXERCISE_DEPENDENT, """\
# NBVAL_IGNORE_OUTPUT
your_plan = mem.plan_memory(lenet, plan_offsets)
your_view = MemoryTimeline(your_plan)
your_view"""),
    (EXERCISE_DEPENDENT, """\
print(your_view.summary())"""),
    (MD, """\
## 3. In-place ops and the schedule

**In place** (原地操作): `relu(x)` may write its result over `x` when `x` has no later reader — each
output element depends only on the same input element, so nothing is destroyed too early. The pair then
shares one block, and the lower bound itself drops. `plan_memory(..., inplace=True)` finds the pairs:"""),
    (CODE, """\
plain = mem.plan_memory(g, "greedy_by_size")
shared = mem.plan_memory(g, "greedy_by_size", inplace=True)
print("in-place pairs (input -> output):", shared.inplace)
print(f"MLP arena: {plain.peak_bytes} B without, {shared.peak_bytes} B with in-place reuse")"""),
    (MD, """\
**The schedule matters too.** Any topological order gives the same results, but not the same memory:
finishing one branch before starting the next frees its tensors early. `choose_schedule` simulates a
few valid orders and keeps the one with the lowest peak (LeNet's backward pass has many independent
branches: weight gradients vs input gradients):"""),
    (CODE, """\
choice = mem.choose_schedule(lenet)
print(choice.summary())
best = mem.plan_memory(lenet, "greedy_by_size", schedule="best")
print(f"\\nLeNet training step: {mem.plan_memory(lenet).peak_bytes} B in program order, "
      f"{best.peak_bytes} B with the {choice.name} schedule")"""),
    (MD, """\
## 4. The executor (执行器): one arena, every tensor a view

`ArenaExecutor` allocates one numpy byte array of `plan.peak_bytes`, then runs the ops in the plan's
schedule; each result is written into `arena[offset : offset + nbytes]` viewed with its dtype and shape.
If the plan let two live tensors share bytes, a later op would read a clobbered input — so the first test
of any planner is that the arena run gives the same outputs as the plain interpreter. The run also
records a trace (one event per op, a live-bytes counter) that opens in Perfetto (`trace.save("run.json")`)."""),
    (CODE, """\
x = np.random.default_rng(0).standard_normal((32, 784)).astype(np.float32)
executor = mem.ArenaExecutor(g, planner="greedy_by_size", inplace=True, clock="steps")
(out,) = executor.run(x)
(want,) = interpret(g, x)
print("arena bytes:", executor.arena.nbytes, "  same result as the interpreter:", np.allclose(out, want))
print(executor.trace.summary())
print("events with the Chrome trace format:", sorted({e["ph"] for e in executor.trace.to_chrome()["traceEvents"]}))"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
MemoryTimeline(executor.trace)"""),
    (MD, """\
**A memory limit.** A device has a fixed amount of memory. Asking for a plan under a limit either fits
or says exactly why not — the busiest step, the tensors alive there (largest first) and what to try:"""),
    (CODE, """\
try:
    mem.plan_memory(lenet, "greedy_by_size", limit_bytes=1_500_000)
except mem.MemoryLimitError as err:
    print(err)"""),
    (MD, """\
## 5. Training memory and activation checkpointing (重计算)

Training keeps every layer's activation from the forward pass until the backward pass uses it, so
activation memory grows with depth L. **Checkpointing** keeps only every k-th activation (and the
last); the backward pass works down the network one segment at a time, first *recomputing* the
segment's activations from the checkpoint below it, then running the segment's backward and freeing
each activation after use.

Model: L equal layers; layer i's backward needs the activation aᵢ it produced. Keep a_k, a_2k, …
and a_L. The segment (c, c′] between two kept layers is recomputed (c′ − c − 1 layers) and then run
backward; when it starts, the kept activations up to c′ and its recomputed ones are alive. For k
dividing L:

$$\\text{peak} = \\frac{L}{k} + k - 1, \\qquad \\text{recomputed layers} = L - \\frac{L}{k},$$

smallest near k = √L, where the peak is about 2√L − 1 instead of L — for at most one extra forward
pass (Chen et al. 2016). `simulate_checkpointing` lays out the forward, recompute and backward steps
and measures the live activations step by step:"""),
    (CODE, """\
for k in (1, 2, 4, 8, 16):
    print(mem.simulate_checkpointing(16, k).summary())"""),
    (MD, """\
### Exercise 5.3 — checkpoint every k of L layers (`checkpoint_cost`)

Write `checkpoint_cost(L, k)` for L equal layers: return `(peak activations, recomputed layers)`. Kept
layers are k, 2k, … and L; for every segment (c, c′] the activations alive when its backward starts are
the kept ones up to c′ plus its c′ − c − 1 recomputed ones; the peak is the largest over segments.
(The forward pass never needs more.) The check uses golden values, compares every (L, k) with L ≤ 30
against the step-by-step simulator, and checks that k = √L gives the smallest peak at L = 64."""),
    (CODE, """\
@exercise("5.3")
def checkpoint_cost(L, k):
    \"\"\"(peak activations, recomputed layers) when keeping every k-th of L equal layers (and the last).\"\"\"
    raise NotImplementedError("exercise 5.3: list the kept layers, then take the worst segment")"""),
    (EXERCISE_DEPENDENT, """\
check("5.3", checkpoint_cost)"""),
    (EXERCISE_DEPENDENT, """\
L = 64
table = {k: checkpoint_cost(L, k) for k in (1, 2, 4, 8, 16, 32, 64)}
for k, (peak, recompute) in table.items():
    print(f"k={k:2d}: peak {peak:2d} activations, recompute {recompute:2d} layers  " + "#" * peak)"""),
    (MD, """\
### Checkpointing a real training graph

The same idea as a graph rewrite: `checkpoint_graph(graph, every=k)` keeps every k-th saved activation
of a traced training step and clones the forward ops of the others right before the backward ops that
need them. Below, a 16-layer tanh MLP training step (batch 512, width 32): drag the **checkpoint every**
slider and watch the red recomputed copies appear and the peak fall, then rise again past k ≈ √16 = 4."""),
    (CODE, """\
deep = deep_training_graph(layers=16, width=32, batch=512)
rows = mem.sweep_graph_checkpoints(deep, [1, 2, 4, 8, 16])
print(mem.checkpoint_table(rows))
xs = [np.random.default_rng(1).standard_normal((512, 32)).astype(np.float32)]
same = all(np.allclose(a, b) for a, b in zip(interpret(rows[2][0].graph, *xs), interpret(deep, *xs)))
print("checkpointed graph computes the same loss and gradients:", same)"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
deep_view = MemoryTimeline(deep, checkpoint=4)
deep_view"""),
    (CODE, """\
print(deep_view.summary())"""),
    (MD, """\
## What to take away

- A tensor needs memory only over its live interval; the most bytes alive at one step is a lower bound
  no planner can beat.
- Offline planners that see every lifetime (greedy by size) pack close to that bound; online ones leave
  holes; no reuse costs several times more.
- In-place elementwise ops and a memory-aware schedule lower the bound itself.
- An arena executor runs the whole graph inside one allocation; comparing with the interpreter checks
  the plan.
- In training, checkpointing every k ≈ √L layers cuts activation memory from L to about 2√L for one
  extra forward pass.

Next: lab 08 puts these graphs on a simulated chip, where the arena has to fit in on-chip buffers; the
tour (lab 00) plans the memory of the graph the compiler produced."""),
]


def build() -> nbformat.NotebookNode:
    return labcells.build(CELLS, "lab05")


if __name__ == "__main__":
    labcells.main(CELLS, "lab05", DEFAULT_OUT, sys.argv)
