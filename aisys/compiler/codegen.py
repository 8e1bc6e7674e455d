"""The kernels of fused groups, made by the loop back end: the glue between the graph and ``compiler.loops``.

A fused node's body is a small graph. :func:`aisys.compiler.loops.group.from_group` reads it into tensor
expressions (what each output element is, from the op registry's scalar expressions and reductions),
:func:`~aisys.compiler.loops.group.default_schedule` inlines the intermediates and arranges the loops for the
group's kind, and ``loops.build(..., generic=True)`` lowers the schedule to the loop IR and emits numba
source whose sizes are read from the arrays, so one compiled kernel serves every size with the same pattern
(compiled once, cached on disk by its text). There is one path from graph to machine code; this module only
binds the result to the runtime's contract: ``kernel(*arrays, out=)`` and ``kernel.bind(out)``.

Three kinds of group (TVM's classes as taught in 03Frontend/03OPFusion):
  * elementwise — a chain of elementwise/broadcast ops: one loop nest, the chain computed in registers;
  * reduce      — a reduction (sum, mean, max, min, sum_to) and its elementwise producers, which run inside
                  the reduction loop, accumulating in the reduction's accumulator dtype;
  * epilogue    — a complex-out-fusable anchor (matmul, conv2d, conv2d_nhwc) followed by elementwise ops: it runs
                  through numpy (BLAS) into its output buffer, then the epilogue kernel (an elementwise group)
                  updates that buffer in place.

Semantics follow the numpy references: each op's result is converted to the node's dtype where numba would
compute another, maximum/minimum/relu propagate NaN like numpy, division by zero gives inf/nan (numba's
``error_model="numpy"``), and no fast-math reassociation or contraction is allowed.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..framework.graph import Graph, Node
from ..framework.registry import FusionKind, get as get_op
from .loops import group as _group
from .loops.kernel import build as _build
from .loops.lower import lower as _lower

#: dtypes the generated kernels handle (numba has no bfloat16/float16 arithmetic)
KERNEL_DTYPES = _group.KERNEL_DTYPES


class FusedKernel:
    """A fused group compiled through the loop IR. ``group`` (the computes), ``schedule`` (its recorded steps),
    ``loop_nest`` (the lowered loop IR as pseudocode), ``kernel`` (the ``loops.Kernel``: ``kernel.source``
    is the numba text that is compiled), ``source`` (what the pass log shows: the loop nest above the numba
    source), ``fn`` (the numba function, compiled or loaded from the cache on first use)."""

    def __new__(cls, body: Graph):
        if cls is FusedKernel and any(0 in n.shape for n in body.nodes.values()):
            return super().__new__(EmptyGroupKernel)
        return super().__new__(cls)

    def __init__(self, body: Graph):
        self.body = body
        built = _built(body)
        self.group, self.schedule, self.loop_nest, self.kernel, self.source = built
        self.kind = self.group.kind
        self.extra = [a for _, a in self.group.extra]
        n_in = len(self.group.inputs)
        self.in_views = self.kernel.param_shapes[:n_in]
        self.extra_views = [a.reshape(v) for a, v in zip(self.extra, self.kernel.param_shapes[n_in:-1])]
        self.out_view = self.kernel.param_shapes[-1]
        out = body.nodes[body.outputs[0]]
        self.out_shape, self.out_dtype = tuple(out.shape), out.dtype.np

    @property
    def fn(self):
        return self.kernel.fn

    def __call__(self, *arrays, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            out = np.empty(self.out_shape, self.out_dtype)
        ins = [np.ascontiguousarray(a).reshape(v) for a, v in zip(arrays, self.in_views)]
        self.fn(*ins, *self.extra_views, out.reshape(self.out_view))
        return out

    def bind(self, out: np.ndarray, body_shapes=None):
        """``call(arrays) -> out`` writing into the fixed array ``out`` (an arena slot): the views of ``out``
        and which inputs need reshaping are worked out once here, so a call costs the kernel and little else
        (what keeps small fused nodes cheaper than the numpy ops they replace)."""
        fn, view, extra = self.fn, out.reshape(self.out_view), tuple(self.extra_views)
        shapes = body_shapes or [tuple(self.body.nodes[i].shape) for i in self.body.inputs]
        reshape = [v if v != tuple(s) else None for v, s in zip(self.in_views, shapes)]
        if not any(r is not None for r in reshape) and not extra:
            def call(arrays):
                fn(*arrays, view)
                return out
        else:
            def call(arrays):
                fn(*[a if r is None else a.reshape(r) for a, r in zip(arrays, reshape)], *extra, view)
                return out
        return call


def _structure(body: Graph) -> tuple:
    """What a group's kernel depends on: each node's op, attributes, operands (by position), shape and dtype."""
    pos = {i: k for k, i in enumerate(body.nodes)}
    return tuple((n.op, tuple(pos[i] for i in n.inputs), repr(sorted(n.attrs.items())) if n.attrs else "",
                  tuple(n.shape), n.dtype.name) for n in body.nodes.values()) + (
        tuple(pos[i] for i in body.inputs), tuple(pos[i] for i in body.outputs))


_BUILT: OrderedDict = OrderedDict()
_BUILT_MAX = 512


def _built(body: Graph):
    """(group, schedule, loop nest, loops.Kernel, shown source) of a body, shared by every body of the same
    structure (a deep model repeats a few groups hundreds of times: each is read, scheduled and lowered once)."""
    key = _structure(body)
    hit = _BUILT.get(key)
    if hit is not None:
        _BUILT.move_to_end(key)
        return hit
    group = _group.from_group(body)
    schedule = _group.default_schedule(group)
    lowered = _lower(schedule, name="fused_" + group.kind, args=group.placeholders)
    nest = str(lowered)
    note = [f"aisys fused {group.kind} kernel: {group.ops}"]
    kernel = _build(lowered, generic=True, note=note)
    steps = "; ".join(str(st) for st in schedule.steps) or "none"
    shown = (f"# {note[0]}\n# schedule: {steps}\n# loop nest (aisys.compiler.loops.lower):\n"
             + "".join(f"#   {line}\n" for line in nest.splitlines()) + "# numba source:\n" + kernel.source)
    _BUILT[key] = hit = (group, schedule, nest, kernel, shown)
    if len(_BUILT) > _BUILT_MAX:
        _BUILT.popitem(last=False)
    return hit


class EmptyGroupKernel(FusedKernel):
    """A group over an empty tensor: a loop nest has nothing to run (and the tensor expressions' extents are
    ≥ 1), so the ops' numpy references compute the (empty, or identity-filled for a reduction) result."""

    def __init__(self, body: Graph):
        from ..framework.graph import interpret
        self.body, self._interpret = body, interpret
        root = body.nodes[body.outputs[0]]
        self.kind = "reduce" if get_op(root.op).reduction is not None else "elementwise"
        self.out_shape, self.out_dtype = tuple(root.shape), root.dtype.np
        self.kernel = None
        self.source = (f"# aisys fused {self.kind} group over an empty tensor: "
                       f"{' → '.join(n.op for n in body.nodes.values() if not n.is_leaf)}\n"
                       f"# no loop to run; the ops' numpy references compute the result\n")

    @property
    def fn(self):
        return None

    def __call__(self, *arrays, out=None):
        res = np.asarray(self._interpret(self.body, *arrays)[0]).astype(self.out_dtype, copy=False)
        if out is None:
            return res.reshape(self.out_shape).copy()
        np.copyto(out, res.reshape(out.shape))
        return out

    def bind(self, out: np.ndarray, body_shapes=None):
        return lambda arrays: self(*arrays, out=out)


