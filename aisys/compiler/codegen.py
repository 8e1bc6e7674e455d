"""Code generation for fused groups: Python loop source, compiled by numba (``aisys.kernels``).

A fused node's body is a small graph. We turn it into one loop nest that reads each input element
once, computes the whole chain in registers, and writes the output once — the point of fusion
(算子融合): the intermediates never touch memory.

Broadcasting is handled by index arithmetic decided at code-generation time. Each input is
classified per output dimension as *full* (indexed by the loop variable) or *broadcast* (size 1,
indexed by 0). Adjacent dimensions with the same classification for every input are collapsed into
one, so a chain over same-shape tensors (the common case) becomes a single flat loop, and a
row-broadcast bias becomes a 2-level loop. Inputs broadcast in every dimension (scalars) are loaded
once, before the loops. The generated source depends only on the ops, the dtypes and these
patterns, never on the sizes, so one compiled kernel serves every size with the same pattern.

Three kinds of group (TVM's classes as taught in 03Frontend/03OPFusion):
  * elementwise — a chain of elementwise/broadcast ops;
  * reduce      — sum/mean/max/min/sum_to with its elementwise producers; the producers run inside the
                  reduction loop (accumulating in float64 for floats, int64 for ints);
  * epilogue    — matmul / conv2d / conv2d_nhwc followed by elementwise ops: the anchor runs through
                  numpy (BLAS) into its output buffer, then the epilogue kernel updates that buffer in
                  place.

Semantics follow the numpy references: each op's result is cast to the node's dtype (as
``evaluate_node`` does), maximum/minimum/relu propagate NaN like numpy, division by zero gives inf/nan
(numba's ``error_model="numpy"``), and no fast-math reassociation is allowed.
"""
from __future__ import annotations

import math

import numpy as np

from ..framework import dtypes as _dt
from ..framework.graph import Graph, Node
from ..framework.registry import get as get_op

#: dtypes the generated kernels handle (numba has no bfloat16/float16 arithmetic)
KERNEL_DTYPES = frozenset({"bool", "int8", "int32", "int64", "float32", "float64"})
#: elementwise ops with a code template
ELEMENTWISE_OPS = frozenset({"add", "sub", "mul", "div", "pow", "maximum", "minimum", "where", "eq", "ne", "lt",
                             "le", "gt", "ge", "logical_not", "neg", "exp", "log", "sqrt", "sin", "cos", "tanh",
                             "sign", "abs", "sigmoid", "relu", "gelu", "erf", "cast", "broadcast_to"})
REDUCE_OPS = frozenset({"sum", "mean", "max", "min", "sum_to"})
ANCHOR_OPS = frozenset({"matmul", "conv2d", "conv2d_nhwc"})

_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715
_SQRT1_2 = math.sqrt(0.5)


# ---- small helpers ------------------------------------------------------------------------------
class _Consts:
    """Typed module-level constants (numba treats module globals as compile-time constants)."""

    def __init__(self):
        self.names: dict[tuple, str] = {}

    def get(self, value, dtype: _dt.DType) -> str:
        key = (dtype.name, repr(value))
        if key not in self.names:
            self.names[key] = f"_C{len(self.names)}"
        return self.names[key]

    def lines(self) -> list[str]:
        out = []
        for (dname, vrepr), name in self.names.items():
            if dname == "bool":
                out.append(f"{name} = {vrepr}")
            else:
                out.append(f"{name} = np.{dname}({vrepr})")
        return out


def _cast(expr: str, dtype: _dt.DType) -> str:
    if dtype.name == "bool":
        return f"bool({expr})"
    return f"np.{dtype.name}({expr})"


