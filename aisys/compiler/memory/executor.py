"""The arena executor (执行器): run a graph op by op with every intermediate living inside ONE
preallocated numpy byte array at the offset its memory plan chose.

This is how inference runtimes avoid calling malloc per tensor: plan once, allocate once, then each
op writes into a view ``arena[offset : offset + nbytes]`` reinterpreted with the tensor's dtype and
shape. If the plan were wrong — two live tensors sharing bytes — a later op would read a clobbered
input and the result would differ from the plain interpreter, which is what the tests check.

Each run records a :class:`~aisys.framework.events.Trace`: one event per op on lane "cpu" (with
its result's offset and bytes, the step its result is last read at, the bytes it allocated and the
bytes freed after it), and a "live bytes" counter — enough to redraw the memory timeline.
"""
from __future__ import annotations

import time

import numpy as np

from aisys.framework.events import Trace
from aisys.framework.graph import Graph, evaluate_node

from .liveness import buffer_name
from .plan import MemoryPlan
from .planners import Planner


class ArenaExecutor:
    """Runs ``graph`` in ``plan.schedule`` with all planned tensors inside one arena.

    ``ArenaExecutor(graph)`` plans with greedy_by_size; pass ``plan=`` to use your own plan (it must
    come from ``plan_memory`` on this graph), or ``planner=``/``inplace=``/... to plan here.
    ``clock="steps"`` records a deterministic trace (op ``s`` spans [s, s+1]); "wall" (default)
    records measured microseconds.
    """

    def __init__(self, graph: Graph, plan: MemoryPlan | None = None, *, planner: str | Planner = "greedy_by_size",
                 clock: str = "wall", **plan_kwargs):
        import aisys.framework.ops  # noqa: F401  (fills the op registry the interpreter reads)
        from .planning import plan_memory

        if clock not in ("wall", "steps"):
            raise ValueError(f"clock must be 'wall' (measured microseconds) or 'steps' (deterministic), got {clock!r}")
        if plan is None:
            plan = plan_memory(graph, planner, **plan_kwargs)
        elif plan_kwargs:
            raise ValueError(f"pass either plan= or planning options ({', '.join(plan_kwargs)}), not both")
        if plan.schedule is None:
            raise ValueError("this plan has no schedule (it was made from bare buffers); make it with "
                             "plan_memory(graph, ...) so the executor knows which node runs at each step")
        plan.validate()                             # never run on a placement that clobbers live data
        self.graph, self.plan, self.clock = graph, plan, clock
        self.schedule = list(plan.schedule)
        self._slots = {}                            # node id -> (offset, nbytes)
        for b in plan.buffers:
            nid = int(b.name.lstrip("%"))
            node = graph.nodes.get(nid)
            if node is None or node.nbytes != b.size:
                raise ValueError(f"plan buffer {b.name!r} ({b.size} B) does not match graph {graph.name!r}"
                                 f"{'' if node is None else f' (node is {node.nbytes} B)'}; re-plan this graph")
            self._slots[nid] = (b.offset, b.size)
        missing = [i for i in self.schedule if i not in self._slots]
        if missing:
            raise ValueError(f"plan has no buffer for scheduled node(s) {', '.join('%' + str(i) for i in missing[:5])}")
        self.arena = np.zeros(plan.peak_bytes, dtype=np.uint8)
        self.trace: Trace | None = None
        self._born_at, self._freed_after = _allocation_steps(plan, graph, len(self.schedule))
        self._last_step = {int(b.name[1:]): b.end for b in plan.buffers}

    def view(self, nid: int) -> np.ndarray:
        """The arena bytes of node ``nid`` as an array of its dtype and shape (no copy)."""
        node = self.graph.nodes[nid]
        off, size = self._slots[nid]
        return self.arena[off:off + size].view(node.dtype.np).reshape(node.shape)

    def run(self, *inputs, params: dict | None = None) -> list[np.ndarray]:
        """Execute once; returns the outputs (copied out of the arena) and sets ``self.trace``."""
        g = self.graph
        if len(inputs) != len(g.inputs):
            raise ValueError(f"graph {g.name!r} takes {len(g.inputs)} inputs "
                             f"({', '.join(g.nodes[i].name for i in g.inputs)}), got {len(inputs)}")
        outside: dict[int, np.ndarray] = {}         # leaves not planned in the arena
        for i, x in zip(g.inputs, inputs):
            node = g.nodes[i]
            arr = np.asarray(x._data if hasattr(x, "_data") else x)
            if tuple(arr.shape) != tuple(node.shape):
                raise ValueError(f"input {node.name!r} expects shape {tuple(node.shape)}, got {tuple(arr.shape)}")
            outside[i] = arr.astype(node.dtype.np, copy=False)
        for n in g.nodes.values():
            if n.op in ("param", "const"):
                outside[n.id] = params[n.name] if params and n.name in params else n.value
        for nid in list(outside):                   # leaves planned in the arena are copied in first
            if nid in self._slots:
                np.copyto(self.view(nid), outside.pop(nid))

        def read(j: int) -> np.ndarray:
            return self.view(j) if j in self._slots else outside[j]

        trace = Trace(f"arena run of {g.name}", unit="us" if self.clock == "wall" else "steps")
        align = self.plan.alignment
        live = sum(b.padded(align) for b in self.plan.buffers if g.nodes[int(b.name[1:])].is_leaf)
        trace.add_counter("live bytes", 0, live)
        t0 = time.perf_counter_ns()
        inplace_out = {dst for _, dst in self.plan.inplace}
        for s, nid in enumerate(self.schedule):
            n = g.nodes[nid]
            start = (time.perf_counter_ns() - t0) / 1e3 if self.clock == "wall" else s
            live += self._born_at[s]
            trace.add_counter("live bytes", start, live)
            result = evaluate_node(n, [read(j) for j in n.inputs])
            np.copyto(self.view(nid), result)      # result is a fresh array or a view of another slot
            end = (time.perf_counter_ns() - t0) / 1e3 if self.clock == "wall" else s + 1
            off, size = self._slots[nid]
            trace.add_event("cpu", f"{n.op} %{nid}", start, end, node=nid, op=n.op, offset=off, bytes=size,
                            until_step=self._last_step[nid],
                            allocated=self._born_at[s], freed=self._freed_after[s],
                            inplace=buffer_name(nid) in inplace_out)
            live -= self._freed_after[s]
            trace.add_counter("live bytes", end, live)
        self.trace = trace
        return [np.array(read(i)) for i in g.outputs]


