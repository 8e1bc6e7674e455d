"""The autograd tape of an eager tensor, as a Graph — what define-by-run frameworks build as they go.

Each tensor made by a recorded op keeps ``_ctx = (op, inputs, attrs)``; walking those records from a
result back to the leaves gives the *dynamic* graph of one eager run (the "eager" pane of lab 03).
With ``backward=True`` the VJP ops of a reverse sweep are recorded on top (by a :class:`Tracer` that
already knows every forward tensor), so the picture shows the backward graph autodiff would build.
"""
from __future__ import annotations

import numpy as np

from ..framework import autograd as _autograd
from ..framework.graph import Graph
from ..framework.tensor import Tensor, _Mode
from .trace import Tracer

__all__ = ["graph_of_tape"]


def graph_of_tape(t: Tensor, *, backward: bool = False, names: dict[str, Tensor] | None = None,
                  params: dict[str, Tensor] | None = None, inputs: dict[str, Tensor] | None = None,
                  name: str = "tape") -> Graph:
    """The recorded history of ``t`` as a Graph.

    ``names`` labels leaves ({"x": x, "W": W}): a named leaf that requires grad becomes a ``param``, a
    named one that does not becomes an ``input``. Unnamed leaves that require grad are params p0, p1, …;
    other leaves are ``const`` snapshots. ``params`` names leaves that are state (always ``param`` nodes),
    ``inputs`` leaves that are the program's arguments (always ``input`` nodes).
    Only ops with an input that requires grad are on the tape: a sub-expression of constants shows as
    one ``const`` leaf. With ``backward=True`` the gradients of ``t`` with respect to every leaf that
    requires grad are added (as graph outputs after ``t``), and ``graph.backward_ids`` lists the new nodes.
    """
    if not isinstance(t, Tensor):
        raise TypeError(f"graph_of_tape expects an aisys Tensor, got {type(t).__name__}")
    graph = Graph(name)
    label = {id(v): k for k, v in (names or {}).items()}
    state = {id(v): k for k, v in (params or {}).items()}
    args = {id(v): k for k, v in (inputs or {}).items()}
    node: dict[int, int] = {}
    counter = [0]

    def leaf(x: Tensor) -> int:
        if id(x) in node:
            return node[id(x)]
        nm = label.get(id(x))
        if id(x) in args:
            n = graph.add_input(args[id(x)], x.shape, x.dtype)
        elif id(x) in state:
            n = graph.add_param(state[id(x)], np.array(x._data))
        elif nm is not None and not x.requires_grad:
            n = graph.add_input(nm, x.shape, x.dtype)
        elif x.requires_grad or nm is not None:
            if nm is None:
                nm = f"p{counter[0]}"
                counter[0] += 1
            n = graph.add_param(nm, np.array(x._data))
        else:
            n = graph.add_const(np.array(x._data))
        node[id(x)] = n.id
        return n.id

    order = _autograd._topo([t]) if t._ctx is not None else []
    keep = []
    for y in order:
        op, inputs, attrs = y._ctx
        ids = [node[id(x)] if id(x) in node else leaf(x) for x in inputs]
        n = graph.add(op.name, ids, attrs, shape=tuple(y.shape), dtype=y.dtype)
        node[id(y)] = n.id
        keep.append(y)
    root = node[id(t)] if id(t) in node else leaf(t)
    graph.set_outputs([root])
    graph.output_names = ["out"]
    graph.backward_ids = []
    graph.warnings = []
    if t._ctx is None:
        graph.warnings.append("no recorded history: the tape records an op only when one of its inputs "
                              "requires grad (create the inputs with requires_grad=True, not under no_grad)")
    if not backward:
        return graph

    leaves = [x for x in _leaves(order) if x.requires_grad]
    if t._ctx is None or not leaves:
        graph.warnings.append("nothing to differentiate: no leaf requires grad")
        return graph
    first_new = graph._next
    tracer = Tracer(graph)
    for x in list(_leaves(order)) + keep:
        tracer.bind(x, node[id(x)])
    _Mode.observers.append(tracer)
    try:
        seed = None if t._data.size == 1 else Tensor._wrap(np.ones(t.shape, t._data.dtype))
        grads = _autograd.grad(t, leaves, seed, retain_graph=True, allow_unused=True)
        gids, gnames = [], []
        for x, g in zip(leaves, grads):
            if g is not None:
                gids.append(tracer.node_of(g))
                gnames.append(f"grad {graph.nodes[node[id(x)]].name or '%' + str(node[id(x)])}")
    finally:
        _Mode.observers.remove(tracer)
        tracer.release(restore_state=False)
    graph.set_outputs([root] + gids)
    graph.output_names = ["out"] + gnames
    graph.backward_ids = [i for i in graph.nodes if i >= first_new]
    return graph


def _leaves(order):
    seen = set()
    for y in order:
        for x in y._ctx[1]:
            if x._ctx is None and id(x) not in seen:
                seen.add(id(x))
                yield x