def _emit(n: Node, args: list[str], argdt: list[_dt.DType], t: str, C: _Consts) -> list[str]:
    """Statements computing node ``n`` into variable ``t`` from argument variables ``args``."""
    D = n.dtype
    a = args[0] if args else None
    b = args[1] if len(args) > 1 else None
    op = n.op
    binops = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
    cmps = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
    if op in binops:
        return [f"{t} = {_cast(f'{a} {binops[op]} {b}', D)}"]
    if op in cmps:
        return [f"{t} = {a} {cmps[op]} {b}"]
    if op == "pow":
        return [f"{t} = {_cast(f'np.power({a}, {b})', D)}"]
    if op == "maximum":        # numpy: NaN in either operand propagates
        return [f"{t} = {_cast(f'{a} if ({a} >= {b} or {a} != {a}) else {b}', D)}"]
    if op == "minimum":
        return [f"{t} = {_cast(f'{a} if ({a} <= {b} or {a} != {a}) else {b}', D)}"]
    if op == "where":
        c, x, y = args
        return [f"{t} = {_cast(f'{x} if {c} else {y}', D)}"]
    if op == "logical_not":
        return [f"{t} = {_cast(f'{a} == 0', D)}"] if argdt[0].name != "bool" else [f"{t} = not {a}"]
    if op == "neg":
        return [f"{t} = {_cast(f'-{a}', D)}"]
    if op in ("exp", "log", "sqrt", "sin", "cos", "tanh"):
        return [f"{t} = {_cast(f'np.{op}({a})', D)}"]
    if op == "abs":
        return [f"{t} = {_cast(f'abs({a})', D)}"]
    if op == "sign":
        one, zero = C.get(1, D), C.get(0, D)
        return [f"{t} = {_cast(f'{one} if {a} > {zero} else (-{one} if {a} < {zero} else {a})', D)}"]
    if op == "relu":
        zero = C.get(0.0 if D.is_floating else 0, D)
        return [f"{t} = {_cast(f'{a} if ({a} >= {zero} or {a} != {a}) else {zero}', D)}"]
    if op == "sigmoid":        # the reference's stable form: exp of a non-positive number only
        one, zero = C.get(1.0, D), C.get(0.0, D)
        return [f"{t}_e = np.exp(-abs({a}))",
                f"{t} = {_cast(f'({one} / ({one} + {t}_e)) if {a} >= {zero} else ({t}_e / ({one} + {t}_e))', D)}"]
    if op == "gelu" and n.attrs.get("approximate", "none") == "tanh":
        half, one, c, k = C.get(0.5, D), C.get(1.0, D), C.get(_GELU_C, D), C.get(_GELU_A, D)
        return [f"{t} = {_cast(f'{half} * {a} * ({one} + np.tanh({c} * ({a} * {a} * {a} * {k} + {a})))', D)}"]
    if op == "gelu":           # the reference's form: x·Φ(x) = x·erfc(−x/√2)/2, in float64 as the reference does
        return [f"{t}_x = np.float64({a})",
                f"{t} = {_cast(f'0.5 * {t}_x * math.erfc(-{t}_x * {_SQRT1_2!r})', D)}"]
    if op == "erf":
        return [f"{t} = {_cast(f'math.erf(np.float64({a}))', D)}"]
    if op == "cast":
        if D.name == "bool":
            return [f"{t} = {a} != 0"]
        return [f"{t} = {_cast(a, D)}"]
    if op == "broadcast_to":
        return [f"{t} = {a}"]
    raise NotImplementedError(f"codegen: no template for op {op!r}")


def _body_statements(body: Graph, skip: set[int], var: dict[int, str], C: _Consts, indent: str) -> list[str]:
    lines = []
    k = 0
    for n in body.nodes.values():
        if n.id in var or n.id in skip:
            continue
        t = f"t{k}"
        k += 1
        for s in _emit(n, [var[i] for i in n.inputs], [body.nodes[i].dtype for i in n.inputs], t, C):
            lines.append(indent + s)
        var[n.id] = t
    return lines


def _check_dtypes(body: Graph) -> None:
    for n in body.nodes.values():
        if n.dtype.name not in KERNEL_DTYPES:
            raise TypeError(f"codegen: node {n.op} computes {n.dtype.name}; generated kernels support "
                            f"{', '.join(sorted(KERNEL_DTYPES))}")


def _assemble(head: list[str], C: _Consts, lines: list[str]) -> str:
    if any("math." in ln for ln in lines):                # erf/erfc (exact GELU) come from Python's math module
        head = head[:-3] + ["import math"] + head[-3:]
    return "\n".join(head + C.lines() + ([""] if C.names else []) + lines) + "\n"


def _header(kind: str, body: Graph, note: str) -> list[str]:
    ops = " → ".join(n.op for n in body.nodes.values() if not n.is_leaf)
    return [f"# aisys fused {kind} kernel: {ops}",
            f"# {note}",
            "# Generated by aisys.compiler.codegen; compiled by numba (cache=True).",
            "import numpy as np",
            "from numba import njit",
            ""]


