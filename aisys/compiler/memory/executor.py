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
from aisys.framework.graph import Graph
from aisys.framework.interpreter import Interpreter, evaluate_node

from .liveness import buffer_name
from .records import MemoryPlan
from .offset_planners import Planner


class ArenaExecutor(Interpreter):
    """Runs ``graph`` in ``plan.schedule`` with all planned tensors inside one arena.

    ``ArenaExecutor(graph)`` plans with greedy_by_size; pass ``plan=`` to use your own plan (it must
    come from ``plan_memory`` on this graph), or ``planner=``/``inplace=``/... to plan here.
    ``clock="steps"`` records a deterministic trace (op ``s`` spans [s, s+1]); "wall" (default)
    records measured microseconds.
    """

    def __init__(self, graph: Graph, plan: MemoryPlan | None = None, *, planner: str | Planner = "greedy_by_size",
                 clock: str = "wall", **plan_kwargs):
        import aisys.framework.ops  # noqa: F401  (fills the op registry the interpreter reads)
        from .graph_planning import plan_memory

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
        super().__init__(graph)
        self.plan, self.clock = plan, clock
        self.schedule_ids = list(plan.schedule)
        self._slots = {}                            # node id -> (offset, nbytes)
        for b in plan.buffers:
            nid = int(b.name.lstrip("%"))
            node = graph.nodes.get(nid)
            if node is None or node.nbytes != b.size:
                raise ValueError(f"plan buffer {b.name!r} ({b.size} B) does not match graph {graph.name!r}"
                                 f"{'' if node is None else f' (node is {node.nbytes} B)'}; re-plan this graph")
            self._slots[nid] = (b.offset, b.size)
        missing = [i for i in self.schedule_ids if i not in self._slots]
        if missing:
            raise ValueError(f"plan has no buffer for scheduled node(s) {', '.join('%' + str(i) for i in missing[:5])}")
        self.arena = np.zeros(plan.peak_bytes, dtype=np.uint8)
        self.trace: Trace | None = None
        self._born_at, self._freed_after = _allocation_steps(plan, graph, len(self.schedule_ids))
        self._last_step = {int(b.name[1:]): b.end for b in plan.buffers}
        self._inplace_out = {dst for _, dst in plan.inplace}

    def view(self, nid: int) -> np.ndarray:
        """The arena bytes of node ``nid`` as an array of its dtype and shape (no copy)."""
        node = self.graph.nodes[nid]
        off, size = self._slots[nid]
        return self.arena[off:off + size].view(node.dtype.np).reshape(node.shape)

    def run(self, *inputs, params: dict | None = None) -> list[np.ndarray]:
        """Execute once; returns the outputs (copied out of the arena) and sets ``self.trace``."""
        g = self.graph
        self.trace = Trace(f"arena run of {g.name}", unit="us" if self.clock == "wall" else "steps")
        self._live = sum(b.padded(self.plan.alignment) for b in self.plan.buffers if g.nodes[int(b.name[1:])].is_leaf)
        self.trace.add_counter("live bytes", 0, self._live)
        self._t0 = time.perf_counter_ns()
        self._start, self._step = 0.0, 0
        return super().run(*inputs, params=params)

    # ---- the interpreter's pieces: values live in the arena ------------------------------------------
    def schedule(self):
        return [self.graph.nodes[i] for i in self.schedule_ids]

    def write(self, node, value) -> None:
        if node.id in self._slots:
            np.copyto(self.view(node.id), value)   # a leaf copied in, or a fresh result (or a view of another slot)
        else:
            self.values[node.id] = value            # leaves not planned in the arena stay where they are

    def read(self, i: int):
        return self.view(i) if i in self._slots else self.values[i]

    def output(self, i: int):
        return np.array(self.read(i))

    def _now(self, step: int, end: bool) -> float:
        return (time.perf_counter_ns() - self._t0) / 1e3 if self.clock == "wall" else step + end

    def execute(self, node, args):
        step = self._step
        self._start = self._now(step, False)
        self._live += self._born_at[step]
        self.trace.add_counter("live bytes", self._start, self._live)
        return evaluate_node(node, args)

    def after(self, step: int, node) -> None:
        end = self._now(step, True)
        off, size = self._slots[node.id]
        self.trace.add_event("cpu", f"{node.op} %{node.id}", self._start, end, node=node.id, op=node.op, offset=off,
                             bytes=size, until_step=self._last_step[node.id], allocated=self._born_at[step],
                             freed=self._freed_after[step], inplace=buffer_name(node.id) in self._inplace_out)
        self._live -= self._freed_after[step]
        self.trace.add_counter("live bytes", end, self._live)
        self._step = step + 1


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
