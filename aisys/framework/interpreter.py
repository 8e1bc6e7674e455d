"""The graph interpreter: the one loop every runner of a Graph shares.

Running a graph is always the same walk — check and bind the inputs, bind the leaves (parameters
read live by name, constants), then evaluate each op node on its inputs' values in a schedule — and
the runners differ only in *how a node is executed* and *where values are kept*. So there is one
:class:`Interpreter`, and each runner is a small subclass that overrides those pieces:

    runner                                    execute a node with          keep values in
    graph.interpret                           the numpy reference          a dict
    frontend.run_graph (TensorInterpreter)    apply (autodiff sees it)     a dict of Tensors
    compiler.runtime.Executable               a fused kernel or the ref    a dict, freed after last use
    compiler.memory.ArenaExecutor             the numpy reference          one arena, at planned offsets

The executable specification of the IR is :func:`evaluate_node`: one node through the op registry's
reference, its result in the node's dtype.
"""
from __future__ import annotations

import numpy as np

from .registry import get as get_op
from .tensor import Tensor, apply

__all__ = ["Interpreter", "TensorInterpreter", "evaluate_node"]


def evaluate_node(n, args: list) -> np.ndarray:
    """One node through the registry's numpy reference (the executable spec of the IR)."""
    out = get_op(n.op).ref(*args, **n.attrs)
    out = np.asarray(out)
    if out.dtype != n.dtype.np:
        out = out.astype(n.dtype.np)
    return out


class Interpreter:
    """Runs a graph node by node on numpy arrays. Override the pieces a runner does its own way:

    ``input_value`` (check and convert one input), ``leaf_value`` (a param or const), ``execute`` (one op
    node), ``schedule`` (op nodes in run order), ``write``/``read`` (the value store), ``after`` (called
    after each step: free buffers, record a trace event) and ``output`` (what the caller gets back).
    ``what`` names the graph in errors; ``shape_hint`` is appended to a wrong-shape error.
    """

    what = "graph"
    shape_hint = ""

    def __init__(self, graph):
        self.graph = graph

    # ---- the walk ---------------------------------------------------------------------------------
    def run(self, *inputs, params: dict | None = None) -> list:
        g = self.graph
        if len(inputs) != len(g.inputs):
            raise ValueError(f"{self.what} {g.name!r} takes {len(g.inputs)} inputs "
                             f"({', '.join(g.nodes[i].name for i in g.inputs)}), got {len(inputs)}")
        self.values: dict = {}
        for i, x in zip(g.inputs, inputs):
            self.write(g.nodes[i], self.input_value(g.nodes[i], x))
        for n in g.nodes.values():
            if n.op in ("param", "const"):
                self.write(n, self.leaf_value(n, params))
        for step, n in enumerate(self.schedule()):
            self.write(n, self.execute(n, [self.read(i) for i in n.inputs]))
            self.after(step, n)
        return [self.output(i) for i in g.outputs]

    # ---- the pieces -------------------------------------------------------------------------------
    def input_value(self, node, x):
        arr = np.asarray(x._data if hasattr(x, "_data") else x)
        if tuple(arr.shape) != tuple(node.shape):
            raise ValueError(f"input {node.name!r} expects shape {tuple(node.shape)}"
                             f"{f' ({node.dtype.name})' if self.shape_hint else ''}, got {tuple(arr.shape)}"
                             f"{self.shape_hint}")
        return arr.astype(node.dtype.np, copy=False)

    def leaf_value(self, node, params):
        """A parameter's live value when ``params`` has its name, else the value stored in the graph."""
        if params and node.op == "param" and node.name in params:
            return params[node.name]
        return node.value

    def execute(self, node, args):
        return evaluate_node(node, args)

    def schedule(self):
        return [n for n in self.graph.nodes.values() if not n.is_leaf]

    def write(self, node, value) -> None:
        self.values[node.id] = value

    def read(self, i: int):
        return self.values[i]

    def after(self, step: int, node) -> None:
        pass

    def output(self, i: int):
        return self.values[i]


class TensorInterpreter(Interpreter):
    """Runs a graph by calling :func:`apply` node by node, so autodiff and observers (a tracer) see every op;
    ``params`` maps param names to live tensors."""

    def input_value(self, node, x):
        t = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
        if tuple(t.shape) != tuple(node.shape):
            raise ValueError(f"input {node.name!r} of graph {self.graph.name!r} expects shape {tuple(node.shape)}, "
                             f"got {tuple(t.shape)}")
        return t

    def leaf_value(self, node, params):
        v = super().leaf_value(node, params)
        return v if isinstance(v, Tensor) else Tensor._wrap(v)

    def execute(self, node, args):
        return apply(node.op, *args, **node.attrs)
