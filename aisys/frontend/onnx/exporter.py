"""``Graph`` → ONNX: write an aisys model as a real ``.onnx`` file that onnxruntime (or any ONNX engine) runs.

Each registry op is written as the ONNX operator(s) that compute the same values — add → Add, linear →
Gemm(transB=1), layer_norm → LayerNormalization with unit scale, var → ReduceMean, Sub, Mul, ReduceSum,
Div, index → Slice / Gather / Unsqueeze — with the operands cast where the registry promotes types
and ONNX does not. Every value is written with its aisys shape and type (``value_info``), the model is
checked by ``onnx.checker`` and must agree with ``onnx.shape_inference``; an op with no ONNX form
(training-only backward ops, control flow, random dropout) raises :class:`ConversionError` naming it.
"""
from __future__ import annotations

import math
import os

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ...framework import dtypes as _dt
from ...framework.graph import Graph
from .types import ConversionError, onnx_type

#: the ai.onnx opset written (Gelu needs 20; onnxruntime runs it)
EXPORT_OPSET = 20

EMITTERS: dict = {}


def emits(*ops):
    """Register how registry op(s) are written in ONNX (the converter's side of the mapping)."""
    def deco(fn):
        for op in ops:
            EMITTERS[op] = fn
        return fn
    return deco


#: registry ops with no ONNX form, and why
NOT_EXPORTED = {
    "conv2d_backward_weight": "a training-only gradient op", "max_pool2d_backward": "a training-only gradient op",
    "max_pool2d_select": "a training-only gradient op", "avg_pool2d_backward": "a training-only gradient op",
    "index_backward": "a training-only gradient op", "embedding_backward": "a training-only gradient op",
    "scatter_add": "a training-only gradient op", "cross_entropy": "a loss: export the model, not the training objective",
    "mse_loss": "a loss: export the model, not the training objective",
    "cond": "data-dependent control flow (ONNX If) is not written by this exporter",
    "while_loop": "data-dependent control flow (ONNX Loop) is not written by this exporter",
    "argsort": "a stable sort: ONNX TopK leaves the order of ties unspecified",
    "fake_quant": "a quantization-aware-training op: export the converted model (compress.convert)",
    "quantize": "integer-only inference (aisys.framework.compress): ONNX QuantizeLinear is not written by this "
                "exporter yet, and it has no form for aisys's clamp ranges (int4 in int8, int32 accumulators)",
    "dequantize": "integer-only inference: ONNX DequantizeLinear is not written by this exporter yet",
    "matmul_integer": "integer-only inference: ONNX MatMulInteger is not written by this exporter yet",
    "conv2d_integer": "integer-only inference: ONNX ConvInteger (+ an int32 bias Add) is not written by this "
                      "exporter yet",
    "requantize": "gemmlowp's fixed-point requantization has no ONNX operator (QLinearMatMul and QLinearConv "
                  "fuse it with the product and rescale in float)",
}


class _Writer:
    def __init__(self, graph: Graph):
        self.g = graph
        self.nodes: list = []
        self.inits: list = []
        self.names: dict[int, str] = {}
        self.used: set[str] = set()
        self.value_info: dict[str, tuple] = {}

    def fresh(self, base: str) -> str:
        base = "".join(c if c.isalnum() or c in "._-/:" else "_" for c in base) or "v"
        name, k = base, 1
        while name in self.used:
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        return name

    def op(self, op_type: str, inputs, out: str | None = None, **attrs) -> str:
        out = out or self.fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def const(self, value, base: str = "const") -> str:
        arr = np.asarray(value)
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def ints(self, values, base="ints") -> str:
        return self.const(np.asarray(list(values), np.int64), base)

    def cast(self, name: str, frm: _dt.DType, to: _dt.DType) -> str:
        return name if frm is to else self.op("Cast", [name], to=onnx_type(to))

    def arg(self, node, k: int, to: _dt.DType | None = None) -> str:
        """The ONNX name of input k of ``node``, cast to ``to`` when given."""
        src = self.g.nodes[node.inputs[k]]
        name = self.names[src.id]
        return self.cast(name, src.dtype, to) if to is not None else name


def _fail(node, why: str):
    raise ConversionError(f"cannot export %{node.id} = {node.op}: {why}")


