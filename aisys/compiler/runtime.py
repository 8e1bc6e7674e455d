"""Run an optimized graph from one planned arena: fused nodes through their generated kernels, everything
else through the registry's numpy references (the same executable spec ``interpret`` uses).

Where the values live (内存复用, the memory plan put to work):
  * the graph is planned once (``plan_memory``, greedy by size) and every op result has a slot at its
    planned offset in one :class:`Arena` — a byte buffer allocated once and reused by every call, so a
    call allocates (and page-faults) nothing for its intermediates;
  * fused kernels write straight into their slot (``out=``), and so does every op whose registry entry
    can compute into a given array (``ref_into``: ``np.matmul(..., out=)``), including a matmul/conv
    epilogue's anchor, which the epilogue then updates in place;
  * a *view* op (the registry says it does no work: zero cost, or a chip lowering that is only addressing —
    a transpose, a reshape, a broadcast) gets no slot: its result is a view of
    its source's slot, and the plan keeps that slot alive until the view's last reader (so a matmul reads
    a transposed operand in place, as eager BLAS calls do);
  * any other op runs its reference; a fresh result is kept as it is (freed after its last reader), and
    a result that unexpectedly views an arena slot is copied into its own slot, since the slot it views
    may be reused once its producer is dead;
  * an output the caller keeps is written by its kernel (or ``ref_into``) straight into an array the caller
    then owns — no copy out of the arena. Each such output has up to two of these buffers
    (:class:`OutputBuffers`), and a call reuses one only when nobody holds it any more: not the array, a
    view, a slice, a Tensor around it (``sys.getrefcount`` of the buffer is back to the executable's own
    references; every numpy view holds a reference to the array that owns its memory). So ``y = f(x)`` in a
    loop alternates between two buffers that are already paged in, and a result the caller still holds is
    never overwritten. Other outputs are handed out as they are when this call made them and nothing else
    points at them, else copied. ``output_views=True`` returns views into the arena instead — no copy, but
    **valid only until the next call**, which overwrites them.

An arena may be shared by several executables (a compiled function's specializations for different input
shapes): it grows to the largest plan when a bigger one binds to it and every executable re-binds its
slots on its next run. ``backend="reference"`` interprets fused nodes through their bodies instead of
compiling them — the ground truth the numba kernels are tested against.
"""
from __future__ import annotations

import sys

import numpy as np

from ..framework import dtypes
from ..framework.graph import Graph
from ..framework.interpreter import Interpreter
from ..framework.registry import get as get_op
from .codegen import build_kernel
from .memory.liveness import buffers_of, default_schedule, step_labels
from .memory.offset_planners import plan_buffers
from .memory.records import Buffer, MemoryPlan
from .metrics import is_view

BACKENDS = ("numba", "reference")
ARENA_ALIGNMENT = 64
# an epilogue over fewer elements runs in place (the kernel's own bind): its unvectorized loop costs less than
# the split's extra Python (~0.3 µs; the split saves ~0.17 ns per element: 35 µs of 62 on 200,704 elements)
SPLIT_EPILOGUE_ELEMENTS = 4096


class Arena:
    """One block of bytes that planned values live in; grows (never shrinks) to the largest plan bound to it.

    ``generation`` counts re-allocations (an executable re-binds its slot views when it changed);
    ``allocations`` is how many times bytes were actually allocated."""

    def __init__(self, nbytes: int = 0):
        self.buffer = np.empty(0, np.uint8)
        self.generation = 0
        self.allocations = 0
        if nbytes:
            self.reserve(nbytes)

    @property
    def nbytes(self) -> int:
        return int(self.buffer.size)

    def reserve(self, nbytes: int) -> None:
        """Make room for ``nbytes`` (64-byte aligned); the old contents are not kept."""
        if nbytes > self.buffer.size:
            raw = np.empty(nbytes + ARENA_ALIGNMENT, np.uint8)
            skip = (-raw.ctypes.data) % ARENA_ALIGNMENT
            self.buffer = raw[skip:skip + nbytes]
            self.generation += 1
            self.allocations += 1

    def holds(self, a: np.ndarray) -> bool:
        """Whether ``a`` points into the arena (a slot or a view of one)."""
        return self.buffer.size > 0 and np.may_share_memory(a, self.buffer)

    def __repr__(self) -> str:
        return f"<Arena {self.nbytes} B, allocated {self.allocations}×>"


