"""Random graphs for differential testing of passes, codegen and memory planning.

``random_graph(source)`` builds a small, valid graph full of what compilers must get right:
broadcasting, shared subexpressions, constant-only chains, dead branches, identities that simplify
(x+0, x·1, −(−x), double transposes, reshape of reshape, cast round trips), reductions, matmuls,
``where``, and — optionally — impure dropout. ``random_conv_graph`` builds conv / batch-norm / ReLU /
residual stacks for BN folding and the layout pass.

``source`` is anything that can make choices: an int seed, a ``numpy.random.Generator``, or a
hypothesis ``draw`` function (via :func:`graphs` / :func:`conv_graphs`, so failures shrink). Structure
comes from the chooser; array values come from a numpy generator seeded by one choice, so a case is
reproducible from its seed alone.

    from aisys.compiler.testing import random_graph, random_inputs, assert_same_outputs
    g = random_graph(7)
    xs = random_inputs(g, seed=0)
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..framework import dtypes as _dt
from ..framework.graph import Graph, interpret
from ..framework.ops._common import broadcast_shapes

# The generator's vocabulary: which registered ops a random graph draws (a fuzzer's grammar, chosen so values
# stay finite: no log/sqrt/div of arbitrary values). What each op computes comes from the registry; a test
# holds every one of them to a scalar expression or a combiner the kernels compute.
UNARY = ("neg", "abs", "relu", "tanh", "sigmoid", "sin", "cos", "gelu")
BINARY = ("add", "sub", "mul", "maximum", "minimum")
REDUCE = ("sum", "mean", "max", "min")


# ---- choosers ------------------------------------------------------------------------------------
class NumpyChooser:
    """Choices from a numpy Generator (or an int seed)."""

    def __init__(self, rng):
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(int(rng))

    def integers(self, lo: int, hi: int) -> int:          # inclusive bounds
        return int(self.rng.integers(lo, hi + 1))

    def choice(self, seq):
        seq = list(seq)
        return seq[self.integers(0, len(seq) - 1)]

    def boolean(self, p: float = 0.5) -> bool:
        return bool(self.rng.random() < p)


class DrawChooser:
    """Choices from a hypothesis ``draw`` function, so shrinking simplifies the graph."""

    def __init__(self, draw: Callable):
        import hypothesis.strategies as st
        self._draw, self._st = draw, st

    def integers(self, lo: int, hi: int) -> int:
        return self._draw(self._st.integers(lo, hi))

    def choice(self, seq):
        seq = list(seq)
        return seq[self.integers(0, len(seq) - 1)]

    def boolean(self, p: float = 0.5) -> bool:
        return self.integers(0, 999) < int(p * 1000)


def as_chooser(source):
    if isinstance(source, (NumpyChooser, DrawChooser)):
        return source
    if isinstance(source, (int, np.integer, np.random.Generator)):
        return NumpyChooser(source)
    if callable(source):
        return DrawChooser(source)
    raise TypeError(f"random_graph: source must be an int seed, a numpy Generator or a hypothesis draw, "
                    f"got {type(source).__name__}")


# ---- the generator -------------------------------------------------------------------------------
class _Builder:
    def __init__(self, ch, rng, g: Graph, dtype):
        self.ch, self.rng, self.g, self.dtype = ch, rng, g, dtype
        self.pool: list[int] = []            # values new ops may read
        self.recent: list[int] = []

    def node(self, i):
        return self.g.nodes[i]

    def const(self, shape=(), choices=(0.5, -1.5, 2.0, 0.25, 3.0)):
        if shape == ():
            v = np.asarray(self.ch.choice(choices), dtype=self.dtype.np)
        else:
            v = self.rng.uniform(-2, 2, size=shape).astype(self.dtype.np)
        return self.g.add_const(v).id

    def op(self, op, inputs, attrs=None, keep=True):
        n = self.g.add(op, inputs, attrs or {})
        if keep:
            self.pool.append(n.id)
            self.recent.append(n.id)
        return n.id

    def pick(self):
        # favour recent values so chains grow deep, but reach back sometimes (fan-out, sharing)
        if self.recent and self.ch.boolean(0.6):
            return self.recent[-1 - self.ch.integers(0, min(2, len(self.recent) - 1))]
        return self.ch.choice(self.pool)

    def partner(self, a):
        """A value that broadcasts with ``a`` (or None)."""
        sa = tuple(self.node(a).shape)
        for _ in range(4):
            b = self.ch.choice(self.pool)
            try:
                broadcast_shapes("add", sa, tuple(self.node(b).shape))
                return b
            except ValueError:
                continue
        return None


def _variant(ch, shape):
    """A shape that broadcasts to ``shape``: drop leading dims and/or set dims to 1."""
    s = list(shape)
    drop = ch.integers(0, len(s)) if ch.boolean(0.4) else 0
    s = s[drop:]
    for d in range(len(s)):
        if ch.boolean(0.3):
            s[d] = 1
    return tuple(s)


def random_graph(source=0, *, max_ops: int = 12, max_rank: int = 3, max_dim: int = 4, n_inputs: int | None = None,
                 reductions: bool = True, matmul: bool = True, shape_ops: bool = True, dropout: bool = False,
                 dtype=_dt.float32, name: str = "random") -> Graph:
    """A random valid graph (see the module docstring for what it contains)."""
    ch = as_chooser(source)
    dtype = _dt.as_dtype(dtype)
    rng = np.random.default_rng(ch.integers(0, 2**31 - 1))
    g = Graph(name)
    b = _Builder(ch, rng, g, dtype)
    rank = ch.integers(1, max_rank)
    base = tuple(ch.integers(1, max_dim) for _ in range(rank))
    for k in range(n_inputs if n_inputs is not None else ch.integers(1, 3)):
        shape = base if k == 0 else (_variant(ch, base) if ch.boolean(0.5) else base)
        b.pool.append(g.add_input(f"x{k}", shape, dtype).id)
    if ch.boolean(0.5):
        b.pool.append(g.add_param("p0", rng.uniform(-1, 1, size=_variant(ch, base)).astype(dtype.np)).id)

    moves = ["unary", "binary", "binary", "const_binary", "identity", "const_chain", "duplicate", "where", "safe_math"]
    if reductions:
        moves.append("reduce")
    if matmul:
        moves.append("matmul")
    if shape_ops:
        moves += ["reshape", "permute"]
    if dropout:
        moves.append("dropout")
    n_ops = ch.integers(1, max_ops)
    while len([n for n in g.nodes.values() if not n.is_leaf]) < n_ops:
        move = ch.choice(moves)
        a = b.pick()
        na = b.node(a)
        if na.dtype is _dt.bool_:          # comparison results only serve as `where` conditions
            continue
        if move == "unary":
            b.op(ch.choice(UNARY), (a,))
        elif move == "binary":
            p = b.partner(a)
            if p is not None:
                b.op(ch.choice(BINARY), (a, p) if ch.boolean() else (p, a))
        elif move == "const_binary":
            c = b.const(() if ch.boolean(0.6) else _variant(ch, tuple(na.shape)))
            b.op(ch.choice(BINARY + ("div",)), (a, c))
        elif move == "identity":               # things simplify should remove
            kind = ch.choice(["add0", "mul1", "negneg", "sub0", "div1", "cast_rt", "pow2", "relurelu"])
            if kind in ("add0", "mul1", "sub0", "div1"):
                c = g.add_const(np.asarray(0.0 if kind in ("add0", "sub0") else 1.0, dtype.np)).id
                op = {"add0": "add", "mul1": "mul", "sub0": "sub", "div1": "div"}[kind]
                b.op(op, (a, c) if (kind in ("sub0", "div1") or ch.boolean()) else (c, a))
            elif kind == "negneg":
                b.op("neg", (b.op("neg", (a,), keep=False),))
            elif kind == "cast_rt":
                b.op("cast", (b.op("cast", (a,), {"dtype": _dt.float64}, keep=False),), {"dtype": dtype})
            elif kind == "pow2":
                b.op("pow", (a, g.add_const(np.asarray(2.0, dtype.np)).id))
            else:
                b.op("relu", (b.op("relu", (a,), keep=False),))
        elif move == "const_chain":            # a subgraph of constants only: folding target
            c1, c2 = b.const(), b.const(_variant(ch, tuple(na.shape)) if ch.boolean(0.4) else ())
            cc = b.op(ch.choice(BINARY), (c1, c2), keep=False)
            if ch.boolean(0.5):
                cc = b.op(ch.choice(("neg", "abs", "tanh")), (cc,), keep=False)
            b.op(ch.choice(BINARY), (a, cc))
        elif move == "duplicate":              # a shared subexpression computed twice: CSE target
            ops = [n for n in g.nodes.values() if not n.is_leaf and n.op != "dropout"]
            if ops:
                n = ch.choice(ops)
                b.op(n.op, n.inputs, dict(n.attrs))
        elif move == "where":
            p = b.partner(a)
            if p is not None:
                cond = b.op(ch.choice(("gt", "lt", "ge")), (a, p), keep=False)
                other = b.partner(cond)
                if other is not None:
                    b.op("where", (cond, a, other))
        elif move == "safe_math":              # exp, log, sqrt, div kept finite
            kind = ch.choice(["exp", "log", "sqrt", "div"])
            if kind == "exp":
                b.op("exp", (b.op("tanh", (a,), keep=False),))
            elif kind == "log":
                one = g.add_const(np.asarray(1.0, dtype.np)).id
                b.op("log", (b.op("add", (b.op("abs", (a,), keep=False), one), keep=False),))
            elif kind == "sqrt":
                b.op("sqrt", (b.op("abs", (a,), keep=False),))
            else:
                p = b.partner(a)
                if p is not None:
                    one = g.add_const(np.asarray(1.0, dtype.np)).id
                    den = b.op("add", (b.op("abs", (p,), keep=False), one), keep=False)
                    b.op("div", (a, den))
        elif move == "reduce" and len(na.shape) >= 1:
            d = ch.integers(-1, len(na.shape) - 1)
            b.op(ch.choice(REDUCE), (a,), {"dim": None if d < 0 else d, "keepdim": ch.boolean()})
        elif move == "matmul" and len(na.shape) >= 1:
            x = a
            if len(na.shape) == 1:
                x = b.op("reshape", (a,), {"shape": (1, na.shape[0])}, keep=False)
            k = b.node(x).shape[-1]
            w = g.add_param(f"w{len(g.params())}", rng.uniform(-1, 1, (k, ch.integers(1, max_dim))).astype(dtype.np)).id
            b.op("matmul", (x, w))
        elif move == "reshape" and na.numel >= 1:
            if ch.boolean(0.5):
                inner = b.op("reshape", (a,), {"shape": (na.numel,)}, keep=False)
                b.op("reshape", (inner,), {"shape": tuple(na.shape) if ch.boolean() else (1, na.numel)})
            else:
                b.op("reshape", (a,), {"shape": (na.numel,)})
        elif move == "permute" and len(na.shape) >= 2:
            perm = list(range(len(na.shape)))
            for i in range(len(perm) - 1, 0, -1):
                j = ch.integers(0, i)
                perm[i], perm[j] = perm[j], perm[i]
            p1 = b.op("permute", (a,), {"dims": tuple(perm)}, keep=not ch.boolean(0.5))
            if ch.boolean(0.6):                # a double transpose
                inv = tuple(int(v) for v in np.argsort(perm))
                b.op("permute", (p1,), {"dims": inv})
        elif move == "dropout":
            b.op("dropout", (a,), {"p": 0.5, "seed": ch.integers(0, 3)})
    # outputs: the last value, sometimes another one too (everything else unused is dead code)
    outs = [b.recent[-1] if b.recent else b.pool[0]]
    if len(b.pool) > 2 and ch.boolean(0.35):
        o = ch.choice(b.pool)
        if o not in outs:
            outs.append(o)
    g.set_outputs(outs)
    return g


def random_conv_graph(source=0, *, max_blocks: int = 3, batch_norm: bool = True, dtype=_dt.float32,
                      name: str = "convnet") -> Graph:
    """Conv2d stacks: conv (random kernel/stride/padding/groups/bias) → optional eval-mode batch_norm →
    relu/sigmoid/none, with optional residual adds and per-channel bias adds."""
    ch = as_chooser(source)
    dtype = _dt.as_dtype(dtype)
    rng = np.random.default_rng(ch.integers(0, 2**31 - 1))
    g = Graph(name)
    N, C, H, W = ch.integers(1, 2), ch.choice((2, 3, 4)), ch.integers(4, 7), ch.integers(4, 7)
    x = g.add_input("x", (N, C, H, W), dtype).id
    cur = x
    for k in range(ch.integers(1, max_blocks)):
        cin = g.nodes[cur].shape[1]
        residual = ch.boolean(0.4)
        if residual:
            cout, kh, stride, pad = cin, 3, 1, 1
        else:
            cout, kh = ch.choice((2, 3, 4)), ch.choice((1, 3))
            stride, pad = ch.choice((1, 1, 2)), ch.choice((0, 1))
        if min(g.nodes[cur].shape[2:]) + 2 * pad < kh:   # never draw a kernel larger than the padded input
            kh = 1
        groups = cin if (cin == cout and ch.boolean(0.2)) else 1
        wv = (rng.standard_normal((cout, cin // groups, kh, kh)) / math.sqrt(cin * kh * kh)).astype(dtype.np)
        w = g.add_param(f"conv{k}.weight", wv).id
        ins = [cur, w]
        if ch.boolean(0.5):
            ins.append(g.add_param(f"conv{k}.bias", rng.uniform(-0.5, 0.5, cout).astype(dtype.np)).id)
        attrs = dict(stride=(stride, stride), padding=(pad, pad), dilation=(1, 1), groups=groups)
        y = g.add("conv2d", ins, attrs).id
        if batch_norm and ch.boolean(0.75):
            stats = [g.add_param(f"bn{k}.{nm}", v.astype(dtype.np)).id for nm, v in (
                ("running_mean", rng.uniform(-0.5, 0.5, cout)), ("running_var", rng.uniform(0.5, 2.0, cout)),
                ("weight", rng.uniform(0.5, 1.5, cout)), ("bias", rng.uniform(-0.5, 0.5, cout)))]
            y = g.add("batch_norm", [y] + stats, {"eps": 1e-5}).id
        if ch.boolean(0.3):
            bias = g.add_const(rng.uniform(-0.5, 0.5, (1, cout, 1, 1)).astype(dtype.np)).id
            y = g.add("add", (y, bias)).id
        if residual and tuple(g.nodes[y].shape) == tuple(g.nodes[cur].shape):
            y = g.add("add", (y, cur)).id
        act = ch.choice(("relu", "relu", "sigmoid", None))
        if act:
            y = g.add(act, (y,)).id
        cur = y
    g.set_outputs([cur])
    return g


def random_inputs(graph: Graph, seed: int = 0, low: float = -2.0, high: float = 2.0) -> list[np.ndarray]:
    """Arrays for the graph's inputs (uniform in [low, high) for floats, small ints otherwise)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in graph.inputs:
        n = graph.nodes[i]
        if n.dtype.is_floating:
            out.append(rng.uniform(low, high, n.shape).astype(n.dtype.np))
        elif n.dtype is _dt.bool_:
            out.append(rng.random(n.shape) < 0.5)
        else:
            out.append(rng.integers(-3, 4, n.shape).astype(n.dtype.np))
    return out


