"""Tensor expressions: what each element of a tensor is, as data a schedule can rearrange.

In the spirit of TVM's ``te`` and Halide's ``Func``: a :func:`placeholder` is an input, :func:`compute`
says what one output element is (a lambda of its index variables), :func:`reduce_axis` and :func:`sum`
(or :func:`max_`, :func:`min_`) describe a reduction, :func:`where` selects. The values are trees of
:class:`Node` over the primitives of the op registry's scalar-expression language
(``aisys.framework.scalar.PRIMS``); elementwise ops are *read* from the registry (:func:`apply`,
:func:`elementwise`) and reductions take their combiner and identity from the registry's ``Reduction`` of
``sum``/``max``/``min`` — nothing here re-types an op table. :func:`matmul` and :func:`conv2d` are the two
compute rules of the complex ops.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...framework import dtypes as _dt
from ...framework import registry as _reg
from ...framework import scalar as _S
from ...framework.registry import FusionKind


class LoopsError(ValueError):
    """A tensor expression or schedule that cannot mean anything: the message says what, where and how to fix."""


# ---- index variables ------------------------------------------------------------------------------------
class IterVar:
    """A loop variable: an axis of a compute (``kind`` "spatial"), a reduction axis ("reduce"), or a loop a
    schedule made by splitting or fusing. Compared by identity; ``name`` is what the printed loop says."""

    __slots__ = ("name", "extent", "kind")

    def __init__(self, name: str, extent: int, kind: str = "spatial"):
        if not isinstance(extent, (int, np.integer)) or extent < 1:
            raise LoopsError(f"axis {name!r}: extent must be a positive integer, got {extent!r}")
        self.name, self.extent, self.kind = str(name), int(extent), kind

    @property
    def var(self) -> "Node":
        return Node("var", value=self)

    def __repr__(self) -> str:
        return f"<{self.kind} axis {self.name} in range({self.extent})>"

    # an axis used in arithmetic is its index value
    def __add__(self, o): return self.var + o
    def __radd__(self, o): return o + self.var if isinstance(o, Node) else self.var.__radd__(o)
    def __sub__(self, o): return self.var - o
    def __rsub__(self, o): return self.var.__rsub__(o)
    def __mul__(self, o): return self.var * o
    def __rmul__(self, o): return self.var.__rmul__(o)
    def __floordiv__(self, o): return self.var // o
    def __mod__(self, o): return self.var % o
    def __lt__(self, o): return self.var < o
    def __le__(self, o): return self.var <= o
    def __gt__(self, o): return self.var > o
    def __ge__(self, o): return self.var >= o
    __hash__ = object.__hash__


def reduce_axis(extent: int, name: str = "k") -> IterVar:
    """A reduction axis ``range(extent)`` for :func:`sum` (``loops.sum(A[i, k] * B[k, j], axis=k)``)."""
    return IterVar(name, extent, "reduce")


# ---- value and index expressions ------------------------------------------------------------------------
class Node(_S.Arithmetic):
    """An expression node. ``op`` is "var" (an :class:`IterVar` in ``value``), "int" (an index constant),
    "const" (a number, typed by what it meets, like PyTorch's weak scalars), "load" (``value`` a
    :class:`Tensor`, ``args`` its indices), "cast" (to the dtype ``value``), "floordiv"/"mod" (index
    arithmetic), "reduce" (``value`` a :class:`ReduceSpec`, ``args`` the body), or a primitive of
    ``aisys.framework.scalar.PRIMS`` ("add", "mul", "select", "exp", …)."""

    __slots__ = ("op", "args", "value")

    def __init__(self, op: str, args: tuple = (), value=None):
        self.op, self.args, self.value = op, tuple(args), value

    @staticmethod
    def _apply(op: str, *operands) -> "Node":
        return Node(op, tuple(lift(x) for x in operands))

    def __floordiv__(self, o):
        return Node("floordiv", (self, lift(o)))

    def __mod__(self, o):
        return Node("mod", (self, lift(o)))

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<expr {expr_text(self)}>"


def lift(v) -> Node:
    """An operand as a node: nodes stay, axes become their index, Python ints in index positions become
    index constants, other numbers typed constants."""
    if isinstance(v, Node):
        return v
    if isinstance(v, IterVar):
        return v.var
    if isinstance(v, (bool, np.bool_)):
        return Node("const", value=bool(v))
    if isinstance(v, (int, np.integer)):
        return Node("int", value=int(v))
    if isinstance(v, (float, np.floating)):
        return Node("const", value=float(v))
    raise LoopsError(f"tensor expression: cannot use {type(v).__name__} {v!r} as an operand; use numbers, "
                     f"axes and tensor elements (A[i, k])")


def is_index(n: Node) -> bool:
    """Whether a node is integer index arithmetic (vars, ints, + − ×, // and %)."""
    if n.op in ("var", "int"):
        return True
    if n.op in ("add", "sub", "mul", "floordiv", "mod"):
        return all(is_index(a) for a in n.args)
    return False


def walk(n: Node):
    """Every node of an expression, operands first (a shared node once)."""
    seen, out = set(), []

    def go(x):
        if id(x) in seen:
            return
        seen.add(id(x))
        for a in x.args:
            go(a)
        out.append(x)
    go(n)
    return out


def substitute(n: Node, fn: Callable[[Node], Node | None]) -> Node:
    """A copy of ``n`` where ``fn(node)`` replaces a node whenever it returns one (applied top-down)."""
    memo: dict[int, Node] = {}

    def go(x):
        if id(x) in memo:
            return memo[id(x)]
        r = fn(x)
        if r is None:
            r = x if not x.args else Node(x.op, tuple(go(a) for a in x.args), x.value)
            if r.args == x.args:
                r = x
        memo[id(x)] = r
        return r
    return go(n)


def substitute_vars(n: Node, mapping: dict) -> Node:
    """Replace axes (IterVar → Node) in ``n``."""
    if not mapping:
        return n
    return substitute(n, lambda x: lift(mapping[x.value]) if x.op == "var" and x.value in mapping else None)


# ---- dtypes ---------------------------------------------------------------------------------------------
def dtype_of(n: Node):
    """The dtype of a value node (None for a weak constant or pure index arithmetic typed by its context)."""
    memo: dict[int, object] = {}
    for x in walk(n):
        memo[id(x)] = _node_dtype(x, memo)
    return memo[id(n)]


_promote = _S.promote_weak


def _node_dtype(x: Node, memo):
    ts = [memo[id(a)] for a in x.args]
    if x.op in ("int", "const"):
        return None
    if x.op == "var":
        return None                        # an index: int64 where it meets nothing else
    if x.op == "load":
        return x.value.dtype
    if x.op == "cast":
        return x.value
    if x.op == "reduce":
        return x.value.acc_dtype or ts[0]
    if x.op in ("floordiv", "mod"):
        return _promote(ts[0], ts[1])
    p = _S.PRIMS[x.op]
    if p.result == "bool":
        return _dt.bool_
    if p.result == "same":
        return ts[0]
    if p.result == "branches":
        return _promote(ts[1], ts[2])
    return _promote(ts[0], ts[1])


# ---- tensors --------------------------------------------------------------------------------------------
class Tensor:
    """A placeholder (``op is None``) or the result of :func:`compute`. ``A[i, k]`` is an element."""

    def __init__(self, name: str, shape: tuple, dtype, op: "ComputeOp | None" = None):
        self.name, self.shape, self.dtype, self.op = name, tuple(int(s) for s in shape), _dt.as_dtype(dtype), op

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def axis(self) -> tuple[IterVar, ...]:
        if self.op is None:
            raise LoopsError(f"placeholder {self.name!r} has no axes (it is an input); axes belong to computes")
        return self.op.axes

    @property
    def reduce_axis(self) -> tuple[IterVar, ...]:
        return () if self.op is None else self.op.reduce_axes

    def __getitem__(self, idx) -> Node:
        idx = idx if isinstance(idx, tuple) else (idx,)
        if len(idx) != self.ndim:
            raise LoopsError(f"{self.name}[{', '.join(map(str, idx))}]: {self.name} has {self.ndim} dimension(s) "
                             f"{self.shape}, indexed with {len(idx)}")
        nodes = tuple(lift(i) for i in idx)
        for d, n in enumerate(nodes):
            if not is_index(n):
                raise LoopsError(f"{self.name}[...]: index {d} is not integer arithmetic over axes "
                                 f"({n!r}); indices are axes, ints, + − ×, // and %")
        return Node("load", nodes, self)

    def __repr__(self) -> str:
        kind = "placeholder" if self.op is None else "compute"
        return f"<{kind} {self.name}{list(self.shape)} {self.dtype.name}>"


@dataclass(frozen=True)
class ReduceSpec:
    """A reduction node's meaning: the registry's ``Reduction`` (its combiner and identity), the axes it
    runs over and the accumulator dtype (None: the body's)."""
    reduction: _reg.Reduction
    axes: tuple
    acc_dtype: object = None
    op_name: str = "sum"

    def combine(self, acc: Node, x: Node) -> Node:
        return from_scalar(_S.build(self.reduction.combine, 2), [acc, x])

    def identity(self, dtype) -> Node:
        v = self.reduction.identity(dtype)
        return Node("const", value=float(v) if dtype.is_floating else v)


class ComputeOp:
    def __init__(self, name: str, axes: tuple, body: Node):
        self.name, self.axes, self.body = name, tuple(axes), body
        self.reduce_axes = tuple(body.value.axes) if body.op == "reduce" else ()

    def inputs(self) -> list[Tensor]:
        """The tensors its body reads, in first-read order."""
        out = []
        for n in walk(self.body):
            if n.op == "load" and n.value not in out:
                out.append(n.value)
        return out


def placeholder(shape, dtype="float32", name: str = "A") -> Tensor:
    """An input tensor of ``shape`` and ``dtype`` (a kernel argument)."""
    shape = tuple(shape)
    if not shape or any(not isinstance(s, (int, np.integer)) or s < 1 for s in shape):
        raise LoopsError(f"placeholder {name!r}: shape must be a non-empty tuple of positive ints, got {shape!r}")
    return Tensor(name, shape, dtype)


def compute(shape, fcompute: Callable, name: str = "C", dtype=None) -> Tensor:
    """The tensor whose element at ``(i, j, …)`` is ``fcompute(i, j, …)``. Axis names come from the
    lambda's parameter names; a reduction (:func:`sum`) must be the whole body (finish in a second compute)."""
    shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    try:
        params = list(inspect.signature(fcompute).parameters)
    except (TypeError, ValueError):
        params = []
    if len(params) != len(shape) or any(inspect.signature(fcompute).parameters[p].kind not in
                                        (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                                        for p in params):
        names = "ijklmnpq"[:len(shape)]
        if len(params) != len(shape):
            raise LoopsError(f"compute {name!r}: shape {shape} has {len(shape)} axes but fcompute takes "
                             f"{len(params)} argument(s) {params}; write lambda {', '.join(names)}: ...")
    axes = tuple(IterVar(p, s) for p, s in zip(params, shape))
    body = lift(fcompute(*axes))
    for n in walk(body):
        if n.op == "reduce" and n is not body:
            raise LoopsError(f"compute {name!r}: a reduction must be the whole body (it is nested inside "
                             f"{body!r}); compute the reduction in one tensor and use it in a second compute")
        if n.op == "var" and n.value.kind == "reduce" and not _bound_by_reduce(body, n.value):
            raise LoopsError(f"compute {name!r}: reduction axis {n.value.name!r} is used outside a reduction; "
                             f"wrap the body in loops.sum(..., axis={n.value.name})")
    t = dtype if dtype is not None else (dtype_of(body) or _dt.float32)
    if body.op == "reduce" and body.value.acc_dtype is None:
        body = Node("reduce", body.args, ReduceSpec(body.value.reduction, body.value.axes, _dt.as_dtype(t),
                                                    body.value.op_name))
    return Tensor(name, shape, t, ComputeOp(name, axes, body))


def _bound_by_reduce(body: Node, ax: IterVar) -> bool:
    return body.op == "reduce" and ax in body.value.axes


def _reduce(op_name: str, expr, axis, acc_dtype=None) -> Node:
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    if not axes or any(not isinstance(a, IterVar) or a.kind != "reduce" for a in axes):
        raise LoopsError(f"loops.{op_name}(..., axis={axis!r}): axis must be reduction axes made by "
                         f"loops.reduce_axis(extent, name)")
    red = _reg.get(op_name).reduction
    return Node("reduce", (lift(expr),), ReduceSpec(red, axes, None if acc_dtype is None else
                                                   _dt.as_dtype(acc_dtype), op_name))


def sum(expr, axis, acc_dtype=None) -> Node:  # noqa: A001  (the te name)
    """Σ over ``axis`` (one reduction axis or a tuple), combined as the registry's ``sum`` Reduction says.
    Accumulates in the compute's dtype (as BLAS does for matmul) unless ``acc_dtype`` is given."""
    return _reduce("sum", expr, axis, acc_dtype)


def max_(expr, axis) -> Node:
    """max over ``axis`` (NaN propagates, as the registry's ``max`` Reduction says)."""
    return _reduce("max", expr, axis)


def min_(expr, axis) -> Node:
    return _reduce("min", expr, axis)


def where(cond, a, b) -> Node:
    """``a`` where ``cond`` holds, else ``b`` (the registry's ``select`` primitive)."""
    return Node("select", (lift(cond), lift(a), lift(b)))


def cast(x, dtype) -> Node:
    return Node("cast", (lift(x),), _dt.as_dtype(dtype))


# ---- reading the registry -------------------------------------------------------------------------------
def from_scalar(e: _S.Expr, operands: list) -> Node:
    """A registry scalar expression with its operands (``arg i``) replaced by tensor-expression nodes."""
    memo: dict[int, Node] = {}
    for x in _S.walk(e):
        if x.prim == "arg":
            r = lift(operands[x.value])
        elif x.prim == "const":
            r = Node("const", value=x.value)
        elif x.prim == "cast":
            r = Node("cast", (memo[id(x.args[0])],), x.value)
        else:
            r = Node(x.prim, tuple(memo[id(a)] for a in x.args))
        memo[id(x)] = r
    return memo[id(e)]


def apply(op: str, *operands, **attrs) -> Node:
    """One element of a registry elementwise op applied to element expressions: ``apply("relu", A[i, j])``.
    The expression is the op's own ``scalar`` definition."""
    d = _reg.get(op)
    if d.scalar is None:
        raise LoopsError(f"loops.apply({op!r}): the op has no scalar expression (its fusion kind is "
                         f"{d.fusion.value}); elementwise and broadcast ops have one — for reductions use "
                         f"loops.reduce_op, for matmul/conv2d loops.matmul / loops.conv2d")
    return from_scalar(d.scalar_expr(len(operands), **attrs), list(operands))


def elementwise(op: str, *inputs: Tensor, name: str | None = None, out_shape=None, **attrs) -> Tensor:
    """The compute of a registry elementwise/broadcast op over tensors, broadcasting as numpy does (a
    size-1 or missing leading dimension reads index 0). The output shape and dtype are the op's own
    ``infer`` (``broadcast_to``'s is its ``shape=``); ``out_shape``: a larger shape that one broadcasts to
    (a fused kernel's rank, padded with leading 1s)."""
    d = _reg.get(op)
    if d.fusion not in (FusionKind.ELEMENTWISE, FusionKind.BROADCAST) or d.scalar is None:
        raise LoopsError(f"loops.elementwise({op!r}): {op} is a {d.fusion.value} op without a scalar "
                         f"expression; use loops.reduce_op, loops.matmul or loops.conv2d")
    spec = d.infer(*[_spec(t) for t in inputs], **attrs)
    try:
        shape = np.broadcast_shapes(tuple(spec.shape), *([tuple(out_shape)] if out_shape else []))
    except ValueError:
        raise LoopsError(f"loops.elementwise({op!r}): its output shape {tuple(spec.shape)} (inputs "
                         f"{[t.shape for t in inputs]}) does not broadcast to out_shape={tuple(out_shape)}") from None
    if not shape:
        raise LoopsError(f"loops.elementwise({op!r}): the output is 0-d (inputs {[t.shape for t in inputs]}); "
                         f"tensor expressions have no 0-d tensors — reshape to (1,)")

    def element(*ix):
        elems = []
        for t in inputs:
            lead = len(shape) - t.ndim
            elems.append(t[tuple(0 if s == 1 and shape[lead + d] != 1 else ix[lead + d]
                                 for d, s in enumerate(t.shape))])
        return apply(op, *elems, **attrs)
    names = "ijlmnpqr"[:len(shape)]
    return compute(shape, _named_lambda(names, element), name=name or op, dtype=spec.dtype)


def _spec(t: Tensor):
    return _reg.Spec(t.shape, t.dtype)


def _named_lambda(names: str, fn: Callable) -> Callable:
    """A function whose parameters are named ``names`` (so the loops print as i, j, …)."""
    src = f"lambda {', '.join(names)}: fn({', '.join(names)})"
    return eval(src, {"fn": fn})  # noqa: S307  (a fixed template over single letters)


def reduce_op(op: str, x: Tensor, dim=None, keepdim: bool = False, name: str | None = None) -> Tensor:
    """The compute of a registry reduction (``sum``, ``mean``, ``max``, ``min``) over ``dim``: combiner,
    identity, accumulator dtype and finalizer all from the op's ``Reduction``."""
    d = _reg.get(op)
    red = d.reduction
    if red is None:
        raise LoopsError(f"loops.reduce_op({op!r}): {op} has no Reduction in the registry ({d.fusion.value})")
    dims = tuple(red.dims(x.shape, dim=dim, keepdim=keepdim))
    out_shape = tuple(1 if a in dims else s for a, s in enumerate(x.shape)) if keepdim else \
        tuple(s for a, s in enumerate(x.shape) if a not in dims)
    raxes = [IterVar(f"r{a}", x.shape[a], "reduce") for a in dims]
    acc = red.accumulate(x.dtype)
    out_dtype = d.infer(_spec(x), dim=dim, keepdim=keepdim).dtype
    count = int(np.prod([x.shape[a] for a in dims])) if dims else 1

    def element(*ix):
        it = iter(ix)
        idx, r = [], iter(raxes)
        for a in range(x.ndim):
            if a in dims:
                if keepdim:
                    next(it)
                idx.append(next(r))
            else:
                idx.append(next(it))
        return Node("reduce", (cast(x[tuple(idx)], acc),), ReduceSpec(red, tuple(raxes), acc, op))
    names = "ijlmnpqr"[:len(out_shape)] or ""
    if not out_shape:
        raise LoopsError(f"loops.reduce_op({op!r}): reducing every axis gives a 0-d tensor; keep one with "
                         f"keepdim=True")
    acc_t = compute(out_shape, _named_lambda(names, element), name=(name or op) + ("_acc" if red.finalize else ""),
                    dtype=acc if red.finalize else out_dtype)
    if red.finalize is None:
        return acc_t
    fin = _S.build(red.finalize, 2)
    return compute(out_shape, _named_lambda(names, lambda *ix: from_scalar(fin, [acc_t[ix], float(count)])),
                   name=name or op, dtype=out_dtype)


def matmul(A: Tensor, B: Tensor, name: str = "C") -> Tensor:
    """C[i, j] = Σ_k A[i, k]·B[k, j] (2-D operands; accumulates in C's dtype, as BLAS)."""
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise LoopsError(f"loops.matmul: needs A (M, K) and B (K, N) with the same K, got {A.name}{list(A.shape)} "
                         f"and {B.name}{list(B.shape)}")
    k = reduce_axis(A.shape[1], "k")
    return compute((A.shape[0], B.shape[1]), lambda i, j: sum(A[i, k] * B[k, j], axis=k), name=name,
                   dtype=_dt.promote(A.dtype, B.dtype))


def conv2d(X: Tensor, W: Tensor, stride=1, padding=0, dilation=1, name: str = "Y") -> Tensor:
    """NCHW cross-correlation as the registry's ``conv2d`` (groups=1): padding reads zeros through a guard
    (``where``), output size from ``framework.shapes``."""
    from ...framework.shapes import conv_output_size
    pair = lambda v: (int(v), int(v)) if isinstance(v, (int, np.integer)) else tuple(int(u) for u in v)  # noqa: E731
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    if X.ndim != 4 or W.ndim != 4 or X.shape[1] != W.shape[1]:
        raise LoopsError(f"loops.conv2d: needs X (N, C, H, W) and W (F, C, KH, KW) with the same C, got "
                         f"{X.name}{list(X.shape)} and {W.name}{list(W.shape)}")
    n, c, h, w = X.shape
    f, _, kh, kw = W.shape
    oh = conv_output_size(h, kh, sh, ph, dh, dim="H")
    ow = conv_output_size(w, kw, sw, pw, dw, dim="W")
    rc, ry, rx = reduce_axis(c, "rc"), reduce_axis(kh, "ry"), reduce_axis(kw, "rx")

    def element(b, co, y, x):
        iy, ix = y * sh + ry * dh - ph, x * sw + rx * dw - pw
        if ph == 0 and pw == 0:
            v = X[b, rc, iy, ix]
        else:               # the guard keeps the read in bounds: clamp the index, select zero outside
            inside = Node("and", (Node("and", (iy >= 0, iy < h)), Node("and", (ix >= 0, ix < w))))
            v = where(inside, X[b, rc, _clamp(iy, h), _clamp(ix, w)], 0.0)
        return sum(v * W[co, rc, ry, rx], axis=(rc, ry, rx))
    return compute((n, f, oh, ow), lambda b, co, y, x: element(b, co, y, x), name=name,
                   dtype=_dt.promote(X.dtype, W.dtype))


def _clamp(e: Node, n: int) -> Node:
    """``e % n``: keeps a read of the zero padding inside the array (``where`` then replaces it by zero)."""
    return e % n


# ---- printing ----------------------------------------------------------------------------------------------
def expr_text(n: Node) -> str:
    return _text(n)[0]


def _text(n: Node) -> tuple[str, int]:
    op = n.op
    if op == "var":
        return n.value.name, 9
    if op == "int":
        return str(n.value), 9
    if op == "const":
        return repr(n.value), 9
    if op == "load":
        return f"{n.value.name}[{', '.join(_text(a)[0] for a in n.args)}]", 9
    if op == "cast":
        return f"{n.value.name}({_text(n.args[0])[0]})", 9
    if op == "reduce":
        spec = n.value
        return f"{spec.op_name}({_text(n.args[0])[0]}, axis=({', '.join(a.name for a in spec.axes)}))", 9
    if op in ("floordiv", "mod"):
        a, b = _text(n.args[0]), _text(n.args[1])
        sym = "//" if op == "floordiv" else "%"
        return f"{_par(a, 6)} {sym} {_par(b, 7)}", 6
    p = _S.PRIMS[op]
    parts = [_text(a) for a in n.args]
    if op == "select":
        (c, cp), (a, ap), (b, bp) = parts
        return f"{a if ap > 0 else f'({a})'} if {c if cp > 1 else f'({c})'} else {b if bp > 0 else f'({b})'}", 0
    if p.arity == 1:
        if p.prec == 9:
            return p.template.format(parts[0][0]), 9
        return p.template.format(_par(parts[0], p.prec)), p.prec
    if p.prec == 9:
        return p.template.format(parts[0][0], parts[1][0]), 9
    left = _par(parts[0], p.prec if p.prec != 4 else 5)
    right = _par(parts[1], p.prec + 1)
    return p.template.format(left, right), p.prec


def _par(part, need) -> str:
    s, prec = part
    return s if prec >= need else f"({s})"


