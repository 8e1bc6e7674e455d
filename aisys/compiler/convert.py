"""Model conversion (模型转换, 04Inference/04Converter): read a small ONNX-like JSON model into a Graph.

An inference engine first converts a model exported by a training framework into its own IR. This
reader takes the shape of ONNX (nodes with named inputs and outputs, initializers holding weights)
in plain JSON, maps each ONNX operator to registry ops, and drops the ops that do nothing at
inference time (``Identity``, ``Dropout``) — the converter's own redundant-node elimination::

    {"name": "resblock",
     "inputs":  [{"name": "x", "shape": [1, 4, 8, 8], "dtype": "float32"}],
     "initializers": [{"name": "conv1.weight", "shape": [4, 4, 3, 3], "data": [...]}],
     "nodes":   [{"op": "Conv", "inputs": ["x", "conv1.weight"], "outputs": ["c1"],
                  "attrs": {"strides": [1, 1], "pads": [1, 1, 1, 1]}}, ...],
     "outputs": ["y"]}

Supported operators: Constant (attrs ``value`` and ``shape``), Conv, BatchNormalization (ONNX input order X, scale, B, mean, var), Relu,
Sigmoid, Tanh, Add, Sub, Mul, Div, MatMul, Gemm, Flatten, Reshape (constant shape), Transpose,
GlobalAveragePool, MaxPool, AveragePool, Softmax, Identity, Dropout. Anything else raises a
ValueError naming the node and the supported list.
"""
from __future__ import annotations

import json

import numpy as np

from ..framework import dtypes as _dt
from ..framework.graph import Graph

SUPPORTED = ("Constant", "Conv", "BatchNormalization", "Relu", "Sigmoid", "Tanh", "Add", "Sub", "Mul", "Div", "MatMul", "Gemm",
             "Flatten", "Reshape", "Transpose", "GlobalAveragePool", "MaxPool", "AveragePool", "Softmax", "Identity",
             "Dropout")
_UNARY = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "MatMul": "matmul"}


def _pads(attrs, op):
    p = list(attrs.get("pads", [0, 0, 0, 0]))
    if len(p) != 4 or p[0] != p[2] or p[1] != p[3]:
        raise ValueError(f"{op}: only symmetric 2-D pads [top, left, bottom, right] with top == bottom and "
                         f"left == right are supported, got {p}")
    return (int(p[0]), int(p[1]))


def from_onnx_json(model, name: str | None = None) -> Graph:
    """Convert an ONNX-like model (a dict, or its JSON text) into a Graph. Initializers become params.

    The returned graph has ``conversion_log``: one line per ONNX node saying what it became."""
    if isinstance(model, (str, bytes)):
        model = json.loads(model)
    for key in ("inputs", "nodes", "outputs"):
        if key not in model:
            raise ValueError(f"from_onnx_json: the model has no {key!r} list (keys: {sorted(model)})")
    g = Graph(name or model.get("name", "model"))
    env: dict[str, int] = {}
    log: list[str] = []
    for inp in model["inputs"]:
        env[inp["name"]] = g.add_input(inp["name"], tuple(inp["shape"]), inp.get("dtype", "float32")).id
    for init in model.get("initializers", []):
        arr = np.asarray(init["data"], dtype=_dt.as_dtype(init.get("dtype", "float32")).np).reshape(init["shape"])
        env[init["name"]] = g.add_param(init["name"], arr).id

    def arg(node, k):
        nm = node["inputs"][k]
        if nm not in env:
            raise ValueError(f"{node['op']} node {node.get('name', node['outputs'][0])!r}: input {nm!r} is not "
                             f"defined by an earlier node, a graph input or an initializer")
        return env[nm]

    for node in model["nodes"]:
        op, attrs = node["op"], node.get("attrs", {})
        label = node.get("name", node["outputs"][0])
        if op not in SUPPORTED:
            raise ValueError(f"from_onnx_json: node {label!r} uses operator {op!r}, which this converter does not "
                             f"support; supported: {', '.join(SUPPORTED)}")
        n_in = len(node.get("inputs", []))
        if op == "Constant":
            value = np.asarray(attrs["value"], dtype=_dt.as_dtype(attrs.get("dtype", "float32")).np)
            out = g.add_const(value.reshape(attrs.get("shape", value.shape)))
            env[node["outputs"][0]] = out.id
            log.append(f"{label}: Constant → %{out.id} = const")
            continue
        if op in ("Identity", "Dropout"):
            env[node["outputs"][0]] = arg(node, 0)
            log.append(f"{label}: {op} removed (a no-op at inference time)")
            continue
        if op in _UNARY:
            out = g.add(_UNARY[op], (arg(node, 0),))
        elif op in _BINARY:
            out = g.add(_BINARY[op], (arg(node, 0), arg(node, 1)))
        elif op == "Conv":
            s = tuple(attrs.get("strides", [1, 1]))
            d = tuple(attrs.get("dilations", [1, 1]))
            ins = [arg(node, k) for k in range(n_in)]
            out = g.add("conv2d", ins, dict(stride=(int(s[0]), int(s[1])), padding=_pads(attrs, op),
                                            dilation=(int(d[0]), int(d[1])), groups=int(attrs.get("group", 1))))
        elif op == "BatchNormalization":
            x, scale, bias, mean, var = (arg(node, k) for k in range(5))
            out = g.add("batch_norm", (x, mean, var, scale, bias), {"eps": float(attrs.get("epsilon", 1e-5))})
        elif op == "Gemm":
            a, b = arg(node, 0), arg(node, 1)
            if attrs.get("transA", 0):
                a = g.add("permute", (a,), {"dims": (1, 0)}).id
            if attrs.get("transB", 0):
                b = g.add("permute", (b,), {"dims": (1, 0)}).id
            out = g.add("matmul", (a, b))
            if attrs.get("alpha", 1.0) != 1.0:
                out = g.add("mul", (out.id, g.add_const(np.float32(attrs["alpha"])).id))
            if n_in > 2:
                c = arg(node, 2)
                if attrs.get("beta", 1.0) != 1.0:
                    c = g.add("mul", (c, g.add_const(np.float32(attrs["beta"])).id)).id
                out = g.add("add", (out.id, c))
        elif op == "Flatten":
            x = g.nodes[arg(node, 0)]
            axis = int(attrs.get("axis", 1))
            lead = int(np.prod(x.shape[:axis])) if axis else 1
            out = g.add("reshape", (x.id,), {"shape": (lead, int(np.prod(x.shape[axis:])))})
        elif op == "Reshape":
            out = g.add("reshape", (arg(node, 0),), {"shape": tuple(int(v) for v in attrs["shape"])})
        elif op == "Transpose":
            x = g.nodes[arg(node, 0)]
            perm = tuple(attrs.get("perm", list(range(len(x.shape)))[::-1]))
            out = g.add("permute", (x.id,), {"dims": tuple(int(p) for p in perm)})
        elif op == "GlobalAveragePool":
            out = g.add("mean", (arg(node, 0),), {"dim": (2, 3), "keepdim": True})
        elif op in ("MaxPool", "AveragePool"):
            k = tuple(int(v) for v in attrs["kernel_shape"])
            s = tuple(int(v) for v in attrs.get("strides", k))
            out = g.add("max_pool2d" if op == "MaxPool" else "avg_pool2d", (arg(node, 0),),
                        dict(kernel_size=k, stride=s, padding=_pads(attrs, op), dilation=(1, 1)))
        else:                                   # Softmax
            out = g.add("softmax", (arg(node, 0),), {"dim": int(attrs.get("axis", -1))})
        env[node["outputs"][0]] = out.id
        log.append(f"{label}: {op} → %{out.id} = {out.op}")
    missing = [o for o in model["outputs"] if o not in env]
    if missing:
        raise ValueError(f"from_onnx_json: outputs {missing} are produced by no node")
    g.set_outputs([env[o] for o in model["outputs"]])
    g.verify()
    g.conversion_log = log
    return g


