"""Choosing the execution order for lower peak memory (调度与内存).

Any topological order computes the same results, but not with the same memory: running a branch to
its end before starting the next frees its tensors early, while running "level by level" keeps
every branch's tensors alive at once. This module builds a few valid orders, measures each with
the live-bytes simulator (the lower bound every planner is judged against), and keeps the best.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from aisys.framework.graph import Graph

from .liveness import default_schedule, graph_buffers
from .records import DEFAULT_ALIGNMENT, format_bytes, live_bytes_profile


def simulate_live_bytes(graph: Graph, schedule: Sequence[int] | None = None,
                        alignment: int = DEFAULT_ALIGNMENT, include_inputs: bool = False) -> list[int]:
    """Bytes alive at each step when ``graph`` runs in ``schedule`` (every tensor freed right after
    its last reader)."""
    bufs = graph_buffers(graph, schedule, include_inputs)
    n = len(schedule) if schedule is not None else len(default_schedule(graph))
    return live_bytes_profile(bufs, n, alignment)


# ---- candidate orders ---------------------------------------------------------------------------
def program_order(graph: Graph) -> list[int]:
    """The order the graph was written (traced) in."""
    return default_schedule(graph)


def depth_first_order(graph: Graph) -> list[int]:
    """Post-order from the outputs: finish each input's whole subgraph before the next input's."""
    live = set(default_schedule(graph))
    order, done = [], set()
    for root in graph.outputs:
        stack = [(root, 0)]
        while stack:
            i, k = stack.pop()
            if i in done or i not in live:
                continue
            ins = graph.nodes[i].inputs
            if k < len(ins):
                stack.append((i, k + 1))
                if ins[k] not in done:
                    stack.append((ins[k], 0))
            else:
                done.add(i)
                order.append(i)
    return order


def breadth_first_order(graph: Graph) -> list[int]:
    """Level by level (all nodes at depth d before depth d+1): wide, usually the worst for memory."""
    depth: dict[int, int] = {}
    for n in graph.nodes.values():
        depth[n.id] = 0 if n.is_leaf else 1 + max((depth[j] for j in n.inputs), default=0)
    pos = {nid: k for k, nid in enumerate(graph.nodes)}
    return sorted(default_schedule(graph), key=lambda i: (depth[i], pos[i]))


def memory_greedy_order(graph: Graph) -> list[int]:
    """List scheduling: among the ready ops, run the one that grows live memory least (bytes it
    allocates minus bytes it frees); ties go to the earlier node in program order."""
    ops = default_schedule(graph)
    opset = set(ops)
    pos = {nid: k for k, nid in enumerate(ops)}
    readers: dict[int, list[int]] = {i: [] for i in graph.nodes}
    for i in ops:
        for j in dict.fromkeys(graph.nodes[i].inputs):
            readers[j].append(i)
    remaining = {i: len(readers[i]) for i in graph.nodes}
    outputs = set(graph.outputs)
    waiting = {i: sum(1 for j in dict.fromkeys(graph.nodes[i].inputs) if j in opset) for i in ops}
    ready = {i for i in ops if waiting[i] == 0}
    nbytes = {i: graph.nodes[i].nbytes for i in graph.nodes}
    freeable = {i: [j for j in dict.fromkeys(graph.nodes[i].inputs) if j in opset and j not in outputs] for i in ops}
    order = []
    while ready:
        def growth(i):
            freed = sum(nbytes[j] for j in freeable[i] if remaining[j] == 1)
            return (nbytes[i] - freed, pos[i])
        best = min(ready, key=growth)
        ready.remove(best)
        order.append(best)
        for j in dict.fromkeys(graph.nodes[best].inputs):
            remaining[j] -= 1
        for r in readers[best]:
            waiting[r] -= 1
            if waiting[r] == 0:
                ready.add(r)
    return order


SCHEDULERS: dict[str, Callable[[Graph], list[int]]] = {
    "program": program_order,
    "depth_first": depth_first_order,
    "memory_greedy": memory_greedy_order,
    "breadth_first": breadth_first_order,
}


@dataclass(frozen=True)
class ScheduleChoice:
    """The order kept (lowest simulated peak; earlier candidate on ties) and every candidate's peak."""
    name: str
    order: tuple[int, ...]
    peaks: dict

    def summary(self) -> str:
        lines = [f"schedule {self.name!r} kept ({len(self.order)} steps); simulated peak live bytes:"]
        for k, v in self.peaks.items():
            lines.append(f"  {k:<14} {format_bytes(v):>10}  ({v} B){'  <- kept' if k == self.name else ''}")
        return "\n".join(lines)


def choose_schedule(graph: Graph, candidates: Sequence[str] = tuple(SCHEDULERS),
                    alignment: int = DEFAULT_ALIGNMENT, include_inputs: bool = False) -> ScheduleChoice:
    """Try each named order, simulate its live bytes, keep the lowest peak."""
    peaks, orders = {}, {}
    for name in candidates:
        if name not in SCHEDULERS:
            raise ValueError(f"unknown schedule {name!r}; candidates are {', '.join(SCHEDULERS)}")
        order = SCHEDULERS[name](graph)
        orders[name] = order
        peaks[name] = max(simulate_live_bytes(graph, order, alignment, include_inputs), default=0)
    best = min(peaks, key=lambda k: peaks[k])          # dicts keep insertion order: ties -> earlier
    return ScheduleChoice(best, tuple(orders[best]), peaks)
