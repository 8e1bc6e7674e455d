"""Write labs/11_parallel_training.ipynb (lab 11 — parallel training and large-model memory) with nbformat.

Usage:  .venv/bin/python tools/make_labs/lab11.py [OUT.ipynb]
Then execute it solved (the committed outputs come from that run):
  .venv/bin/python tools/run_labs.py 11
"""

from __future__ import annotations

import sys
from pathlib import Path

import labcells  # tools/make_labs/labcells.py (this folder is on sys.path when run as a script)
from labcells import CODE, EXERCISE_DEPENDENT, MD

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "labs" / "11_parallel_training.ipynb"


CELLS: list[tuple[str, str]] = [
    (MD, """\
# Lab 11 — Parallel training and large-model memory (分布式并行训练与大模型显存)

A model too slow for one device is trained on many; a model too big for one device must be *cut*. This lab
runs each way of splitting the work for real — on MPI processes and on simulated ranks — and checks that
every one of them computes exactly what a single device would:

1. **Data parallel (数据并行)**: every rank has the whole model and a slice of the batch; gradients are averaged
   with all-reduces, in *buckets*, overlapped with the backward pass (PyTorch DDP).
2. **ZeRO (零冗余优化器)**: shard the optimizer state, then gradients, then parameters over the data-parallel
   ranks — the 16Ψ bytes of mixed-precision Adam shrink stage by stage.
3. **Tensor parallel (张量并行)**: Megatron-LM splits one MLP block over ranks with a single all-reduce.
4. **Pipeline parallel (流水线并行)**: GPipe and 1F1B schedules, and the bubble (p−1)/(m+p−1).
5. **The planner (自动并行)**: which (dp, tp, pp, ZeRO) layout trains a model fastest within memory, and why.

**Lectures followed** (ZOMI's *AISystem* course, Apache-2.0): `05Framework/04Parallel` (02DataParallel,
03ZeRODP, 04TensorParallel, 05PipelineParallel, 06HybridParallel), `06Foundation/07Parallel/05.ZeRO` and
`06Foundation/02AICluster`. Papers: Li et al., "PyTorch Distributed" (VLDB 2020); Rajbhandari et al., "ZeRO"
(SC 2020); Shoeybi et al., "Megatron-LM" (2019); Huang et al., "GPipe" (2019); Narayanan et al.,
"PipeDream-Flush / Efficient Large-Scale Language Model Training on GPU Clusters" (2021).

**Exercises.** 11.1 `zero_memory` · 11.2 `tp_mlp_forward` · 11.3 `one_f_one_b`."""),
    (CODE, """\
import numpy as np

import aisys
import aisys.nn.functional as F
from aisys import dist, nn
from aisys.dist.data_parallel import DistributedDataParallel, layer_costs, simulate_data_parallel
from aisys.dist.pipeline import bubble_fraction, simulate_pipeline
from aisys.dist.planner import ModelSpec, plan
from aisys.dist.zero import ZeroOptimizer
from aisys.labkit import check, exercise
from widgets import MemoryStack, TimelineView

np.set_printoptions(linewidth=100)"""),
    (MD, """\
## 1. Data parallel on real processes

The digits MLP in float64, a batch of 64 images, three Adam steps. `train` runs on every rank: it takes its
slice of the batch, and `DistributedDataParallel` averages the gradients over the ranks after each backward
pass. With `overlap=True` the backward pass runs bucket by bucket, and each finished bucket's all-reduce runs
on a communication thread while the earlier layers' gradients are still being computed. The question: does it
end with exactly the parameters of one process trained on the whole batch?"""),
    (CODE, """\
def make_mlp():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(64, 32, dtype=aisys.float64), nn.ReLU(), nn.Linear(32, 16, dtype=aisys.float64),
                          nn.ReLU(), nn.Linear(16, 10, dtype=aisys.float64))
    with aisys.no_grad():
        for p in model.parameters():
            p.copy_(rng.standard_normal(tuple(p.shape)) * 0.3)
    return model

x_all, y_all = aisys.models.datasets.digits_arrays("train")
x_all, y_all = x_all[:64].reshape(64, -1).astype(np.float64), y_all[:64]
print(f"a batch of {len(x_all)} images of {x_all.shape[1]} pixels")

def train(comm, steps=3, overlap=True):
    k = len(x_all) // comm.size
    x = aisys.tensor(x_all[comm.rank * k:(comm.rank + 1) * k])
    y = aisys.tensor(y_all[comm.rank * k:(comm.rank + 1) * k])
    model = make_mlp()
    ddp = DistributedDataParallel(model, comm, bucket_cap_mb=0.004, overlap=overlap)
    opt = aisys.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        ddp.backward(x, y, F.cross_entropy)
        opt.step()
        opt.zero_grad()
    return np.concatenate([p.numpy().ravel() for p in model.parameters()]), ddp.buckets

real = dist.run(train, nprocs=2, timeout=120)

single = make_mlp()
opt = aisys.optim.Adam(single.parameters(), lr=1e-2)
for _ in range(3):
    F.cross_entropy(single(aisys.tensor(x_all)), aisys.tensor(y_all)).backward()
    opt.step()
    opt.zero_grad()
one = np.concatenate([p.numpy().ravel() for p in single.parameters()])
err = max(np.abs(params - one).max() / np.abs(one).max() for params, _ in real)
print("buckets (last layers first):", real[0][1])
print("2 MPI ranks end with the parameters of one process on the whole batch (rel. error < 1e-12):", err < 1e-12)"""),
    (MD, """\
The same `train` function also runs on **simulated ranks** (threads of this notebook taking turns; each rank's
compute is its own CPU time, each all-reduce is timed by the simulator on a topology — here two A100s on an
NVSwitch). Below, the measured timeline of the real run above the simulated one: lane `rank r` is compute,
lane `rank r comm` the bucket all-reduces running beside the backward pass."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
sim = dist.run(train, nprocs=2, timeout=120, backend="sim")
dp_view = TimelineView({"measured: 2 MPI processes on this machine": real, "simulated: 2 A100s on NVSwitch": sim})
dp_view"""),
    (CODE, """\
print(dp_view.summary())
print("simulated ranks end with the same parameters:", all(np.array_equal(s[0], r[0]) for s, r in zip(sim, real)))"""),
    (MD, """\
On a laptop the MPI processes share a couple of cores, so "overlap" competes for the same CPU; on GPUs the
all-reduce runs on its own engines. The simulator predicts what bucket size and overlap buy on real hardware:
a step of GPT-2 small's 48 weight matrices (fp16 gradients) on 8 A100s, with and without overlap."""),
    (CODE, """\
h, tokens = 768, 8 * 1024                     # GPT-2 small: 12 layers of hidden 768; a batch of 8 x 1024 tokens
matrices = {"qkv": 3 * h * h, "proj": h * h, "fc1": 4 * h * h, "fc2": 4 * h * h}
gpt_small = [(f"layer {i} {name}", 2 * n, 2.0 * n * tokens) for i in range(12) for name, n in matrices.items()]
a100 = dist.Topology.preset("dgx_a100")
for overlap in (False, True):
    for cap in (1, 25, 200):
        r = simulate_data_parallel(gpt_small, topology=a100, flops_per_s=156e12, bucket_cap_mb=cap, overlap=overlap)
        print(f"overlap {str(overlap):<5} buckets {cap:>3} MiB: {len(r.buckets):>2} buckets, step {r.step_time * 1e3:6.2f} ms, "
              f"communication not hidden {r.exposed_comm * 1e3:5.2f} ms")"""),
    (MD, """\
Without overlap every bucket waits for the whole backward pass, and many small buckets pay one latency α each.
With overlap the all-reduces hide behind the backward pass — except with one giant bucket, which cannot start
before the last gradient exists. PyTorch DDP's default of 25 MiB sits between the two.

## 2. ZeRO: where the memory goes

Mixed-precision Adam keeps per parameter 2 bytes of fp16 weights, 2 bytes of fp16 gradients and K = 12 bytes
of fp32 optimizer state (a master copy of the weights, the momentum and the variance): **16Ψ bytes** for Ψ
parameters, on *every* data-parallel rank. ZeRO removes the redundancy: stage 1 (P_os) shards the optimizer
state over the N_d ranks, stage 2 (P_os+g) also the gradients, stage 3 (P_os+g+p) also the parameters.

### Exercise 11.1 — 16Ψ and the ZeRO stages

Write `zero_memory(params, ndevices, stage)`: model-state bytes per device. The check starts with the ZeRO
paper's own example: Ψ = 7.5 B parameters on N_d = 64 devices."""),
    (CODE, """\
@exercise("11.1")
def zero_memory(params, ndevices, stage):
    \"\"\"Bytes per device of fp16 weights + fp16 gradients + fp32 Adam state under ZeRO stage 0-3.\"\"\"
    raise NotImplementedError("exercise 11.1: 2 + 2 + 12 bytes per parameter, then shard by stage")"""),
    (EXERCISE_DEPENDENT, """\
check("11.1", zero_memory)"""),
    (EXERCISE_DEPENDENT, """\
for stage in range(4):
    print(f"stage {stage}: {zero_memory(7.5e9, 64, stage) / 1e9:6.1f} GB per device")"""),
    (MD, """\
The memory stack per device, for every stage; drag the slider to change the number of data-parallel devices.
The dashed line is an 80 GB A100. Stage 3's cost is communication: it all-gathers the parameters before they are
used, 1.5× the traffic of plain data parallelism (3Ψ instead of 2Ψ per step, in the ZeRO paper's accounting)."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
stack = MemoryStack(7.5e9, ndevices=64, capacity=80e9)
stack"""),
    (CODE, """\
print(stack.summary())"""),
    (MD, """\
ZeRO changes where the state lives, not the arithmetic: on simulated ranks, all three stages end with the same
parameters as plain data parallelism (and as each other, to the bit)."""),
    (CODE, """\
def train_zero(comm, stage):
    k = len(x_all) // comm.size
    x = aisys.tensor(x_all[comm.rank * k:(comm.rank + 1) * k])
    y = aisys.tensor(y_all[comm.rank * k:(comm.rank + 1) * k])
    model = make_mlp()
    opt = ZeroOptimizer(model, comm, stage=stage, lr=1e-2)
    for _ in range(3):
        if stage == 3:
            opt.gather_parameters()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad()
    return np.concatenate([p.numpy().ravel() for p in model.parameters()]), opt.shard_elements

for stage in (1, 2, 3):
    res = dist.run(train_zero, nprocs=4, args=(stage,), timeout=120, backend="sim")
    err = max(np.abs(params - one).max() / np.abs(one).max() for params, _ in res)
    print(f"ZeRO-{stage} on 4 ranks: shards of {[s for _, s in res]} elements, equal to one process: {err < 1e-12}")"""),
    (MD, """\
## 3. Tensor parallel: one MLP block, one all-reduce

Megatron-LM splits Y = act(X·A)·B over p ranks: A by its **columns** (each rank computes its slice of the
hidden layer — no communication), B by its **rows** (each rank multiplies its hidden slice by its rows of B,
giving a *partial* Y). The partial Ys add up to Y: exactly **one all-reduce** per MLP block in the forward pass.

### Exercise 11.2 — the tensor-parallel MLP

Write `tp_mlp_forward(comm, x, w1, b1, w2, b2)` with a ReLU: this rank holds rows `w1`/`b1` of the first
Linear (out_features split) and columns `w2` of the second (in_features split); the bias `b2` is whole. Use
`comm.allreduce`. The check runs your function on 2, 3 and 4 simulated ranks and compares with one device."""),
    (CODE, """\
@exercise("11.2")
def tp_mlp_forward(comm, x, w1, b1, w2, b2):
    \"\"\"y = relu(x @ W1.T + B1) @ W2.T + B2 computed from this rank's shards with one all-reduce.\"\"\"
    raise NotImplementedError("exercise 11.2: local hidden slice, partial output, one all-reduce, bias once")"""),
    (EXERCISE_DEPENDENT, """\
check("11.2", tp_mlp_forward)"""),
    (MD, """\
The library's `TensorParallelMLP` does the same inside aisys autograd, so the backward pass works too; it
equals one device in the output and in every gradient, with one all-reduce in the forward pass:"""),
    (CODE, """\
from aisys.dist.tensor_parallel import TensorParallelMLP

rng = np.random.default_rng(1)
w1, b1, w2, b2, xs = (rng.standard_normal((24, 8)), rng.standard_normal(24), rng.standard_normal((6, 24)),
                      rng.standard_normal(6), rng.standard_normal((5, 8)))

def tp(comm):
    mlp = TensorParallelMLP.from_arrays(comm, w1, b1, w2, b2, activation="relu")
    before = comm.calls
    y = mlp(aisys.tensor(xs))
    calls = comm.calls - before
    (y * y).sum().backward()
    return y.numpy(), calls, mlp.fc1.weight.grad.numpy(), mlp.fc1.rows

fc1, fc2 = nn.Linear(8, 24, dtype=aisys.float64), nn.Linear(24, 6, dtype=aisys.float64)
with aisys.no_grad():
    fc1.weight.copy_(w1), fc1.bias.copy_(b1), fc2.weight.copy_(w2), fc2.bias.copy_(b2)
y_one = fc2(F.relu(fc1(aisys.tensor(xs))))
(y_one * y_one).sum().backward()
for p in (2, 4):
    res = dist.run(tp, nprocs=p, timeout=120, backend="sim")
    same = all(np.allclose(y, y_one.numpy(), rtol=1e-12) and np.allclose(g, fc1.weight.grad.numpy()[a:b], rtol=1e-12)
               for y, _, g, (a, b) in res)
    print(f"{p} ranks: output and gradients equal one device: {same}; collectives in the forward pass: "
          f"{sorted({c for _, c, _, _ in res})}")"""),
    (MD, """\
## 4. Pipeline parallel: the bubble

Cut the model into p stages on p devices and the batch into m micro-batches. Stage s can run micro-batch i's
forward only after stage s−1, and its backward only after stage s+1: at the start and the end of every step
some stages wait. GPipe runs all m forwards, then all m backwards; **1F1B** runs p−s−1 warm-up forwards and then
alternates one forward, one backward. Both idle for the same share of the step, the **bubble** (p−1)/(m+p−1),
but 1F1B keeps at most p−s micro-batches' activations alive instead of m.

### Exercise 11.3 — the 1F1B order

Write `one_f_one_b(p, m, stage)`: stage `stage`'s list of `("F", i)` and `("B", i)`. The check simulates the
whole pipeline with your order (a deadlock is reported), and measures its bubble and its activation memory."""),
    (CODE, """\
@exercise("11.3")
def one_f_one_b(p, m, stage):
    \"\"\"The 1F1B order of one pipeline stage: warm-up forwards, one-forward-one-backward, cool-down backwards.\"\"\"
    raise NotImplementedError("exercise 11.3: p-stage-1 forwards, then alternate, then the remaining backwards")"""),
    (EXERCISE_DEPENDENT, """\
check("11.3", one_f_one_b)"""),
    (EXERCISE_DEPENDENT, """\
mine = simulate_pipeline(4, 8, order=[one_f_one_b(4, 8, s) for s in range(4)])
print(mine.summary())"""),
    (EXERCISE_DEPENDENT, """\
# NBVAL_IGNORE_OUTPUT
TimelineView({"your 1F1B order, 4 stages, m = 8": mine})"""),
    (MD, """\
**Watch the bubble shrink**: a 4-stage 1F1B pipeline, backward twice as long as forward. Drag the slider to add
micro-batches: the grey gaps at the start and the end stay the same size while the useful work grows."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
bubbles = TimelineView(sweep=("micro-batches m", [1, 2, 4, 8, 16, 32],
                              lambda m: {f"1F1B, 4 stages, m = {m}": simulate_pipeline(4, m, "1f1b")}))
bubbles"""),
    (CODE, """\
print(bubbles.summary())
for m in (1, 2, 4, 8, 16, 32):
    print(f"m = {m:>2}: simulated bubble {simulate_pipeline(4, m).bubble:.3f}, (p-1)/(m+p-1) = {bubble_fraction(4, m):.3f}")"""),
    (MD, """\
And for real: a 4-layer tanh network cut into stages on MPI processes, activations and their gradients sent
between them with `comm.isend` / `comm.recv`, one micro-batch at a time in 1F1B order. The gradients equal
one device's (each micro-batch's loss is divided by m, so the accumulated gradients are the whole batch's)."""),
    (CODE, """\
from aisys.dist.pipeline import pipeline_step

rng = np.random.default_rng(2)
layer_weights = [(rng.standard_normal((8, 8)) * 0.5, rng.standard_normal(8) * 0.5) for _ in range(4)]
xp, yp = rng.standard_normal((8, 8)), rng.integers(0, 8, 8)

def build(layers):
    mods = []
    for w, b in layers:
        lin = nn.Linear(8, 8, dtype=aisys.float64)
        with aisys.no_grad():
            lin.weight.copy_(w), lin.bias.copy_(b)
        mods += [lin, nn.Tanh()]
    return nn.Sequential(*mods)

def pipeline(comm):
    per = 4 // comm.size
    stage = build(layer_weights[comm.rank * per:(comm.rank + 1) * per])
    loss = pipeline_step(comm, stage, aisys.tensor(xp) if comm.rank == 0 else None,
                         aisys.tensor(yp) if comm.rank == comm.size - 1 else None, F.cross_entropy,
                         micro_batches=4, kind="1f1b")
    return loss, [p.grad.numpy() for p in stage.parameters()]

piped = dist.run(pipeline, nprocs=2, timeout=120)
whole = build(layer_weights)
F.cross_entropy(whole(aisys.tensor(xp)), aisys.tensor(yp)).backward()
grads = [g for _, gs in piped for g in gs]
print("2-stage pipeline on MPI, gradients equal one device:",
      all(np.allclose(a, p.grad.numpy(), rtol=1e-12, atol=1e-14) for a, p in zip(grads, whole.parameters())))"""),
    (MD, """\
## 5. Putting it together: the planner (自动并行)

Given a model, a cluster and a device, `plan` tries every layout — dp·tp·pp = devices, tensor parallel inside a
node, pipeline stages dividing the layers — and every ZeRO stage, prices compute, the pipeline bubble and each
kind of communication on the topology's own links, checks the memory per device, and ranks them. Here a
GPT-style model of 48 layers and hidden size 8192 on 8 DGX A100 nodes (64 GPUs, InfiniBand between nodes):"""),
    (CODE, """\
model = ModelSpec.gpt(layers=48, hidden=8192, seq_len=2048, global_batch=512)
report = plan(model, dist.Topology.cluster(8, 8), "a100_80gb")
print(f"{model.params / 1e9:.1f} B parameters")
print(report.table(8))
print()
print(report.explain())"""),
    (MD, """\
## Summary

- **Data parallel** = one all-reduce of the gradients per step; buckets trade latency against overlap, and the
  result equals one device on the whole batch.
- **ZeRO** removes the 16Ψ redundancy stage by stage — down to 16Ψ/N_d per device at stage 3 — without changing
  the arithmetic.
- **Tensor parallel** splits a layer's matrices: one all-reduce per MLP block forward, fast links needed.
- **Pipeline parallel** splits the layers: a bubble of (p−1)/(m+p−1), shrunk by more micro-batches; 1F1B
  bounds the activations in flight.
- The best layout depends on the model, the memory and the interconnect — the planner says which and why."""),
]


def build():
    return labcells.build(CELLS, "lab11")


if __name__ == "__main__":
    labcells.main(CELLS, "lab11", DEFAULT_OUT, sys.argv)