# ---- elementwise ------------------------------------------------------------------------------------
_BIN = {"add": "Add", "sub": "Sub", "mul": "Mul", "pow": "Pow", "maximum": "Max", "minimum": "Min"}
_CMP = {"eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater", "ge": "GreaterOrEqual"}
_UN = {"neg": "Neg", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "sin": "Sin", "cos": "Cos", "tanh": "Tanh",
       "sign": "Sign", "abs": "Abs", "sigmoid": "Sigmoid", "relu": "Relu", "logical_not": "Not", "erf": "Erf",
       "contiguous": "Identity", "clone": "Identity"}


@emits(*_BIN)
def _binary(w, n, out):
    return w.op(_BIN[n.op], [w.arg(n, 0, n.dtype), w.arg(n, 1, n.dtype)], out)


@emits("div")
def _div(w, n, out):
    return w.op("Div", [w.arg(n, 0, n.dtype), w.arg(n, 1, n.dtype)], out)     # ints: true division, as the registry


@emits(*_CMP, "ne")
def _compare(w, n, out):
    a, b = (w.g.nodes[i] for i in n.inputs)
    dt = _dt.promote(a.dtype, b.dtype)
    if n.op == "ne":
        return w.op("Not", [w.op("Equal", [w.arg(n, 0, dt), w.arg(n, 1, dt)])], out)
    return w.op(_CMP[n.op], [w.arg(n, 0, dt), w.arg(n, 1, dt)], out)


@emits("where")
def _where(w, n, out):
    return w.op("Where", [w.arg(n, 0), w.arg(n, 1, n.dtype), w.arg(n, 2, n.dtype)], out)


@emits(*_UN)
def _unary(w, n, out):
    return w.op(_UN[n.op], [w.arg(n, 0)], out)


def _gelu_default() -> str:
    """Which GELU the registry's gelu computes when a node carries no ``approximate`` attr: asked of its
    reference at x = 1 (erf form 0.841345, tanh form 0.841192), so the file says what aisys computed."""
    from ...framework.registry import OPS
    v = float(np.asarray(OPS["gelu"].ref(np.array([1.0])))[0])
    return "none" if abs(v - 0.8413447460685429) < 1e-9 else "tanh"


@emits("gelu")
def _gelu(w, n, out):
    return w.op("Gelu", [w.arg(n, 0)], out, approximate=n.attrs.get("approximate") or _gelu_default())


@emits("cast")
def _cast(w, n, out):
    return w.op("Cast", [w.arg(n, 0)], out, to=onnx_type(n.dtype))


@emits("dropout")
def _dropout(w, n, out):
    if n.attrs["p"] != 0.0:
        _fail(n, f"dropout with p={n.attrs['p']} draws a random mask; put the model in eval mode (model.eval()) "
                 f"before exporting")
    return w.op("Identity", [w.arg(n, 0)], out)


# ---- linear algebra, convolution, pooling ---------------------------------------------------------------
@emits("matmul")
def _matmul(w, n, out):
    return w.op("MatMul", [w.arg(n, 0, n.dtype), w.arg(n, 1, n.dtype)], out)


@emits("linear")
def _linear(w, n, out):
    ins = [w.arg(n, k, n.dtype) for k in range(len(n.inputs))]
    return w.op("Gemm", ins, out, transB=1)


def _conv_attrs(a):
    (ph, pw), s, d = a["padding"], a["stride"], a["dilation"]
    return dict(strides=list(s), pads=[ph, pw, ph, pw], dilations=list(d))


@emits("conv2d")
def _conv(w, n, out):
    ins = [w.arg(n, k) for k in range(len(n.inputs))]
    return w.op("Conv", ins, out, group=n.attrs["groups"], **_conv_attrs(n.attrs))


@emits("conv2d_nhwc")
def _conv_nhwc(w, n, out):
    x = w.op("Transpose", [w.arg(n, 0)], perm=[0, 3, 1, 2])
    wt = w.op("Transpose", [w.arg(n, 1)], perm=[0, 3, 1, 2])
    ins = [x, wt] + ([w.arg(n, 2)] if len(n.inputs) > 2 else [])
    y = w.op("Conv", ins, group=n.attrs["groups"], **_conv_attrs(n.attrs))
    return w.op("Transpose", [y], out, perm=[0, 2, 3, 1])


@emits("conv2d_backward_input")
def _conv_transpose(w, n, out):
    a = n.attrs
    g, wt = (w.g.nodes[i] for i in n.inputs)
    opad = []
    for j in range(2):
        base = (g.shape[2 + j] - 1) * a["stride"][j] - 2 * a["padding"][j] + a["dilation"][j] * (wt.shape[2 + j] - 1) + 1
        opad.append(int(a["input_shape"][2 + j] - base))
    return w.op("ConvTranspose", [w.arg(n, 0), w.arg(n, 1)], out, group=a["groups"], output_padding=opad,
                **_conv_attrs(a))


