"""From the graph IR to layer records: each op node becomes what its registry definition says the chip runs.

The op registry gives every op a chip lowering (``OpDef.lowering``): a matrix instruction (``gemm``,
``linear``, ``conv`` in NCHW or NHWC), a vector instruction (``relu``, ``maxpool``, ``softmax``, …; or, for
an op that names none, one instruction per primitive of its scalar expression), *addressing* (a view the
compiler turns into addresses: no work), *body* (a fused node, lowered through its subgraph), or *not
lowerable* with the reason, which the error repeats. The table below is the chip's side of that contract:
which layer record each of its instructions makes. Each record carries the registry's FLOPs and bytes for
the node it came from.

A bias add right after a matmul or conv is absorbed by it (accumulators add the bias as results drain,
as TPU v1 and Ascend's FixPipe do). Layers are named after the module whose weight they read (``conv1``,
``fc2``), and the layers that follow one after it (``conv1.relu``).
"""
from __future__ import annotations

from dataclasses import replace

from ..framework import scalar as _scalar
from ..framework.registry import FusionKind, get as get_op
from .layers import Conv, Elementwise, Gemm, LayerNorm, Pool, Softmax
from .lowering import lower_layers
from .program import Program
from .vector import BINARY_OPS

__all__ = ["graph_to_layers", "lower_graph", "LAYER_OF_INSTRUCTION"]


def _first(v):
    return v[0] if isinstance(v, (tuple, list)) else v


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return max(1, n)


def _square(where: str, **attrs) -> None:
    for attr, v in attrs.items():
        if isinstance(v, (tuple, list)) and len(set(v)) > 1:
            raise ValueError(f"{where} has {attr}={v}; the chip model needs the same {attr} in H and W")


def _word_bytes(node):
    """Integer tensors (int8 codes, int32 accumulators) move their own width; float ones the chip's word."""
    dt = getattr(node, "dtype", None)
    return None if dt is None or dt.is_floating else dt.itemsize


def _weight_density(graph, i: int) -> float:
    """The share of non-zero values of a weight operand (through views and casts back to a param or const)."""
    n = graph.nodes[i]
    while not n.is_leaf and n.inputs and (get_op(n.op).lowering.unit == "addressing"
                                          or get_op(n.op).lowering.instruction == "cast"):
        n = graph.nodes[n.inputs[0]]
    if n.op in ("param", "const") and n.value is not None and n.value.size:
        return float((n.value != 0).mean())
    return 1.0


# ---- the chip's instructions -> layer records ---------------------------------------------------------
def _gemm(name, node, ins, low, where, graph):
    a, b = ins[0].shape, ins[1].shape
    if len(b) == 2:
        return Gemm(name, _numel(a[:-1]) if len(a) > 1 else 1, b[1], b[0], word_bytes=_word_bytes(ins[0]),
                    density=_weight_density(graph, node.inputs[1]))
    if len(b) > 2 and len(a) >= 2:                     # batched: one [M, K] @ [K, N] per leading index
        return Gemm(name, a[-2], b[-1], b[-2], count=_numel(node.shape[:-2]), word_bytes=_word_bytes(ins[0]))
    raise ValueError(f"{where} multiplies {tuple(a)} by {tuple(b)}; the chip model has [.., K] @ [K, N] and "
                     f"batched [.., M, K] @ [.., K, N] products")


def _linear(name, node, ins, low, where, graph):
    (n, k), (o, _) = ins[0].shape, ins[1].shape          # y = x·wᵀ (+ b): [N, in] @ [in, out]
    return Gemm(name, n, o, k, word_bytes=_word_bytes(ins[0]), density=_weight_density(graph, node.inputs[1]))


def _conv(name, node, ins, low, where, graph):
    x, w = ins[0].shape, ins[1].shape
    if low.param("layout", "NCHW") == "NHWC":            # x (N, H, W, C), w (O, KH, KW, C/groups)
        (N, H, W, C), (O, KH, KW, _) = x, w
    else:                                                # x (N, C, H, W), w (O, C/groups, KH, KW)
        (N, C, H, W), (O, _, KH, KW) = x, w
    groups, dil = node.attrs.get("groups", 1), node.attrs.get("dilation", 1)
    if _first(groups) != 1 or set(dil if isinstance(dil, tuple) else (dil,)) != {1}:
        raise ValueError(f"{where} has groups={groups}, dilation={dil}; only dense, undilated convolutions "
                         f"are modelled")
    stride, padding = node.attrs.get("stride", 1), node.attrs.get("padding", 0)
    _square(where, stride=stride, padding=padding)
    return Conv(name, H, W, C, O, KH, KW, _first(stride), _first(padding), N, word_bytes=_word_bytes(ins[0]),
                density=_weight_density(graph, node.inputs[1]))


