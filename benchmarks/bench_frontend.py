"""Graph capture costs: how long tracing and scripting take, and how a captured graph runs, against eager.

    .venv/bin/python benchmarks/bench_frontend.py

Rows: an MLP forward (batch 64, 784-256-10), a whole MLP training step (forward + backward + SGD), and the
lecture's RNN cell. Columns are times relative to one eager run of the same program:
  trace      aisys.trace (one eager run under the tracer + graph building)
  script     aisys.script compile (tokens, ast, semantic pass, lowering on placeholder tensors)
  interpret  aisys.framework.graph.interpret of the captured graph (numpy references, no autodiff bookkeeping)
  run_graph  aisys.frontend.run_graph (op by op through apply: autodiff- and tracer-visible)
Ratios > 1 are slower than eager. Capture is paid once; interpret is what a static executor pays per call.
"""
from __future__ import annotations

import os
import sys
import timeit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import aisys  # noqa: E402
from aisys.framework.graph import interpret  # noqa: E402
from aisys.frontend import run_graph, script  # noqa: E402

aisys.manual_seed(0)
W1, b1 = aisys.randn(784, 256) * 0.05, aisys.zeros(256)
W2, b2 = aisys.randn(256, 10) * 0.05, aisys.zeros(10)
for t in (W1, b1, W2, b2):
    t.requires_grad_(True)
W_h = aisys.tensor(np.random.default_rng(3).standard_normal((64, 64)).astype(np.float32))
W_x = aisys.tensor(np.random.default_rng(4).standard_normal((64, 32)).astype(np.float32))


def mlp(x):
    h = (x @ W1 + b1).relu()
    return h @ W2 + b2


def train_step(x):
    loss = (mlp(x) ** 2.0).mean()
    loss.backward()
    with aisys.no_grad():
        for p in (W1, b1, W2, b2):
            p.assign_(p - 0.01 * p.grad)
            p.grad = None
    return loss


def rnn_cell(x, prev_h):
    h2h = W_h @ prev_h.T
    if h2h.sum() > 0:
        i2h = W_x @ x.T
        h2h = h2h + i2h
    next_h = h2h.tanh()
    return next_h


def best(fn, number=5, repeat=5) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def row(name, fn, args, scriptable=True):
    snapshot = [t.numpy().copy() for t in (W1, b1, W2, b2)]
    eager = best(lambda: fn(*args))
    for t, v in zip((W1, b1, W2, b2), snapshot):      # the training step changed the weights: put them back
        t._data[...] = v
    traced = best(lambda: aisys.trace(fn, *args), number=2)
    graph = aisys.trace(fn, *args)
    scripted = best(lambda: script(fn, *args), number=2) if scriptable else float("nan")
    interp = best(lambda: interpret(graph, *args))
    with aisys.no_grad():
        rg = best(lambda: run_graph(graph, *args))
    print(f"{name:<22} {eager * 1e3:9.3f} ms {traced / eager:8.2f} {scripted / eager:8.2f} "
          f"{interp / eager:10.2f} {rg / eager:10.2f}   ({len(graph.op_nodes)} ops)")


if __name__ == "__main__":
    x = aisys.randn(64, 784)
    xr, hr = aisys.randn(1, 32), aisys.randn(1, 64)
    print(f"{'program':<22} {'eager':>12} {'trace':>8} {'script':>8} {'interpret':>10} {'run_graph':>10}")
    row("MLP forward", mlp, [x])
    row("MLP training step", train_step, [x], scriptable=False)
    row("RNN cell (lab 03)", rnn_cell, [xr, hr])