@emits("max_pool2d", "avg_pool2d")
def _pool(w, n, out):
    a = n.attrs
    (ph, pw) = a["padding"]
    attrs = dict(kernel_shape=list(a["kernel_size"]), strides=list(a["stride"]), pads=[ph, pw, ph, pw],
                 dilations=list(a["dilation"]))
    if n.op == "avg_pool2d":
        return w.op("AveragePool", [w.arg(n, 0)], out, count_include_pad=1, **attrs)
    return w.op("MaxPool", [w.arg(n, 0)], out, **attrs)


@emits("softmax", "log_softmax")
def _softmax(w, n, out):
    return w.op("Softmax" if n.op == "softmax" else "LogSoftmax", [w.arg(n, 0)], out, axis=int(n.attrs["dim"]))


@emits("layer_norm")
def _layer_norm(w, n, out):
    shape = tuple(n.attrs["normalized_shape"])
    ones = w.const(np.ones(shape, n.dtype.np), "ln_unit_scale")
    return w.op("LayerNormalization", [w.arg(n, 0), ones], out, axis=-len(shape), epsilon=float(n.attrs["eps"]))


@emits("batch_norm")
def _batch_norm(w, n, out):
    x, mean, var, weight, bias = (w.arg(n, k, n.dtype) for k in range(5))
    return w.op("BatchNormalization", [x, weight, bias, mean, var], out, epsilon=float(n.attrs["eps"]))


# ---- indexing and data movement --------------------------------------------------------------------
@emits("embedding")
def _embedding(w, n, out):
    return w.op("Gather", [w.arg(n, 1), w.arg(n, 0)], out, axis=0)


@emits("index_select")
def _index_select(w, n, out):
    return w.op("Gather", [w.arg(n, 0), w.arg(n, 1)], out, axis=int(n.attrs["dim"]))


@emits("gather")
def _gather(w, n, out):
    return w.op("GatherElements", [w.arg(n, 0), w.arg(n, 1)], out, axis=int(n.attrs["dim"]))


@emits("one_hot")
def _one_hot(w, n, out):
    idx = w.op("Unsqueeze", [w.arg(n, 0, _dt.int64), w.ints([-1])])
    hit = w.op("Equal", [idx, w.const(np.arange(n.attrs["num_classes"], dtype=np.int64))])
    return w.op("Cast", [hit], out, to=onnx_type(_dt.int64))


@emits("reshape")
def _reshape(w, n, out):
    return w.op("Reshape", [w.arg(n, 0), w.ints(n.shape, "shape")], out)


@emits("permute")
def _permute(w, n, out):
    return w.op("Transpose", [w.arg(n, 0)], out, perm=[int(d) for d in n.attrs["dims"]])


@emits("broadcast_to")
def _broadcast_to(w, n, out):
    return w.op("Expand", [w.arg(n, 0), w.ints(n.shape, "shape")], out)


@emits("concat")
def _concat(w, n, out):
    return w.op("Concat", [w.arg(n, k, n.dtype) for k in range(len(n.inputs))], out, axis=int(n.attrs["dim"]))