# the runtime and the tests name the kinds
ElementwiseKernel = ReduceKernel = FusedKernel


# ---- epilogue -----------------------------------------------------------------------------------------
def split_epilogue(body: Graph) -> tuple[Node, Graph, list[int]]:
    """(anchor node, epilogue body whose input 0 is the anchor's value, body-input positions feeding the
    epilogue's other inputs)."""
    anchors = [n for n in body.nodes.values()
               if not n.is_leaf and get_op(n.op).fusion is FusionKind.COMPLEX_OUT_FUSABLE]
    if len(anchors) != 1:
        raise ValueError(f"epilogue body must contain exactly one complex-out-fusable anchor (matmul, conv), "
                         f"found {len(anchors)}")
    A = anchors[0]
    E = Graph(body.name + "_epilogue")
    m: dict[int, int] = {A.id: E.add_input("anchor", A.shape, A.dtype).id}
    feeds = []
    pos = {i: k for k, i in enumerate(body.inputs)}
    for n in body.nodes.values():
        if n.is_leaf or n.id == A.id:
            continue
        for i in n.inputs:
            if i not in m:
                src = body.nodes[i]
                m[i] = E.add_input(f"in{len(feeds)}", src.shape, src.dtype).id
                feeds.append(pos[i])
        m[n.id] = E.add(n.op, [m[i] for i in n.inputs], n.attrs).id
    E.set_outputs([m[body.outputs[0]]])
    return A, E, feeds


