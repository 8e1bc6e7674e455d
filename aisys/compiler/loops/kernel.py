"""From loop IR to machine code: numba source, the compiled kernel, its LLVM IR and assembly, and the
address stream a nest makes (for the cache simulator).

The source is plain Python over numpy arrays, compiled by numba with ``cache=True`` (written once to the
kernel cache, ``aisys.kernels.jit``) and ``fastmath={'contract'}`` (multiply-adds may fuse into FMAs; no
reassociation, so results match the interpreter to rounding). Unrolled and vectorized loops are expanded
into straight-line code; a local buffer whose every access then has a constant index becomes scalar
variables — registers — which is how a register-blocked micro-kernel comes out of a schedule (LLVM's SLP
vectorizer packs the lanes into ``<8 x float>`` operations).
"""
from __future__ import annotations

import copy
import re

import numpy as np

from ...framework import scalar as _S
from .interp import check_arrays
from .ir import Allocate, Buffer, For, If, Let, LoweredFunc, Seq, Store, walk_stmts
from .lower import linear, lower, rebuild, simplify
from .te import LoopsError, Node, _node_dtype, _promote, expr_text, lift, substitute, substitute_vars, walk

_BASE_ALIGN = 4096


class _Emitter:
    def __init__(self, f: LoweredFunc, trace: bool = False, generic: bool = False):
        self.f, self.trace, self.generic = f, trace, generic
        self.consts = _Constants()
        self.register: set[int] = set()          # local buffers kept in scalar variables
        self.parallel = False
        self.bases: dict[int, tuple[int, int, object]] = {}   # id(buffer) -> (base address, array id, buffer)
        self.arrays: list = []
        self.temps: dict[int, str] = {}          # shared sub-expressions of the statement being emitted
        self.n_temps = 0
        self.hoisted: dict[tuple, str] = {}      # (id(buffer), indices) -> variable, loaded before the loops
        self.sizes: dict[int, str] = {}          # generic: a size -> the array dimension it is read from
        self.indexed_by: dict[tuple, str] = {}   # generic: (loop variable, size) -> the array dimension it indexes
        if generic:
            self._size_names()

    # -- generic kernels: every size read from the arrays' shapes
    def _size_names(self) -> None:
        params = {id(p): p for p in self.f.params}
        for p in self.f.params:
            for d, n in enumerate(p.shape):
                if n != 1:
                    self.sizes.setdefault(n, f"{p.name}.shape[{d}]")
        for st in walk_stmts(self.f.body):
            if not isinstance(st, Store):
                continue
            acc = [(st.buffer, st.indices)] + [(n.value, n.args) for n in walk(st.value) if n.op == "load"]
            for buf, idx in acc:
                if id(buf) in params:
                    for d, i in enumerate(idx):
                        if i.op == "var":
                            self.indexed_by.setdefault((i.value, buf.shape[d]), f"{buf.name}.shape[{d}]")

    def eager(self, load: Node) -> bool:
        """Generic kernels load every array element a statement reads before computing it (as a loop body
        of loads, then arithmetic): not register values."""
        return id(load.value) not in self.register

    def size(self, n: int, var=None) -> str:
        """A loop extent or buffer size as source text: a literal, or (generic) the array dimension it is."""
        if not self.generic or n == 1:
            return str(n)
        if (var, n) in self.indexed_by:
            return self.indexed_by[(var, n)]
        return self.sizes.get(n, str(n))

    def hoist(self, body, out: list) -> None:
        """Generic kernels: an input element every iteration reads at the same place (a broadcast scalar) is
        loaded once, before the loops."""
        params = {id(p) for p in self.f.params}
        stored = {id(s.buffer) for s in walk_stmts(body) if isinstance(s, Store)}
        for st in walk_stmts(body):
            if not isinstance(st, Store):
                continue
            for n in walk(st.value):
                if n.op == "load" and id(n.value) in params and id(n.value) not in stored:
                    ix = [simplify(a) for a in n.args]
                    key = (id(n.value), tuple(a.value for a in ix if a.op == "int"))
                    if len(key[1]) == len(ix) and key not in self.hoisted:
                        self.hoisted[key] = name = _reg_name(n.value, ix)
                        out.append(f"    {name} = {n.value.name}[{', '.join(str(a.value) for a in ix)}]")

    # -- memory layout for traces
    def base(self, buf) -> tuple[int, int]:
        if id(buf) not in self.bases:
            start = 0
            for b, _, bb in self.bases.values():
                start = max(start, b + int(np.prod(bb.shape)) * bb.dtype.itemsize)
            start = -(-start // _BASE_ALIGN) * _BASE_ALIGN
            self.bases[id(buf)] = (start, len(self.arrays), buf)
            self.arrays.append(buf)
        b, k, _ = self.bases[id(buf)]
        return b, k

    # -- expressions
    def idx(self, n: Node, env) -> Node:
        return simplify(_bind(n, env))

    def expr(self, n: Node, env, ctx=None) -> str:
        n = _bind(n, env)
        return self._e(n, _types(n), ctx, env)

    def _e(self, n: Node, types, ctx, env) -> str:
        if id(n) in self.temps:
            return self.temps[id(n)]
        op = n.op
        if op == "int":
            return str(n.value)
        if op == "var":
            return env.get(n.value, n.value.name) if not isinstance(env.get(n.value), int) else str(env[n.value])
        if op == "const":
            if ctx is None:
                return repr(n.value)
            return self.consts.get(n.value, ctx)
        if op == "load":
            buf = n.value
            ix = [simplify(a) for a in n.args]
            if id(buf) in self.register:
                return _reg_name(buf, ix)
            if self.hoisted and all(a.op == "int" for a in ix):
                name = self.hoisted.get((id(buf), tuple(a.value for a in ix)))
                if name is not None:
                    return name
            return f"{buf.name}[{', '.join(self._e(a, types, None, env) for a in ix)}]"
        if op == "cast":
            inner = self._e(n.args[0], types, n.value, env)
            if n.value.name == "bool":                   # as the scalar emitter: nonzero (NaN is True, as numpy)
                return f"({inner} != 0)"
            return _S.cast_text(inner, n.value)
        if op in ("floordiv", "mod"):
            return f"({self._e(n.args[0], types, None, env)} {'//' if op == 'floordiv' else '%'} " \
                   f"{self._e(n.args[1], types, None, env)})"
        p = _S.PRIMS[op]
        if op == "select":
            t = types.get(id(n)) or ctx
            c = self._e(n.args[0], types, None, env)
            return f"({self._e(n.args[1], types, t, env)} if {c} else {self._e(n.args[2], types, t, env)})"
        if p.arity == 2:
            ta, tb = types.get(id(n.args[0])), types.get(id(n.args[1]))
            sub = _promote(ta, tb) or ctx
            a, b = self._e(n.args[0], types, sub, env), self._e(n.args[1], types, sub, env)
            if op in ("and", "or"):
                return f"({a} {op} {b})"
            return "(" + p.template.format(a, b) + ")"
        a = self._e(n.args[0], types, types.get(id(n)) or ctx, env)
        return "(" + p.template.format(a) + ")"

    # -- statements
    def stmt(self, s, env, d, out: list) -> None:
        pad = "    " * d
        if isinstance(s, Seq):
            for x in s.stmts:
                self.stmt(x, env, d, out)
        elif isinstance(s, For):
            if s.kind in ("unrolled", "vectorized") or s.extent == 1:
                for i in range(s.extent):
                    self.stmt(s.body, {**env, s.var: i}, d, out)
                return
            rng = "range"
            if s.kind == "parallel" and not self.trace:
                rng, self.parallel = "prange", True
            inner = {k: v for k, v in env.items() if k is not s.var}
            name = s.var.name
            if self.generic:                 # loops named by depth: the names do not depend on the schedule's
                name = inner[s.var] = f"i{d - 1}"
            out.append(f"{pad}for {name} in {rng}({self.size(s.extent, s.var)}):")
            self.stmt(s.body, inner, d + 1, out)
        elif isinstance(s, Let):
            v = self.idx(s.value, env)
            if v.op == "int":
                self.stmt(s.body, {**env, s.var: v.value}, d, out)
                return
            out.append(f"{pad}{s.var.name} = {self.expr(v, env)}")
            self.stmt(s.body, {k: val for k, val in env.items() if k is not s.var}, d, out)
        elif isinstance(s, If):
            c = _bind(s.cond, env)
            f = linear(Node("sub", (c.args[0], c.args[1]))) if c.op == "lt" else None
            if f is not None and not f[0]:          # decided at compile time (an unrolled lane)
                if f[1] < 0:
                    self.stmt(s.body, env, d, out)
                return
            if c.op == "lt":
                c = Node("lt", (simplify(c.args[0]), simplify(c.args[1])))
            out.append(f"{pad}if {self.expr(c, env)}:")
            n0 = len(out)
            self.stmt(s.body, env, d + 1, out)
            if len(out) == n0:
                out.append(f"{pad}    pass")
        elif isinstance(s, Allocate):
            b = s.buffer
            trial: list = []
            self.register.add(id(b))
            try:
                self.stmt(s.body, env, d, trial)
            except _NotConstant as e:
                if e.args[0] != id(b):          # another buffer's access: its own Allocate decides
                    self.register.discard(id(b))
                    raise
                self.register.discard(id(b))
                trial = []
                if not self.trace:
                    trial.append(f"{pad}{b.name} = np.empty(({', '.join(self.size(n) for n in b.shape)},), "
                                 f"dtype=np.{b.dtype.name})")
                self.stmt(s.body, env, d, trial)
            out.extend(trial)
        elif isinstance(s, Store):
            self.store(s, env, pad, out)
        else:
            raise TypeError(f"codegen: unknown statement {s!r}")

    def store(self, s: Store, env, pad, out):
        buf = s.buffer
        ix = [self.idx(i, env) for i in s.indices]
        self._check_register(buf, ix)
        for n in walk(_bind(s.value, env)):
            if n.op == "load":
                self._check_register(n.value, [simplify(a) for a in n.args])
        if self.trace:
            for n in _loads_in_order(_bind(s.value, env)):
                self._record(n.value, [simplify(a) for a in n.args], env, pad, out)
            self._record(buf, ix, env, pad, out)
            return
        target = _reg_name(buf, ix) if id(buf) in self.register else \
            f"{buf.name}[{', '.join(self.expr(a, env) for a in ix)}]"
        value = _bind(s.value, env)
        types = _types(value)
        for x in _shared(value, types, self.eager if self.generic else None):   # once, into a temporary
            text = self._e(x, types, types[id(x)], env)
            self.temps[id(x)] = name = f"v{self.n_temps}"
            self.n_temps += 1
            out.append(f"{pad}{name} = {text}")
        out.append(f"{pad}{target} = {self._e(value, types, buf.dtype, env)}")
        self.temps.clear()

    def _check_register(self, buf, ix):
        if id(buf) in self.register and any(a.op != "int" for a in ix):
            raise _NotConstant(id(buf))

    def _record(self, buf, ix, env, pad, out):
        if id(buf) in self.register:
            return
        base, k = self.base(buf)
        strides = np.cumprod((1,) + tuple(reversed(buf.shape[1:])))[::-1]
        flat = None
        for a, st in zip(ix, strides):
            term = Node("mul", (a, lift(int(st))))
            flat = term if flat is None else Node("add", (flat, term))
        addr = simplify(Node("add", (Node("mul", (flat, lift(buf.dtype.itemsize))), lift(base))))
        out.append(f"{pad}if n < cap:")
        out.append(f"{pad}    addr[n] = {self.expr(addr, env)}")
        out.append(f"{pad}    arr[n] = {k}")
        out.append(f"{pad}n += 1")


class _Constants(_S.Constants):
    """Typed module-level constants; infinities and NaN (a max's identity) spelled as numpy names."""

    def lines(self) -> list[str]:
        return [line.replace("(inf)", "(np.inf)").replace("(-inf)", "(-np.inf)").replace("(nan)", "(np.nan)")
                for line in super().lines()]


def _types(n: Node) -> dict:
    """{id(node): dtype} of a value (None: a weak constant or index arithmetic, typed where it is used)."""
    memo: dict[int, object] = {}
    for x in walk(n):
        memo[id(x)] = None if x.op in ("int", "const", "var") else _node_dtype(x, memo)
    return memo


def _shared(n: Node, types, eager=None) -> list:
    """Typed sub-expressions that more than one node reads (a DAG's shared values), operands first; with
    ``eager`` (a predicate on loads) also every such load and both branches of a select, so they are computed
    unconditionally: a load or a call inside a conditional expression is a branch LLVM cannot vectorize
    (the loads are in bounds, and with numpy's error model no value raises)."""
    uses: dict[int, int] = {}
    order = walk(n)
    for x in order:
        for a in x.args:
            uses[id(a)] = uses.get(id(a), 0) + 1
    if eager is not None:
        for x in order:
            if x.op == "load" and eager(x):
                uses[id(x)] = uses.get(id(x), 0) + 2
            if x.op == "select":
                for a in x.args[1:]:
                    if a.op not in ("const", "int", "var"):
                        uses[id(a)] = uses.get(id(a), 0) + 2
    return [x for x in order if uses.get(id(x), 0) > 1 and types.get(id(x)) is not None and x.op != "const"
            and not (x.op == "load" and all(a.op == "int" for a in x.args))]


class _NotConstant(Exception):
    """A local buffer (its id in args[0]) is accessed at a loop-dependent index: it stays an array."""


def _reg_name(buf, ix) -> str:
    return f"{buf.name}_" + "_".join(str(a.value) for a in ix)


def _bind(n: Node, env) -> Node:
    consts = {k: v for k, v in env.items() if isinstance(v, int)}
    if not consts:
        return n
    return substitute(n, lambda x: lift(consts[x.value]) if x.op == "var" and x.value in consts else None)


def _loads_in_order(n: Node):
    return [x for x in walk(n) if x.op == "load"]


def source(f, trace: bool = False, generic: bool = False, note=()) -> tuple[str, _Emitter]:
    """The numba source of a lowered function (``trace``: the address-recording twin).

    ``generic``: a source that serves every size with the same pattern (what ``aisys.compile``'s kernels
    use, so a numba compile is shared and cached by text): loop extents and buffer sizes are read from the
    arrays' shapes, dimensions a fused loop walks are merged (:func:`merge_fused_dims`: build the kernel's
    ``param_shapes`` views), a broadcast scalar is loaded once before the loops, no fast-math contraction
    (results match the numpy references), and the header is ``note`` (no sizes) instead of the nest."""
    if not isinstance(f, LoweredFunc):
        f = lower(f)
    if generic and not getattr(f, "merged", False):
        f, _ = merge_fused_dims(f)
    em = _Emitter(f, trace, generic)
    if trace:
        for p in f.params:
            em.base(p)
    body: list[str] = []
    if generic and not trace:
        em.hoist(f.body, body)
    em.stmt(f.body, {}, 1, body)
    opts = "cache=True, fastmath={'contract'}, error_model='numpy', boundscheck=False"
    if generic:
        opts = "cache=True, error_model='numpy', boundscheck=False"
    if em.parallel:
        opts += ", parallel=True"
    if generic:
        head = ["# " + line for line in note] + [
            "# Generated by aisys.compiler.loops (sizes read from the arrays: one compile serves every size); "
            "compiled by numba."]
    else:
        head = ["# Generated by aisys.compiler.loops from this loop nest; compiled by numba.", "#"]
        head += ["# " + line for line in str(f).splitlines()]
    head += ["import numpy as np"] + (["import math"] if any("math." in line for line in body) else [])
    head += ["from numba import njit, prange", ""]
    head += em.consts.lines() + [""]
    if trace:
        sig = "def kernel(addr, arr, cap):"
        body = ["    n = 0"] + body + ["    return n"]
    else:
        sig = f"def kernel({', '.join(p.name for p in f.params)}):"
    return "\n".join(head + [f"@njit({opts})", sig] + (body or ["    pass"])) + "\n", em


# ---- generic kernels: a fused loop walks merged dimensions ------------------------------------------------
def merge_fused_dims(f: LoweredFunc) -> tuple[LoweredFunc, list[tuple]]:
    """The same nest over arrays viewed with fewer dimensions: where every access to an array indexes two
    adjacent dimensions with ``(x // n, x % n)`` (``n`` the inner size: a fused loop walking both) or with
    constants, the two are one dimension of the array indexed by ``x``. Let-bound axes are substituted first.
    Returns the new function and each parameter's merged shape (a view of a C-contiguous array)."""
    body = _inline_lets(f.body, {})
    accesses: dict[int, list] = {id(p): [] for p in f.params}
    for st in walk_stmts(body):
        if isinstance(st, Store):
            for buf, idx in [(st.buffer, st.indices)] + [(n.value, n.args) for n in walk(st.value) if n.op == "load"]:
                if id(buf) in accesses:
                    accesses[id(buf)].append(idx)
    new, shapes, index_maps = [], [], {}
    for p in f.params:
        shape, idxs = list(p.shape), [list(ix) for ix in accesses[id(p)]]
        d = 0
        while d < len(shape) - 1:
            merged = [_merge_pair(ix[d], ix[d + 1], shape[d], shape[d + 1]) for ix in idxs]
            if all(m is not None for m in merged):
                for ix, m in zip(idxs, merged):
                    ix[d:d + 2] = [m]
                shape[d:d + 2] = [shape[d] * shape[d + 1]]
            else:
                d += 1
        q = Buffer(p.name, shape, p.dtype, "global") if len(shape) != len(p.shape) else p
        new.append(q)
        shapes.append(tuple(shape))
        index_maps[id(p)] = (q, {id(ix0): tuple(ix) for ix0, ix in zip(accesses[id(p)], idxs)})
    body = _reindex(body, index_maps)
    out = LoweredFunc(f.name, new, body, f.schedule)
    out.merged = True
    return out, shapes


def _merge_pair(a: Node, b: Node, outer: int, inner: int):
    if a.op == "int" and a.value == 0 and outer == 1:
        return b
    if b.op == "int" and inner == 1:
        return a if b.value == 0 else None
    if a.op == "int" and b.op == "int":
        return lift(a.value * inner + b.value)
    if a.op == "floordiv" and b.op == "mod" and a.args[1].op == b.args[1].op == "int" \
            and a.args[1].value == b.args[1].value == inner and expr_text(a.args[0]) == expr_text(b.args[0]):
        return a.args[0]
    return None


def _inline_lets(s, env):
    sub = lambda n: substitute_vars(n, env) if env else n  # noqa: E731
    if isinstance(s, Seq):
        return Seq([_inline_lets(x, env) for x in s.stmts])
    if isinstance(s, For):
        return For(s.var, s.extent, s.kind, _inline_lets(s.body, env), s.step)
    if isinstance(s, Let):
        return _inline_lets(s.body, {**env, s.var: simplify(sub(s.value))})
    if isinstance(s, If):
        return If(sub(s.cond), _inline_lets(s.body, env))
    if isinstance(s, Allocate):
        return Allocate(s.buffer, _inline_lets(s.body, env))
    if isinstance(s, Store):
        value = substitute(sub(s.value), lambda n: Node("load", tuple(simplify(a) for a in n.args), n.value)
                           if n.op == "load" else None)
        return Store(s.buffer, tuple(simplify(sub(i)) for i in s.indices), value)
    raise TypeError(f"codegen: unknown statement {s!r}")


def _reindex(s, maps):
    if isinstance(s, Seq):
        return Seq([_reindex(x, maps) for x in s.stmts])
    if isinstance(s, (For, If, Allocate)):
        s2 = copy.copy(s)
        s2.body = _reindex(s.body, maps)
        return s2
    if isinstance(s, Store):
        def rep(n):
            if n.op == "load" and id(n.value) in maps:
                q, m = maps[id(n.value)]
                return Node("load", m.get(id(n.args), n.args), q)
            return None
        buf, idx = s.buffer, s.indices
        if id(buf) in maps:
            buf, m = maps[id(buf)]
            idx = m.get(id(s.indices), s.indices)
        return Store(buf, idx, substitute(s.value, rep))
    raise TypeError(f"codegen: unknown statement {s!r}")


class Kernel:
    """A compiled loop nest: ``kernel(*inputs)`` returns the output (a fresh array, or ``out=``).
    ``source`` is the numba source (``path`` its file in the kernel cache), ``llvm()`` / ``asm()`` the code
    numba made, ``loop_asm()`` that assembly trimmed to the hottest loop with vector instructions marked."""

    def __init__(self, f: LoweredFunc, generic: bool = False, note=()):
        self.func, self.generic = f, generic
        self.code = merge_fused_dims(f)[0] if generic else f     # the nest the source is emitted from
        self.source, _ = source(self.code, generic=generic, note=note)
        #: the shape each argument is viewed as when called (merged dimensions of a generic kernel)
        self.param_shapes = [tuple(p.shape) for p in self.code.params]
        self._fn = None

    @property
    def fn(self):
        """The numba dispatcher, compiled for C-contiguous arrays of the parameters' dtypes (called with the
        arrays viewed as ``param_shapes``)."""
        if self._fn is None:
            from ...kernels.jit import load_kernel
            fn = load_kernel(self.source)
            if not fn.signatures:
                lanes = any(isinstance(x, For) and x.kind in ("unrolled", "vectorized") for x in walk_stmts(self.func.body))
                compile_with_slp(fn, self.code.params, slp=lanes)
            self._fn = fn
        return self._fn

    @property
    def path(self) -> str:
        from ...kernels.jit import cache_dir, kernel_key
        return str(cache_dir() / f"k_{kernel_key(self.source)}.py")

    def __call__(self, *arrays, out=None):
        ins = check_arrays(self.func, arrays, "kernel")
        outs = self.func.schedule.outputs
        if out is None:
            res = [np.empty(t.shape, t.dtype.np) for t in outs]
        else:
            res = list(out) if isinstance(out, (tuple, list)) else [out]
            for t, a in zip(outs, res):
                if a.shape != t.shape or a.dtype != t.dtype.np or not a.flags.c_contiguous:
                    raise LoopsError(f"kernel: out= for {t.name} must be a C-contiguous {t.dtype.name} array of "
                                     f"shape {t.shape}, got {a.dtype}{a.shape}")
        if self.generic:
            self.fn(*[a.reshape(v) for a, v in zip(ins + res, self.param_shapes)])
        else:
            self.fn(*ins, *res)
        return res[0] if len(res) == 1 else tuple(res)

    def _inspectable(self):
        """A twin of the kernel compiled in memory: numba cannot show the LLVM IR or assembly of code it loaded
        from its disk cache, so inspection compiles the same source once more, uncached."""
        if getattr(self, "_twin", None) is None:
            import warnings
            src = self.source.replace("cache=True", "cache=False")
            namespace: dict = {}
            exec(compile(src, f"<aisys.compiler.loops kernel {self.func.name}>", "exec"), namespace)  # noqa: S102
            twin = namespace["kernel"]
            lanes = any(isinstance(x, For) and x.kind in ("unrolled", "vectorized") for x in walk_stmts(self.func.body))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                compile_with_slp(twin, self.code.params, slp=lanes)
            self._twin = twin
        return self._twin

    def llvm(self) -> str:
        twin = self._inspectable()
        return twin.inspect_llvm(twin.signatures[0])

    def asm(self) -> str:
        twin = self._inspectable()
        return twin.inspect_asm(twin.signatures[0])

    def loop_asm(self) -> "LoopCode":
        return trim_loop(self.asm(), "asm")

    def loop_llvm(self) -> "LoopCode":
        return trim_loop(self.llvm(), "llvm")


def compile_with_slp(fn, params, slp: bool = True) -> None:
    """Compile a generated kernel for its parameter types, with LLVM's SLP vectorizer on when the schedule
    asked for lanes (``slp``; numba leaves it off by default: ``NUMBA_SLP_VECTORIZE``): it is what packs an
    unrolled register block into vector FMAs. Without it a nest is left to the loop vectorizer."""
    import numba
    from numba.core import config
    sig = tuple(numba.types.Array(numba.from_dtype(p.dtype.np), len(p.shape), "C") for p in params)
    old = config.SLP_VECTORIZE
    config.SLP_VECTORIZE = int(slp)
    try:
        fn.compile(sig)
    finally:
        config.SLP_VECTORIZE = old


def build(s, name: str | None = None, args=None, generic: bool = False, note=()) -> Kernel:
    """Compile a schedule (or compute, or lowered function) with numba: ``build(s)(A, B) -> C``.
    ``generic``: one source for every size with this pattern (see :func:`source`)."""
    f = s if isinstance(s, LoweredFunc) else lower(s, name=name, args=args)
    return Kernel(f, generic=generic, note=note)


# ---- machine code, trimmed ----------------------------------------------------------------------------
_VEC_ASM = re.compile(r"%[yz]mm|\b(?!v?mov)v?\w+p[sd]\b.*%xmm")
_FP_ASM = re.compile(r"\b(v?fn?madd\w*|v?mul[sp][sd]|v?add[sp][sd]|v?sub[sp][sd])\b")
_SCALAR_ASM = re.compile(r"\b(v?(add|mul|sub|div|fmadd\w*)s[sd])\b")
_VEC_LLVM = re.compile(r"<\d+ x (float|double|i\d+)>")


class LoopCode:
    """The hottest loop of a kernel's assembly or LLVM IR: ``lines`` with ``vector`` flags, and counts."""

    def __init__(self, lines: list[str], vector: list[bool], kind: str):
        self.lines, self.vector, self.kind = lines, vector, kind

    @property
    def n_vector(self) -> int:
        return sum(self.vector)

    @property
    def n_scalar_math(self) -> int:
        if self.kind == "asm":
            return sum(bool(_SCALAR_ASM.search(x)) for x in self.lines)
        return sum(bool(re.search(r"= (fadd|fmul|fsub|call float @llvm.fma) (contract )?(float|double) ", x))
                   for x in self.lines)

    def widths(self) -> set[str]:
        """The vector registers / types the loop uses (``ymm``, ``zmm``, ``<8 x float>``)."""
        if self.kind == "asm":
            return set(re.findall(r"\b([xyz]mm)\d+", "\n".join(x for x, v in zip(self.lines, self.vector) if v)))
        return set(_VEC_LLVM.findall("\n".join(self.lines)) and re.findall(r"<\d+ x \w+>", "\n".join(self.lines)))

    def text(self, max_lines: int = 60) -> str:
        rows = [f"{'▶' if v else ' '} {x}" for x, v in zip(self.lines, self.vector)]
        if len(rows) > max_lines:
            rows = rows[:max_lines] + [f"  … {len(rows) - max_lines} more lines"]
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.text()


def trim_loop(code: str, kind: str) -> LoopCode:
    """The innermost loop with the most arithmetic: in assembly, a label and the backward jump to it; in
    LLVM IR, the basic block with the most floating-point operations."""
    lines = code.splitlines()
    arith = _FP_ASM if kind == "asm" else re.compile(r"= (fadd|fmul|call .*@llvm\.fma)")
    if kind == "asm":
        labels = {}
        best = None
        for n, line in enumerate(lines):
            m = re.match(r"^(\.?L\w+|\w+):", line.strip())
            if m:
                labels[m.group(1)] = n
            j = re.match(r"^\s*j\w+\s+(\.?L\w+)", line)
            if j and j.group(1) in labels:
                lo = labels[j.group(1)]
                score = sum(bool(arith.search(x)) for x in lines[lo:n + 1])
                key = (score, -(n - lo))
                if score and (best is None or key > best[0]):
                    best = (key, lo, n)
        sel = lines[best[1]:best[2] + 1] if best else lines
        sel = [x for x in sel if x.strip() and not x.strip().startswith(("#", ".p2align", ".cfi"))]
        return LoopCode(sel, [bool(_VEC_ASM.search(x)) for x in sel], "asm")
    blocks, cur = [], []
    for line in lines:
        if re.match(r"^[\w.\-]+:", line) or line.startswith("define"):
            if cur:
                blocks.append(cur)
            cur = [line]
        elif cur:
            cur.append(line)
    if cur:
        blocks.append(cur)
    best = max(blocks, key=lambda b: sum(bool(arith.search(x)) for x in b), default=lines)
    return LoopCode(best, [bool(_VEC_LLVM.search(x)) for x in best], "llvm")


# ---- address traces ------------------------------------------------------------------------------------
class Trace:
    """The byte addresses a loop nest touches, in order, and which array each access is to."""

    def __init__(self, addresses: np.ndarray, array_ids: np.ndarray, names: list[str], sizes: list[int],
                 bases: list[int]):
        self.addresses, self.array_ids, self.names, self.sizes, self.bases = addresses, array_ids, names, sizes, bases

    def __len__(self) -> int:
        return len(self.addresses)


def trace_addresses(s, args=None, method: str = "auto") -> Trace:
    """The address stream of a schedule's loop nest: every load and store of an array or local buffer, in
    program order; registers make no memory traffic. Arrays are laid out one after another, page-aligned,
    in parameter order, then local buffers. ``method`` "numba" compiles the nest in trace mode (fast for
    long streams, a compile per schedule); "numpy" evaluates it on index arrays (no compile; memory grows
    with the stream); "auto" takes numpy below 3e6 loop iterations."""
    f = s if isinstance(s, LoweredFunc) else lower(s, args=args)
    if method not in ("auto", "numba", "numpy"):
        raise LoopsError(f"trace_addresses: method must be 'auto', 'numba' or 'numpy', got {method!r}")
    if method == "auto":
        method = "numpy" if _iterations(f.body) <= 3_000_000 else "numba"
    if method == "numpy":
        return _numpy_trace(f)
    src, em = source(f, trace=True)
    from ...kernels.jit import load_kernel
    fn = load_kernel(src)
    n = fn(np.zeros(1, np.int64), np.zeros(1, np.int16), 0)
    addr, arr = np.empty(n, np.int64), np.empty(n, np.int16)
    fn(addr, arr, n)
    names = [b.name for b in em.arrays]
    return Trace(addr, arr, names, [int(np.prod(b.shape)) * b.dtype.itemsize for b in em.arrays],
                 [em.bases[id(b)][0] for b in em.arrays])


# ---- address traces without compiling: the nest evaluated on index arrays ----------------------------------
def _register_buffers(f: LoweredFunc) -> set[int]:
    """Local buffers the code generator keeps in registers: every index a constant once unrolled/vectorized
    loops are expanded (their index expressions use only those loops' variables)."""
    lanes: set = set()
    for s in walk_stmts(f.body):
        if isinstance(s, For) and s.kind in ("unrolled", "vectorized"):
            lanes.add(s.var)
    local = {id(s.buffer): s.buffer for s in walk_stmts(f.body) if isinstance(s, Allocate)}
    ok = {k: True for k in local}

    def see(buf, idx):
        if id(buf) in ok:
            for i in idx:
                if any(x.op == "var" and x.value not in lanes for x in walk(i)):
                    ok[id(buf)] = False
    for s in walk_stmts(f.body):
        if isinstance(s, Store):
            see(s.buffer, s.indices)
            for n in walk(s.value):
                if n.op == "load":
                    see(n.value, n.args)
    return {k for k, v in ok.items() if v}


class _NumpyTracer:
    """Each statement becomes arrays of shape (loops…, accesses) — addresses, array ids, validity — built by
    broadcasting over the enclosing loops' index ranges; flattening in C order is program order."""

    def __init__(self, f: LoweredFunc):
        self.em = _Emitter(f, trace=True)
        for p in f.params:
            self.em.base(p)
        self.register = _register_buffers(f)

    def value(self, n: Node, env, depth):
        op = n.op
        if op == "int":
            return np.int64(n.value)
        if op == "var":
            return env[n.value]
        a = [self.value(x, env, depth) for x in n.args]
        if op == "add":
            return a[0] + a[1]
        if op == "sub":
            return a[0] - a[1]
        if op == "mul":
            return a[0] * a[1]
        if op == "floordiv":
            return a[0] // a[1]
        if op == "mod":
            return a[0] % a[1]
        if op == "lt":
            return a[0] < a[1]
        raise LoopsError(f"trace: unexpected index expression {n!r}")

    def access(self, buf, idx, env, depth):
        base, k = self.em.base(buf)
        strides = np.cumprod((1,) + tuple(reversed(buf.shape[1:])))[::-1]
        flat = np.int64(0)
        for i, st in zip(idx, strides):
            flat = flat + self.value(i, env, depth) * np.int64(st)
        return base + flat * buf.dtype.itemsize, k

    def gen(self, s, env, depth):
        """(addresses, ids, valid), each broadcastable to (loop dims…, L)."""
        if isinstance(s, Seq):
            parts = [self.gen(x, env, depth) for x in s.stmts]
            parts = [p for p in parts if p is not None]
            if not parts:
                return None
            shape = np.broadcast_shapes(*[x.shape[:-1] for p in parts for x in p])
            lens = [max(x.shape[-1] for x in p) for p in parts]
            return tuple(np.concatenate([np.broadcast_to(p[i], shape + (n,)) for p, n in zip(parts, lens)], axis=-1)
                         for i in range(3))
        if isinstance(s, For):
            ax = np.arange(s.extent, dtype=np.int64).reshape((1,) * depth + (s.extent,))
            inner = self.gen(s.body, {**{k: v[..., None] for k, v in env.items()}, s.var: ax}, depth + 1)
            if inner is None:
                return None
            shape = np.broadcast_shapes(*[x.shape[:-1] for x in inner], (1,) * depth + (s.extent,))
            L = max(x.shape[-1] for x in inner)
            return tuple(np.broadcast_to(x, shape + (L,)).reshape(shape[:-1] + (-1,)) for x in inner)
        if isinstance(s, Let):
            return self.gen(s.body, {**env, s.var: self.value(s.value, env, depth)}, depth)
        if isinstance(s, If):
            inner = self.gen(s.body, env, depth)
            if inner is None:
                return None
            cond = np.asarray(self.value(s.cond, env, depth))[..., None]
            return inner[0], inner[1], inner[2] & cond
        if isinstance(s, Allocate):
            self.em.base(s.buffer) if id(s.buffer) not in self.register else None
            return self.gen(s.body, env, depth)
        if isinstance(s, Store):
            acc = [(n.value, n.args) for n in _loads_in_order(s.value)] + [(s.buffer, s.indices)]
            acc = [(b, i) for b, i in acc if id(b) not in self.register]
            if not acc:
                return None
            addrs, ids = [], []
            for b, i in acc:
                a, k = self.access(b, i, env, depth)
                addrs.append(np.asarray(a))
                ids.append(k)
            shape = np.broadcast_shapes(*[a.shape for a in addrs], (1,) * depth)
            addr = np.stack([np.broadcast_to(a, shape) for a in addrs], axis=-1)
            return addr, np.broadcast_to(np.array(ids, np.int16), addr.shape), np.ones(shape + (len(acc),), bool)
        raise TypeError(f"trace: unknown statement {s!r}")


def _iterations(s) -> int:
    """Innermost statement executions of a nest (guards ignored)."""
    if isinstance(s, Seq):
        return sum(_iterations(x) for x in s.stmts)
    if isinstance(s, For):
        return s.extent * _iterations(s.body)
    if isinstance(s, (Let, If, Allocate)):
        return _iterations(s.body)
    return 1


def _numpy_trace(f: LoweredFunc) -> Trace:
    t = _NumpyTracer(f)
    out = t.gen(f.body, {}, 0)
    em = t.em
    if out is None:
        addr, ids = np.zeros(0, np.int64), np.zeros(0, np.int16)
    else:
        valid = out[2].reshape(-1)
        addr = np.ascontiguousarray(out[0].reshape(-1)[valid], np.int64)
        ids = np.ascontiguousarray(out[1].reshape(-1)[valid], np.int16)
    return Trace(addr, ids, [b.name for b in em.arrays], [int(np.prod(b.shape)) * b.dtype.itemsize for b in em.arrays],
                 [em.bases[id(b)][0] for b in em.arrays])