class OutputBuffers:
    """The arrays one output node's kernel writes into when the caller keeps the result: at most ``KEEP`` of
    them, each with the program step bound to it. ``take()`` returns one nobody outside holds (its reference
    count is back to what the executable's own references make: the list it sits in, the bound kernel's
    views of it), else a new one — replacing the oldest, which stays with whoever holds it."""

    KEEP = 2

    def __init__(self, node, bind):
        self.shape, self.dtype, self._bind = tuple(node.shape), node.dtype.np, bind
        self.entries: list[list] = []            # [array, program step bound to it, reference count when free]
        self._oldest = 0
        self.allocations = 0

    def take(self) -> list:
        for e in self.entries:
            if sys.getrefcount(e[0]) == e[2]:    # no caller holds the array or any view of it
                return e
        e = [np.empty(self.shape, self.dtype), None, 0]
        e[1] = self._bind(e[0])
        e[2] = sys.getrefcount(e[0])             # measured exactly as take() measures it (no local names it)
        self.allocations += 1
        if len(self.entries) < self.KEEP:
            self.entries.append(e)
        else:                                    # all held: the oldest leaves the pool, its holder keeps it
            self.entries[self._oldest] = e
            self._oldest = (self._oldest + 1) % self.KEEP
        return e

    def __repr__(self) -> str:
        return f"<OutputBuffers {self.shape} {np.dtype(self.dtype).name}: {len(self.entries)} kept, allocated {self.allocations}×>"


class Executable(Interpreter):
    """A graph bound to its kernels and its memory plan. ``run(*inputs) -> list of output arrays``.

    ``arena``: share an :class:`Arena` (default: a new one); ``output_views``: return outputs as views into
    the arena (valid until the next call) instead of copies. ``plan`` is the memory plan the slots follow.
    """

    what = "compiled graph"
    shape_hint = ("; a compiled graph is specialized to its inputs' shapes — compile again for new shapes (a "
                  "compiled function re-specializes itself)")

    def __init__(self, graph: Graph, backend: str = "numba", *, arena: Arena | None = None,
                 output_views: bool = False):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        super().__init__(graph)
        self.backend = backend
        self.output_views = output_views
        self.kernels = {}
        if backend == "numba":
            self.kernels = {n.id: build_kernel(n) for n in graph.nodes.values() if n.op == "fused"}
        self.plan = runtime_plan(graph)
        self.arena = arena if arena is not None else Arena()
        # a large epilogue kernel's anchor (matmul) computes into one scratch region past the plan, read by the
        # epilogue only, so the epilogue writes its slot from a different array (see _runner): one region serves all
        self._split = {i: k for i, k in self.kernels.items()
                       if _splittable(k) and _numel(graph.nodes[i].shape) >= SPLIT_EPILOGUE_ELEMENTS}
        self._scratch_at = -(-self.plan.peak_bytes // ARENA_ALIGNMENT) * ARENA_ALIGNMENT
        scratch = max((graph.nodes[i].dtype.np.itemsize * _numel(graph.nodes[i].shape) for i in self._split), default=0)
        self.arena.reserve(self._scratch_at + scratch if scratch else self.plan.peak_bytes)
        self._order = [graph.nodes[i] for i in self.plan.schedule]
        read = {i for n in self._order for i in n.inputs} | set(graph.outputs)
        self._leaves = [n for n in graph.nodes.values() if n.op in ("param", "const") and n.id in read]
        self._slots = {int(b.name[1:]): (b.offset, b.size) for b in self.plan.buffers}
        self._aliases = {n.id for n in self._order if n.id not in self._slots}   # views of a slot
        last: dict[int, int] = {}
        for k, n in enumerate(self._order):
            for i in n.inputs:
                last[i] = k
        keep = set(graph.outputs)
        self._free_after: dict[int, list[int]] = {}
        for i, k in last.items():
            if i not in keep and not graph.nodes[i].is_leaf:
                self._free_after.setdefault(k, []).append(i)
        self._bound = None                       # arena generation the slot views were made for
        writes = {n.id for n in self._order if n.id in self.kernels or self._into(n) is not None}
        self._steps = {n.id: k for k, n in enumerate(self._order)}
        self.out_buffers = {i: OutputBuffers(graph.nodes[i], self._bind_step_to(graph.nodes[i]))
                            for i in dict.fromkeys(graph.outputs) if i in writes and i in self._slots}
        self._diverted: list[int] = []           # program steps pointed at an output buffer by the last call

    # ---- what the widgets and tests read ----------------------------------------------------------
    def sources(self) -> dict[int, str]:
        """node id -> generated source, for every fused node."""
        if self.kernels:
            return {i: k.source for i, k in self.kernels.items()}
        return {n.id: build_kernel(n).source for n in self.graph.nodes.values() if n.op == "fused"}

    def slot(self, nid: int) -> np.ndarray:
        """The arena slot of node ``nid``: an array of its dtype and shape at its planned offset (no copy)."""
        self._bind()
        return self._views[nid]

    def input_value(self, node, x):
        """An input of the compiled shape must have the compiled dtype too: the kernels are typed, and a silent
        cast would hide that the caller's values are not what the function was compiled for."""
        arr = np.asarray(x._data if hasattr(x, "_data") else x)
        if tuple(arr.shape) == tuple(node.shape) and arr.dtype != node.dtype.np:
            given = next((d.name for d in dtypes.ALL if d.np == arr.dtype), str(arr.dtype))
            raise TypeError(f"input {node.name!r} was compiled for {node.dtype.name}, got {given}; a compiled "
                            f"function is specialized to its example inputs' dtypes (its kernels are typed) — "
                            f"convert the input (x.to(aisys.{node.dtype.name})) or compile again with this dtype")
        return super().input_value(node, arr)

    # ---- running ------------------------------------------------------------------------------------
    def run(self, *inputs, params: dict | None = None, views: bool | None = None, keep: int | None = None) -> list:
        """Execute once; returns the graph's outputs. The first ``keep`` of them (default: all) are the caller's
        own — written into an output buffer nobody else holds, or made by this call, or copied — and the rest
        are views into the arena, valid until the next call (what a caller that consumes them at once wants:
        a compiled training step copies its state updates into the parameters). ``views=True`` (default
        ``output_views``): every output is an arena view."""
        self._bind()
        views = self.output_views if views is None else views
        kept = 0 if views else len(self.graph.outputs) if keep is None else keep
        program = self._program
        for k in self._diverted:                 # back to the arena slots
            program[k] = self._arena_program[k]
        self._diverted = []
        taken = {}
        for nid in self.graph.outputs[:kept]:
            bufs = self.out_buffers.get(nid)
            if bufs is not None and nid not in taken:
                e = bufs.take()
                k = self._steps[nid]
                program[k] = e[1]
                self._diverted.append(k)
                taken[nid] = e[0]
        try:
            outs = super().run(*inputs, params=params)
        finally:
            self.values = {}                     # hold no result: the buffers' reference counts must drop
        ids = self.graph.outputs
        for k in range(kept):
            if taken.get(ids[k]) is not outs[k]:
                outs[k] = self.hand_out(ids[k], outs[k])
        return outs

    def hand_out(self, nid: int, value):
        """What a caller may keep: ``value`` itself when this run made it and nothing else points at it,
        else a copy (arena slots are overwritten by the next call; leaves and views belong to others; an
        output buffer is handed out by ``run`` itself, and protected by its reference count)."""
        if self.graph.nodes[nid].is_leaf or value.base is not None or self.arena.holds(value):
            return np.array(value)
        return value

    def warmup(self) -> None:
        """Compile (or load from the cache) every kernel now, by running it once on zeros."""
        for i, kern in self.kernels.items():
            n = self.graph.nodes[i]
            kern(*[np.zeros(self.graph.nodes[j].shape, self.graph.nodes[j].dtype.np) for j in n.inputs])

    def node_times(self, *inputs, params: dict | None = None, calls: int = 10) -> list[tuple]:
        """Where a call spends its time: ``[(node, seconds per call), ...]`` slowest first, each program step
        timed over ``calls`` runs (after one untimed run); ``("(outside the nodes)", s)`` is the rest of the
        call — input checks, binding leaves, the step loop itself — measured as the difference."""
        import time
        self.run(*inputs, params=params, views=True)
        self._bind()
        program, spent = self._program, {}

        def timed(step):
            run, ins, nid, dead = step

            def call(args):
                t0 = time.perf_counter()
                out = run(args)
                spent[nid] = spent.get(nid, 0.0) + time.perf_counter() - t0
                return out
            return (call, ins, nid, dead)

        self._program = [timed(step) for step in program]
        try:
            t0 = time.perf_counter()
            for _ in range(calls):
                self.run(*inputs, params=params, views=True)
            total = (time.perf_counter() - t0) / calls
        finally:
            self._program = program
        rows = sorted(((self.graph.nodes[i], t / calls) for i, t in spent.items()), key=lambda r: -r[1])
        return rows + [("(outside the nodes)", total - sum(t for _, t in rows))]

    # ---- the interpreter's pieces ---------------------------------------------------------------------
    def schedule(self):
        return self._order

    def leaves(self):
        return self._leaves

    def execute(self, node, args):
        return self._runners[node.id](args)

    def walk(self) -> None:
        """The step loop over the precompiled program: (runner, input ids, node id, ids that die here)."""
        vals = self.values
        for run, ins, nid, dead in self._program:
            vals[nid] = run([vals[i] for i in ins])
            for i in dead:
                del vals[i]

    def after(self, step: int, node) -> None:
        for i in self._free_after.get(step, ()):          # intermediates die after their last reader
            self.values.pop(i, None)

    def output(self, i: int):
        return self.values[i]                    # run() decides what the caller may keep

    # ---- internals ------------------------------------------------------------------------------------
    def _bind(self) -> None:
        """(Re)make the slot views and the per-node runners when the arena was (re)allocated."""
        if self._bound == self.arena.generation:
            return
        buf, g = self.arena.buffer, self.graph
        self._views = {}
        for nid, (off, size) in self._slots.items():
            n = g.nodes[nid]
            self._views[nid] = buf[off:off + size].view(n.dtype.np).reshape(n.shape)
        at = self._scratch_at
        self._scratch = {i: buf[at:at + g.nodes[i].dtype.np.itemsize * _numel(g.nodes[i].shape)]
                         .view(g.nodes[i].dtype.np).reshape(g.nodes[i].shape) for i in self._split}
        self._runners = {n.id: self._runner(n) for n in self._order}
        self._program = [(self._runners[n.id], n.inputs, n.id, tuple(self._free_after.get(k, ())))
                         for k, n in enumerate(self._order)]
        self._arena_program = list(self._program)
        self._diverted = []
        for bufs in self.out_buffers.values():  # their steps were bound to the old arena's scratch: start afresh
            bufs.entries.clear()                # (the arrays stay with whoever holds them)
        self._bound = self.arena.generation

    def _bind_step_to(self, n):
        """``bind(array) -> program step`` running ``n`` into ``array`` (an output buffer) instead of its slot."""
        k_of = self._steps

        def bind(array):
            k = k_of[n.id]
            return (self._runner(n, array), n.inputs, n.id, tuple(self._free_after.get(k, ())))
        return bind

    def _into(self, n):
        """The registry's ``ref_into`` when ``n`` can compute straight into a given array of its dtype."""
        into = get_op(n.op).ref_into
        if into is not None and all(self.graph.nodes[i].dtype is n.dtype for i in n.inputs):
            return into
        return None

    def _runner(self, n, slot=None):
        ref, attrs, dt = get_op(n.op).ref, n.attrs, n.dtype.np

        def evaluate(args):                          # evaluate_node, with the registry lookups done once
            v = ref(*args, **attrs)
            if type(v) is not np.ndarray:
                v = np.asarray(v)
            return v if v.dtype == dt else v.astype(dt)

        if n.id in self._aliases:                    # a view of its source's slot, kept alive by the plan
            return evaluate
        slot = self._views[n.id] if slot is None else slot
        kern = self.kernels.get(n.id)
        if n.id in self._split:
            return _split_epilogue(kern, self._scratch[n.id], slot)
        if kern is not None:
            return kern.bind(slot)
        into = self._into(n)
        if into is not None:
            return lambda args: into(*args, out=slot, **attrs)
        holds = self.arena.holds

        def reference(args):
            value = evaluate(args)
            if value.base is not None and holds(value):                     # a view of a slot that may be reused: copy it into its own
                np.copyto(slot, value)
                return slot
            return value
        return reference


def _numel(shape) -> int:
    out = 1
    for d in shape:
        out *= int(d)
    return out


def _splittable(kern) -> bool:
    """An epilogue kernel whose anchor can compute into a given array (``ref_into``) of its output's shape."""
    return getattr(kern, "kind", None) == "epilogue" and getattr(kern, "into", None) is not None


def _split_epilogue(kern, scratch: np.ndarray, out: np.ndarray):
    """``call(arrays) -> out`` for an epilogue kernel: the anchor (``np.matmul(..., out=)``) into ``scratch``, then
    the elementwise epilogue from it into ``out``. The kernel's own ``bind`` runs the epilogue in place on the
    anchor's result, and a loop whose output is also its input runs about twice as slowly (numba cannot prove
    the two apart, so the loop is not vectorized: 62 vs 27 µs for the 256×784 SGD update of the MLP step)."""
    into, attrs, anchor_args, feeds = kern.into, kern.anchor.attrs, kern.anchor_args, kern.feeds
    body = kern.epilogue_body
    epilogue = kern.elementwise.bind(out, [tuple(body.nodes[i].shape) for i in body.inputs])

    def call(arrays):
        into(*[arrays[k] for k in anchor_args], out=scratch, **attrs)
        return epilogue([scratch] + [arrays[k] for k in feeds])
    return call


def _may_view(graph: Graph, n) -> bool:
    """Whether the registry says ``n`` does no work of its own (its result may be a view of its input)."""
    return is_view(graph, n) or get_op(n.op).lowering.unit == "addressing"


def runtime_plan(graph: Graph) -> MemoryPlan:
    """The memory plan compiled code runs from: greedy by size over the program order, one slot per op
    result except views (ops the registry says do no work), which share their source's slot — whose
    lifetime is stretched to the view's last reader (or to the end, for an output) — or, viewing an input or
    a parameter, need none. O(n log n)."""
    order = default_schedule(graph)
    bufs = {int(b.name[1:]): b for b in buffers_of(graph, order)}
    root: dict[int, int] = {}
    outside: set[int] = set()                       # views of the caller's arrays (inputs, params): no slot
    for nid in order:
        n = graph.nodes[nid]
        if len(n.inputs) != 1 or not _may_view(graph, n):
            continue
        src = n.inputs[0]
        if graph.nodes[src].is_leaf or src in outside:
            outside.add(nid)
        else:
            root[nid] = root.get(src, src)
    for v, r in root.items():
        b = bufs[r]
        if bufs[v].end > b.end:
            bufs[r] = Buffer(b.name, b.size, b.start, bufs[v].end, op=b.op, kind=b.kind)
    planned = [b for nid, b in bufs.items() if nid not in root and nid not in outside]
    return plan_buffers(planned, "greedy_by_size", alignment=ARENA_ALIGNMENT, steps=step_labels(graph, order),
                        schedule=order)
