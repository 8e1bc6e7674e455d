"""Lowering a schedule to the loop IR.

Each stage becomes a loop nest in its leaf order. A root axis that splits/fuses made into several loops is
bound by a ``Let`` (``i = io * 32 + ii``) once its loops are open; a split whose factor does not divide the
extent adds an ``If`` guard. A reduction runs into a one-element accumulator when its loops are innermost,
otherwise the output is initialised by its own nest and updated in place. A stage placed with
``compute_at`` gets a local buffer the size of the region its readers touch in one iteration of the host
loop (found by interval arithmetic over the affine indices) and is computed there.
"""
from __future__ import annotations

from .ir import Allocate, Buffer, For, If, Let, LoweredFunc, Seq, Store, seq
from .schedule import MAX_UNROLL, Schedule, ScheduleError, Split, Stage
from .te import IterVar, LoopsError, Node, Tensor, expr_text, lift, substitute, substitute_vars, walk
from ...framework import dtypes as _dt


# ---- linear forms: index arithmetic simplified ---------------------------------------------------------
def linear(n: Node):
    """(terms {key: [atom, coeff]}, const) with ``n`` = Σ coeff·atom + const, or None if not integer-affine
    (non-affine parts — // and % of non-constants — become atoms)."""
    op = n.op
    if op == "int":
        return {}, n.value
    if op == "var":
        return {id(n.value): [n, 1]}, 0
    if op in ("add", "sub"):
        a, b = linear(n.args[0]), linear(n.args[1])
        if a is None or b is None:
            return None
        s = 1 if op == "add" else -1
        terms = {k: list(v) for k, v in a[0].items()}
        for k, (atom, c) in b[0].items():
            terms.setdefault(k, [atom, 0])[1] += s * c
        return {k: v for k, v in terms.items() if v[1] != 0}, a[1] + s * b[1]
    if op == "mul":
        a, b = linear(n.args[0]), linear(n.args[1])
        if a is None or b is None:
            return None
        if not a[0]:
            a, b = b, a
        if b[0]:
            return {("atom", id(n)): [n, 1]}, 0
        c = b[1]
        return {k: [atom, co * c] for k, (atom, co) in a[0].items() if co * c}, a[1] * c
    if op in ("floordiv", "mod"):
        a, b = linear(n.args[0]), linear(n.args[1])
        if a is None or b is None:
            return None
        if not a[0] and not b[0]:
            return {}, (a[1] // b[1] if op == "floordiv" else a[1] % b[1])
        if not b[0] and b[1] == 1:                      # x // 1 is x, x % 1 is 0 (a fused size-1 loop)
            return a if op == "floordiv" else ({}, 0)
        node = Node(op, (rebuild(a), rebuild(b)))
        return {("atom", expr_text(node)): [node, 1]}, 0
    return None


def rebuild(form) -> Node:
    terms, c = form
    out = None
    for atom, co in terms.values():
        t = atom if co == 1 else Node("mul", (atom, lift(co))) if co > 0 else Node("mul", (atom, lift(-co)))
        if out is None:
            out = t if co > 0 else Node("sub", (lift(0), t)) if co != -1 else Node("sub", (lift(0), atom))
        else:
            out = Node("add" if co > 0 else "sub", (out, t if co != -1 else atom))
    if out is None:
        return lift(int(c))
    if c:
        out = Node("add" if c > 0 else "sub", (out, lift(abs(int(c)))))
    return out


def simplify(n: Node) -> Node:
    f = linear(n)
    return n if f is None else rebuild(f)


def _sub(a, b):
    return linear(Node("sub", (rebuild(a), rebuild(b))))


# ---- interval bounds -----------------------------------------------------------------------------------
def bounds(n: Node, fixed: set, ext: dict):
    """(lo, hi) linear forms of an index over the ranging loops (vars not in ``fixed`` take 0..extent−1)."""
    op = n.op
    if op == "int":
        return ({}, n.value), ({}, n.value)
    if op == "var":
        v = n.value
        if v in fixed:
            f = linear(n)
            return f, f
        return ({}, 0), ({}, ext[v] - 1)
    if op in ("add", "sub"):
        (al, ah), (bl, bh) = bounds(n.args[0], fixed, ext), bounds(n.args[1], fixed, ext)
        if op == "add":
            return _add(al, bl), _add(ah, bh)
        return _add(al, _neg(bh)), _add(ah, _neg(bl))
    if op == "mul":
        for x, y in ((n.args[0], n.args[1]), (n.args[1], n.args[0])):
            f = linear(y)
            if f is not None and not f[0]:
                lo, hi = bounds(x, fixed, ext)
                c = f[1]
                lo, hi = _scale(lo, c), _scale(hi, c)
                return (lo, hi) if c >= 0 else (hi, lo)
    if op in ("floordiv", "mod"):
        if all(v.value in fixed for v in walk(n) if v.op == "var"):
            f = linear(n)
            return f, f
        c = linear(n.args[1])
        lo, hi = bounds(n.args[0], fixed, ext)
        if c is not None and not c[0] and c[1] > 0:
            if op == "mod":
                if not lo[0] and not hi[0] and 0 <= lo[1] and hi[1] < c[1]:
                    return lo, hi
                return ({}, 0), ({}, c[1] - 1)
            if not lo[0] and not hi[0]:
                return ({}, lo[1] // c[1]), ({}, hi[1] // c[1])
    raise LoopsError(f"region of index {expr_text(n)} is not analyzable (only affine indices, and // or % by "
                     f"constants, are)")


def _add(a, b):
    terms = {k: list(v) for k, v in a[0].items()}
    for k, (atom, c) in b[0].items():
        terms.setdefault(k, [atom, 0])[1] += c
    return {k: v for k, v in terms.items() if v[1]}, a[1] + b[1]


def _neg(a):
    return {k: [atom, -c] for k, (atom, c) in a[0].items()}, -a[1]


def _scale(a, c):
    return {k: [atom, co * c] for k, (atom, co) in a[0].items() if co * c}, a[1] * c


# ---- the lowering --------------------------------------------------------------------------------------
class _Lowering:
    def __init__(self, s: Schedule):
        self.s = s
        self.stages = [st for st in s.stages if not st.inline]
        self.ext: dict[IterVar, int] = {}
        self.root_ext: dict[Stage, list[int]] = {}
        self.local: dict[Stage, dict] = {}       # root axis -> value over the stage's own leaves (local coords)
        self.glob: dict[Stage, dict] = {}        # root axis -> value in the tensor's coordinates
        self.region_min: dict[Stage, list] = {}  # attached stages: linear forms of the region's start
        self.guards: dict[Stage, list] = {}
        self.buffers: dict[Stage, object] = {}
        for st in reversed(self.stages):
            self._prepare(st)

    def fixed_of(self, st: Stage) -> set:
        """The loops enclosing the place a stage is computed."""
        if st.attach is None:
            return set()
        host, v = st.attach
        return set(host.leaves[:host.leaves.index(v) + 1]) | self.fixed_of(host)

    def readers(self, st: Stage) -> list[Stage]:
        return [r for r in self.stages if any(n.op == "load" and n.value is st.tensor for n in walk(r.body))]

    def _prepare(self, st: Stage) -> None:
        shape = list(st.tensor.shape)
        if st.attach is not None:
            fixed = self.fixed_of(st)
            mins, exts = [], []
            loads = [(r, n) for r in self.readers(st) for n in walk(r.body)
                     if n.op == "load" and n.value is st.tensor]
            host, v = st.attach
            for d in range(len(shape)):
                los, his = [], []
                for r, n in loads:
                    idx = simplify(substitute_vars(n.args[d], self.glob[r]))
                    try:
                        lo, hi = bounds(idx, fixed, self.ext)
                    except LoopsError as e:
                        raise ScheduleError(f"compute_at({st.name}, {host.name}, {v.name}): {e}") from None
                    los.append(lo)
                    his.append(hi)
                lo = los[0]
                for cand in los[1:]:
                    diff = _sub(cand, lo)
                    if diff is None or diff[0]:
                        raise ScheduleError(f"compute_at({st.name}, {host.name}, {v.name}): the reads of "
                                            f"{st.name} along dimension {d} start at positions that differ by a "
                                            f"loop-dependent amount; compute it at a loop further out")
                    if diff[1] < 0:
                        lo = cand
                width = 0
                for hi in his:
                    diff = _sub(hi, lo)
                    if diff is None or diff[0]:
                        raise ScheduleError(f"compute_at({st.name}, {host.name}, {v.name}): the part of "
                                            f"{st.name} read in one iteration of {v.name} has no fixed size along "
                                            f"dimension {d}; compute it at a loop further out")
                    width = max(width, diff[1] + 1)
                mins.append(lo)
                exts.append(min(width, shape[d]))
            self.region_min[st] = mins
            shape = exts
        self.root_ext[st] = shape
        for a, e in zip(st.axes, shape):
            self.ext[a] = e
        for a in st.reduce_axes:
            self.ext[a] = a.extent
        for r in st.relations:
            if isinstance(r, Split):
                pe = self.ext[r.parent]
                self.ext[r.outer] = -(-pe // r.factor)
                self.ext[r.inner] = min(r.factor, pe)
            else:
                self.ext[r.fused] = self.ext[r.outer] * self.ext[r.inner]
        val = {v: v.var for v in st.leaves}
        guards = []
        for r in reversed(st.relations):
            if isinstance(r, Split):
                val[r.parent] = simplify(Node("add", (Node("mul", (val[r.outer], lift(r.factor))), val[r.inner])))
                if self.ext[r.outer] * self.ext[r.inner] > self.ext[r.parent]:
                    guards.append(Node("lt", (val[r.parent], lift(self.ext[r.parent]))))
            else:
                ie = self.ext[r.inner]
                val[r.outer] = Node("floordiv", (val[r.fused], lift(ie)))
                val[r.inner] = Node("mod", (val[r.fused], lift(ie)))
        roots = list(st.axes) + list(st.reduce_axes)
        self.local[st] = {a: val[a] for a in roots}
        if st.attach is not None:
            g = {a: simplify(Node("add", (val[a], rebuild(m)))) for a, m in zip(st.axes, self.region_min[st])}
            g.update({a: val[a] for a in st.reduce_axes})
            self.glob[st] = g
            full = st.tensor.shape
            tail_readers = any(self.guards.get(r) for r in self.readers(st))
            for a, m, e, f in zip(st.axes, self.region_min[st], shape, full):
                if tail_readers or (not m[0] and m[1] + e > f):
                    guards.append(Node("lt", (g[a], lift(f))))
        else:
            self.glob[st] = dict(self.local[st])
        self.guards[st] = guards
        if st.attach is not None:
            self.buffers[st] = Buffer(st.name, shape, st.tensor.dtype, "local")
        elif st.tensor in self.s.outputs:
            self.buffers[st] = st.tensor
        else:
            self.buffers[st] = Buffer(st.name, shape, st.tensor.dtype, "global")

    # -- statements
    def body_value(self, st: Stage, use_lets: bool) -> Node:
        """The stage's body with reads of local buffers re-indexed and root axes replaced by their values
        (or left as the Let-bound names)."""
        body = st.body.args[0] if st.body.op == "reduce" else st.body
        if not use_lets:
            body = substitute_vars(body, self.glob[st])

        def rep(n):
            if n.op != "load":
                return None
            p = next((x for x in self.stages if x.tensor is n.value), None)
            if p is not None and p.attach is not None:
                idx = [simplify(Node("sub", (substitute_vars(i, self.glob[st]) if use_lets else i, rebuild(m))))
                       for i, m in zip(n.args, self.region_min[p])]
                return Node("load", tuple(idx), self.buffers[p])
            return Node("load", tuple(simplify(a) for a in n.args), self.buffers[p] if p is not None else n.value)
        return substitute(body, rep)

    def stage_stmt(self, st: Stage) -> object:
        use_lets = st.attach is None
        value = self.body_value(st, use_lets)
        buf = self.buffers[st]
        out_idx = tuple((a.var if use_lets else self.local[st][a]) for a in st.axes)
        lets = [(a, self.local[st][a]) for a in list(st.axes) + list(st.reduce_axes)
                if use_lets and not (self.local[st][a].op == "var" and self.local[st][a].value is a)]
        if st.attach is not None:
            out_idx = tuple(simplify(self.local[st][a]) for a in st.axes)
        red = st.body if st.body.op == "reduce" else None
        leaves = st.leaves
        spatial = [v for v in leaves if not st.is_reduce(v)]
        first_red = next((i for i, v in enumerate(leaves) if st.is_reduce(v)), len(leaves))
        inline_acc = red is not None and first_red > leaves.index(spatial[-1])
        spec = red.value if red is not None else None
        pending_lets = list(lets)
        pending_guards = list(self.guards[st])
        opened: set = set()

        def ready(expr_or_var):
            return all(x.value in opened or x.value not in st.all_vars() for x in walk(expr_or_var) if x.op == "var")

        def wrap_ready(make_inner):
            """Lets and guards that can now be placed, around what comes next."""
            lets_now = [(a, e) for a, e in pending_lets if ready(e)]
            guards_now = [g for g in pending_guards if ready(g)]
            for x in lets_now:
                pending_lets.remove(x)
            for g in guards_now:
                pending_guards.remove(g)
            inner = make_inner()
            for g in reversed(guards_now):
                inner = If(g, inner)
            for a, e in reversed(lets_now):
                inner = Let(a, e, inner)
            return inner

        acc = Buffer(f"{st.name}_acc", (1,), spec.acc_dtype if spec else None, "local") if inline_acc else None

        def innermost():
            if red is None:
                return Store(buf, out_idx, value)
            if inline_acc:
                return Store(acc, (lift(0),), spec.combine(Node("load", (lift(0),), acc), value))
            cur = Node("load", out_idx, buf)
            return Store(buf, out_idx, spec.combine(cur, value))

        def nest(p: int):
            if p == len(leaves):
                return wrap_ready(innermost)
            v = leaves[p]
            opened.add(v)

            def inside():
                rest = self._attached_here(st, v, lambda: nest(p + 1))
                if inline_acc and p == leaves.index(spatial[-1]):
                    ident = spec.identity(spec.acc_dtype)
                    return Allocate(acc, seq(Store(acc, (lift(0),), ident), rest,
                                             Store(buf, out_idx, Node("load", (lift(0),), acc))))
                return rest
            if st.kind_of(v) in ("unrolled", "vectorized") and self.ext[v] > MAX_UNROLL:
                raise ScheduleError(f"{st.made_by.get(v, st.kind_of(v))}: loop {v.name} of {st.name} runs "
                                    f"{self.ext[v]} iterations where {st.name} is computed (at most {MAX_UNROLL} "
                                    f"unrolled or vectorized); split it first")
            return For(v, self.ext[v], st.kind_of(v), wrap_ready(inside), st.made_by.get(v, ""))

        main = wrap_ready(lambda: nest(0))
        if red is not None and not inline_acc:
            main = seq(self.init_nest(st, spec), main)
        return main

    def init_nest(self, st: Stage, spec):
        buf = self.buffers[st]
        idx = tuple(a.var for a in st.axes)
        body = Store(buf, idx, spec.identity(spec.acc_dtype))
        for a in reversed(st.axes):
            kinds = {st.kind_of(v) for v in st.leaves if v is a}
            kind = "unrolled" if kinds & {"unrolled", "vectorized"} else "serial"
            body = For(a, self.root_ext[st][st.axes.index(a)], kind, body, "")
        return body

    def _attached_here(self, host: Stage, v: IterVar, rest):
        here = [p for p in self.stages if p.attach is not None and p.attach[0] is host and p.attach[1] is v]
        if not here:
            return rest()
        out = rest()
        for p in reversed(here):
            out = Allocate(self.buffers[p], seq(self.stage_stmt(p), out))
        return out

    def func(self, name: str, args) -> LoweredFunc:
        top = []
        temps = []
        for st in self.stages:
            if st.attach is None:
                top.append(self.stage_stmt(st))
                if st.tensor not in self.s.outputs:
                    temps.append(self.buffers[st])
        body = seq(*top)
        for b in reversed(temps):
            body = Allocate(b, body)
        return LoweredFunc(name, list(args) + list(self.s.outputs), body, self.s)


def placeholders(s: Schedule) -> list[Tensor]:
    """The inputs of a schedule's computes in the order they are first read (depth first from the
    outputs, as written — cache_read copies do not change it)."""
    out, seen = [], set()

    def visit(t):
        if id(t) in seen:
            return
        seen.add(id(t))
        if t.op is None:
            out.append(t)
            return
        for p in t.op.inputs():
            visit(p)
    for t in s.outputs:
        visit(t)
    return out


def lower(s, name: str | None = None, args=None) -> LoweredFunc:
    """The loop nest of a schedule (or of a compute, unscheduled). ``args``: the input order (default: the
    placeholders in first-read order)."""
    if isinstance(s, Tensor):
        s = Schedule(s)
    if not isinstance(s, Schedule):
        raise LoopsError(f"lower: expected a Schedule or a compute, got {type(s).__name__}")
    args = list(args) if args is not None else placeholders(s)
    return _Lowering(s).func(name or s.output.name.lower() + "_kernel", args)
