"""Memory planning benchmarks: how close each planner gets to the lower bound, and how fast it plans.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_memory.py [--quick]

Tables printed:
  1. peak ÷ lower bound for each planner on 200 seeded random interval sets (50 buffers each)
  2. the same on training graphs (one traced step: MLP, LeNet-5, a transformer block), plus
     in-place reuse and the best of four schedules
  3. activation checkpointing on a 16-layer training graph: peak vs recomputed ops
  4. planning time for a 1,000-op graph (liveness + offsets), and the arena executor vs the
     plain interpreter
Targets: greedy_by_size within 1.02× of the lower bound on average; planning 1,000 nodes < 0.5 s.
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from aisys.compiler.memory import (PLANNERS, ArenaExecutor, graph_buffers, plan_buffers, plan_memory,
                                   sweep_graph_checkpoints)
from aisys.compiler.memory.recompute import checkpoint_table
from aisys.compiler.memory.workloads import (deep_training_graph, lenet_training_graph, mlp_graph, random_buffers,
                                             random_graph, transformer_block_training_graph)
from aisys.framework.graph import interpret


def best_time(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def random_sets(n_sets: int, n_buffers: int) -> None:
    print(f"\n1. peak / lower bound on {n_sets} seeded random interval sets ({n_buffers} buffers, 64 B aligned)")
    print(f"   {'planner':<15} {'mean':>7} {'median':>7} {'max':>7} {'sets at bound':>14}")
    for name in PLANNERS:
        ratios = []
        for seed in range(n_sets):
            p = plan_buffers(random_buffers(n_buffers, seed), name)
            ratios.append(p.peak_bytes / p.lower_bound_bytes)
        at_bound = sum(r == 1.0 for r in ratios)
        print(f"   {name:<15} {statistics.mean(ratios):>7.3f} {statistics.median(ratios):>7.3f} "
              f"{max(ratios):>7.3f} {at_bound:>10}/{n_sets}")


def training_graphs(quick: bool) -> None:
    graphs = [deep_training_graph(layers=16, width=32, batch=512), lenet_training_graph(batch=32)]
    if not quick:
        graphs.append(transformer_block_training_graph())
    print("\n2. training graphs (one traced step): arena bytes and peak / lower bound")
    print(f"   {'graph':<24} {'ops':>4} {'lower bound':>12} " + " ".join(f"{n:>15}" for n in PLANNERS)
          + f" {'+in-place':>10} {'best sched':>11}")
    for g in graphs:
        plans = {n: plan_memory(g, n) for n in PLANNERS}
        lb = plans["greedy_by_size"].lower_bound_bytes
        inplace = plan_memory(g, "greedy_by_size", inplace=True)
        best = plan_memory(g, "greedy_by_size", schedule="best")
        cells = " ".join(f"{p.peak_bytes / lb:>15.3f}" for p in plans.values())
        print(f"   {g.name:<24} {len(g.op_nodes):>4} {lb:>12} {cells} {inplace.peak_bytes / lb:>10.3f} "
              f"{best.peak_bytes / lb:>11.3f}")
    print("   (in-place and best-schedule columns: greedy_by_size peak ÷ the program-order lower bound)")


def checkpointing() -> None:
    g = deep_training_graph(layers=16, width=32, batch=512)
    print("\n3. activation checkpointing, 16-layer tanh MLP training step (batch 512, width 32)")
    rows = sweep_graph_checkpoints(g, [1, 2, 3, 4, 6, 8, 16])
    for line in checkpoint_table(rows).splitlines():
        print("   " + line)


def planning_time() -> None:
    g = random_graph(0, n_ops=1000, batch=16, width=32)
    bufs = graph_buffers(g)
    print(f"\n4. planning time, random graph with {len(g.op_nodes)} ops ({len(bufs)} live buffers)")
    t_live = best_time(lambda: graph_buffers(g))
    print(f"   liveness                    {t_live * 1e3:8.1f} ms")
    for name in PLANNERS:
        t = best_time(lambda: plan_memory(g, name))
        p = plan_memory(g, name)
        print(f"   plan_memory {name:<15} {t * 1e3:8.1f} ms   peak/lower {p.peak_bytes / p.lower_bound_bytes:.3f}")
    deep = deep_training_graph(layers=110, width=32, batch=64)
    print(f"   training step of a 110-layer MLP, {len(deep.op_nodes)} ops:")
    for name in PLANNERS:
        t = best_time(lambda: plan_memory(deep, name))
        p = plan_memory(deep, name)
        print(f"   plan_memory {name:<15} {t * 1e3:8.1f} ms   peak/lower {p.peak_bytes / p.lower_bound_bytes:.3f}")
    t = best_time(lambda: plan_memory(deep, "greedy_by_size", schedule="best"), 3)
    print(f"   plan_memory greedy_by_size, schedule='best' (4 orders simulated) {t * 1e3:8.1f} ms")
    big = random_buffers(1000, 7)
    for name in PLANNERS:
        t = best_time(lambda: plan_buffers(big, name))
        print(f"   1,000 random intervals, {name:<15} {t * 1e3:8.1f} ms")

    m = mlp_graph(64, (784, 512, 256, 10))
    x = np.random.default_rng(0).standard_normal((64, 784)).astype(np.float32)
    ex = ArenaExecutor(m, planner="greedy_by_size", inplace=True)
    t_arena = best_time(lambda: ex.run(x), 10)
    t_interp = best_time(lambda: interpret(m, x), 10)
    print(f"\n   MLP 784-512-256-10, batch 64: arena run {t_arena * 1e3:.2f} ms vs interpreter "
          f"{t_interp * 1e3:.2f} ms (ratio {t_arena / t_interp:.2f}); arena {ex.plan.peak_bytes} B vs "
          f"{ex.plan.total_bytes} B unplanned")


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    random_sets(50 if quick else 200, 50)
    training_graphs(quick)
    checkpointing()
    planning_time()


if __name__ == "__main__":
    main(sys.argv[1:])