# ---- broadcasting plan --------------------------------------------------------------------------
def broadcast_plan(in_shapes, out_shape):
    """Collapse the loop nest: returns (groups of output dims, per-input full/broadcast pattern).

    ``groups`` lists, for each loop level, the output dims it covers; ``patterns[k][level]`` is True
    when input k varies along that level (full) and False when it is broadcast (index 0).
    """
    r = len(out_shape)
    pats = []
    for s in in_shapes:
        s = (1,) * (r - len(s)) + tuple(s)
        pats.append(tuple(sd != 1 for sd in s))
    keep = [d for d in range(r) if out_shape[d] != 1]
    groups: list[list[int]] = []
    for d in keep:
        if groups and all(p[groups[-1][-1]] == p[d] for p in pats):
            groups[-1].append(d)
        else:
            groups.append([d])
    if not groups:
        return [[]], [(True,) for _ in pats]
    return groups, [tuple(p[g[0]] for g in groups) for p in pats]


def collapsed_shapes(in_shapes, out_shape, groups, patterns):
    sizes = [math.prod(out_shape[d] for d in g) for g in groups]
    outs = tuple(sizes)
    ins = [tuple(sz if full else 1 for sz, full in zip(sizes, p)) for p in patterns]
    return ins, outs


# ---- elementwise --------------------------------------------------------------------------------
def elementwise_source(body: Graph) -> str:
    """Loop-nest source for an elementwise body (inputs → one output, broadcasting allowed)."""
    _check_dtypes(body)
    out = body.nodes[body.outputs[0]]
    in_nodes = [body.nodes[i] for i in body.inputs]
    groups, pats = broadcast_plan([n.shape for n in in_nodes], out.shape)
    r = len(groups)
    C = _Consts()
    idx = ", ".join(f"i{d}" for d in range(r))
    args = ", ".join(f"in{k}" for k in range(len(in_nodes)))
    lines = ["@njit(cache=True, error_model=\"numpy\")",
             f"def kernel({args}{', ' if args else ''}out):"]
    lines += [f"    n{d} = out.shape[{d}]" for d in range(r)]
    var: dict[int, str] = {}
    loop_loads = []
    for k, (n, p) in enumerate(zip(in_nodes, pats)):
        sub = ", ".join(f"i{d}" if full else "0" for d, full in enumerate(p))
        if not any(p):
            lines.append(f"    x{k} = in{k}[{sub}]")
        else:
            loop_loads.append(f"x{k} = in{k}[{sub}]")
        var[n.id] = f"x{k}"
    ind = "    "
    for d in range(r):
        lines.append(f"{ind}for i{d} in range(n{d}):")
        ind += "    "
    lines += [ind + s for s in loop_loads]
    lines += _body_statements(body, set(), var, C, ind)
    lines.append(f"{ind}out[{idx}] = {var[out.id]}")
    pattern = "; ".join("".join("F" if f else "b" for f in p) for p in pats)
    head = _header("elementwise", body, f"loop levels: {r}; input patterns (F full, b broadcast): {pattern or '-'}")
    return _assemble(head, C, lines)


class ElementwiseKernel:
    """A compiled elementwise group; call with the fused node's input arrays."""
    kind = "elementwise"

    def __init__(self, body: Graph):
        self.body = body
        out = body.nodes[body.outputs[0]]
        self.out_shape, self.out_dtype = tuple(out.shape), out.dtype.np
        in_shapes = [tuple(body.nodes[i].shape) for i in body.inputs]
        groups, pats = broadcast_plan(in_shapes, self.out_shape)
        self.in_shapes, self.loop_shape = collapsed_shapes(in_shapes, self.out_shape, groups, pats)
        self.source = elementwise_source(body)
        self._fn = None

    @property
    def fn(self):
        if self._fn is None:
            from ..kernels import load_kernel
            self._fn = load_kernel(self.source)
        return self._fn

    def __call__(self, *arrays, out: np.ndarray | None = None) -> np.ndarray:
        ins = [np.ascontiguousarray(a).reshape(s) for a, s in zip(arrays, self.in_shapes)]
        if out is None:
            out = np.empty(self.out_shape, self.out_dtype)
        self.fn(*ins, out.reshape(self.loop_shape))
        return out


