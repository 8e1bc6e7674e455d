"""A fused group of the graph as a tensor expression with its default schedule: how the kernels that
``aisys.compile`` runs come out of the loop back end (one code generator, graph → compute → schedule →
loop IR → numba).

:func:`from_group` reads a ``fused`` node's body (a small graph) into computes — one per node, read from the
registry (:func:`~.te.elementwise` from an op's scalar expression, the reduction from its ``Reduction``) —
and :func:`default_schedule` inlines every intermediate compute (the fusion: intermediates never touch
memory) and arranges the loops by the group's kind, each arrangement an ordinary recorded schedule step:

  * elementwise — adjacent output dimensions that every input reads the same way (all full, or all
    broadcast through index 0) are ``fuse``\\ d into one loop, so a same-shape chain is one flat loop that
    LLVM vectorizes and a row-broadcast bias is two loops (the build then reads each array through a view
    with the fused dimensions merged, so the flat loop indexes memory directly);
  * reduce — the reduction loops stay innermost, accumulating in a one-element register accumulator of
    the reduction's accumulator dtype (float64 for float32 sums); when the reduced dimensions are not the
    innermost ones of the input, the loops are ``reorder``\\ ed to the input's memory order instead and the
    accumulator is a buffer updated in place (a streaming pass, as numpy does);
  * a reduction with a finishing step (the mean's ``acc / count``, or a cast of the accumulator to the
    result dtype) is a second compute, and the accumulation is placed inside it with ``compute_at``.

Inputs are placeholders ``x0, x1, …`` in the body's input order, each viewed with the group's rank (a
size-1 or missing dimension broadcasts by reading index 0); a mean's element count is one more placeholder
(``count``, an int64 array of one element) so the generated source never depends on the sizes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ...framework import dtypes as _dt
from ...framework import scalar as _S
from ...framework.graph import Graph
from ...framework.registry import get as get_op
from .schedule import Schedule
from .te import (IterVar, LoopsError, Node, ReduceSpec, Tensor, _named_lambda, cast, compute, dtype_of, elementwise,
                 from_scalar, placeholder)

#: dtypes the generated kernels handle (numba has no float16/bfloat16 arithmetic)
KERNEL_DTYPES = _S.EMIT_DTYPES
_NAMES = "ijlmnpqrstuvw"


@dataclass
class Group:
    """A fused body as computes. ``tensor`` is the group's output compute; ``inputs`` the placeholders of the
    body's inputs (in order) and ``extra`` more placeholders with the arrays they take (a mean's count);
    ``views`` the shape each input array is read as and ``out_view`` the shape the output array is written
    as (same elements, the group's rank); ``intermediates`` the computes the schedule inlines; for a
    reduction, ``acc`` the accumulating compute and ``reduced`` its reduced dimensions."""
    kind: str
    body: Graph
    tensor: Tensor
    inputs: list
    views: list
    out_view: tuple
    intermediates: list = field(default_factory=list)
    extra: list = field(default_factory=list)
    acc: Tensor | None = None
    reduced: tuple = ()

    @property
    def ops(self) -> str:
        return " → ".join(n.op for n in self.body.nodes.values() if not n.is_leaf)

    @property
    def placeholders(self) -> list:
        return list(self.inputs) + [t for t, _ in self.extra]


def check_dtypes(body: Graph) -> None:
    """Raise if a node computes a dtype the code generator cannot emit (numba has no half arithmetic)."""
    for n in body.nodes.values():
        if n.dtype.name not in KERNEL_DTYPES:
            raise TypeError(f"codegen: node {n.op} computes {n.dtype.name}; generated kernels support "
                            f"{', '.join(sorted(KERNEL_DTYPES))}")


def _padded(shape, r: int) -> tuple:
    return (1,) * (r - len(shape)) + tuple(shape) if r else (1,)


def _needs_cast(expr: Node, operands: list, dtype) -> bool:
    """Whether an op's expression must be converted to the node's dtype, as its numpy reference converts its
    result (``evaluate_node``): numba widens small integers and mixes int with float in float64, so only a
    float expression over operands of its own dtype, a comparison for a bool, or an explicit cast is exact."""
    if expr.op == "cast" and expr.value is dtype:
        return False
    if expr.op == "load" and expr.value.dtype is dtype:
        return False
    if dtype is _dt.bool_:
        return not (expr.op in _S.PRIMS and _S.PRIMS[expr.op].result == "bool")
    if dtype.is_floating:
        return not (dtype_of(expr) is dtype and all(t.dtype is dtype for t in operands))
    return True


def _node_compute(n, ins: list[Tensor], name: str) -> Tensor:
    """One elementwise node as a compute over its own shape: the registry's scalar expression, broadcasting
    as numpy does, converted to the node's dtype where numba would compute another."""
    r = max([len(x.shape) for x in ins] + [len(n.shape), 1])
    t = elementwise(n.op, *ins, name=name, out_shape=_padded(n.shape, r), **n.attrs)
    if tuple(t.shape) != _padded(n.shape, len(t.shape)):
        raise LoopsError(f"codegen: {n.op} over {[x.shape for x in ins]} gives {t.shape}, the graph says {n.shape}")
    if not _needs_cast(t.op.body, ins, n.dtype):
        return t
    body = t.op.body
    return Tensor(name, t.shape, n.dtype, type(t.op)(name, t.op.axes, cast(body, n.dtype)))


def _elementwise_part(body: Graph, ids, r: int, tensors: dict, inter: list, skip=()) -> None:
    """Computes for the body's elementwise nodes (every node but ``skip``), in order."""
    for n in body.nodes.values():
        if n.id in tensors or n.id in skip:
            continue
        if n.is_leaf:
            raise LoopsError(f"codegen: body {body.name} has a leaf %{n.id} ({n.op}) that is not an input")
        ins = [tensors[i] for i in n.inputs]
        t = _node_compute(n, ins, f"t{len(inter)}_{n.op}")
        tensors[n.id] = t
        inter.append(t)


def from_group(body: Graph) -> Group:
    """A fused body (elementwise chain, or a reduction with its elementwise producers) as computes."""
    check_dtypes(body)
    root = body.nodes[body.outputs[0]]
    red = get_op(root.op).reduction if not root.is_leaf else None
    if red is not None:
        return _reduce_group(body, root, red)
    r = len(root.shape)
    views = [_padded(body.nodes[i].shape, r) for i in body.inputs]
    ins = [placeholder(v, body.nodes[i].dtype, name=f"x{k}") for k, (i, v) in enumerate(zip(body.inputs, views))]
    tensors = dict(zip(body.inputs, ins))
    inter: list = []
    _elementwise_part(body, body.inputs, r, tensors, inter)
    out = tensors[root.id]
    if out in ins:
        raise LoopsError(f"codegen: body {body.name} computes nothing (its output is an input)")
    inter.remove(out)
    out = _renamed(out, "out", _padded(root.shape, r))
    return Group("elementwise", body, out, ins, views, _padded(root.shape, r), inter)


def _renamed(t: Tensor, name: str, shape) -> Tensor:
    if tuple(t.shape) != tuple(shape):
        raise LoopsError(f"codegen: output {t.name} has shape {t.shape}, expected {shape}")
    t.name = name
    t.op.name = name
    return t


def _reduce_group(body: Graph, root, red) -> Group:
    P = body.nodes[root.inputs[0]]
    r = len(P.shape)
    if r == 0:
        raise LoopsError(f"codegen: {root.op} of a 0-d value has nothing to reduce (the fusion pass leaves it alone)")
    in_shape = tuple(P.shape)
    dims = tuple(sorted(red.dims(in_shape, **root.attrs)))
    acc_shape = tuple(1 if d in dims else s for d, s in enumerate(in_shape))
    views = [_padded(body.nodes[i].shape, r) for i in body.inputs]
    ins = [placeholder(v, body.nodes[i].dtype, name=f"x{k}") for k, (i, v) in enumerate(zip(body.inputs, views))]
    tensors = dict(zip(body.inputs, ins))
    inter: list = []
    _elementwise_part(body, body.inputs, r, tensors, inter, skip={root.id})
    X = tensors[P.id]
    acc_dt = red.accumulate(P.dtype)
    out_dt = root.dtype
    finish = red.finalize is not None or acc_dt is not out_dt
    spatial = [c * 2 if finish else c for c in _NAMES[:r]]
    raxes = {d: IterVar(f"r{d}", in_shape[d], "reduce") for d in dims}
    spec = ReduceSpec(red, tuple(raxes[d] for d in dims), acc_dt, root.op)

    def element(*ix):
        idx = tuple(raxes[d] if d in raxes else ix[d] for d in range(r))
        v = X[idx]
        return Node("reduce", (v if X.dtype is acc_dt else cast(v, acc_dt),), spec)
    A = compute(acc_shape, _named_lambda(spatial, element), name="acc" if finish else "out", dtype=acc_dt)
    extra = []
    if finish:
        if red.finalize is not None:
            count = placeholder((1,), _dt.int64, name="count")
            extra.append((count, np.array([math.prod(in_shape[d] for d in dims)], np.int64)))
            fin = _S.build(red.finalize, 2)
            value = lambda *ix: from_scalar(fin, [A[ix], count[0]])  # noqa: E731
        else:
            value = lambda *ix: A[ix]  # noqa: E731

        def final(*ix):
            v = value(*ix)
            return v if v.op == "cast" and v.value is out_dt else cast(v, out_dt)
        out = compute(acc_shape, _named_lambda(_NAMES[:r], final), name="out", dtype=out_dt)
    else:
        out = A
    return Group("reduce", body, out, ins, views, acc_shape, inter, extra, acc=A, reduced=dims)


# ---- default schedules ----------------------------------------------------------------------------------
def fuse_groups(in_shapes, out_shape) -> list[list[int]]:
    """Runs of adjacent output dimensions that every input reads the same way (full, or broadcast through
    index 0); size-1 output dimensions join a neighbouring run. One loop per run."""
    r = len(out_shape)
    pats = [tuple(sd != 1 for sd in _padded(s, r)) for s in in_shapes]
    runs: list[list[int]] = []
    for d in range(r):
        if runs and (out_shape[d] == 1 or all(p[runs[-1][-1]] == p[d] for p in pats)
                     or all(out_shape[e] == 1 for e in runs[-1])):
            runs[-1].append(d)
        else:
            runs.append([d])
    return runs


def default_schedule(g: Group) -> Schedule:
    """The schedule ``aisys.compile`` builds a group with (module docstring): every step recorded."""
    s = Schedule(g.tensor)
    for t in g.intermediates:
        s.compute_inline(t)
    if g.kind == "elementwise":
        out = s[g.tensor]
        axes = list(out.axes)
        for run in fuse_groups([t.shape for t in g.inputs], g.tensor.shape):
            v = axes[run[0]]
            for d in run[1:]:
                v = s.fuse(v, axes[d], tensor=g.tensor)
        return s
    A = s[g.acc]
    shape = g.acc.shape
    first = min(g.reduced)
    innermost = all(shape[d] == 1 for d in range(first, len(shape)) if d not in g.reduced)
    if not innermost:                 # stream the input in memory order; the accumulator is updated in place
        order = []
        raxes = iter(A.reduce_axes)
        for d in range(len(shape)):
            order.append(next(raxes) if d in g.reduced else A.axes[d])
        s.reorder(*order, tensor=g.acc)
    elif g.acc is not g.tensor:       # the accumulation runs per output element, in a register
        out = s[g.tensor]
        s.compute_at(g.acc, g.tensor, out.leaves[-1])
    return s