def _pool(name, node, ins, low, where, graph):
    x = ins[0].shape
    k = _first(node.attrs.get("kernel_size", 2))
    stride = _first(node.attrs.get("stride", None) or k)
    return Pool(name, "max" if low.instruction == "maxpool" else "avg", x[0], x[1], x[2], x[3], k, stride,
                _first(node.attrs.get("padding", 0)), word_bytes=_word_bytes(ins[0]))


def _rows(cls):
    def build(name, node, ins, low, where, graph):
        shape = ins[0].shape
        return cls(name, _numel(shape[:-1]), shape[-1])
    return build


def _vector(name, node, ins, low, where, graph):
    op = get_op(node.op)
    reads_input = low.param("elements") == "input" or op.fusion is FusionKind.REDUCE
    elements = _numel(ins[0].shape if reads_input else node.shape)
    streams = sum(1 for x in ins if _numel(x.shape) > 1) or 1
    chain = _instructions(node, where)
    if reads_input and len(chain) == 1:                # a reduction: costed by the elements it reads
        return Elementwise(name, chain[0], elements)
    word = _word_bytes(node)
    if len(chain) == 1 and not (chain[0] in BINARY_OPS and streams == 1):
        return Elementwise(name, chain[0], elements, word_bytes=word)
    # a chain of instructions, or a binary one with a scalar operand (it sits in a register: one stream)
    return Elementwise(name, chain[0] if len(chain) == 1 else node.op, elements, chain=chain, inputs=streams,
                       word_bytes=word)


#: (unit, instruction) -> the layer record it makes; vector instructions not listed make an Elementwise
LAYER_OF_INSTRUCTION = {
    ("matrix", "gemm"): _gemm,
    ("matrix", "linear"): _linear,
    ("matrix", "conv"): _conv,
    ("vector", "maxpool"): _pool,
    ("vector", "avgpool"): _pool,
    ("vector", "softmax"): _rows(Softmax),
    ("vector", "layernorm"): _rows(LayerNorm),
}


def _instructions(node, where) -> tuple:
    """The vector instructions one node costs: its declared instruction, or one per primitive of its scalar
    expression (or of its reduction's combiner)."""
    op = get_op(node.op)
    low = op.lowering
    if low.unit == "addressing":
        return ()
    if low.unit != "vector":
        raise ValueError(f"{where}: {node.op} has no vector-unit model ({low})")
    if low.instruction:
        return (low.instruction_for(node.attrs),)
    n_in = len(node.inputs)
    expr = op.scalar_expr(n_in, **node.attrs) if op.scalar is not None else _scalar.build(op.reduction.combine, 2)
    return _scalar.vector_instructions(expr) or ("copy",)


# ---- the graph walk ----------------------------------------------------------------------------------
def _is_bias_add(graph, node, producers: set, bias_from=("param", "const")) -> bool:
    """An add (the vector ``add`` instruction) of a matmul/conv output and a 1-D parameter: a bias the
    accumulators add on the way out (free)."""
    if get_op(node.op).lowering.instruction != "add" or len(node.inputs) != 2:
        return False
    a, b = (graph.nodes[i] for i in node.inputs)
    for x, y in ((a, b), (b, a)):
        if x.id in producers and y.op in bias_from and len(y.shape) == 1 and \
                y.shape[0] == node.shape[-1 if len(node.shape) == 2 else 1 if len(node.shape) == 4 else -1]:
            return True
    return False


class _Names:
    """Layer names: a matrix layer after the module whose weight it reads (``fc1.weight`` -> ``fc1``), a layer
    that follows one after it (``fc1.relu``); otherwise ``op_id``. Always unique."""

    def __init__(self, graph):
        self.graph, self.of_node, self.taken = graph, {}, set()

    def _through_views(self, i: int) -> int:
        g = self.graph
        while not g.nodes[i].is_leaf and get_op(g.nodes[i].op).lowering.unit == "addressing" and g.nodes[i].inputs:
            i = g.nodes[i].inputs[0]
        return i

    def name(self, node, matrix: bool) -> str:
        g = self.graph
        base = None
        if matrix and len(node.inputs) > 1:
            w = g.nodes[self._through_views(node.inputs[1])]
            if w.op == "param" and w.name:
                base = w.name.removesuffix(".weight")
        elif node.inputs:
            src = self.of_node.get(self._through_views(node.inputs[0]))
            if src is not None:
                base = f"{src.split('.')[0]}.{node.op}"
        name = base or f"{node.op}_{node.id}"
        if name in self.taken:
            name = f"{name}_{node.id}"
        self.taken.add(name)
        self.of_node[node.id] = name
        return name

    def alias(self, node, source: int) -> None:
        """``node`` (a view, an absorbed bias) carries the name of the layer it reads."""
        i = self._through_views(source)
        if i in self.of_node:
            self.of_node[node.id] = self.of_node[i]


