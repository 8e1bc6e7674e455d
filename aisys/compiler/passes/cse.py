"""Common-subexpression elimination (公共子表达式消除, 03Frontend/08CSE; 05Optimize/02Basic 公共子图).

Value numbering, the lecture's hash table: walk the graph in topological order and key every node by
``(op, inputs, attrs)``; the first node with a key is kept, later ones are replaced by it. Because
replaced nodes' readers are re-pointed at once, duplicates of duplicates collapse in the same sweep.

* Inputs of commutative ops (add, mul, maximum, minimum, eq, ne) are sorted, so ``a+b`` and ``b+a`` meet.
* Attrs are frozen into hashable keys; numpy-array attrs are keyed by dtype, shape and bytes.
* Constants with equal dtype, shape and bytes are merged; inputs and parameters never are.
* Impure ops (``OpDef.pure`` False, e.g. dropout) are never merged: two dropouts draw two masks.
"""
from __future__ import annotations

import numpy as np

from ...framework.dtypes import DType
from ...framework.graph import Graph
from ...framework.registry import get as get_op
from ..rewriter import Rewriter

COMMUTATIVE = frozenset({"add", "mul", "maximum", "minimum", "eq", "ne"})


def freeze(v):
    """A hashable, value-based key for an attribute value."""
    if isinstance(v, np.ndarray):
        return ("ndarray", v.dtype.str, v.shape, np.ascontiguousarray(v).tobytes())
    if isinstance(v, np.generic):
        return ("scalar", v.dtype.str, v.tobytes())
    if isinstance(v, float):
        return ("float", float(v).hex())        # keeps -0.0 apart from 0.0 and every NaN equal to itself
    if isinstance(v, (list, tuple)):
        return (type(v).__name__,) + tuple(freeze(x) for x in v)
    if isinstance(v, dict):
        return ("dict",) + tuple(sorted((k, freeze(x)) for k, x in v.items()))
    if isinstance(v, slice):
        return ("slice", freeze(v.start), freeze(v.stop), freeze(v.step))
    if isinstance(v, DType):
        return ("dtype", v.name)
    if isinstance(v, Graph):
        return ("graph", str(v), tuple(freeze(n.value) for n in v.nodes.values() if n.value is not None))
    if v is Ellipsis:
        return ("...",)
    return v


def node_key(g: Graph, n) -> tuple | None:
    """The value number key of node ``n`` (None: never merge)."""
    if n.op in ("input", "param"):
        return None
    if n.op == "const":
        return ("const", n.dtype.name, tuple(n.shape), np.ascontiguousarray(n.value).tobytes())
    inputs = tuple(n.inputs)
    if n.op in COMMUTATIVE:
        inputs = tuple(sorted(inputs))
    return (n.op, inputs, freeze(n.attrs))


def cse(rw: Rewriter) -> None:
    """Replace every node that recomputes an earlier node's value by that node.

    O(n + edges) hash-table lookups (plus hashing each constant's bytes once)."""
    g = rw.graph
    table: dict[tuple, int] = {}
    for i in list(g.nodes):
        n = g.nodes.get(i)
        if n is None:
            continue
        key = node_key(g, n)
        if key is None:
            continue
        first = table.get(key)
        if first is None:
            table[key] = n.id
            continue
        if n.op != "const" and not get_op(n.op).pure:
            rw.reject(f"merge %{n.id} into %{first}", f"{n.op} is impure (OpDef.pure is False): two calls are "
                      f"two random draws, so they are never merged", rule="cse", nodes=(n.id, first))
            continue
        rw.replace(n.id, first, rule="cse", note=f"%{n.id} = {n.op} repeats %{first}")