class EpilogueKernel:
    """matmul/conv via numpy (BLAS), then the elementwise epilogue (a :class:`FusedKernel`) in place on its
    output buffer.

    Given ``out`` (a planned arena slot), an anchor whose registry entry can write into an array
    (``ref_into``: ``np.matmul(..., out=)``) computes straight into it and the epilogue updates it there:
    no array is allocated."""
    kind = "epilogue"

    def __init__(self, body: Graph):
        self.body = body
        self.anchor, self.epilogue_body, self.feeds = split_epilogue(body)
        self.anchor_args = [body.inputs.index(i) for i in self.anchor.inputs]
        self.elementwise = FusedKernel(self.epilogue_body)
        out = body.nodes[body.outputs[0]]
        self.in_place = tuple(out.shape) == tuple(self.anchor.shape) and out.dtype is self.anchor.dtype
        same_dtype = all(body.nodes[i].dtype is self.anchor.dtype for i in self.anchor.inputs)
        self.into = get_op(self.anchor.op).ref_into if self.in_place and same_dtype else None
        self.source = (f"# anchor: {self.anchor.op} runs through numpy (BLAS/im2col) into its output buffer,\n"
                       f"# then the epilogue below updates that buffer {'in place' if self.in_place else 'into a new buffer'}.\n"
                       + self.elementwise.source)

    @property
    def fn(self):
        return self.elementwise.fn

    def bind(self, out: np.ndarray):
        """``call(arrays) -> out`` writing into the fixed array ``out``: the anchor straight into it when the
        registry can (``ref_into``), then the epilogue in place."""
        if self.into is None:
            return lambda arrays: self(*arrays, out=out)
        into, attrs, anchor_args, feeds = self.into, self.anchor.attrs, self.anchor_args, self.feeds
        shapes = [tuple(self.epilogue_body.nodes[i].shape) for i in self.epilogue_body.inputs]
        epilogue = self.elementwise.bind(out, shapes)
        a0, a1 = (anchor_args + [None, None])[:2]
        if len(anchor_args) == 2:
            def call(arrays):
                into(arrays[a0], arrays[a1], out=out, **attrs)
                return epilogue([out] + [arrays[k] for k in feeds])
        else:
            def call(arrays):
                into(*[arrays[k] for k in anchor_args], out=out, **attrs)
                return epilogue([out] + [arrays[k] for k in feeds])
        return call

    def __call__(self, *arrays, out=None) -> np.ndarray:
        A = self.anchor
        if out is not None and self.into is not None:
            self.into(*[arrays[k] for k in self.anchor_args], out=out, **A.attrs)
            return self.elementwise(out, *[arrays[k] for k in self.feeds], out=out)
        y = np.asarray(get_op(A.op).ref(*[arrays[k] for k in self.anchor_args], **A.attrs))
        if y.dtype != A.dtype.np:
            y = y.astype(A.dtype.np)
        y = np.ascontiguousarray(y)
        rest = [arrays[k] for k in self.feeds]
        if self.in_place and out is None:
            return self.elementwise(y, *rest, out=y)
        return self.elementwise(y, *rest, out=out)


def kernel_source(node: Node) -> str:
    """The generated source of a ``fused`` node's kernel: its loop nest, then the numba source (text only:
    numba compiles on the first call)."""
    return build_kernel(node).source


def build_kernel(node: Node):
    """The compiled kernel object for a ``fused`` node (numba compiles on its first call)."""
    if node.op != "fused":
        raise ValueError(f"build_kernel expects a fused node, got %{node.id} = {node.op}")
    body, kind = node.attrs["_body"], node.attrs["kind"]
    if kind in ("elementwise", "reduce"):
        k = FusedKernel(body)
        if k.kind != kind:
            raise ValueError(f"fused node %{node.id} says kind {kind!r} but its body is a {k.kind} group")
        return k
    if kind == "epilogue":
        return EpilogueKernel(body)
    raise ValueError(f"unknown fused kind {kind!r} on %{node.id}")
