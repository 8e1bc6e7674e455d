"""Algebraic simplification (代数化简, 03Frontend/10Algebraic; 05Optimize/02Basic 冗余节点消除).

A table of local rewrite rules, each a small function ``rule(rw, node, ctx) -> replacement id | None``,
applied over the whole graph again and again until no rule fires (a fixpoint). Every rule keeps the
node's shape and dtype — ``x + 0`` where the zero would broadcast ``x`` to a bigger shape is left alone.

IEEE-754 care (documented per rule): ``x·0 → 0`` and ``x − x → 0`` are only exact for integers and
bools. For floats, NaN·0 = NaN, inf·0 = NaN and inf − inf = NaN, so those rules are *rejected* with a
reason unless the caller promises finite values (``assume_finite=True``, like a fast-math flag).
``x + 0 → x`` may turn −0.0 + 0.0 (= +0.0) into −0.0; the two compare equal and we accept that,
as most graph compilers do.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ...framework import dtypes as _dt
from ...framework.graph import Node
from ..rewriter import Rewriter, Worklist


@dataclass(frozen=True)
class Rule:
    name: str
    ops: tuple
    fn: Callable
    doc: str

    def __call__(self, rw, n, ctx):
        return self.fn(rw, n, ctx)


@dataclass
class _Ctx:
    assume_finite: bool = False
    rejected: set = field(default_factory=set)

    def reject(self, rw: Rewriter, n: Node, what: str, reason: str, rule) -> None:
        key = (rule.__name__, n.id)
        if key not in self.rejected:
            self.rejected.add(key)
            rw.reject(f"rewrite %{n.id} ({what})", reason, rule=rule, nodes=(n.id,))


SIMPLIFY_RULES: list[Rule] = []


def rule(name: str, ops, doc: str):
    """Register a rule in the table; the function's definition line is what the pass log cites."""
    def deco(fn):
        fn.rule_name = name
        SIMPLIFY_RULES.append(Rule(name, tuple(ops) if not isinstance(ops, str) else (ops,), fn, doc))
        return fn
    return deco


# ---- helpers -----------------------------------------------------------------------------------
def _const_equals(rw: Rewriter, i: int, v) -> bool:
    n = rw.node(i)
    return n.op == "const" and n.value is not None and n.value.size > 0 and bool(np.all(n.value == v))


def _same_type(a: Node, b: Node) -> bool:
    return tuple(a.shape) == tuple(b.shape) and a.dtype is b.dtype


def _operand_with(rw: Rewriter, n: Node, v, commutative: bool = True):
    """The other operand x when ``n`` is op(x, c) (or op(c, x)) with c a constant equal to ``v``."""
    a, b = n.inputs
    pairs = ((a, b), (b, a)) if commutative else ((a, b),)
    for x, c in pairs:
        if _const_equals(rw, c, v) and _same_type(rw.node(x), n):
            return x
    return None


def _zeros(rw: Rewriter, n: Node) -> int:
    c = rw.add_const(np.zeros((), n.dtype.np), provenance=n.provenance)
    if tuple(n.shape) == ():
        return c.id
    return rw.add("broadcast_to", (c.id,), {"shape": tuple(n.shape)}, provenance=n.provenance).id


#: (source, wider) pairs where casting to ``wider`` and back is exact for every value
_EXACT_WIDENING = {("float16", "float32"), ("float16", "float64"), ("bfloat16", "float32"), ("bfloat16", "float64"),
                   ("float32", "float64"), ("int8", "int32"), ("int8", "int64"), ("int32", "int64"),
                   ("int8", "float32"), ("int8", "float64"), ("int8", "float16"), ("int32", "float64")}


# ---- the rule table ------------------------------------------------------------------------------
@rule("add_zero", "add", "x + 0 → x, 0 + x → x")
def add_zero(rw, n, ctx):
    return _operand_with(rw, n, 0)


@rule("sub_zero", "sub", "x − 0 → x")
def sub_zero(rw, n, ctx):
    return _operand_with(rw, n, 0, commutative=False)


@rule("mul_one", "mul", "x · 1 → x, 1 · x → x")
def mul_one(rw, n, ctx):
    return _operand_with(rw, n, 1)


@rule("div_one", "div", "x / 1 → x")
def div_one(rw, n, ctx):
    return _operand_with(rw, n, 1, commutative=False)


@rule("mul_zero", "mul", "x · 0 → 0 (exact for integers; floats need assume_finite: NaN·0 = NaN)")
def mul_zero(rw, n, ctx):
    a, b = n.inputs
    for x, c in ((a, b), (b, a)):
        if _const_equals(rw, c, 0):
            if rw.node(x).dtype.is_floating and not ctx.assume_finite:
                ctx.reject(rw, n, "x·0 → 0", f"%{x} is floating point and may hold NaN or ±inf, and NaN·0 = inf·0 = NaN "
                                             f"(IEEE 754); pass assume_finite=True to allow it", mul_zero)
                return None
            return _zeros(rw, n)
    return None


@rule("sub_self", "sub", "x − x → 0 (exact for integers; floats need assume_finite: inf − inf = NaN)")
def sub_self(rw, n, ctx):
    a, b = n.inputs
    if a != b:
        return None
    if rw.node(a).dtype.is_floating and not ctx.assume_finite:
        ctx.reject(rw, n, "x−x → 0", f"%{a} is floating point and may hold NaN or ±inf, and inf − inf = NaN "
                                     f"(IEEE 754); pass assume_finite=True to allow it", sub_self)
        return None
    return _zeros(rw, n)