# ---- reduce -------------------------------------------------------------------------------------
def _reduce_dims(root: Node, in_shape: tuple) -> tuple[int, ...]:
    r = len(in_shape)
    if root.op == "sum_to":
        target = tuple(root.attrs["shape"])
        lead = r - len(target)
        return tuple(range(lead)) + tuple(lead + i for i, s in enumerate(target) if s == 1 and in_shape[lead + i] != 1)
    dim = root.attrs.get("dim")
    if dim is None:
        return tuple(range(r))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    return tuple(sorted(int(d) % r for d in dims))


def _acc_dtype(root: Node, x_dtype: _dt.DType) -> np.dtype:
    if root.op in ("max", "min"):
        return x_dtype.np
    if x_dtype.is_floating:
        return np.dtype(np.float64)
    return np.dtype(np.int64)


def reduce_source(body: Graph) -> str:
    """Loop nest over the reduction's input space; producers computed in the loop, accumulated in ``acc``
    (keepdim-shaped). When the reduced dims are the innermost ones, the accumulator is a local variable."""
    _check_dtypes(body)
    root = body.nodes[body.outputs[0]]
    P = body.nodes[root.inputs[0]]
    in_shape = tuple(P.shape)
    r = len(in_shape)
    red = _reduce_dims(root, in_shape)
    in_nodes = [body.nodes[i] for i in body.inputs]
    C = _Consts()
    acc_np = _acc_dtype(root, P.dtype)
    acc_dt = _dt.from_numpy(acc_np)
    args = ", ".join(f"in{k}" for k in range(len(in_nodes)))
    lines = ["@njit(cache=True, error_model=\"numpy\")", f"def kernel({args}, acc, shape):"]
    lines += [f"    n{d} = shape[{d}]" for d in range(r)]
    var: dict[int, str] = {}
    pre, loop_loads = [], []
    for k, n in enumerate(in_nodes):
        s = (1,) * (r - len(n.shape)) + tuple(n.shape)
        sub = ", ".join(f"i{d}" if s[d] != 1 else "0" for d in range(r))
        if all(sd == 1 for sd in s):
            pre.append(f"    x{k} = in{k}[{sub}]")
        else:
            loop_loads.append(f"x{k} = in{k}[{sub}]")
        var[n.id] = f"x{k}"
    lines += pre
    acc_idx = ", ".join("0" if d in red else f"i{d}" for d in range(r))
    suffix = red == tuple(range(r - len(red), r)) and len(red) > 0
    kept = [d for d in range(r) if d not in red]

    def combine(target: str, v: str) -> str:
        if root.op in ("max", "min"):
            cmp = ">" if root.op == "max" else "<"
            return f"{target} = {v} if ({v} {cmp} {target} or {v} != {v}) else {target}"
        return f"{target} += {_cast(v, acc_dt)}"

    ind = "    "
    order = kept + list(red) if suffix else list(range(r))
    for pos, d in enumerate(order):
        if suffix and pos == len(kept):
            lines.append(f"{ind}a = acc[{acc_idx}]")
        lines.append(f"{ind}for i{d} in range(n{d}):")
        ind += "    "
    lines += [ind + s for s in loop_loads]
    lines += _body_statements(body, {root.id}, var, C, ind)
    v = var[P.id]
    if suffix:
        lines.append(ind + combine("a", v))
        lines.append("    " * (len(kept) + 1) + f"acc[{acc_idx}] = a")
    else:
        lines.append(ind + combine(f"acc[{acc_idx}]", v))
    note = (f"reduce {root.op} over dims {list(red)} of {len(in_shape)}-D input; accumulator {acc_np.name}"
            + ("; local accumulator (reduced dims innermost)" if suffix else ""))
    head = _header("reduce", body, note)
    return _assemble(head, C, lines)