@emits("pad")
def _pad(w, n, out):
    x = w.g.nodes[n.inputs[0]]
    nd = len(x.shape)
    begin, end = [0] * nd, [0] * nd
    p = n.attrs["pad"]
    for i in range(len(p) // 2):
        begin[nd - 1 - i], end[nd - 1 - i] = int(p[2 * i]), int(p[2 * i + 1])
    value = w.const(np.asarray(n.attrs.get("value", 0.0), n.dtype.np), "pad_value")
    return w.op("Pad", [w.arg(n, 0), w.ints(begin + end, "pads"), value], out, mode="constant")


def _reduce_axes(n, x):
    dim = n.attrs.get("dim")
    nd = len(x.shape)
    if dim is None:
        return list(range(nd))
    dims = [dim] if isinstance(dim, (int, np.integer)) else list(dim)
    return sorted(int(d) % max(nd, 1) for d in dims)


@emits("sum", "mean", "max", "min")
def _reduce(w, n, out):
    x = w.g.nodes[n.inputs[0]]
    op = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax", "min": "ReduceMin"}[n.op]
    axes = _reduce_axes(n, x)
    if not axes:
        return w.op("Identity", [w.arg(n, 0, n.dtype)], out)
    return w.op(op, [w.arg(n, 0, n.dtype), w.ints(axes, "axes")], out, keepdims=int(bool(n.attrs.get("keepdim"))))


@emits("var")
def _var(w, n, out):
    x = w.g.nodes[n.inputs[0]]
    axes = _reduce_axes(n, x)
    count = math.prod(x.shape[a] for a in axes) - n.attrs.get("correction", 1)
    ax = w.ints(axes, "axes")
    d = w.op("Sub", [w.arg(n, 0), w.op("ReduceMean", [w.arg(n, 0), ax], keepdims=1)])
    s = w.op("ReduceSum", [w.op("Mul", [d, d]), ax], keepdims=int(bool(n.attrs.get("keepdim"))))
    return w.op("Div", [s, w.const(np.asarray(count, n.dtype.np))], out)


@emits("argmax", "argmin")
def _arg(w, n, out):
    op = "ArgMax" if n.op == "argmax" else "ArgMin"
    dim, keep = n.attrs.get("dim"), int(bool(n.attrs.get("keepdim")))
    if dim is not None:
        return w.op(op, [w.arg(n, 0)], out, axis=int(dim), keepdims=keep)
    flat = w.op("Reshape", [w.arg(n, 0), w.ints([-1])])
    return w.op("Reshape", [w.op(op, [flat], axis=0, keepdims=0), w.ints(n.shape, "shape")], out)


@emits("sum_to")
def _sum_to(w, n, out):
    x = w.g.nodes[n.inputs[0]]
    shape, xs = tuple(n.shape), tuple(x.shape)
    lead = len(xs) - len(shape)
    axes = list(range(lead)) + [lead + i for i, s in enumerate(shape) if s == 1 and xs[lead + i] != 1]
    r = w.op("ReduceSum", [w.arg(n, 0), w.ints(axes, "axes")], keepdims=1) if axes else w.arg(n, 0)
    return w.op("Reshape", [r, w.ints(shape, "shape")], out)


_BIG = np.iinfo(np.int64).max


@emits("index")
def _index(w, n, out):
    """Slice / Gather / Unsqueeze, key item by key item; the result's shape is checked against the node's."""
    x = w.g.nodes[n.inputs[0]]
    key = n.attrs["key"]
    key = key if isinstance(key, tuple) else (key,)
    n_real = sum(1 for k in key if k is not None and k is not Ellipsis)
    if any(k is Ellipsis for k in key):
        j = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:j] + (slice(None),) * (len(x.shape) - n_real) + key[j + 1:]
    cur, shape, axis = w.arg(n, 0), list(x.shape), 0
    arrays = sum(isinstance(k, np.ndarray) for k in key)
    for k in key:
        if k is None:
            cur = w.op("Unsqueeze", [cur, w.ints([axis])])
            shape.insert(axis, 1)
            axis += 1
        elif isinstance(k, slice):
            if k != slice(None):
                step = 1 if k.step is None else int(k.step)
                start = (0 if step > 0 else _BIG) if k.start is None else int(k.start)
                stop = (_BIG if step > 0 else -_BIG) if k.stop is None else int(k.stop)
                cur = w.op("Slice", [cur, w.ints([start]), w.ints([stop]), w.ints([axis]), w.ints([step])])
                shape[axis] = len(range(*k.indices(shape[axis])))
            axis += 1
        elif isinstance(k, (int, np.integer)):
            cur = w.op("Gather", [cur, w.const(np.asarray(int(k), np.int64))], axis=axis)
            shape.pop(axis)
        elif isinstance(k, np.ndarray) and k.dtype != np.bool_ and arrays == 1:
            cur = w.op("Gather", [cur, w.const(k.astype(np.int64))], axis=axis)
            shape[axis:axis + 1] = list(k.shape)
            axis += k.ndim
        else:
            _fail(n, f"index key item {type(k).__name__} (bool masks, several index arrays) has no exporter")
    if tuple(shape) != tuple(n.shape):
        _fail(n, f"the key {key} mixes integer and array indices in a way numpy reorders (result {list(n.shape)}, "
                 f"sequential form {shape})")
    return w.op("Identity", [cur], out)


@emits("fused")
def _fused(w, n, out):
    """A compiled group: its body written inline."""
    body = n.attrs["_body"]
    outer = {}
    for k, i in enumerate(body.inputs):
        outer[i] = w.names[n.inputs[k]]
    sub = _Writer(body)
    sub.used, sub.nodes, sub.inits = w.used, w.nodes, w.inits
    sub.names.update(outer)
    _write_nodes(sub, body, final={body.outputs[0]: out})
    return out