@rule("neg_neg", "neg", "−(−x) → x")
def neg_neg(rw, n, ctx):
    m = rw.node(n.inputs[0])
    return m.inputs[0] if m.op == "neg" else None


@rule("not_not", "logical_not", "not(not x) → x for bool x")
def not_not(rw, n, ctx):
    m = rw.node(n.inputs[0])
    if m.op == "logical_not" and rw.node(m.inputs[0]).dtype is _dt.bool_ and n.dtype is _dt.bool_:
        return m.inputs[0]
    return None


@rule("idempotent", ("relu", "abs"), "relu(relu(x)) → relu(x), |(|x|)| → |x|")
def idempotent(rw, n, ctx):
    m = rw.node(n.inputs[0])
    return m.id if m.op == n.op else None


@rule("reshape_noop", "reshape", "reshape(x, x.shape) → x")
def reshape_noop(rw, n, ctx):
    x = rw.node(n.inputs[0])
    return x.id if _same_type(x, n) else None


@rule("reshape_reshape", "reshape", "reshape(reshape(x, a), b) → reshape(x, b)")
def reshape_reshape(rw, n, ctx):
    m = rw.node(n.inputs[0])
    if m.op != "reshape":
        return None
    x = rw.node(m.inputs[0])
    if _same_type(x, n):
        return x.id
    return rw.add("reshape", (x.id,), {"shape": tuple(n.shape)}, provenance=n.provenance).id


@rule("permute_noop", "permute", "permute(x, identity) → x")
def permute_noop(rw, n, ctx):
    dims = tuple(n.attrs["dims"])
    return n.inputs[0] if dims == tuple(range(len(dims))) else None


@rule("permute_permute", "permute", "permute(permute(x, p), q) → permute(x, p∘q), or x when p∘q is the identity "
                                    "(double transpose)")
def permute_permute(rw, n, ctx):
    m = rw.node(n.inputs[0])
    if m.op != "permute":
        return None
    p, q = tuple(m.attrs["dims"]), tuple(n.attrs["dims"])
    r = tuple(p[i] for i in q)
    if r == tuple(range(len(r))):
        return m.inputs[0]
    return rw.add("permute", (m.inputs[0],), {"dims": r}, provenance=n.provenance).id


@rule("cast_noop", "cast", "cast(x, x.dtype) → x")
def cast_noop(rw, n, ctx):
    x = rw.node(n.inputs[0])
    return x.id if x.dtype is n.dtype else None


@rule("cast_roundtrip", "cast", "cast(cast(x, wider), x.dtype) → x when the wider type holds every value of x")
def cast_roundtrip(rw, n, ctx):
    m = rw.node(n.inputs[0])
    if m.op != "cast":
        return None
    x = rw.node(m.inputs[0])
    if x.dtype is n.dtype and (x.dtype.name, m.dtype.name) in _EXACT_WIDENING | {(x.dtype.name, x.dtype.name)}:
        return x.id
    return None


@rule("broadcast_noop", "broadcast_to", "broadcast_to(x, x.shape) → x")
def broadcast_noop(rw, n, ctx):
    x = rw.node(n.inputs[0])
    return x.id if _same_type(x, n) else None


@rule("pow_one", "pow", "x ** 1 → x")
def pow_one(rw, n, ctx):
    return _operand_with(rw, n, 1, commutative=False)


@rule("pow_two", "pow", "x ** 2 → x · x (strength reduction: a multiply instead of a pow)")
def pow_two(rw, n, ctx):
    a, b = n.inputs
    if _const_equals(rw, b, 2) and _same_type(rw.node(a), n):
        return rw.add("mul", (a, a), provenance=n.provenance).id
    return None


# ---- the pass ------------------------------------------------------------------------------------
def simplify(rw: Rewriter, rules=None, assume_finite: bool = False, max_sweeps: int = 16) -> None:
    """Apply the rule table until no rule fires anywhere.

    A worklist in topological order: every node a rule applies to is visited once; when a rule fires,
    the replacement and the nodes that now read it are visited again (a rule looks at a node and its
    inputs, so nothing else can start to match). In a fixpoint group only the nodes changed since the
    last run, and their readers, are visited (``rw.dirty``). O(n log n + rewrites × readers); no node
    is visited more than ``max_sweeps`` times."""
    table = SIMPLIFY_RULES if rules is None else list(rules)
    by_op: dict[str, list] = {}
    for r in table:
        for op in r.ops:
            by_op.setdefault(op, []).append(r)
    ctx = _Ctx(assume_finite)
    g = rw.graph
    work = Worklist(rw, lambda i: g.nodes[i].op in by_op)
    visits: dict[int, int] = {}
    for i in work:
        n = g.nodes[i]
        visits[i] = visits.get(i, 0) + 1
        if visits[i] > max_sweeps:
            continue
        for r in by_op.get(n.op, ()):
            new = r(rw, n, ctx)
            if new is None:
                rw.discard_pending()
                continue
            before = g.format_node(n)
            readers = list(rw.users()[n.id])
            rw.replace(n.id, new, rule=r.fn, note=f"{before.split(' : ')[0]} → %{new}")
            work.push(new, *readers)
            break