def assert_same_outputs(got, want, rtol: float = 1e-4, atol: float = 1e-4, what: str = "") -> None:
    """Compare output lists (NaN equal to NaN), naming the output and the worst element on failure."""
    if len(got) != len(want):
        raise AssertionError(f"{what}: {len(got)} outputs, expected {len(want)}")
    for k, (a, e) in enumerate(zip(got, want)):
        a, e = np.asarray(a), np.asarray(e)
        if a.shape != e.shape or a.dtype != e.dtype:
            raise AssertionError(f"{what}: output {k} is {a.dtype}{a.shape}, expected {e.dtype}{e.shape}")
        np.testing.assert_allclose(a.astype(np.float64), e.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=f"{what}: output {k}")


def graphs(**kw):
    """A hypothesis strategy of :func:`random_graph` graphs (shrinks towards small graphs)."""
    import hypothesis.strategies as st

    @st.composite
    def _graphs(draw):
        return random_graph(DrawChooser(draw), **kw)
    return _graphs()


def conv_graphs(**kw):
    """A hypothesis strategy of :func:`random_conv_graph` graphs."""
    import hypothesis.strategies as st

    @st.composite
    def _graphs(draw):
        return random_conv_graph(DrawChooser(draw), **kw)
    return _graphs()


__all__ = ["random_graph", "random_conv_graph", "random_inputs", "assert_same_outputs", "graphs", "conv_graphs",
           "NumpyChooser", "DrawChooser", "interpret"]
