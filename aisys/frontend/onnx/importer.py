"""ONNX → ``Graph``: the converter of ZOMI's lecture 04Inference/04Converter, on real ``.onnx`` files.

An exporter (``torch.onnx.export``, a model zoo) writes a ``ModelProto``: a graph of ``NodeProto``s, each an
operator type with named input and output tensors and attributes, plus *initializers* holding the
weights. :func:`load` walks the nodes in dependency order and maps each operator onto registry ops —
sometimes one (Relu → relu), sometimes a few (Gemm → permute, matmul, mul, add), sometimes none
(Identity, inference-time Dropout, Shape of a static tensor). What the registry op means stays in the
registry; what an ONNX operator *is in registry ops* is this module's concern.

The rules it keeps:
- **never a wrong graph**: an operator, attribute value, element type or opset the converter cannot map
  exactly raises :class:`ConversionError` naming the node, the operator, the attribute and what is
  supported; every converted value's shape and type is checked against ``onnx.shape_inference``;
- **static shapes**: a graph input with a symbolic dimension needs ``input_shapes=``; values that
  describe shapes (Reshape's target, Slice's bounds, Shape → Gather → Concat arithmetic) are evaluated
  at import through the registry's numpy references, and the nodes that only computed them are dropped;
- **a conversion log**: one line per ONNX node saying which registry ops it became, or why it vanished.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ...framework import dtypes as _dt
from ...framework.graph import Graph, GraphError, evaluate_node
from ...framework.registry import OPS
from .types import ConversionError, NeedsValue, aisys_dtype, as_aisys_array, onnx_type_name

#: the ai.onnx opsets the importer reads (older files: upgrade them with onnx.version_converter)
MIN_OPSET = 11
MAX_OPSET = onnx.defs.onnx_opset_version()
_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class Converter:
    op_type: str
    fn: object
    attrs: frozenset
    doc: str


CONVERTERS: dict[str, Converter] = {}


def converter(*op_types, attrs=(), doc=""):
    """Register the mapping of ONNX operator(s) onto registry ops; ``attrs`` lists every attribute it reads
    (a node carrying any other attribute is refused, naming it)."""
    def deco(fn):
        for t in op_types:
            CONVERTERS[t] = Converter(t, fn, frozenset(attrs), doc or (fn.__doc__ or "").strip().split("\n")[0])
        return fn
    return deco


def supported_operators() -> list[str]:
    return sorted(CONVERTERS)


# ---------------------------------------------------------------------------------------------
# reading the file
# ---------------------------------------------------------------------------------------------
def read_model(model) -> onnx.ModelProto:
    """A ModelProto from a path, bytes or a ModelProto; a damaged file raises ConversionError."""
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray)):
        data, what = bytes(model), "the given bytes"
    elif isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.exists(path):
            raise FileNotFoundError(f"aisys.onnx.load: no file {path!r}")
        with open(path, "rb") as f:
            data = f.read()
        what = repr(path)
    else:
        raise TypeError(f"aisys.onnx.load: expected a path, bytes or an onnx.ModelProto, got {type(model).__name__}")
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as exc:      # google.protobuf.message.DecodeError
        raise ConversionError(f"{what} is not a readable ONNX model ({len(data)} bytes): the protobuf does not "
                              f"decode ({exc}); the file is truncated or is not an .onnx file") from None
    if not proto.HasField("graph"):
        raise ConversionError(f"{what} decodes but holds no graph ({len(data)} bytes): not an ONNX model, or "
                              f"truncated before its graph")
    if isinstance(model, (str, os.PathLike)) and any(
            t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
        onnx.load_external_data_for_model(proto, os.path.dirname(os.path.abspath(os.fspath(model))))
    return proto


def model_opset(proto: onnx.ModelProto) -> int:
    versions = {o.domain: o.version for o in proto.opset_import}
    used = {n.domain for n in proto.graph.node}
    for dom in sorted(used - set(_DOMAINS)):
        node = next(n for n in proto.graph.node if n.domain == dom)
        raise ConversionError(f"node {_label(node)!r} ({node.op_type}) is in operator domain {dom!r}; aisys "
                              f"converts the standard ai.onnx domain only (custom or ML-domain operators have no "
                              f"registry ops)")
    v = versions.get("", versions.get("ai.onnx"))
    if v is None:
        raise ConversionError(f"the model imports no ai.onnx opset (opset_import: {dict(versions)}); cannot tell "
                              f"which version of each operator it means")
    if not MIN_OPSET <= v <= MAX_OPSET:
        raise ConversionError(f"the model uses ai.onnx opset {v}; aisys reads opsets {MIN_OPSET}..{MAX_OPSET}. "
                              + ("Upgrade it first: onnx.version_converter.convert_version(model, 17)"
                                 if v < MIN_OPSET else "It is newer than the installed onnx package knows"))
    return int(v)


def _label(node) -> str:
    return node.name or (node.output[0] if node.output else node.op_type)


def _sorted_nodes(graph, known: set) -> list:
    """The nodes in dependency order; a missing tensor or a cycle raises ConversionError naming it."""
    producer = {}
    for n in graph.node:
        for o in n.output:
            if o:
                producer[o] = n
    for n in graph.node:
        for i in n.input:
            if i and i not in known and i not in producer:
                raise ConversionError(f"node {_label(n)!r} ({n.op_type}) reads tensor {i!r}, which no node produces "
                                      f"and which is neither a graph input nor an initializer")
    order, state = [], {}
    for root in graph.node:
        stack = [(root, iter([i for i in root.input if i in producer]))]
        if state.get(id(root)) == 2:
            continue
        state[id(root)] = 1
        while stack:
            n, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                state[id(n)] = 2
                order.append(n)
                continue
            p = producer[nxt]
            if state.get(id(p)) == 1:
                cyc = [_label(m) for m, _ in stack[next(k for k, (m, _) in enumerate(stack) if m is p):]]
                raise ConversionError(f"the graph has a cycle: {' → '.join(cyc + [_label(p)])} (tensor {nxt!r}); "
                                      f"an ONNX graph must be acyclic (loops are Loop/Scan nodes with subgraphs)")
            if state.get(id(p)) is None:
                state[id(p)] = 1
                stack.append((p, iter([i for i in p.input if i in producer])))
    return order


def _static_shapes(proto) -> dict:
    """name -> (shape or None, elem_type) from onnx.shape_inference (the oracle every converted value is
    checked against); {} when inference itself fails."""
    gp = proto.graph
    small, big = [], []                   # weights enter inference by type and shape only (no 47 MB copy)
    for t in gp.initializer:
        (big if math.prod(t.dims) > 1024 else small).append(t)
    inputs = list(gp.input) + [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in big
                               if t.name not in {i.name for i in gp.input}]
    light = helper.make_model(helper.make_graph(list(gp.node), gp.name, inputs, list(gp.output), initializer=small,
                                                value_info=list(gp.value_info)),
                              opset_imports=list(proto.opset_import), ir_version=proto.ir_version)
    light.functions.extend(proto.functions)
    try:
        inferred = onnx.shape_inference.infer_shapes(light)
    except Exception:
        return {}
    out = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        t = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            continue
        dims = None
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            dims = tuple(int(d.dim_value) for d in t.shape.dim)
        out[vi.name] = (dims, t.elem_type)
    return out


# ---------------------------------------------------------------------------------------------
# the conversion context of one node
# ---------------------------------------------------------------------------------------------
class Context:
    """What a converter sees: the node's inputs (graph node ids), attributes, and helpers that add
    registry ops, constants, and read values that must be known at import time."""

    def __init__(self, graph: Graph, opset: int):
        self.g, self.opset = graph, opset
        self.env: dict[str, int] = {}
        self.node = None
        self.added: list[int] = []
        self.notes: list[str] = []
        self.import_time: set[int] = set()
        self._values: dict[int, np.ndarray] = {}

    # ---- naming the node in errors ----
    @property
    def where(self) -> str:
        return f"node {_label(self.node)!r} ({self.node.op_type})"

    def fail(self, message: str):
        raise ConversionError(f"{self.where}: {message}")

    def unsupported(self, attr: str, value, supported: str):
        self.fail(f"attribute {attr}={value!r} is not supported; supported: {supported}")

    # ---- inputs ----
    @property
    def n_inputs(self) -> int:
        return len(self.node.input)

    def has(self, k: int) -> bool:
        return k < len(self.node.input) and bool(self.node.input[k])

    def x(self, k: int = 0) -> int:
        if not self.has(k):
            self.fail(f"input {k} is required but missing")
        return self.env[self.node.input[k]]

    def opt(self, k: int):
        return self.x(k) if self.has(k) else None

    def shape(self, i: int) -> tuple:
        return tuple(self.g.nodes[i].shape)

    def dtype(self, i: int) -> _dt.DType:
        return self.g.nodes[i].dtype

    def attr(self, name: str, default=None):
        for a in self.node.attribute:
            if a.name == name:
                v = helper.get_attribute_value(a)
                if isinstance(v, bytes):
                    v = v.decode()
                elif isinstance(v, list):
                    v = [x.decode() if isinstance(x, bytes) else x for x in v]
                return v
        return default

    def value(self, i: int, what: str) -> np.ndarray:
        """The value of node ``i``, which must be computable now (constants, initializers and ops on them,
        e.g. shape arithmetic): evaluated through the registry's references, memoized."""
        if i in self._values:
            return self._values[i]
        n = self.g.nodes[i]
        if n.op in ("const", "param"):
            v = n.value
        elif n.op == "input":
            raise NeedsValue(f"{self.where}: {what} must be known when the model is loaded (a constant or computed "
                             f"from shapes), but it depends on graph input {n.name!r}; aisys graphs have static "
                             f"shapes: bind it with input_values={{{n.name!r}: ...}}", n.name)
        else:
            v = evaluate_node(n, [self.value(j, what) for j in n.inputs])
        self._values[i] = v
        self.import_time.add(i)
        return v

    def ints(self, i: int, what: str) -> list[int]:
        return [int(v) for v in np.asarray(self.value(i, what)).reshape(-1)]

    # ---- building ----
    def add(self, op: str, inputs, **attrs) -> int:
        if op not in OPS:
            self.fail(f"needs the registry op {op!r}, which this aisys does not have")
        try:
            n = self.g.add(op, inputs, attrs)
        except (ValueError, TypeError, GraphError) as exc:
            self.fail(f"maps onto registry op {op!r}, which refuses these operands: {exc}")
        self.added.append(n.id)
        return n.id

    def const(self, value, dtype=None) -> int:
        arr = np.asarray(value, dtype=None if dtype is None else _dt.as_dtype(dtype).np)
        n = self.g.add_const(arr)
        self.added.append(n.id)
        return n.id

    def scalar(self, v, like: int) -> int:
        return self.const(np.asarray(v, dtype=self.dtype(like).np))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def call(self, fn, *args, **kwargs) -> int:
        """Run a function that builds registry ops on the graph directly (``fn(graph, *args)``), logging what
        it added and naming this node in its errors."""
        before = self.g._next
        try:
            out = fn(self.g, *args, **kwargs)
        except (ValueError, TypeError, GraphError) as exc:
            self.fail(f"{getattr(fn, '__name__', 'converter')} refuses these operands: {exc}")
        self.added += [i for i in self.g.nodes if i >= before]
        return out

    def cast_to(self, i: int, dtype) -> int:
        dtype = _dt.as_dtype(dtype)
        return i if self.dtype(i) is dtype else self.add("cast", (i,), dtype=dtype)

    def reshape(self, i: int, shape) -> int:
        shape = tuple(int(s) for s in shape)
        return i if shape == self.shape(i) else self.add("reshape", (i,), shape=shape)


def axis_of(ctx: Context, axis: int, rank: int, what: str = "axis") -> int:
    if not -max(rank, 1) <= axis < max(rank, 1):
        ctx.fail(f"attribute {what}={axis} is out of range for a rank-{rank} input (valid {-rank}..{rank - 1})")
    return axis % max(rank, 1)


# ---------------------------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------------------------
def load(model, *, input_shapes: dict | None = None, input_values: dict | None = None,
         converters: dict | None = None, name: str | None = None) -> Graph:
    """Convert an ONNX model (path, bytes or ``onnx.ModelProto``) into a :class:`Graph`.

    Initializers holding floating-point weights become ``param`` nodes (named as in the file), other
    initializers (shapes, indices) ``const`` nodes; graph inputs keep their names. The graph carries
    ``conversion_log`` (one line per ONNX node), ``opset``, ``input_names`` and ``output_names``.
    ``input_shapes`` fixes symbolic dimensions, e.g. ``{"input": (1, 3, 224, 224)}``; ``input_values`` binds
    graph inputs to constants (inputs that carry shapes or axes: the graph is specialized on them);
    ``converters`` maps operator types to your own ``fn(ctx) -> node id(s)`` (e.g. a lab exercise's)."""
    proto = read_model(model)
    opset = model_opset(proto)
    gp = proto.graph
    g = Graph(name or gp.name or "onnx_model")
    ctx = Context(g, opset)
    input_shapes = dict(input_shapes or {})
    input_values = dict(input_values or {})
    inits = {t.name: t for t in gp.initializer}
    for t in gp.sparse_initializer:
        raise ConversionError(f"initializer {t.values.name!r} is a sparse tensor; aisys tensors are dense")
    log = [f"opset {opset} ({proto.producer_name or 'unknown producer'}"
           f"{' ' + proto.producer_version if proto.producer_version else ''}), {len(gp.node)} nodes, "
           f"{len(inits)} initializers"]
    names_in = []
    for vi in gp.input:
        if vi.name in inits:
            continue                       # old exporters list initializers as inputs too
        if not vi.type.HasField("tensor_type"):
            raise ConversionError(f"graph input {vi.name!r} is a {vi.type.WhichOneof('value')}, not a tensor; "
                                  f"aisys graphs take tensors only")
        tt = vi.type.tensor_type
        dtype = aisys_dtype(tt.elem_type, f"graph input {vi.name!r}")
        if vi.name in input_values:
            ctx.env[vi.name] = g.add_const(np.asarray(input_values.pop(vi.name), dtype.np)).id
            log.append(f"graph input {vi.name!r} bound to a constant (the graph is specialized on its value)")
            continue
        if vi.name in input_shapes:
            shape = tuple(int(s) for s in input_shapes.pop(vi.name))
        else:
            if not tt.HasField("shape"):
                raise ConversionError(f"graph input {vi.name!r} has no shape in the file; aisys graphs are "
                                      f"specialized to static shapes: pass input_shapes={{{vi.name!r}: (...)}}")
            dims = []
            for d in tt.shape.dim:
                if d.HasField("dim_value") and d.dim_value >= 0:
                    dims.append(int(d.dim_value))
                else:
                    sym = d.dim_param or "?"
                    raise ConversionError(
                        f"graph input {vi.name!r} has the symbolic dimension {sym!r} (shape "
                        f"{[x.dim_value if x.HasField('dim_value') else (x.dim_param or '?') for x in tt.shape.dim]}); "
                        f"aisys graphs are specialized to static shapes: pass input_shapes={{{vi.name!r}: (...)}}")
            shape = tuple(dims)
        ctx.env[vi.name] = g.add_input(vi.name, shape, dtype).id
        names_in.append(vi.name)
    if input_shapes or input_values:
        raise ConversionError(f"input_shapes/input_values name {sorted(input_shapes) + sorted(input_values)}, which "
                              f"are not graph inputs (inputs: {names_in})")
    for nm, t in inits.items():
        arr = as_aisys_array(numpy_helper.to_array(t), f"initializer {nm!r}")
        arr = np.array(arr)                                # writable, owned
        if arr.dtype.kind == "f" or arr.dtype.name == "bfloat16":
            ctx.env[nm] = g.add_param(nm, arr).id
        else:
            ctx.env[nm] = g.add_const(arr).id
    known = set(ctx.env)
    nodes = _sorted_nodes(gp, known)
    oracle = _static_shapes(proto)
    for node in nodes:
        _convert_node(ctx, node, log, oracle, converters or {})
    missing = [o.name for o in gp.output if o.name not in ctx.env]
    if missing:
        raise ConversionError(f"graph outputs {missing} are produced by no node")
    g.set_outputs([ctx.env[o.name] for o in gp.output])
    _drop_import_time_nodes(ctx)
    try:
        g.verify()
    except GraphError as exc:      # a converter bug: say so rather than hand back a broken graph
        raise ConversionError(f"the converted graph does not verify ({exc}); please report this model") from None
    g.conversion_log = log
    g.opset = opset
    g.input_names = names_in
    g.output_names = [o.name for o in gp.output]
    return g


def _convert_node(ctx: Context, node, log: list, oracle: dict, custom: dict) -> None:
    ctx.node, ctx.added, ctx.notes = node, [], []
    conv = CONVERTERS.get(node.op_type)
    if node.op_type in custom:
        conv = Converter(node.op_type, custom[node.op_type], frozenset(a.name for a in node.attribute), "custom")
    if conv is None:
        raise ConversionError(f"{ctx.where}: operator {node.op_type!r} is not supported by aisys.onnx; supported: "
                              f"{', '.join(supported_operators())}")
    extra = [a.name for a in node.attribute if a.name not in conv.attrs]
    if extra:
        ctx.fail(f"attribute {extra[0]!r} is not supported; {node.op_type} attributes aisys reads: "
                 f"{', '.join(sorted(conv.attrs)) or 'none'}")
    outs = conv.fn(ctx)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    for k, name in enumerate(node.output):
        if not name:
            continue
        if k >= len(outs) or outs[k] is None:
            ctx.fail(f"output {k} ({name!r}) is not supported (aisys computes outputs 0..{len(outs) - 1} of "
                     f"{node.op_type})")
        ctx.env[name] = outs[k]
        _check_against_onnx(ctx, name, outs[k], oracle)
    made = [f"%{i} = {ctx.g.nodes[i].op}" for i in ctx.added if i in ctx.g.nodes]
    line = f"{_label(node)}: {node.op_type} → " + (", ".join(made) if made else
                                                   "no op" + (f" ({'; '.join(ctx.notes)})" if ctx.notes else ""))
    if made and ctx.notes:
        line += f" ({'; '.join(ctx.notes)})"
    log.append(line)


def _check_against_onnx(ctx: Context, name: str, nid: int, oracle: dict) -> None:
    if name not in oracle:
        return
    shape, elem = oracle[name]
    n = ctx.g.nodes[nid]
    want = aisys_dtype(elem, f"{ctx.where}, output {name!r}") if elem else n.dtype
    if (shape is not None and tuple(shape) != tuple(n.shape)) or want is not n.dtype:
        ctx.fail(f"output {name!r} converts to {n.dtype.name}{list(n.shape)} but ONNX shape inference gives "
                 f"{onnx_type_name(elem)}{list(shape) if shape is not None else '[?]'}; refusing a graph that "
                 f"would compute something else")


def _drop_import_time_nodes(ctx: Context) -> None:
    """Remove the nodes that only computed import-time values (shape arithmetic, Reshape's target...)."""
    g = ctx.g
    candidates = set(ctx.import_time)
    for i in list(candidates):
        stack = list(g.nodes[i].inputs) if i in g.nodes else []
        while stack:                            # their constant inputs go too, if nothing else reads them
            j = stack.pop()
            if j not in candidates and g.nodes[j].op != "input":
                candidates.add(j)
                stack.extend(g.nodes[j].inputs)
    outs = set(g.outputs)
    changed = True
    while changed:
        changed = False
        users = g.users()
        for i in list(candidates):
            if i in g.nodes and not users[i] and i not in outs and g.nodes[i].op != "param":
                g.remove(i)
                candidates.discard(i)
                changed = True


# ---------------------------------------------------------------------------------------------
# the operators
# ---------------------------------------------------------------------------------------------
_UNARY = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Neg": "neg", "Exp": "exp", "Log": "log",
          "Sqrt": "sqrt", "Abs": "abs", "Sign": "sign", "Sin": "sin", "Cos": "cos", "Not": "logical_not",
          "Erf": "erf"}


@converter(*_UNARY, doc="one registry op of the same name")
def _unary(ctx):
    return ctx.add(_UNARY[ctx.node.op_type], (ctx.x(0),))


@converter("Identity", doc="no op: the output is the input")
def _identity(ctx):
    ctx.note("identity: readers use the input directly")
    return ctx.x(0)


@converter("Reciprocal")
def _reciprocal(ctx):
    """div(1, x)"""
    x = ctx.x(0)
    return ctx.add("div", (ctx.scalar(1, x), x))


_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Equal": "eq", "Less": "lt", "LessOrEqual": "le",
           "Greater": "gt", "GreaterOrEqual": "ge"}


@converter(*_BINARY, doc="one broadcasting registry op")
def _binary(ctx):
    a, b = ctx.x(0), ctx.x(1)
    if ctx.dtype(a) is not ctx.dtype(b):
        ctx.fail(f"operands have different types {ctx.dtype(a).name} and {ctx.dtype(b).name}; ONNX requires equal types")
    return ctx.add(_BINARY[ctx.node.op_type], (a, b))


