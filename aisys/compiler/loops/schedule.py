"""Schedules: how to run a compute — loop order, tiling, unrolling, where producers are computed.

A :class:`Schedule` holds one :class:`Stage` per compute (the output and everything it reads that is not
a placeholder). Each primitive is checked before it changes anything; an illegal one raises
:class:`ScheduleError` naming the primitive, the loop and why, and leaves the schedule as it was. Every
successful primitive is recorded as a :class:`Step` (names and numbers only), so ``s.steps`` replays on a
fresh schedule of the same compute (``Schedule(C, steps=s.steps)``), which is how the tuner and the
LoopNestView work.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

from .te import ComputeOp, IterVar, LoopsError, Node, Tensor, compute, substitute, substitute_vars, walk

MAX_UNROLL = 64


class ScheduleError(LoopsError):
    """An illegal schedule step; the schedule is unchanged."""


@dataclass(frozen=True)
class Split:
    parent: IterVar
    outer: IterVar
    inner: IterVar
    factor: int


@dataclass(frozen=True)
class Fuse:
    outer: IterVar
    inner: IterVar
    fused: IterVar


@dataclass(frozen=True)
class Step:
    """One recorded primitive: ``name`` and its arguments as tensor/axis names and numbers."""
    name: str
    args: tuple
    kwargs: tuple = ()

    def __str__(self) -> str:
        parts = [str(a) for a in self.args] + [f"{k}={v}" for k, v in self.kwargs]
        return f"{self.name}({', '.join(parts)})"


class Stage:
    """The loops of one compute: its root ``axes`` and ``reduce_axes``, the current loop order ``leaves``,
    the split/fuse ``relations`` that connect them, each loop's ``kinds``, and where it is computed
    (``attach``: None at the kernel's top level, or (consumer stage, loop); ``inline``)."""

    def __init__(self, tensor: Tensor):
        self.tensor = tensor
        self.name = tensor.name
        self.axes = tuple(tensor.op.axes)
        self.reduce_axes = tuple(tensor.op.reduce_axes)
        self.body = tensor.op.body
        self.leaves: list[IterVar] = list(self.axes) + list(self.reduce_axes)
        self.relations: list = []
        self.kinds: dict[IterVar, str] = {}
        self.made_by: dict[IterVar, str] = {}
        self.attach: tuple | None = None
        self.inline = False

    def _state(self):
        return (self.axes, self.reduce_axes, self.body, list(self.leaves), list(self.relations), dict(self.kinds),
                dict(self.made_by), self.attach, self.inline)

    def _restore(self, st):
        (self.axes, self.reduce_axes, self.body, self.leaves, self.relations, self.kinds, self.made_by,
         self.attach, self.inline) = st

    def reads(self) -> list[Tensor]:
        out = []
        for n in walk(self.body):
            if n.op == "load" and n.value not in out:
                out.append(n.value)
        return out

    def kind_of(self, v: IterVar) -> str:
        return self.kinds.get(v, "serial")

    def is_reduce(self, v: IterVar) -> bool:
        """Whether loop ``v`` runs over (part of) a reduction axis."""
        if v.kind == "reduce":
            return True
        for r in self.relations:
            if isinstance(r, Split) and v in (r.outer, r.inner):
                return self.is_reduce(r.parent)
            if isinstance(r, Fuse) and v is r.fused:
                return self.is_reduce(r.outer)
        return False

    def all_vars(self) -> list[IterVar]:
        out = list(self.axes) + list(self.reduce_axes)
        for r in self.relations:
            out += [r.outer, r.inner] if isinstance(r, Split) else [r.fused]
        return out

    def __repr__(self) -> str:
        where = " inlined" if self.inline else (f" at {self.attach[0].name}.{self.attach[1].name}" if self.attach else "")
        return f"<stage {self.name}: loops {', '.join(v.name for v in self.leaves)}{where}>"


def _stages_of(outputs: list[Tensor]) -> list[Stage]:
    order: list[Tensor] = []
    seen = set()

    def visit(t: Tensor):
        if id(t) in seen or t.op is None:
            return
        seen.add(id(t))
        for p in t.op.inputs():
            visit(p)
        order.append(t)
    for t in outputs:
        visit(t)
    return [Stage(t) for t in order]


class Schedule:
    """The schedule of ``outputs`` (a tensor or a list of tensors made by :func:`compute`)."""

    def __init__(self, outputs, steps=()):
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        for t in outputs:
            if not isinstance(t, Tensor) or t.op is None:
                raise LoopsError(f"Schedule: outputs must be computes (loops.compute), got {t!r}")
        self.outputs = outputs
        self.stages = _stages_of(outputs)
        self.steps: list[Step] = []
        self.replay(steps)

    # ---- looking things up ------------------------------------------------------------------------------
    def __getitem__(self, t) -> Stage:
        name = t.name if isinstance(t, Tensor) else str(t)
        for st in self.stages:
            if st.tensor is t or st.name == name:
                return st
        known = ", ".join(s.name for s in self.stages)
        raise ScheduleError(f"no stage {name!r} in this schedule (stages: {known}); placeholders have no loops")

    @property
    def output(self) -> Stage:
        return self[self.outputs[-1]]

    def _stage_of(self, axis, tensor, prim: str) -> tuple[Stage, IterVar]:
        if isinstance(axis, IterVar):
            for st in self.stages:
                if axis in st.all_vars():
                    return st, axis
            raise ScheduleError(f"{prim}: axis {axis.name!r} belongs to no stage of this schedule (an axis of "
                                f"another compute?)")
        st = self[tensor] if tensor is not None else self.output
        for v in st.all_vars():
            if v.name == axis:
                return st, v
        raise ScheduleError(f"{prim}: stage {st.name} has no loop named {axis!r} (its loops: "
                            f"{', '.join(v.name for v in st.leaves)})")

    def _leaf(self, st: Stage, v: IterVar, prim: str) -> None:
        if v in st.leaves:
            return
        for r in st.relations:
            if isinstance(r, Split) and r.parent is v:
                raise ScheduleError(f"{prim}: loop {v.name!r} of {st.name} no longer exists: a split turned it "
                                    f"into {r.outer.name!r} and {r.inner.name!r}; use those")
            if isinstance(r, Fuse) and v in (r.outer, r.inner):
                raise ScheduleError(f"{prim}: loop {v.name!r} of {st.name} no longer exists: fuse merged it into "
                                    f"{r.fused.name!r}")
        raise ScheduleError(f"{prim}: {v.name!r} is not a loop of {st.name} (loops: "
                            f"{', '.join(x.name for x in st.leaves)})")

    def _fresh(self, st: Stage, name: str) -> str:
        taken = {v.name for v in st.all_vars()}
        base, n = name, 1
        while name in taken:
            n += 1
            name = f"{base}{n}"
        return name

    @contextlib.contextmanager
    def _transaction(self, step: Step):
        saved = ([s._state() for s in self.stages], list(self.stages), list(self.outputs))
        stages = list(self.stages)
        try:
            yield
        except Exception:
            self.stages, self.outputs = saved[1], saved[2]
            for s, st in zip(stages, saved[0]):
                s._restore(st)
            raise
        self.steps.append(step)

    # ---- replay -----------------------------------------------------------------------------------------
    def replay(self, steps) -> "Schedule":
        """Apply recorded steps (from another schedule of the same compute) in order."""
        for step in steps:
            fn = getattr(self, step.name, None)
            if step.name not in PRIMITIVES or fn is None:
                raise ScheduleError(f"replay: unknown primitive {step.name!r} (known: {', '.join(PRIMITIVES)})")
            if step.name in _LOOP_PRIMITIVES:
                fn(*step.args[1:], tensor=step.args[0], **dict(step.kwargs))
            else:
                fn(*step.args, **dict(step.kwargs))
        return self

    def copy(self) -> "Schedule":
        return Schedule(self.outputs, steps=self.steps)

    # ---- loop primitives --------------------------------------------------------------------------------
    def split(self, axis, factor: int | None = None, *, nparts: int | None = None, tensor=None):
        """Split loop ``axis`` into an outer and an inner loop with ``factor`` iterations (or ``nparts``
        outer ones); a factor that does not divide the extent adds a guard. Returns (outer, inner)."""
        st, v = self._stage_of(axis, tensor, "split")
        kw = (("nparts", nparts),) if nparts is not None else ()
        step = Step("split", (st.name, v.name) + ((factor,) if nparts is None else ()), kw)
        with self._transaction(step):
            self._leaf(st, v, f"split({st.name}, {v.name})")
            if (factor is None) == (nparts is None):
                raise ScheduleError(f"split({st.name}, {v.name}): give exactly one of factor= or nparts=")
            n = factor if nparts is None else nparts
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ScheduleError(f"split({st.name}, {v.name}, {n!r}): the {'factor' if nparts is None else 'nparts'} "
                                    f"must be an integer ≥ 1 (loop {v.name} has {v.extent} iterations)")
            if nparts is not None:
                factor = -(-v.extent // nparts)
            return self._do_split(st, v, factor, step)

    def _do_split(self, st, v, factor, step):
        if st.kind_of(v) != "serial":
            raise ScheduleError(f"split({st.name}, {v.name}): loop {v.name} is already {st.kind_of(v)}; split it "
                                f"before annotating")
        outer = IterVar(self._fresh(st, v.name + "o"), -(-v.extent // factor), v.kind)
        inner = IterVar(self._fresh(st, v.name + "i"), min(factor, v.extent), v.kind)
        pos = st.leaves.index(v)
        st.leaves[pos:pos + 1] = [outer, inner]
        st.relations.append(Split(v, outer, inner, factor))
        st.made_by[outer] = st.made_by[inner] = str(step)
        return outer, inner

    def tile(self, x, y, x_factor: int, y_factor: int, tensor=None):
        """Split ``x`` and ``y`` and order the loops (xo, yo, xi, yi): a 2-D tile. Returns the four loops."""
        st, vx = self._stage_of(x, tensor, "tile")
        _, vy = self._stage_of(y, st.tensor, "tile")
        step = Step("tile", (st.name, vx.name, vy.name, x_factor, y_factor))
        with self._transaction(step):
            for v, f in ((vx, x_factor), (vy, y_factor)):
                self._leaf(st, v, f"tile({st.name}, {vx.name}, {vy.name})")
                if not isinstance(f, int) or isinstance(f, bool) or f < 1:
                    raise ScheduleError(f"tile({st.name}, {vx.name}, {vy.name}, {x_factor}, {y_factor}): tile sizes "
                                        f"must be integers ≥ 1 (got {f!r} for {v.name})")
            if vx is vy:
                raise ScheduleError(f"tile({st.name}, {vx.name}, {vy.name}): x and y must be two different loops")
            xo, xi = self._do_split(st, vx, x_factor, step)
            yo, yi = self._do_split(st, vy, y_factor, step)
            self._do_reorder(st, [xo, yo, xi, yi], f"tile({st.name}, {vx.name}, {vy.name})")
            return xo, yo, xi, yi

    def reorder(self, *axes, tensor=None):
        """Put these loops (of one stage) in this order, in the positions they occupy now."""
        if not axes:
            raise ScheduleError("reorder: give the loops to reorder")
        pairs = [self._stage_of(a, tensor, "reorder") for a in axes]
        st = pairs[0][0]
        vs = [v for _, v in pairs]
        step = Step("reorder", (st.name,) + tuple(v.name for v in vs))
        with self._transaction(step):
            if any(p[0] is not st for p in pairs):
                raise ScheduleError(f"reorder({', '.join(v.name for v in vs)}): the loops belong to different stages "
                                    f"({', '.join(sorted({p[0].name for p in pairs}))}); reorder one stage at a time")
            self._do_reorder(st, vs, f"reorder({st.name}, {', '.join(v.name for v in vs)})")

    def _do_reorder(self, st, vs, prim):
        for v in vs:
            self._leaf(st, v, prim)
        if len(set(vs)) != len(vs):
            raise ScheduleError(f"{prim}: a loop appears twice")
        pos = sorted(st.leaves.index(v) for v in vs)
        for p, v in zip(pos, vs):
            st.leaves[p] = v
        for v in st.leaves[:-1]:
            if st.kind_of(v) == "vectorized":
                raise ScheduleError(f"{prim}: the vectorized loop {v.name!r} would no longer be innermost (inner "
                                    f"loops: {', '.join(x.name for x in st.leaves[st.leaves.index(v) + 1:])}); "
                                    f"a vector lane cannot contain a loop")

    def fuse(self, outer, inner, tensor=None):
        """Merge two adjacent loops (outer directly around inner) into one. Returns the fused loop."""
        st, vo = self._stage_of(outer, tensor, "fuse")
        _, vi = self._stage_of(inner, st.tensor, "fuse")
        step = Step("fuse", (st.name, vo.name, vi.name))
        with self._transaction(step):
            prim = f"fuse({st.name}, {vo.name}, {vi.name})"
            self._leaf(st, vo, prim)
            self._leaf(st, vi, prim)
            p = st.leaves.index(vo)
            if p + 1 >= len(st.leaves) or st.leaves[p + 1] is not vi:
                raise ScheduleError(f"{prim}: {vi.name} must be the loop directly inside {vo.name} (order: "
                                    f"{', '.join(v.name for v in st.leaves)}); reorder first")
            if st.is_reduce(vo) != st.is_reduce(vi):
                raise ScheduleError(f"{prim}: cannot fuse a reduction loop with a spatial one (every output element "
                                    f"would be written in the middle of its own reduction)")
            if st.kind_of(vo) != "serial" or st.kind_of(vi) != "serial":
                raise ScheduleError(f"{prim}: fuse loops before annotating them")
            fused = IterVar(self._fresh(st, vo.name + vi.name), vo.extent * vi.extent, vo.kind)
            st.leaves[p:p + 2] = [fused]
            st.relations.append(Fuse(vo, vi, fused))
            st.made_by[fused] = str(step)
            return fused

    def _annotate(self, prim, kind, axis, tensor, check):
        st, v = self._stage_of(axis, tensor, prim)
        step = Step(prim, (st.name, v.name))
        with self._transaction(step):
            self._leaf(st, v, f"{prim}({st.name}, {v.name})")
            check(st, v, f"{prim}({st.name}, {v.name})")
            st.kinds[v] = kind
            st.made_by[v] = str(step)

    def unroll(self, axis, tensor=None):
        """Unroll a loop completely (its extent must be ≤ 64: split a long loop and unroll the inner one)."""
        def check(st, v, prim):
            if st.attach is None and v.extent > MAX_UNROLL:     # a compute_at stage is checked when lowered
                raise ScheduleError(f"{prim}: loop {v.name} has {v.extent} iterations (at most {MAX_UNROLL} unroll); "
                                    f"split it and unroll the inner loop")
        self._annotate("unroll", "unrolled", axis, tensor, check)

    def vectorize(self, axis, tensor=None):
        """Run a loop as SIMD lanes: it must be innermost and carry no dependence from one iteration to the
        next (not a reduction loop), with ≤ 64 lanes."""
        def check(st, v, prim):
            if st.is_reduce(v):
                raise ScheduleError(f"{prim}: {v.name} is a reduction loop: every iteration reads and writes the "
                                    f"same {st.name} element (a loop-carried dependence), so its iterations cannot "
                                    f"run as parallel lanes; vectorize a spatial loop")
            if st.leaves[-1] is not v:
                raise ScheduleError(f"{prim}: {v.name} is not the innermost loop of {st.name} (inner loops: "
                                    f"{', '.join(x.name for x in st.leaves[st.leaves.index(v) + 1:])}); reorder "
                                    f"it innermost first")
            if st.attach is None and v.extent > MAX_UNROLL:
                raise ScheduleError(f"{prim}: {v.name} has {v.extent} iterations; split it to ≤ {MAX_UNROLL} lanes and "
                                    f"vectorize the inner loop")
        self._annotate("vectorize", "vectorized", axis, tensor, check)

    def parallel(self, axis, tensor=None):
        """Run a loop's iterations on several threads (numba ``prange``); not a reduction loop (threads would
        race on the same output element)."""
        def check(st, v, prim):
            if st.is_reduce(v):
                raise ScheduleError(f"{prim}: {v.name} is a reduction loop; parallel iterations would race to "
                                    f"update the same {st.name} element; parallelize a spatial loop")
            if any(st.kind_of(x) == "parallel" for x in st.leaves):
                raise ScheduleError(f"{prim}: {st.name} already has a parallel loop; nested parallel loops run "
                                    f"serially in numba")
        self._annotate("parallel", "parallel", axis, tensor, check)

    # ---- stage primitives -------------------------------------------------------------------------------
    def _readers(self, t: Tensor) -> list[Stage]:
        return [s for s in self.stages if t in s.reads()]

    def compute_inline(self, tensor):
        """Substitute ``tensor``'s expression into every reader, removing its loops and its buffer."""
        st = self[tensor]
        step = Step("compute_inline", (st.name,))
        with self._transaction(step):
            prim = f"compute_inline({st.name})"
            if st.tensor in self.outputs:
                raise ScheduleError(f"{prim}: {st.name} is an output of the schedule; only intermediate tensors "
                                    f"can be inlined")
            if st.reduce_axes:
                raise ScheduleError(f"{prim}: {st.name} is a reduction; inlining it would redo the whole reduction "
                                    f"for every element that reads it; use compute_at instead")
            if st.attach is not None:
                raise ScheduleError(f"{prim}: {st.name} is already computed at {st.attach[0].name}.{st.attach[1].name}")
            if st.relations or st.kinds:
                raise ScheduleError(f"{prim}: {st.name}'s loops were already split/annotated; an inlined stage has no "
                                    f"loops")
            st.inline = True
            for r in self._readers(st.tensor):
                r.body = _inline(r.body, st)

    def compute_at(self, tensor, consumer, axis):
        """Compute ``tensor`` inside ``consumer``'s loop ``axis``: each iteration computes just the part the
        loops inside it read, into a buffer of that size."""
        st = self[tensor]
        cst, v = self._stage_of(axis, consumer, "compute_at")
        if cst is not self[consumer]:
            raise ScheduleError(f"compute_at({st.name}, {self[consumer].name}, {v.name}): {v.name} is a loop of "
                                f"{cst.name}, not of {self[consumer].name}")
        step = Step("compute_at", (st.name, cst.name, v.name))
        with self._transaction(step):
            prim = f"compute_at({st.name}, {cst.name}, {v.name})"
            self._leaf(cst, v, prim)
            if st.tensor in self.outputs:
                raise ScheduleError(f"{prim}: {st.name} is an output; it is computed at the top level")
            if st.inline:
                raise ScheduleError(f"{prim}: {st.name} is inlined; it has no loops to place")
            if st is cst:
                raise ScheduleError(f"{prim}: a stage cannot be computed inside itself")
            readers = self._readers(st.tensor)
            if cst not in readers and not any(_inside(r, cst, v) for r in readers):
                raise ScheduleError(f"{prim}: {cst.name} does not read {st.name}, and no stage computed inside "
                                    f"its loop {v.name} does (readers: {', '.join(r.name for r in readers) or 'none'})")
            for r in readers:
                if r is not cst and not _inside(r, cst, v):
                    raise ScheduleError(f"{prim}: {st.name} is also read by {r.name}, which is not computed inside "
                                        f"{cst.name}'s loop {v.name}; its values would be missing there")
            if _inside(cst, st, None):
                raise ScheduleError(f"{prim}: {cst.name} is computed inside {st.name}: a cycle")
            st.attach = (cst, v)

    def cache_read(self, tensor, readers=None, name: str | None = None) -> Tensor:
        """A local copy of ``tensor`` that ``readers`` read instead (place it with compute_at: packing a
        panel into a contiguous buffer). Returns the new tensor."""
        t = tensor if isinstance(tensor, Tensor) else self._tensor_named(tensor)
        rs = [self[r] for r in (readers if readers is not None else [s.tensor for s in self._readers(t)])]
        name = name or f"{t.name}_local"
        step = Step("cache_read", (t.name, tuple(r.name for r in rs)), (("name", name),))
        with self._transaction(step):
            prim = f"cache_read({t.name}, [{', '.join(r.name for r in rs)}])"
            if not rs:
                raise ScheduleError(f"{prim}: nothing reads {t.name}")
            for r in rs:
                if t not in r.reads():
                    raise ScheduleError(f"{prim}: {r.name} does not read {t.name}")
            if any(s.name == name for s in self.stages):
                raise ScheduleError(f"{prim}: a stage named {name!r} exists; pass name=")
            names = [f"{t.name.lower()}{d}" for d in range(t.ndim)]
            from .te import _named_lambda
            local = compute(t.shape, _named_lambda(names, lambda *ix: t[ix]), name=name, dtype=t.dtype)
            new = Stage(local)
            first = min(self.stages.index(r) for r in rs)
            self.stages.insert(first, new)
            for r in rs:
                r.body = substitute(r.body, lambda n: Node("load", n.args, local)
                                    if n.op == "load" and n.value is t else None)
            return local

    def cache_write(self, tensor, name: str | None = None) -> Tensor:
        """Compute ``tensor`` into a local buffer (``<name>_local``, e.g. a register block of accumulators)
        and copy it out; apply before splitting ``tensor``'s loops. Returns the local tensor."""
        st = self[tensor]
        name = name or f"{st.name}_local"
        step = Step("cache_write", (st.name,), (("name", name),))
        with self._transaction(step):
            prim = f"cache_write({st.name})"
            if st.relations or st.kinds or st.leaves != list(st.axes) + list(st.reduce_axes):
                raise ScheduleError(f"{prim}: apply cache_write before splitting, reordering or annotating "
                                    f"{st.name}'s loops (they would belong to the copy-out, not the computation)")
            if st.inline or st.attach:
                raise ScheduleError(f"{prim}: {st.name} is inlined or computed inside another stage")
            if any(s.name == name for s in self.stages):
                raise ScheduleError(f"{prim}: a stage named {name!r} exists; pass name=")
            fresh = [IterVar(a.name, a.extent) for a in st.axes]
            body = substitute_vars(st.body, dict(zip(st.axes, fresh)))
            local = Tensor(name, st.tensor.shape, st.tensor.dtype, ComputeOp(name, fresh, body))
            new = Stage(local)
            self.stages.insert(self.stages.index(st), new)
            st.body = Node("load", tuple(a.var for a in st.axes), local)
            st.reduce_axes = ()
            st.leaves = list(st.axes)
            return local

    def _tensor_named(self, name):
        for s in self.stages:
            if s.name == name:
                return s.tensor
            for t in s.reads():
                if t.name == name:
                    return t
        raise ScheduleError(f"no tensor named {name!r} in this schedule")

    def __repr__(self) -> str:
        return "<Schedule " + "; ".join(repr(s) for s in self.stages) + f"; {len(self.steps)} steps>"


_LOOP_PRIMITIVES = ("split", "tile", "reorder", "fuse", "unroll", "vectorize", "parallel")
PRIMITIVES = ("split", "tile", "reorder", "fuse", "unroll", "vectorize", "parallel", "compute_at", "compute_inline",
              "cache_read", "cache_write")


def _inline(body: Node, st: Stage) -> Node:
    def rep(n):
        if n.op == "load" and n.value is st.tensor:
            return substitute_vars(st.body, dict(zip(st.axes, n.args)))
        return None
    return substitute(body, rep)


def _inside(r: Stage, cst: Stage, v) -> bool:
    """Whether stage ``r`` is computed inside ``cst`` (below loop ``v`` when given)."""
    seen = set()
    while r.attach is not None and id(r) not in seen:
        seen.add(id(r))
        host, at = r.attach
        if host is cst:
            return v is None or cst.leaves.index(at) >= cst.leaves.index(v) if at in cst.leaves else True
        r = host
    return False