class ReduceKernel:
    kind = "reduce"

    def __init__(self, body: Graph):
        self.body = body
        self.root = body.nodes[body.outputs[0]]
        P = body.nodes[self.root.inputs[0]]
        self.in_shape = tuple(P.shape)
        self.red = _reduce_dims(self.root, self.in_shape)
        self.acc_shape = tuple(1 if d in self.red else s for d, s in enumerate(self.in_shape))
        self.acc_dtype = _acc_dtype(self.root, P.dtype)
        self.out_shape, self.out_dtype = tuple(self.root.shape), self.root.dtype.np
        self.count = math.prod(self.in_shape[d] for d in self.red)
        r = len(self.in_shape)
        self.in_shapes = [(1,) * (r - len(body.nodes[i].shape)) + tuple(body.nodes[i].shape) for i in body.inputs]
        self.source = reduce_source(body)
        self._fn = None

    @property
    def fn(self):
        if self._fn is None:
            from ..kernels import load_kernel
            self._fn = load_kernel(self.source)
        return self._fn

    def _init_value(self):
        """The identity of the reduction: 0 for sums, −inf / the smallest integer for max, and so on."""
        if self.root.op in ("sum", "mean", "sum_to"):
            return 0
        if self.acc_dtype.kind == "f":
            return -np.inf if self.root.op == "max" else np.inf
        info = np.iinfo(self.acc_dtype)
        return info.min if self.root.op == "max" else info.max

    def __call__(self, *arrays, out=None) -> np.ndarray:
        ins = [np.ascontiguousarray(a).reshape(s) for a, s in zip(arrays, self.in_shapes)]
        if self.acc_dtype.kind == "b":
            acc = np.full(self.acc_shape, self.root.op == "min", self.acc_dtype)
        else:
            acc = np.full(self.acc_shape, self._init_value(), self.acc_dtype)
        self.fn(*ins, acc, self.in_shape)
        if self.root.op == "mean":
            acc = acc / self.count
        return acc.astype(self.out_dtype, copy=False).reshape(self.out_shape)


# ---- epilogue -----------------------------------------------------------------------------------
def split_epilogue(body: Graph) -> tuple[Node, Graph, list[int]]:
    """(anchor node, epilogue body whose input 0 is the anchor's value, body-input positions feeding the
    epilogue's other inputs)."""
    anchors = [n for n in body.nodes.values() if n.op in ANCHOR_OPS]
    if len(anchors) != 1:
        raise ValueError(f"epilogue body must contain exactly one matmul/conv anchor, found {len(anchors)}")
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
    """matmul/conv via numpy (BLAS), then the elementwise epilogue in place on its output buffer."""
    kind = "epilogue"

    def __init__(self, body: Graph):
        self.body = body
        self.anchor, self.epilogue_body, self.feeds = split_epilogue(body)
        self.anchor_args = [body.inputs.index(i) for i in self.anchor.inputs]
        self.elementwise = ElementwiseKernel(self.epilogue_body)
        out = body.nodes[body.outputs[0]]
        self.in_place = tuple(out.shape) == tuple(self.anchor.shape) and out.dtype is self.anchor.dtype
        self.source = (f"# anchor: {self.anchor.op} runs through numpy (BLAS/im2col) into its output buffer,\n"
                       f"# then the epilogue below updates that buffer {'in place' if self.in_place else 'into a new buffer'}.\n"
                       + self.elementwise.source)

    @property
    def fn(self):
        return self.elementwise.fn

    def __call__(self, *arrays, out=None) -> np.ndarray:
        A = self.anchor
        y = np.asarray(get_op(A.op).ref(*[arrays[k] for k in self.anchor_args], **A.attrs))
        if y.dtype != A.dtype.np:
            y = y.astype(A.dtype.np)
        y = np.ascontiguousarray(y)
        rest = [arrays[k] for k in self.feeds]
        if self.in_place and out is None:
            return self.elementwise(y, *rest, out=y)
        return self.elementwise(y, *rest, out=out)


def build_kernel(node: Node):
    """The compiled kernel object for a ``fused`` node (numba compiles on its first call)."""
    if node.op != "fused":
        raise ValueError(f"build_kernel expects a fused node, got %{node.id} = {node.op}")
    body, kind = node.attrs["_body"], node.attrs["kind"]
    if kind == "elementwise":
        return ElementwiseKernel(body)
    if kind == "reduce":
        return ReduceKernel(body)
    if kind == "epilogue":
        return EpilogueKernel(body)
    raise ValueError(f"unknown fused kind {kind!r} on %{node.id}")