def graph_to_layers(graph, *, _bias_from=("param", "const")) -> list:
    """Map the op nodes of an ``aisys`` Graph to layer records, each as its op's registry entry says
    (see the module docstring). An op the chip has no model for (e.g. a backward op) raises ``ValueError``
    naming the node and the reason. Layer records carry no dtype: the chip computes in its own word size."""
    layers: list = []
    matrix_outputs: set = set()
    names = _Names(graph)
    for node in graph.op_nodes:
        op = get_op(node.op)
        low = op.lowering
        ins = [graph.nodes[i] for i in node.inputs]
        where = f"lower_graph: node %{node.id} = {node.op}"
        if low.unit is None:
            raise ValueError(f"{where} has no chip model: {low.why}")
        if low.unit == "addressing":
            if node.inputs:
                names.alias(node, node.inputs[0])
            continue
        if low.unit == "body":
            layers.extend(_body_layers(node, names.name(node, matrix=False), where))
            if node.attrs.get("kind") == "epilogue":
                matrix_outputs.add(node.id)
            continue
        if _is_bias_add(graph, node, matrix_outputs, _bias_from):
            matrix_outputs.add(node.id)        # still "the matmul's output" for a following activation
            names.alias(node, next(i for i in node.inputs if i in matrix_outputs))
            continue
        build = LAYER_OF_INSTRUCTION.get((low.unit, low.instruction))
        if build is None and low.unit != "vector":
            raise ValueError(f"{where}: the {low.unit} unit has no instruction {low.instruction!r}")
        layer = (build or _vector)(names.name(node, matrix=low.unit == "matrix"), node, ins, low, where, graph)
        cost = op.cost([x.spec for x in ins], node.spec, **node.attrs)
        layers.append(replace(layer, registry_flops=int(cost.flops), registry_bytes=int(cost.bytes)))
        if low.unit == "matrix":
            matrix_outputs.add(node.id)
    return layers


def _body_layers(node, name, where) -> list:
    """Layer records for one ``fused`` node of a compiled graph (its subgraph is ``attrs['_body']``).

    An elementwise or reduce group becomes ONE vector layer whose chain runs every op of the group on data
    loaded once. An epilogue group (matmul/conv + elementwise) lowers its body: the matrix layer, then its
    activation, which ``lower_layers`` applies as results drain from the accumulators (like Ascend's
    FixPipe); other epilogue ops stay separate vector layers (an approximation, on the safe side).
    """
    body = node.attrs["_body"]
    if node.attrs.get("kind") == "epilogue":
        # inside the body the bias is a body input (a parameter of the enclosing graph)
        return [replace(layer, name=f"{name}.{layer.name}")
                for layer in graph_to_layers(body, _bias_from=("param", "const", "input"))]
    chain = []
    for n in body.op_nodes:
        try:
            chain.extend(_instructions(n, where))
        except ValueError:
            raise ValueError(f"lower_graph: fused node %{node.id} contains {n.op}, which has no vector-unit model "
                             f"({get_op(n.op).lowering})") from None
    elements = max(_numel(body.nodes[i].shape) for i in body.inputs) if body.inputs else _numel(node.shape)
    big_inputs = sum(1 for i in body.inputs if _numel(body.nodes[i].shape) > 1) or 1
    cost = get_op(node.op).cost([body.nodes[i].spec for i in body.inputs], node.spec, **node.attrs)
    return [Elementwise(name, "fused", elements, chain=tuple(chain) or ("copy",), inputs=big_inputs,
                        registry_flops=int(cost.flops), registry_bytes=int(cost.bytes))]


def lower_graph(graph, chip, **kw) -> Program:
    """Lower an ``aisys.framework.graph.Graph`` to a tile program: ``graph_to_layers`` then ``lower_layers``."""
    layers = graph_to_layers(graph)
    if not layers:
        raise ValueError(f"lower_graph: graph {getattr(graph, 'name', '?')!r} has no op the chip executes")
    return lower_layers(layers, chip, **kw)
