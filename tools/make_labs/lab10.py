"""Write labs/10_collectives.ipynb (lab 10 — collective communication and interconnects) with nbformat.

Usage:  .venv/bin/python tools/make_labs/lab10.py [OUT.ipynb]
Then execute it solved (the committed outputs come from that run):
  .venv/bin/python tools/run_labs.py 10
"""

from __future__ import annotations

import sys
from pathlib import Path

import labcells  # tools/make_labs/labcells.py (this folder is on sys.path when run as a script)
from labcells import CODE, EXERCISE_DEPENDENT, MD

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "labs" / "10_collectives.ipynb"


CELLS: list[tuple[str, str]] = [
    (MD, """\
# Lab 10 — Collective communication and interconnects (集合通信与互联)

A model trained on many accelerators spends part of every step *talking*: gradients are summed across
devices, activations and parameters are passed around. How long that takes depends on two things this lab
takes apart — the **interconnect** (互联: NVLink, PCIe, InfiniBand, a torus) and the **collective algorithm**
(集合通信算法: ring, tree, halving-doubling) that decides who sends which piece to whom.

1. **What do the collectives (通信原语) compute?** — all-reduce, reduce-scatter, all-gather, broadcast, reduce,
   all-to-all, written out as explicit *schedules*: step by step, which rank sends which chunk to whom.
2. **What does a ring all-reduce actually send?** — 2(p−1)/p of the vector per rank, the factor behind
   NCCL's "bus bandwidth".
3. **When is a tree faster than a ring?** — the α-β cost model (latency α, bandwidth B) and the message size
   where they cross, on real hardware figures: NVLink vs PCIe vs InfiniBand, always in GB/s with Gbps beside.
4. **Does the model predict a real run?** — the same schedule on real MPI processes on this machine, its
   measured timeline next to the simulated one.

**Lectures followed** (ZOMI's *AISystem* course, Apache-2.0): `06Foundation/04Network` (通信软硬件, 通信原语),
`02Hardware/04NVIDIA/04BasicNvlink`–`06DeepNvswitch`, and `Infrasys-AI/AIInfra: 02StorComm/03CollectComm`.
The algorithms and their costs follow Thakur, Rabenseifner & Gropp, "Optimization of Collective Communication
Operations in MPICH" (2005); bus bandwidth follows `NVIDIA/nccl-tests: doc/PERFORMANCE.md`.

**Exercises.** 10.1 `ring_allreduce_steps` · 10.2 `allreduce_time` · 10.3 `pairwise_alltoall_steps`."""),
    (CODE, """\
import numpy as np

from aisys import dist
from aisys.dist import Schedule, Topology, build_schedule, simulate
from aisys.dist.units import format_bandwidth, format_bytes, format_time
from aisys.labkit import check, exercise
from widgets import CollectiveAnimator, TimelineView, TopologyView

np.set_printoptions(linewidth=100)
for name in Topology.presets():
    topo = Topology.preset(name)
    print(f"{name:<17} {topo.ndevices:>2} devices  " + "; ".join(
        f"{t.name}: {format_bandwidth(t.bandwidth)}" for t in topo.link_types))"""),
    (MD, """\
Every link speed above is **per direction, in GB/s (10⁹ bytes per second), with the Gbps figure beside it**.
Vendors mix the two: NVIDIA quotes NVLink 3 as "600 GB/s" — both directions added — while InfiniBand is sold as
"200 Gb/s" — bits. One byte is 8 bits, so a link quoted in Gbps moves an eighth of that number in GB/s (the
mix-up behind course issue #271). Each preset cites its sources:"""),
    (CODE, """\
nvlink, hdr = dist.LINK_TYPES["nvlink3"], dist.LINK_TYPES["ib_hdr"]
print(f"InfiniBand HDR: 200 Gbps / 8 = {format_bandwidth(hdr.bandwidth)}; NVLink 3 moves "
      f"{nvlink.bandwidth / hdr.bandwidth:.0f}x more per direction\\n")
print(Topology.preset("dgx_a100_x2_ib").summary())"""),
    (MD, """\
## 1. Collectives as schedules (通信原语)

Every rank holds a vector. A collective combines them: **all-reduce** leaves the sum on every rank,
**reduce-scatter** leaves chunk r of the sum on rank r, **all-gather** concatenates everyone's chunk on every
rank, **broadcast** copies the root's vector everywhere, **reduce** sums onto the root, and **all-to-all**
sends block j of rank i to rank j (a transpose across ranks — MoE routing and sequence parallelism use it).

In `aisys.dist` each algorithm is a **schedule**: a list of messages, each "at step k, rank a sends elements
[i:j] to rank b, which copies or adds them". The same schedule is replayed by the simulator and by real MPI
processes. Here is the ring all-reduce on 4 ranks, with one element per chunk:"""),
    (CODE, """\
ring4 = build_schedule("allreduce", "ring", p=4, n=4)
print(ring4.summary())
for k in range(ring4.nsteps):
    print(f"step {k}:", "; ".join(f"{t.src}->{t.dst} c{t.chunk}{'+' if t.reduce else ''}" for t in ring4.transfers_at(k)))
print("sum on every rank:", dist.execute(ring4, [np.arange(4.0) * (r + 1) for r in range(4)]))"""),
    (MD, """\
`c2+` means "chunk 2, added to what the receiver holds"; without `+` the chunk is copied. The first p−1 steps
are a **reduce-scatter**: each rank passes a chunk on and adds the one it receives, so after p−1 steps rank r
holds the complete sum of one chunk. The last p−1 steps are an **all-gather** that passes the finished chunks
round the ring. Press **Play** (or drag the slider): each cell is a chunk, shaded by how many ranks' data it
already holds; dark blue is the full sum."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
anim = CollectiveAnimator("allreduce", "ring", p=4, start=2)
anim"""),
    (CODE, """\
print(anim.summary())"""),
    (MD, """\
### Exercise 10.1 — ring all-reduce = reduce-scatter + all-gather

Write `ring_allreduce_steps(p)`: a list of steps, each a list of messages `(src, dst, chunk, reduce)`, for a
vector cut into p chunks. Reduce-scatter first (messages with `reduce=True`), then all-gather (`False`). The
check runs your schedule on random vectors for p = 1 … 9 (odd p and chunks of unequal size included): every
rank must end with the sum, in 2(p−1) steps, each rank sending exactly 2(p−1)/p of the vector."""),
    (CODE, """\
@exercise("10.1")
def ring_allreduce_steps(p):
    \"\"\"Steps of (src, dst, chunk, reduce): p-1 reduce-scatter steps, then p-1 all-gather steps.\"\"\"
    raise NotImplementedError("exercise 10.1: pass chunks round the ring, adding, then copying")"""),
    (EXERCISE_DEPENDENT, """\
check("10.1", ring_allreduce_steps)"""),
    (EXERCISE_DEPENDENT, """\
# your schedule, simulated on the DGX A100 preset: 8 GPUs on NVSwitch
yours = Schedule.from_chunk_steps("allreduce", ring_allreduce_steps(8), p=8, n=(256 << 20) // 4)
rep = simulate(yours, topology="dgx_a100")
print(rep.summary())
print(f"each GPU sent {format_bytes(rep.bytes_sent[0])} = 2(p-1)/p x 256 MiB = {2 * 7 / 8 * 256:.0f} MiB")"""),
    (EXERCISE_DEPENDENT, """\
# NBVAL_IGNORE_OUTPUT
# your schedule on 4 ranks, one chunk each: step through it and watch the sums build up, then spread
CollectiveAnimator(Schedule.from_chunk_steps("allreduce", ring_allreduce_steps(4), p=4, n=4))"""),
    (MD, """\
**Bus bandwidth.** The all-reduce moved 256 MiB per GPU in the time above: that is its *algorithm bandwidth*
(vector size ÷ time). But each GPU actually pushed 2(p−1)/p of it through its link, so nccl-tests reports the
*bus bandwidth* = algBw · 2(p−1)/p, which can be compared with the link's own speed: the ring drives every
NVSwitch port at almost its full 300 GB/s.

## 2. The α-β model: when does a tree beat a ring?

Sending n bytes over a link costs **α + n/B**: a start-up latency α (software, the NIC, switches) plus the
bytes over the bandwidth B (β = 1/B seconds per byte). An algorithm's time adds up its steps. With p ranks:

| all-reduce | latency term | bandwidth term |
|---|---|---|
| ring | 2(p−1)·α | 2(p−1)/p · n/B |
| tree (binomial reduce, then broadcast) | 2⌈log₂p⌉·α | 2⌈log₂p⌉ · n/B |
| reduce + broadcast (flat, via the root's port) | 2·α | 2(p−1) · n/B |

The ring's latency grows with p but it moves almost the minimum data; the tree pays log p latencies but sends
the whole vector at each level. Small messages are latency-bound (fewest α wins), large ones bandwidth-bound
(least data per rank wins: the ring). On a switch the flat reduce+broadcast sends its p−1 messages at once
through the root's port — only 2α, but p−1 vectors through one port. The simulator times the schedules hop by
hop on a topology, including how messages share a switch port."""),
    (MD, """\
### Exercise 10.2 — the α-β model and the crossover

Write `allreduce_time(algorithm, p, nbytes, alpha, bandwidth)` for `"ring"`, `"tree"` and
`"reduce_broadcast"` (α in seconds, bandwidth in **bytes** per second). The check compares it with the
simulator on switch topologies — DGX A100's NVSwitch among them — and then finds, with *your* model, the
message size where ring and tree take equal time on the DGX A100."""),
    (CODE, """\
@exercise("10.2")
def allreduce_time(algorithm, p, nbytes, alpha, bandwidth):
    \"\"\"Seconds for an all-reduce of nbytes per rank: ring, tree or reduce_broadcast.\"\"\"
    raise NotImplementedError("exercise 10.2: add up alpha + n/B over the steps of each algorithm")"""),
    (EXERCISE_DEPENDENT, """\
check("10.2", allreduce_time)"""),
    (EXERCISE_DEPENDENT, """\
# your model on three interconnects: where does the ring start to win?
for name in ("dgx_a100", "pcie_gen4", "tpu_v3_4x4"):
    topo = Topology.preset(name)
    alpha, bw = dist.link_alpha_beta(topo, 0, 1)
    p = topo.ndevices
    cross = dist.crossover("ring", "tree", p, alpha, bw)
    t_small = {a: allreduce_time(a, p, 64 << 10, alpha, bw) for a in ("ring", "tree", "reduce_broadcast")}
    best_small = min(t_small, key=t_small.get)
    print(f"{name:<11} p={p:<2} α={format_time(alpha):>8}  B={format_bandwidth(bw):<22} ring beats tree above "
          f"{format_bytes(cross):>9}; at 64 KiB the fastest is {best_small}")"""),
    (MD, """\
The same all-reduce on two interconnects: NVLink through an NVSwitch, and PCIe through two PCIe switches and
the CPU. Pick a topology in the dropdown; links are coloured by how busy the ring kept them (red = saturated).
On PCIe the two uplinks to the CPU carry the ring's traffic between the switches and set the pace."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
topo_view = TopologyView({"NVLink (DGX A100)": Topology.preset("dgx_a100"),
                          "PCIe 4.0 tree": Topology.preset("pcie_gen4"),
                          "2 nodes over InfiniBand": Topology.preset("dgx_a100_x2_ib")},
                         "allreduce", "ring", nbytes=256 << 20)
topo_view"""),
    (CODE, """\
print(topo_view.summary())"""),
    (MD, """\
Across two nodes a flat ring crosses the slow InfiniBand links on 2·(p−1) of its steps. A **hierarchical**
all-reduce keeps most of the traffic on NVLink: reduce-scatter inside each node, all-reduce each chunk
across the nodes (only 1/8 of the vector per GPU crosses the network), all-gather inside each node again. NCCL's
**double binary tree** instead pipelines the vector up and down two trees."""),
    (CODE, """\
two_nodes = Topology.preset("dgx_a100_x2_ib")
for algorithm in ("ring", "double_binary_tree", "hierarchical"):
    r = simulate("allreduce", algorithm, topology=two_nodes, nbytes=256 << 20)
    print(f"{algorithm:<19} {format_time(r.time):>9}  busBw {format_bandwidth(r.busbw)}")"""),
    (MD, """\
## 3. All-to-all

All-to-all is a transpose across ranks: block j of rank i goes to rank j and becomes its block i. The
**pairwise exchange** does it in p steps: at step s rank i sends block i+s to rank i+s (step 0 is the local
copy), so each rank sends one message and receives one per step — no port is ever shared.

### Exercise 10.3 — pairwise all-to-all

Write `pairwise_alltoall_steps(p)`: a list of steps of `(src, dst, src_block, dst_block)`. The check runs it
for p = 1 … 9 and looks at every block."""),
    (CODE, """\
@exercise("10.3")
def pairwise_alltoall_steps(p):
    \"\"\"Steps of (src, dst, src_block, dst_block): at step s rank i exchanges with rank i+s.\"\"\"
    raise NotImplementedError("exercise 10.3: step s sends block i+s of rank i to rank i+s")"""),
    (EXERCISE_DEPENDENT, """\
check("10.3", pairwise_alltoall_steps)"""),
    (MD, """\
## 4. The same schedules on real processes (MPI)

`dist.run(fn, nprocs, args, timeout)` starts `nprocs` real processes with MPICH's `mpiexec` (installed from
PyPI with mpi4py) and calls `fn(comm, *args)` on each; the function may be defined right here in the notebook.
`comm.allreduce(x, algorithm="ring")` runs the ring schedule above with MPI point-to-point messages;
`algorithm="mpi"` calls MPICH's own `MPI_Allreduce`. Every call is recorded on the rank's lane of a timeline.
The run has a timeout and stops only its own processes."""),
    (CODE, """\
def ring_vs_mpich(comm, sizes, repeats=3):
    same = []
    for n in sizes:
        x = np.full(n, comm.rank + 1.0)
        same.append(bool(np.array_equal(comm.allreduce(x, algorithm="ring"), comm.allreduce(x, algorithm="mpi"))))
        for _ in range(repeats - 1):           # more timings of the ring: the fit below takes the fastest
            comm.allreduce(x, algorithm="ring")
    return same

sizes = [1 << 12, 1 << 16, 1 << 20]          # float64 elements: 32 KiB, 512 KiB, 8 MiB
measured = dist.run(ring_vs_mpich, nprocs=2, args=(sizes,), timeout=120)
print("our ring equals MPICH's MPI_Allreduce on both ranks:", all(all(r) for r in measured))"""),
    (MD, """\
To simulate this machine we need its α and B. Fit them to the measured ring all-reduces (on 2 ranks a ring
all-reduce is 2α + n/B), then replay the same function on simulated ranks with those figures and draw the
measured run above the simulated one."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
ring_events = [e for e in measured.trace.events_in("rank 0") if e.name.startswith("allreduce ring")]
fastest = {}                                   # bytes -> the fastest of the repeats (other programs share the CPU)
for e in ring_events:
    n = int(e.args["bytes"])
    fastest[n] = min(fastest.get(n, float("inf")), (e.end - e.start) * 1e-6)
two_alpha, bw = dist.fit_alpha_beta(list(fastest), list(fastest.values()))
here = Topology.fully_connected(2, alpha=two_alpha / 2, bandwidth=bw, name="this machine (shared memory, fitted)")
print(f"fitted α = {format_time(two_alpha / 2)} per message, B = {format_bandwidth(bw)}")
simulated = dist.run(ring_vs_mpich, nprocs=2, args=(sizes,), timeout=120, backend="sim", topology=here)
for n, t in fastest.items():
    print(f"{format_bytes(n):>8}: measured {format_time(t):>9}, α-β prediction {format_time(two_alpha + n / bw):>9}")
timelines = TimelineView({"measured: 2 MPI processes": measured, "simulated: α-β fit": simulated})
timelines"""),
    (CODE, """\
print(timelines.summary())"""),
    (MD, """\
## Summary

- A collective is a **schedule** of messages; the same schedule runs in the simulator and on MPI processes.
- A ring all-reduce is a reduce-scatter plus an all-gather; each rank sends **2(p−1)/p** of the vector — the
  busBw factor — the least any all-reduce can send.
- The α-β model prices a message at **α + n/B**; trees win small (latency-bound) messages, rings large ones,
  and the crossover moves with the interconnect. Always read bandwidths as GB/s with Gbps beside them.
- Hierarchical algorithms keep traffic on the fast links inside a node.

Next: lab 11 uses these collectives to train one model on many ranks — data, tensor and pipeline parallel."""),
]


def build():
    return labcells.build(CELLS, "lab10")


if __name__ == "__main__":
    labcells.main(CELLS, "lab10", DEFAULT_OUT, sys.argv)