def _allocation_steps(plan: MemoryPlan, graph: Graph, steps: int) -> tuple[list[int], list[int]]:
    """Padded bytes that become live at each step, and that die after each step.

    Graph leaves planned in the arena are live before step 0 (not counted here); outputs never die.
    An in-place output reuses its input's bytes: it adds nothing when born, and its input frees only
    what the output does not keep. The running sum then equals ``plan.live_bytes()`` step by step.
    """
    a = plan.alignment
    born, freed = [0] * steps, [0] * steps
    for b in plan.buffers:
        if not graph.nodes[int(b.name[1:])].is_leaf:
            born[b.start] += b.padded(a)
        if b.end < steps - 1:
            freed[b.end] += b.padded(a)
    for src, dst in plan.inplace:
        x, y = plan.buffer(src), plan.buffer(dst)
        born[y.start] -= y.padded(a)
        if x.end < steps - 1:
            freed[x.end] -= y.padded(a)
    return born, freed


def run_in_arena(graph: Graph, *inputs, plan: MemoryPlan | None = None, **kwargs) -> tuple[list[np.ndarray], Trace]:
    """One planned run: ``(outputs, trace)``. Keyword arguments go to :class:`ArenaExecutor`."""
    ex = ArenaExecutor(graph, plan, **kwargs)
    outs = ex.run(*inputs)
    return outs, ex.trace