def resnet_block_model(channels: int = 4, size: int = 8, seed: int = 0, exporter_leftovers: bool = True) -> dict:
    """An ONNX-like JSON dict of a ResNet basic block in eval mode: Conv-BN-ReLU-Conv-BN, + x, ReLU
    (He et al. 2016). Weights are seeded; values are plain lists, as in a JSON file.

    ``exporter_leftovers`` adds what exporters often leave behind, so every pass of lab 04 has work:
    an Identity and a Dropout (dropped by the converter), a scale computed from two constants
    (2 × 0.5, constant folding) and applied as a multiply by one (simplify), a transpose pair that
    cancels (simplify), the final ReLU written twice for two outputs (CSE), and an unused auxiliary
    head (DCE)."""
    rng = np.random.default_rng(seed)
    C = channels

    def t(name, arr):
        arr = np.asarray(arr, np.float32)
        return {"name": name, "shape": list(arr.shape), "data": [round(float(v), 6) for v in arr.ravel()]}

    inits, nodes = [], []
    for k in (1, 2):
        inits.append(t(f"conv{k}.weight", rng.standard_normal((C, C, 3, 3)) * np.sqrt(2.0 / (9 * C))))
        inits += [t(f"bn{k}.weight", rng.uniform(0.5, 1.5, C)), t(f"bn{k}.bias", rng.uniform(-0.5, 0.5, C)),
                  t(f"bn{k}.running_mean", rng.uniform(-0.5, 0.5, C)), t(f"bn{k}.running_var", rng.uniform(0.5, 2.0, C))]
    conv = {"strides": [1, 1], "pads": [1, 1, 1, 1]}

    def add(op, name, inputs, output, **attrs):
        nodes.append({"op": op, "name": name, "inputs": inputs, "outputs": [output], "attrs": attrs})
        return output

    h = add("Conv", "conv1", ["x", "conv1.weight"], "c1", **conv)
    h = add("BatchNormalization", "bn1", [h, "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"], "b1",
            epsilon=1e-5)
    h = add("Relu", "relu1", [h], "r1")
    skip = "x"
    if exporter_leftovers:
        two = add("Constant", "two", [], "two", value=2.0)
        half = add("Constant", "half", [], "half", value=0.5)
        scale = add("Mul", "scale", [two, half], "scale")                       # = 1.0 once folded
        h = add("Mul", "apply_scale", [h, scale], "r1s")
        h = add("Dropout", "dropout", [h], "d1", ratio=0.1)
        h = add("Transpose", "to_nhwc", [h], "t1", perm=[0, 2, 3, 1])
        h = add("Transpose", "to_nchw", [h], "t2", perm=[0, 3, 1, 2])
        skip = add("Identity", "shortcut", ["x"], "s")
        add("Sigmoid", "aux_head", ["r1"], "aux")                               # computed, never used
    h = add("Conv", "conv2", [h, "conv2.weight"], "c2", **conv)
    h = add("BatchNormalization", "bn2", [h, "bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var"], "b2",
            epsilon=1e-5)
    a = add("Add", "residual", [h, skip], "a")
    y = add("Relu", "relu2", [a], "y")
    outputs = [y]
    if exporter_leftovers:
        outputs.append(add("Relu", "relu2_copy", [a], "features"))            # the same value, written twice
    return {"name": "resnet_block", "inputs": [{"name": "x", "shape": [1, C, size, size], "dtype": "float32"}],
            "initializers": inits, "nodes": nodes, "outputs": outputs}