def _write_nodes(w: _Writer, g: Graph, final: dict) -> None:
    for n in g.nodes.values():
        if n.id in w.names:
            continue
        if n.op == "input":
            continue
        if n.op in ("param", "const"):
            w.names[n.id] = w.const(n.value, n.name or f"const{n.id}")
            continue
        fn = EMITTERS.get(n.op)
        if fn is None:
            _fail(n, NOT_EXPORTED.get(n.op, "no ONNX form is known for this op"))
        out = final.get(n.id) or w.fresh(f"{n.op}_{n.id}")
        w.names[n.id] = fn(w, n, out)
        w.value_info[w.names[n.id]] = (n.dtype, tuple(n.shape))


def _traced(model, example_inputs):
    from ..trace import trace
    was = getattr(model, "training", None)
    if was:
        model.eval()
    try:
        return trace(model, *example_inputs)
    finally:
        if was:
            model.train(True)


def to_model(graph: Graph, *, input_names=None, output_names=None, name: str | None = None,
             opset: int = EXPORT_OPSET) -> onnx.ModelProto:
    """The ONNX ModelProto of a graph (checked by onnx.checker)."""
    w = _Writer(graph)
    in_names = list(input_names or [graph.nodes[i].name or f"input{k}" for k, i in enumerate(graph.inputs)])
    if len(in_names) != len(graph.inputs):
        raise ValueError(f"input_names has {len(in_names)} names for {len(graph.inputs)} inputs")
    default_out = getattr(graph, "output_names", None) or (["output"] if len(graph.outputs) == 1 else
                                                            [f"output{k}" for k in range(len(graph.outputs))])
    out_names = list(output_names or default_out)
    if len(out_names) != len(graph.outputs):
        raise ValueError(f"output_names has {len(out_names)} names for {len(graph.outputs)} outputs")
    inputs = []
    for nm, i in zip(in_names, graph.inputs):
        node = graph.nodes[i]
        w.names[i] = w.fresh(nm)
        inputs.append(helper.make_tensor_value_info(w.names[i], onnx_type(node.dtype), list(node.shape)))
    final = {}
    for nm, i in zip(out_names, graph.outputs):
        if i not in final and graph.nodes[i].op not in ("input", "param", "const"):
            final[i] = w.fresh(nm)
    _write_nodes(w, graph, final)
    outputs = []
    for nm, i in zip(out_names, graph.outputs):
        node = graph.nodes[i]
        name = w.names[i]
        if final.get(i) != name or name in [o.name for o in outputs]:     # an input, a weight or a repeat
            name = w.op("Identity", [w.names[i]], w.fresh(nm))
        outputs.append(helper.make_tensor_value_info(name, onnx_type(node.dtype), list(node.shape)))
    vis = [helper.make_tensor_value_info(nm, onnx_type(dt), list(shape)) for nm, (dt, shape) in w.value_info.items()
           if nm not in {o.name for o in outputs}]
    gp = helper.make_graph(w.nodes, name or graph.name, inputs, outputs, initializer=w.inits, value_info=vis)
    model = helper.make_model(gp, opset_imports=[helper.make_opsetid("", opset)], producer_name="aisys",
                              producer_version=_version())
    model.ir_version = min(model.ir_version, 10)           # what onnxruntime of the constraints reads
    onnx.checker.check_model(model, full_check=True)
    return model


def _version() -> str:
    from ... import __version__
    return __version__


def export(model, example_inputs=(), path=None, *, input_names=None, output_names=None, name: str | None = None,
           opset: int = EXPORT_OPSET) -> onnx.ModelProto:
    """Write ``model`` (an ``nn.Module`` or function, traced on ``example_inputs`` in eval mode, or a
    ``Graph``) as an ONNX model; saved to ``path`` when given. Returns the ``onnx.ModelProto``."""
    if isinstance(model, Graph):
        graph = model
    else:
        if not callable(model):
            raise TypeError(f"aisys.onnx.export: expected an nn.Module, a function or a Graph, got {type(model).__name__}")
        if not isinstance(example_inputs, (tuple, list)):
            example_inputs = (example_inputs,)
        graph = _traced(model, example_inputs)
    proto = to_model(graph, input_names=input_names, output_names=output_names,
                     name=name or getattr(model, "name", None) or type(model).__name__, opset=opset)
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto
