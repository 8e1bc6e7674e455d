"""What a pass is judged by: node count, kernel launches, bytes moved, FLOPs, peak live bytes.

All figures come from the op registry's ``cost()`` (DESIGN.md: one contract read by every layer):
  * ``kernels`` — op nodes that do work. A node whose cost is zero FLOPs and zero bytes (a reshape of
    a contiguous tensor, a basic slice) is a *view*: no kernel runs for it.
  * ``bytes_moved`` — the sum of every kernel's bytes (inputs read once, output written once). A fused
    node counts only its external inputs and its output: the intermediates stay in registers. That is
    the model of an ideal fused kernel; the CPU runtime's matmul/conv epilogue actually writes the
    anchor's result once and updates it in place (see ``aisys.compiler.runtime``).
  * ``peak_bytes`` — the most bytes of op outputs alive at once when the nodes run in graph order
    (inputs, params and consts excluded): the lower bound any memory plan of this order must meet.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..framework.graph import Graph, Node
from ..framework.registry import Cost, get as get_op


@dataclass(frozen=True)
class Metrics:
    nodes: int           # op nodes (leaves excluded)
    kernels: int         # op nodes that launch work (views excluded)
    bytes_moved: int
    flops: int
    peak_bytes: int

    def as_dict(self) -> dict:
        return {"nodes": self.nodes, "kernels": self.kernels, "bytes_moved": self.bytes_moved,
                "flops": self.flops, "peak_bytes": self.peak_bytes}


def node_cost(graph: Graph, n: Node) -> Cost:
    """The registry's cost of one op node, from its input and output specs."""
    op = get_op(n.op)
    return op.cost([graph.nodes[i].spec for i in n.inputs], n.spec, **n.attrs)


def is_view(graph: Graph, n: Node) -> bool:
    c = node_cost(graph, n)
    return c.flops == 0 and c.bytes == 0


def peak_live_bytes(graph: Graph) -> int:
    """Most bytes of op outputs alive at one step, running nodes in graph order."""
    order = [n for n in graph.nodes.values() if not n.is_leaf]
    pos = {n.id: k for k, n in enumerate(order)}
    last = {n.id: pos[n.id] for n in order}
    for n in order:
        for i in n.inputs:
            if i in last:
                last[i] = max(last[i], pos[n.id])
    for i in graph.outputs:
        if i in last:
            last[i] = len(order)
    live = peak = 0
    ends: dict[int, int] = {}
    for k, n in enumerate(order):
        live += 0 if is_view(graph, n) else n.nbytes
        peak = max(peak, live)
        ends.setdefault(last[n.id], 0)
        ends[last[n.id]] += 0 if is_view(graph, n) else n.nbytes
        live -= ends.pop(k, 0)
    return peak


def graph_metrics(graph: Graph) -> Metrics:
    nodes = kernels = nbytes = flops = 0
    for n in graph.nodes.values():
        if n.is_leaf:
            continue
        nodes += 1
        c = node_cost(graph, n)
        if c.flops or c.bytes:
            kernels += 1
        nbytes += c.bytes
        flops += c.flops
    return Metrics(nodes, kernels, nbytes, flops, peak_live_bytes(graph))