@converter("Div")
def _div(ctx):
    """div; integer Div truncates toward zero (computed exactly in float64, then cast back)"""
    a, b = ctx.x(0), ctx.x(1)
    dt = ctx.dtype(a)
    if dt.is_floating:
        return ctx.add("div", (a, b))
    if dt is _dt.int64:
        try:
            va, vb = ctx.value(a, "x"), ctx.value(b, "y")
        except ConversionError:
            ctx.fail("int64 Div of values known only at run time is not supported: the registry's div is true "
                     "division, and float64 cannot hold every int64 quotient exactly")
        q = np.trunc(va.astype(np.float64) / vb).astype(np.int64) if np.all(np.abs(va) < 2**53) else \
            np.sign(va) * np.sign(vb) * (np.abs(va) // np.abs(vb))
        ctx.note("integer shape arithmetic computed at import")
        return ctx.const(np.asarray(q, np.int64))
    ctx.note(f"{dt.name} ÷ {dt.name} truncates toward zero: exact through float64")
    q = ctx.add("div", (ctx.cast_to(a, _dt.float64), ctx.cast_to(b, _dt.float64)))
    return ctx.add("cast", (q,), dtype=dt)


@converter("Pow")
def _pow(ctx):
    """pow; the result takes the base's type (ONNX Pow(T, T1) -> T)"""
    a, b = ctx.x(0), ctx.x(1)
    out = ctx.add("pow", (a, b))
    return ctx.cast_to(out, ctx.dtype(a))


@converter("Max", "Min", "Sum", doc="a chain of maximum/minimum/add over the inputs")
def _variadic(ctx):
    op = {"Max": "maximum", "Min": "minimum", "Sum": "add"}[ctx.node.op_type]
    acc = ctx.x(0)
    for k in range(1, ctx.n_inputs):
        acc = ctx.add(op, (acc, ctx.x(k)))
    return acc


@converter("Where")
def _where(ctx):
    """where(condition, x, y)"""
    return ctx.add("where", (ctx.x(0), ctx.x(1), ctx.x(2)))


@converter("Clip")
def _clip(ctx):
    """maximum with min, minimum with max (each only when given)"""
    x = ctx.x(0)
    if ctx.has(1):
        x = ctx.add("maximum", (x, ctx.x(1)))
    if ctx.has(2):
        x = ctx.add("minimum", (x, ctx.x(2)))
    return x


@converter("LeakyRelu", attrs=("alpha",))
def _leaky_relu(ctx):
    """where(x > 0, x, alpha·x), as aisys.nn.functional.leaky_relu"""
    x = ctx.x(0)
    alpha = float(ctx.attr("alpha", 0.01))
    pos = ctx.add("gt", (x, ctx.scalar(0, x)))
    return ctx.add("where", (pos, x, ctx.add("mul", (x, ctx.scalar(alpha, x)))))


def gelu_exact_available() -> bool:
    """Whether the registry's gelu takes approximate='none' (the erf form) — the hardening work adds it."""
    try:
        v = OPS["gelu"].ref(np.array([1.0]), approximate="none")
    except TypeError:
        return False
    return abs(float(np.asarray(v)[0]) - 0.8413447460685429) < 1e-9


@converter("Gelu", attrs=("approximate",))
def _gelu(ctx):
    """gelu (approximate='tanh' or the exact erf form)"""
    mode = ctx.attr("approximate", "none")
    if mode not in ("none", "tanh"):
        ctx.unsupported("approximate", mode, "'none', 'tanh'")
    if gelu_exact_available():
        return ctx.add("gelu", (ctx.x(0),), approximate=mode)
    if mode == "none":
        ctx.unsupported("approximate", mode, "'tanh' (this aisys's gelu has no exact erf form yet)")
    return ctx.add("gelu", (ctx.x(0),))


@converter("Softmax", "LogSoftmax", attrs=("axis",))
def _softmax(ctx):
    """softmax / log_softmax along axis (before opset 13: over the input flattened to 2-D at axis)"""
    x = ctx.x(0)
    op = "softmax" if ctx.node.op_type == "Softmax" else "log_softmax"
    shape = ctx.shape(x)
    rank = len(shape)
    if ctx.opset >= 13:
        return ctx.add(op, (x,), dim=axis_of(ctx, int(ctx.attr("axis", -1)), rank))
    axis = axis_of(ctx, int(ctx.attr("axis", 1)), rank)
    if axis == rank - 1:
        return ctx.add(op, (x,), dim=axis)
    ctx.note(f"opset {ctx.opset}: normalized over dims {axis}.. flattened together")
    flat = ctx.reshape(x, (math.prod(shape[:axis]), math.prod(shape[axis:])))
    return ctx.reshape(ctx.add(op, (flat,), dim=1), shape)


# ---- linear algebra -------------------------------------------------------------------------------
@converter("MatMul")
def _matmul(ctx):
    """matmul (numpy semantics: 1-D operands are unsqueezed, then squeezed)"""
    a, b = ctx.x(0), ctx.x(1)
    sa, sb = ctx.shape(a), ctx.shape(b)
    if not sa or not sb:
        ctx.fail(f"MatMul needs operands of rank ≥ 1, got {list(sa)} and {list(sb)}")
    if len(sa) == 1:
        a = ctx.reshape(a, (1,) + sa)
    if len(sb) == 1:
        b = ctx.reshape(b, sb + (1,))
    out = ctx.add("matmul", (a, b))
    s = list(ctx.shape(out))
    if len(sb) == 1:
        s.pop(-1)
    if len(sa) == 1:
        s.pop(-1 if len(sb) == 1 else -2)
    return ctx.reshape(out, s)


def gemm_ops(g: Graph, a: int, b: int, c: int | None = None, alpha: float = 1.0, beta: float = 1.0,
             trans_a: int = 0, trans_b: int = 0) -> int:
    """ONNX Gemm, Y = alpha·A'·B' + beta·C (A' = Aᵀ if trans_a, B' = Bᵀ if trans_b, C broadcast to Y),
    written with registry ops on graph ``g``: permute for a transpose, matmul, a mul by a constant only
    when alpha (or beta) differs from 1, an add of C unless there is none or beta is 0. Returns Y's id."""
    if trans_a:
        a = g.add("permute", (a,), {"dims": (1, 0)}).id
    if trans_b:
        b = g.add("permute", (b,), {"dims": (1, 0)}).id
    y = g.add("matmul", (a, b)).id
    if alpha != 1.0:
        y = g.add("mul", (y, g.add_const(np.asarray(alpha, g.nodes[y].dtype.np)).id)).id
    if c is not None and beta != 0.0:
        if beta != 1.0:
            c = g.add("mul", (c, g.add_const(np.asarray(beta, g.nodes[c].dtype.np)).id)).id
        y = g.add("add", (y, c)).id
    return y


def gemm_converter(ops=gemm_ops):
    """The Gemm converter built on ``ops(g, a, b, c, alpha=, beta=, trans_a=, trans_b=)`` — pass your own
    (lab 04, exercise 4.4) as ``aisys.onnx.load(model, converters={"Gemm": gemm_converter(mine)})``."""
    def convert(ctx):
        return _gemm(ctx, ops)
    return convert


@converter("Gemm", attrs=("alpha", "beta", "transA", "transB"))
def _gemm(ctx, ops=gemm_ops):
    """alpha·(A or Aᵀ)(B or Bᵀ) + beta·C: permute, matmul, mul, add (gemm_ops; lab 04's exercise 4.4)"""
    a, b = ctx.x(0), ctx.x(1)
    for nm, i in (("A", a), ("B", b)):
        if len(ctx.shape(i)) != 2:
            ctx.fail(f"input {nm} must be 2-D, got shape {list(ctx.shape(i))}")
    return ctx.call(ops, a, b, ctx.opt(2), alpha=float(ctx.attr("alpha", 1.0)),
                    beta=float(ctx.attr("beta", 1.0)), trans_a=int(ctx.attr("transA", 0)),
                    trans_b=int(ctx.attr("transB", 0)))


# ---- convolution and pooling --------------------------------------------------------------------
def _spatial(ctx, x, what="input"):
    """(rank of the spatial part, x as a 4-D NCHW tensor): 1-D inputs get a unit height."""
    shape = ctx.shape(x)
    nsp = len(shape) - 2
    if nsp == 2:
        return 2, x
    if nsp == 1:
        return 1, ctx.reshape(x, shape[:2] + (1,) + shape[2:])
    ctx.fail(f"{what} of shape {list(shape)} has {nsp} spatial dims; aisys has 2-D convolution and pooling "
             f"(1-D inputs are run as 2-D with height 1)")


def _per_dim(ctx, name, nsp, default):
    v = ctx.attr(name)
    if v is None:
        return [default] * nsp
    v = [int(t) for t in v]
    if len(v) != nsp:
        ctx.fail(f"attribute {name}={v} must have {nsp} values (one per spatial dim)")
    return v


def _to2d(v, nsp, fill):
    return ([fill] + list(v)) if nsp == 1 else list(v)


def _pads(ctx, nsp, ins, ks, strides, dils, out_fn=None):
    """(begin pads, end pads) from auto_pad or pads."""
    mode = ctx.attr("auto_pad", "NOTSET")
    if mode in ("NOTSET", ""):
        p = _per_dim(ctx, "pads", 2 * nsp, 0) if ctx.attr("pads") is not None else [0] * (2 * nsp)
        if any(v < 0 for v in p):
            ctx.unsupported("pads", p, "non-negative pads")
        return p[:nsp], p[nsp:]
    if mode == "VALID":
        return [0] * nsp, [0] * nsp
    if mode not in ("SAME_UPPER", "SAME_LOWER"):
        ctx.unsupported("auto_pad", mode, "NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    begin, end = [], []
    for i, k, s, d in zip(ins, ks, strides, dils):
        out = -(-i // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - i)
        lo = total // 2 if mode == "SAME_UPPER" else total - total // 2
        begin.append(lo)
        end.append(total - lo)
    return begin, end


def _pad_explicit(ctx, x, begin, end, value=0.0):
    """pad x's two spatial dims by (begin, end) (torch order for the registry's pad: last dim first)."""
    if not any(begin) and not any(end):
        return x
    return ctx.add("pad", (x,), pad=(begin[1], end[1], begin[0], end[0]), value=value)


@converter("Conv", attrs=("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"))
def _conv(ctx):
    """conv2d (asymmetric pads: an explicit pad first; 1-D: as 2-D with height 1)"""
    x, w, b = ctx.x(0), ctx.x(1), ctx.opt(2)
    nsp, x4 = _spatial(ctx, x)
    wshape = ctx.shape(w)
    if len(wshape) != nsp + 2:
        ctx.fail(f"weight of shape {list(wshape)} does not match a {nsp}-D convolution")
    ks = list(wshape[2:])
    if ctx.attr("kernel_shape") is not None and [int(v) for v in ctx.attr("kernel_shape")] != ks:
        ctx.fail(f"attribute kernel_shape={ctx.attr('kernel_shape')} disagrees with the weight's shape {list(wshape)}")
    strides, dils = _per_dim(ctx, "strides", nsp, 1), _per_dim(ctx, "dilations", nsp, 1)
    begin, end = _pads(ctx, nsp, ctx.shape(x)[2:], ks, strides, dils)
    w4 = ctx.reshape(w, wshape[:2] + (1,) + wshape[2:]) if nsp == 1 else w
    begin, end, strides, dils = (_to2d(begin, nsp, 0), _to2d(end, nsp, 0), _to2d(strides, nsp, 1),
                                 _to2d(dils, nsp, 1))
    if begin == end:
        padding = tuple(begin)
    else:
        ctx.note(f"asymmetric pads {begin}+{end}: an explicit pad, then an unpadded conv2d")
        x4, padding = _pad_explicit(ctx, x4, begin, end), (0, 0)
    ins = (x4, w4) + ((b,) if b is not None else ())
    y = ctx.add("conv2d", ins, stride=tuple(strides), padding=padding, dilation=tuple(dils),
                groups=int(ctx.attr("group", 1)))
    if nsp == 1:
        s = ctx.shape(y)
        y = ctx.reshape(y, s[:2] + s[3:])
    return y


@converter("ConvTranspose", attrs=("auto_pad", "dilations", "group", "kernel_shape", "output_padding",
                                   "output_shape", "pads", "strides"))
def _conv_transpose(ctx):
    """conv2d_backward_input — the registry's transposed convolution — then a crop for asymmetric pads"""
    x, w, b = ctx.x(0), ctx.x(1), ctx.opt(2)
    nsp, x4 = _spatial(ctx, x)
    xs, wshape = ctx.shape(x), ctx.shape(w)
    G = int(ctx.attr("group", 1))
    if len(wshape) != nsp + 2 or wshape[0] != xs[1]:
        ctx.fail(f"weight of shape {list(wshape)} must be (C_in={xs[1]}, C_out/group, k...) for input {list(xs)}")
    ks = list(wshape[2:])
    strides, dils = _per_dim(ctx, "strides", nsp, 1), _per_dim(ctx, "dilations", nsp, 1)
    opad = _per_dim(ctx, "output_padding", nsp, 0)
    full = [(i - 1) * s + (k - 1) * d + 1 + op for i, s, k, d, op in zip(xs[2:], strides, ks, dils, opad)]
    mode = ctx.attr("auto_pad", "NOTSET")
    oshape = ctx.attr("output_shape")
    if oshape is not None or mode in ("SAME_UPPER", "SAME_LOWER"):
        target = [int(v) for v in oshape][-nsp:] if oshape is not None else [i * s for i, s in zip(xs[2:], strides)]
        total = [f - t for f, t in zip(full, target)]
        for j, t in enumerate(total):          # a larger output_shape is extra output padding at the end
            if t < 0:
                opad[j], full[j], total[j] = opad[j] - t, full[j] - t, 0
        upper = mode != "SAME_LOWER"
        begin = [t // 2 if upper else t - t // 2 for t in total]
        end = [t - bb for t, bb in zip(total, begin)]
    elif mode in ("NOTSET", "", "VALID"):
        p = _per_dim(ctx, "pads", 2 * nsp, 0) if mode != "VALID" and ctx.attr("pads") is not None else [0] * (2 * nsp)
        begin, end = p[:nsp], p[nsp:]
    else:
        ctx.unsupported("auto_pad", mode, "NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    if any(o >= max(s, d) for o, s, d in zip(opad, strides, dils)):
        ctx.unsupported("output_padding", opad, "values smaller than the stride")
    M = wshape[1] * G
    w4 = ctx.reshape(w, wshape[:2] + (1,) + wshape[2:]) if nsp == 1 else w
    full2, begin2, end2 = _to2d(full, nsp, 1), _to2d(begin, nsp, 0), _to2d(end, nsp, 0)
    s2, d2 = tuple(_to2d(strides, nsp, 1)), tuple(_to2d(dils, nsp, 1))
    symmetric = begin2 == end2
    pad = tuple(begin2) if symmetric else (0, 0)
    in_shape = (xs[0], M) + tuple(f - 2 * p for f, p in zip(full2, pad))
    y = ctx.add("conv2d_backward_input", (x4, w4), input_shape=in_shape, stride=s2, padding=pad, dilation=d2,
                groups=G)
    if not symmetric:
        ctx.note(f"asymmetric pads {begin}+{end}: the full output cropped")
        y = ctx.add("index", (y,), key=(slice(None), slice(None)) + tuple(
            slice(bb, f - e) for bb, e, f in zip(begin2, end2, full2)))
    if b is not None:
        y = ctx.add("add", (y, ctx.reshape(b, (1, M, 1, 1))))
    if nsp == 1:
        s = ctx.shape(y)
        y = ctx.reshape(y, s[:2] + s[3:])
    return y


def _pool_counts(n_in, k, s, d, out, pb, pe, include_pad):
    """How many taps of each output window ONNX averages over, along one axis."""
    cnt = np.zeros(out)
    hi = n_in + pb + pe if include_pad else pb + n_in
    lo = 0 if include_pad else pb
    for o in range(out):
        pos = o * s + np.arange(k) * d
        cnt[o] = np.count_nonzero((pos >= lo) & (pos < hi))
    return cnt


@converter("MaxPool", "AveragePool", attrs=("auto_pad", "ceil_mode", "count_include_pad", "dilations",
                                            "kernel_shape", "pads", "storage_order", "strides"))
def _pool(ctx):
    """max_pool2d / avg_pool2d; pads the registry cannot express (asymmetric, ceil_mode) become an
    explicit pad, and averages that must not count padding get a constant correction"""
    is_max = ctx.node.op_type == "MaxPool"
    if not is_max and ctx.attr("storage_order") is not None:
        ctx.fail("attribute 'storage_order' belongs to MaxPool")
    if is_max and ctx.attr("count_include_pad") is not None:
        ctx.fail("attribute 'count_include_pad' belongs to AveragePool")
    if is_max and len(ctx.node.output) > 1 and ctx.node.output[1]:
        ctx.fail("output 1 (Indices) is not supported: aisys's max_pool2d returns the values only")
    x = ctx.x(0)
    nsp, x4 = _spatial(ctx, x)
    xs = ctx.shape(x)
    ks = _per_dim(ctx, "kernel_shape", nsp, None)
    if ctx.attr("kernel_shape") is None:
        ctx.fail("attribute kernel_shape is required")
    strides, dils = _per_dim(ctx, "strides", nsp, 1), _per_dim(ctx, "dilations", nsp, 1)
    ceil_mode = int(ctx.attr("ceil_mode", 0))
    begin, end = _pads(ctx, nsp, xs[2:], ks, strides, dils)
    auto = ctx.attr("auto_pad", "NOTSET") not in ("NOTSET", "")
    outs = []
    for i, k, s, d, pb, pe in zip(xs[2:], ks, strides, dils, begin, end):
        span = (k - 1) * d + 1
        if auto:
            o = (i + pb + pe - span) // s + 1
        elif ceil_mode:
            o = -(-(i + pb + pe - span) // s) + 1
            if (o - 1) * s >= i + pb:                         # the last window must start inside the input
                o -= 1
        else:
            o = (i + pb + pe - span) // s + 1
        if o < 1:
            ctx.fail(f"input {list(xs)} is too small for kernel {ks} (dilations {dils}, pads {begin}+{end})")
        outs.append(o)
    need_end = [(o - 1) * s + (k - 1) * d + 1 - i - pb for o, s, k, d, i, pb in
                zip(outs, strides, ks, dils, xs[2:], begin)]
    include_pad = int(ctx.attr("count_include_pad", 0))
    k2, s2, d2 = tuple(_to2d(ks, nsp, 1)), tuple(_to2d(strides, nsp, 1)), tuple(_to2d(dils, nsp, 1))
    b2, e2 = _to2d(begin, nsp, 0), _to2d([max(v, 0) for v in need_end], nsp, 0)
    declared_end = _to2d(end, nsp, 0)
    fits = all(n <= e for n, e in zip(_to2d(need_end, nsp, 0), declared_end))   # floor mode drops the rest
    if b2 == declared_end and fits and all(2 * p <= k for p, k in zip(b2, k2)):
        padding = tuple(b2)
    else:
        ctx.note(f"pads {begin}+{end}{' with ceil_mode' if ceil_mode else ''}: an explicit pad, then an unpadded pool")
        x4, padding = _pad_explicit(ctx, x4, b2, e2, value=-np.inf if is_max else 0.0), (0, 0)
    attrs = dict(kernel_size=k2, stride=s2, padding=padding, dilation=d2)
    if is_max:
        y = ctx.add("max_pool2d", (x4,), **attrs)
    else:
        y = ctx.add("avg_pool2d", (x4,), **attrs)
        counts = [_pool_counts(i, k, s, d, o, pb, pe, include_pad)
                  for i, k, s, d, o, pb, pe in zip(xs[2:], ks, strides, dils, outs, begin, end)]
        grid = counts[0] if nsp == 1 else np.outer(counts[0], counts[1])
        with np.errstate(divide="ignore"):
            scale = (math.prod(ks) / grid).reshape((1, 1) + ctx.shape(y)[2:])
        if not np.all(scale == 1.0):
            ctx.note("windows overlapping the padding average over their valid taps only: a constant rescale")
            y = ctx.add("mul", (y, ctx.const(scale.astype(ctx.dtype(x).np))))
    if nsp == 1:
        s = ctx.shape(y)
        y = ctx.reshape(y, s[:2] + s[3:])
    return y


@converter("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(ctx):
    """mean / max over every spatial dim, kept as size 1"""
    x = ctx.x(0)
    dims = tuple(range(2, len(ctx.shape(x))))
    return ctx.add("mean" if ctx.node.op_type == "GlobalAveragePool" else "max", (x,), dim=dims, keepdim=True)


# ---- normalization --------------------------------------------------------------------------------
@converter("BatchNormalization", attrs=("epsilon", "momentum", "training_mode"))
def _batch_norm(ctx):
    """batch_norm with the running statistics; training_mode: the batch's own mean and variance, and
    the updated running statistics as outputs 1 and 2"""
    x, scale, bias, mean, var = (ctx.x(k) for k in range(5))
    eps = float(f"{ctx.attr('epsilon', 1e-5):.7g}")       # a float32 attribute: its shortest decimal
    training = int(ctx.attr("training_mode", 0)) or (ctx.opset < 14 and len([o for o in ctx.node.output if o]) > 1)
    if not training:
        return ctx.add("batch_norm", (x, mean, var, scale, bias), eps=eps)
    mom = float(ctx.attr("momentum", 0.9))
    red = (0,) + tuple(range(2, len(ctx.shape(x))))
    bm = ctx.add("mean", (x,), dim=red, keepdim=False)
    bv = ctx.add("var", (x,), dim=red, keepdim=False, correction=0)
    y = ctx.add("batch_norm", (x, bm, bv, scale, bias), eps=eps)

    def running(old, new):
        return ctx.add("add", (ctx.add("mul", (old, ctx.scalar(mom, old))), ctx.add("mul", (new, ctx.scalar(1 - mom, new)))))
    return [y, running(mean, bm), running(var, bv)]


@converter("LayerNormalization", attrs=("axis", "epsilon", "stash_type"))
def _layer_norm(ctx):
    """layer_norm over dims axis.., then · scale + bias; outputs 1, 2: mean and 1/std"""
    x, scale, bias = ctx.x(0), ctx.x(1), ctx.opt(2)
    shape = ctx.shape(x)
    axis = axis_of(ctx, int(ctx.attr("axis", -1)), len(shape))
    eps = float(f"{ctx.attr('epsilon', 1e-5):.7g}")
    if int(ctx.attr("stash_type", 1)) != 1:
        ctx.unsupported("stash_type", ctx.attr("stash_type"), "1 (statistics in float32)")
    dt = ctx.dtype(x)
    xc = ctx.cast_to(x, _dt.float32) if dt in (_dt.float16, _dt.bfloat16) else x
    y = ctx.add("layer_norm", (xc,), normalized_shape=tuple(shape[axis:]), eps=eps)
    y = ctx.cast_to(y, dt)
    y = ctx.add("mul", (y, scale))
    if bias is not None:
        y = ctx.add("add", (y, bias))
    outs = [y]
    if any(ctx.node.output[1:]):
        dims = tuple(range(axis, len(shape)))
        m = ctx.add("mean", (xc,), dim=dims, keepdim=True)
        v = ctx.add("var", (xc,), dim=dims, keepdim=True, correction=0)
        std = ctx.add("sqrt", (ctx.add("add", (v, ctx.scalar(eps, v))),))
        outs += [m, ctx.add("div", (ctx.scalar(1, std), std))]
    return outs


# ---- shapes and data movement ---------------------------------------------------------------------
@converter("Reshape", attrs=("allowzero",))
def _reshape(ctx):
    """reshape to the (import-time) shape input; 0 copies the input's size unless allowzero"""
    x = ctx.x(0)
    target = ctx.ints(ctx.x(1), "the shape input")
    src = ctx.shape(x)
    if not int(ctx.attr("allowzero", 0)):
        target = [src[i] if v == 0 else v for i, v in enumerate(target)]
    try:                                   # the registry's reshape resolves -1 and checks the element count
        shape = OPS["reshape"].infer(ctx.g.nodes[x], shape=tuple(target)).shape
    except ValueError as exc:
        ctx.fail(str(exc))
    return ctx.reshape(x, shape)


@converter("Flatten", attrs=("axis",))
def _flatten(ctx):
    """reshape to (prod of dims before axis, prod of the rest)"""
    x = ctx.x(0)
    s = ctx.shape(x)
    axis = int(ctx.attr("axis", 1))
    if not -len(s) <= axis <= len(s):
        ctx.fail(f"attribute axis={axis} is out of range for a rank-{len(s)} input")
    if axis < 0:
        axis += len(s)
    return ctx.reshape(x, (math.prod(s[:axis]), math.prod(s[axis:])))


@converter("Transpose", attrs=("perm",))
def _transpose(ctx):
    """permute (an identity permutation is dropped)"""
    x = ctx.x(0)
    rank = len(ctx.shape(x))
    perm = [int(p) for p in ctx.attr("perm", list(range(rank))[::-1])]
    if sorted(p % max(rank, 1) for p in perm) != list(range(rank)):
        ctx.fail(f"attribute perm={perm} is not a permutation of 0..{rank - 1}")
    perm = tuple(p % max(rank, 1) for p in perm)
    if perm == tuple(range(rank)):
        ctx.note("identity permutation")
        return x
    return ctx.add("permute", (x,), dims=perm)


def _axes(ctx, k, rank, attr="axes"):
    """axes from input k (newer opsets) or the attribute (older ones); None when absent."""
    if ctx.has(k):
        vals = ctx.ints(ctx.x(k), "the axes input")
    elif ctx.attr(attr) is not None:
        vals = [int(v) for v in ctx.attr(attr)]
    else:
        return None
    return [axis_of(ctx, v, rank, attr) for v in vals]


@converter("Squeeze", attrs=("axes",))
def _squeeze(ctx):
    """reshape without the listed size-1 dims (all size-1 dims when none are listed)"""
    x = ctx.x(0)
    s = ctx.shape(x)
    axes = _axes(ctx, 1, len(s))
    axes = [i for i, v in enumerate(s) if v == 1] if axes is None else axes
    for a in axes:
        if s[a] != 1:
            ctx.fail(f"cannot squeeze axis {a} of size {s[a]} (input shape {list(s)})")
    return ctx.reshape(x, [v for i, v in enumerate(s) if i not in axes])


@converter("Unsqueeze", attrs=("axes",))
def _unsqueeze(ctx):
    """reshape with size-1 dims inserted at the listed output positions"""
    x = ctx.x(0)
    s = list(ctx.shape(x))
    out_rank = len(s) + len(ctx.ints(ctx.x(1), "the axes input") if ctx.has(1) else ctx.attr("axes", []))
    axes = sorted(_axes(ctx, 1, out_rank) or [])
    if len(set(axes)) != len(axes):
        ctx.fail(f"axes {axes} repeat a position")
    for a in axes:
        s.insert(a, 1)
    return ctx.reshape(x, s)


@converter("Concat", attrs=("axis",))
def _concat(ctx):
    """concat along axis"""
    xs = [ctx.x(k) for k in range(ctx.n_inputs) if ctx.has(k)]
    rank = len(ctx.shape(xs[0]))
    axis = axis_of(ctx, int(ctx.attr("axis")), rank)
    xs = [i for i in xs if ctx.shape(i)[axis] != 0 or len(xs) == 1]
    if len(xs) == 1:
        return xs[0]
    return ctx.add("concat", xs, dim=axis)


@converter("Split", attrs=("axis", "num_outputs", "split"))
def _split(ctx):
    """one index (a slice along axis) per output"""
    x = ctx.x(0)
    s = ctx.shape(x)
    axis = axis_of(ctx, int(ctx.attr("axis", 0)), len(s))
    n_out = len(ctx.node.output)
    if ctx.has(1):
        sizes = ctx.ints(ctx.x(1), "the split input")
    elif ctx.attr("split") is not None:
        sizes = [int(v) for v in ctx.attr("split")]
    else:
        n = int(ctx.attr("num_outputs", n_out))
        chunk = -(-s[axis] // n)
        if ctx.opset < 18 and s[axis] % n:
            ctx.fail(f"cannot split a dim of size {s[axis]} into {n} equal parts")
        sizes = [min(chunk, s[axis] - chunk * j) for j in range(n)]
    if sum(sizes) != s[axis] or len(sizes) != n_out:
        ctx.fail(f"split sizes {sizes} must sum to {s[axis]} (dim {axis} of {list(s)}) and give {n_out} outputs")
    outs, start = [], 0
    for size in sizes:
        key = (slice(None),) * axis + (slice(start, start + size),)
        outs.append(x if size == s[axis] else ctx.add("index", (x,), key=key))
        start += size
    return outs


@converter("Slice", attrs=())
def _slice(ctx):
    """index with Python slices (ONNX clamps bounds exactly as Python slicing does)"""
    x = ctx.x(0)
    s = ctx.shape(x)
    starts, ends = ctx.ints(ctx.x(1), "starts"), ctx.ints(ctx.x(2), "ends")
    axes = _axes(ctx, 3, len(s)) or list(range(len(starts)))
    steps = ctx.ints(ctx.x(4), "steps") if ctx.has(4) else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        ctx.fail(f"starts {starts}, ends {ends}, axes {axes}, steps {steps} must have equal lengths")
    key = [slice(None)] * len(s)
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        if sp == 0:
            ctx.fail("a step of 0 is invalid")
        key[ax] = slice(st, en, sp)
    while key and key[-1] == slice(None):
        key.pop()
    if not key:
        ctx.note("slices everything")
        return x
    return ctx.add("index", (x,), key=tuple(key))


@converter("Gather", attrs=("axis",))
def _gather(ctx):
    """index_select along axis (negative indices count from the end)"""
    x, idx = ctx.x(0), ctx.x(1)
    axis = axis_of(ctx, int(ctx.attr("axis", 0)), len(ctx.shape(x)))
    return ctx.add("index_select", (x, idx), dim=axis)


@converter("GatherElements", attrs=("axis",))
def _gather_elements(ctx):
    """gather along axis (negative indices wrapped first)"""
    x, idx = ctx.x(0), ctx.x(1)
    axis = axis_of(ctx, int(ctx.attr("axis", 0)), len(ctx.shape(x)))
    n = ctx.shape(x)[axis]
    neg = ctx.add("lt", (idx, ctx.scalar(0, idx)))
    idx = ctx.add("where", (neg, ctx.add("add", (idx, ctx.scalar(n, idx))), idx))
    return ctx.add("gather", (x, idx), dim=axis)


@converter("Expand")
def _expand(ctx):
    """broadcast_to the broadcast of the input's shape with the (import-time) shape input"""
    x = ctx.x(0)
    target = tuple(ctx.ints(ctx.x(1), "the shape input"))
    try:
        out = tuple(int(v) for v in np.broadcast_shapes(ctx.shape(x), target))
    except ValueError:
        ctx.fail(f"shape {list(target)} does not broadcast with the input's {list(ctx.shape(x))}")
    if out == ctx.shape(x):
        ctx.note("already that shape")
        return x
    return ctx.add("broadcast_to", (x,), shape=out)


@converter("Pad", attrs=("mode",))
def _pad(ctx):
    """pad with a constant (negative pads: a crop by index)"""
    x = ctx.x(0)
    s = ctx.shape(x)
    mode = ctx.attr("mode", "constant")
    if mode != "constant":
        ctx.unsupported("mode", mode, "'constant'")
    pads = ctx.ints(ctx.x(1), "the pads input")
    value = float(np.asarray(ctx.value(ctx.x(2), "constant_value")).reshape(-1)[0]) if ctx.has(2) else 0.0
    axes = _axes(ctx, 3, len(s)) or list(range(len(s)))
    if len(pads) != 2 * len(axes):
        ctx.fail(f"pads {pads} must have 2 values per axis {axes}")
    begin, end = [0] * len(s), [0] * len(s)
    for j, a in enumerate(axes):
        begin[a], end[a] = pads[j], pads[j + len(axes)]
    if any(v < 0 for v in begin + end):
        key = tuple(slice(-min(b, 0), n + min(e, 0)) for b, e, n in zip(begin, end, s))
        x = ctx.add("index", (x,), key=key)
        begin, end = [max(v, 0) for v in begin], [max(v, 0) for v in end]
    if not any(begin + end):
        return x
    torch_order = []
    for a in reversed(range(len(s))):
        torch_order += [begin[a], end[a]]
    return ctx.add("pad", (x,), pad=tuple(torch_order), value=value)


_REDUCE = {"ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "max", "ReduceMin": "min"}


@converter(*_REDUCE, attrs=("axes", "keepdims", "noop_with_empty_axes"))
def _reduce(ctx):
    """mean / sum / max / min over axes (all axes when none are given), keeping dims if keepdims"""
    x = ctx.x(0)
    s = ctx.shape(x)
    axes = _axes(ctx, 1, len(s))
    keep = bool(int(ctx.attr("keepdims", 1)))
    if not axes:
        if int(ctx.attr("noop_with_empty_axes", 0)):
            ctx.note("no axes and noop_with_empty_axes: the input")
            return x
        axes = list(range(len(s)))
    op = _REDUCE[ctx.node.op_type]
    if op in ("max", "min") and any(s[a] == 0 for a in axes):
        ctx.fail(f"cannot take the {op} over an empty dimension (input shape {list(s)}, axes {axes})")
    y = ctx.add(op, (x,), dim=tuple(sorted(set(axes))), keepdim=keep)
    return ctx.cast_to(y, ctx.dtype(x))


@converter("ArgMax", "ArgMin", attrs=("axis", "keepdims", "select_last_index"))
def _argmax(ctx):
    """argmax / argmin along axis (ties: the first index)"""
    x = ctx.x(0)
    if int(ctx.attr("select_last_index", 0)):
        ctx.unsupported("select_last_index", 1, "0 (the first index among ties, as the registry's argmax)")
    axis = axis_of(ctx, int(ctx.attr("axis", 0)), len(ctx.shape(x)))
    return ctx.add("argmax" if ctx.node.op_type == "ArgMax" else "argmin", (x,), dim=axis,
                   keepdim=bool(int(ctx.attr("keepdims", 1))))


@converter("Cast", "CastLike", attrs=("saturate", "to", "round_mode"))
def _cast(ctx):
    """cast (no op when the type is already right)"""
    x = ctx.x(0)
    if ctx.node.op_type == "Cast":
        to = aisys_dtype(int(ctx.attr("to")), f"{ctx.where}, attribute to")
    else:
        to = ctx.dtype(ctx.x(1))
    if ctx.dtype(x) is to:
        ctx.note(f"already {to.name}")
        return x
    return ctx.add("cast", (x,), dtype=to)


@converter("Constant", attrs=("value", "value_float", "value_floats", "value_int", "value_ints",
                              "sparse_value", "value_string", "value_strings"))
def _constant(ctx):
    """a const node"""
    a = ctx.node.attribute[0] if ctx.node.attribute else None
    if a is None:
        ctx.fail("has no value attribute")
    if a.name in ("sparse_value", "value_string", "value_strings"):
        ctx.unsupported(a.name, "…", "value, value_float(s), value_int(s)")
    v = helper.get_attribute_value(a)
    if a.name == "value":
        arr = as_aisys_array(numpy_helper.to_array(v), ctx.where)
    elif a.name.startswith("value_float"):
        arr = np.asarray(v, np.float32)
    else:
        arr = np.asarray(v, np.int64)
    return ctx.const(np.array(arr))


@converter("Dropout", attrs=("seed", "ratio"))
def _dropout(ctx):
    """no op at inference (the mask output: all True)"""
    x = ctx.x(0)
    if ctx.has(2) and bool(np.asarray(ctx.value(ctx.x(2), "training_mode")).reshape(-1)[0]):
        ratio = float(np.asarray(ctx.value(ctx.x(1), "ratio")).reshape(-1)[0]) if ctx.has(1) else 0.5
        if ratio != 0.0:
            ctx.fail("training_mode=True draws a random mask at run time; export the model in eval mode")
    ctx.note("a no-op at inference time")
    outs = [x]
    if len(ctx.node.output) > 1 and ctx.node.output[1]:
        outs.append(ctx.const(np.ones(ctx.shape(x), np.bool_)))
    return outs


@converter("Shape", attrs=("start", "end"))
def _shape(ctx):
    """a const: shapes are static"""
    s = ctx.shape(ctx.x(0))
    start, end = int(ctx.attr("start", 0)), ctx.attr("end")
    v = s[start:] if end is None else s[start:int(end)]
    ctx.note(f"static shape {list(v)}")
    return ctx.const(np.asarray(v, np.int64))


@converter("Size")
def _size(ctx):
    """a const: the element count is static"""
    ctx.note("static size")
    return ctx.const(np.asarray(math.prod(ctx.shape(ctx.x(0))), np.int64))


@converter("ConstantOfShape", attrs=("value",))
def _constant_of_shape(ctx):
    """a const filled with value (the shape must be known at import)"""
    shape = ctx.ints(ctx.x(0), "the shape input")
    v = ctx.attr("value")
    fill = as_aisys_array(numpy_helper.to_array(v), ctx.where).reshape(-1) if v is not None else np.zeros(1, np.float32)
    return ctx.const(np.full(shape, fill[0], fill.dtype))


@converter("Range")
def _range(ctx):
    """a const (start, limit and delta known at import)"""
    vals = [ctx.value(ctx.x(k), nm) for k, nm in enumerate(("start", "limit", "delta"))]
    ctx.note("computed at import")
    return ctx.const(np.arange(*[v.item() for v in vals], dtype=vals[0].dtype))
