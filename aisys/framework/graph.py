"""The graph IR: SSA nodes with stable ids, read by passes, the memory planner, codegen and the chip.

Each node is one op from the registry (or a leaf: ``input``, ``param``, ``const``) with its attrs,
inferred shape and dtype, and *provenance* — the ids of the original nodes it came from, so a
widget can show where a fused or folded node's work originated. Printed form:

    %0 = input "x" : f32[64,784]
    %3 = matmul(%0, %1) : f32[64,10]
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from . import dtypes as _dt
from .interpreter import Interpreter, evaluate_node  # noqa: F401  (evaluate_node: the IR's executable spec)
from .registry import OPS, Spec, get as get_op

LEAVES = ("input", "param", "const")

#: How often the whole-graph structures were built: ``users`` (a full use-def rebuild, O(n)) and ``copy``
#: (a deep copy). The compiler keeps use-def chains up to date incrementally and snapshots graphs
#: structurally, so a pipeline run builds users once and copies nothing (tests/compiler/test_scale.py).
COUNTERS = {"users": 0, "copy": 0, "snapshot": 0}


@dataclass
class Node:
    id: int
    op: str
    inputs: tuple = ()
    attrs: dict = field(default_factory=dict)
    shape: tuple = ()
    dtype: _dt.DType = _dt.float32
    name: str = ""                       # inputs/params: the user-facing name
    value: np.ndarray | None = None      # const/param data
    provenance: tuple = ()               # ids of the original nodes this one came from
    source: str = ""                     # user file:line that created it (tracing/scripting)

    @property
    def is_leaf(self) -> bool:
        return self.op in LEAVES

    @property
    def spec(self) -> Spec:
        return Spec(tuple(self.shape), self.dtype)

    @property
    def numel(self) -> int:
        return self.spec.numel

    @property
    def nbytes(self) -> int:
        return self.spec.nbytes

    def type_str(self) -> str:
        return f"{self.dtype.short}[{','.join(str(s) for s in self.shape)}]"


def format_attr(v) -> str:
    if isinstance(v, np.ndarray):
        return f"array{list(v.shape)}"
    if isinstance(v, _dt.DType):
        return v.short
    if isinstance(v, slice):
        parts = ["" if x is None else str(x) for x in (v.start, v.stop, v.step)]
        return ":".join(parts[:2]) + (f":{parts[2]}" if v.step is not None else "")
    if isinstance(v, tuple):
        return "(" + ", ".join(format_attr(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, Graph):
        return f"<graph {len(v.nodes)} nodes>"
    if v is Ellipsis:
        return "..."
    return repr(v)


class GraphError(ValueError):
    """The verifier found an ill-formed graph (names the node and the rule)."""


class Graph:
    """An SSA graph. ``nodes`` is kept in a topological order; ids are never reused."""

    def __init__(self, name: str = "graph"):
        self.name = name
        self.nodes: dict[int, Node] = {}
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self._next = 0

    # ---- building ------------------------------------------------------------------------------
    def _new_id(self) -> int:
        i = self._next
        self._next += 1
        return i

    def add_input(self, name: str, shape, dtype=_dt.float32, source: str = "") -> Node:
        n = Node(self._new_id(), "input", (), {}, tuple(shape), _dt.as_dtype(dtype), name=name, source=source)
        n.provenance = (n.id,)
        self.nodes[n.id] = n
        self.inputs.append(n.id)
        return n

    def add_param(self, name: str, value: np.ndarray, source: str = "") -> Node:
        value = np.asarray(value)
        n = Node(self._new_id(), "param", (), {}, tuple(value.shape), _dt.from_numpy(value.dtype), name=name,
                 value=value, source=source)
        n.provenance = (n.id,)
        self.nodes[n.id] = n
        return n

    def add_const(self, value, source: str = "", provenance: tuple = ()) -> Node:
        value = np.asarray(value)
        n = Node(self._new_id(), "const", (), {}, tuple(value.shape), _dt.from_numpy(value.dtype), value=value,
                 source=source)
        n.provenance = provenance or (n.id,)
        self.nodes[n.id] = n
        return n

    def add(self, op: str, inputs, attrs: dict | None = None, source: str = "", provenance: tuple = (),
            shape=None, dtype=None) -> Node:
        """Append an op node; shape and dtype come from the registry's inference unless given."""
        inputs = tuple(int(i) for i in inputs)
        attrs = dict(attrs or {})
        for i in inputs:
            if i not in self.nodes:
                raise GraphError(f"{op}: input %{i} is not a node of graph {self.name!r}")
        if shape is None:
            spec = get_op(op).infer(*[self.nodes[i] for i in inputs], **attrs)
            shape, dtype = spec.shape, spec.dtype
        n = Node(self._new_id(), op, inputs, attrs, tuple(shape), _dt.as_dtype(dtype), source=source)
        n.provenance = provenance or (n.id,)
        self.nodes[n.id] = n
        return n

    def set_outputs(self, ids) -> None:
        self.outputs = [int(i) for i in ids]

    # ---- queries -----------------------------------------------------------------------------------
    def __getitem__(self, i: int) -> Node:
        return self.nodes[i]

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self):
        return iter(list(self.nodes.values()))

    @property
    def op_nodes(self) -> list[Node]:
        return [n for n in self.nodes.values() if not n.is_leaf]

    def users(self) -> dict[int, list[int]]:
        """For each node id, the ids of the nodes that read it (in order, repeated if read twice).

        O(n + edges), rebuilt on every call: a pass reads ``rw.users()``, kept up to date by the rewriter."""
        COUNTERS["users"] += 1
        u = {i: [] for i in self.nodes}
        for n in self.nodes.values():
            for i in n.inputs:
                u[i].append(n.id)
        return u

    def ancestors(self, roots) -> set[int]:
        """``roots`` and every node they read, directly or not (reachable backwards along inputs)."""
        seen, stack = set(), list(roots)
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            stack.extend(self.nodes[i].inputs)
        return seen

    def live_ids(self) -> set[int]:
        """Nodes reachable backwards from the outputs (everything else is dead code)."""
        return self.ancestors(self.outputs)

    def names(self) -> set[str]:
        """The names taken by inputs and parameters (a new parameter needs a fresh one)."""
        return {n.name for n in self.nodes.values() if n.op in ("param", "input")}

    def params(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.op == "param"]

    def count_ops(self) -> dict[str, int]:
        c: dict[str, int] = {}
        for n in self.op_nodes:
            c[n.op] = c.get(n.op, 0) + 1
        return dict(sorted(c.items()))

    # ---- editing helpers (passes use the compiler's rewriter, which calls these) --------------------
    def remove(self, i: int) -> None:
        del self.nodes[i]

    def replace_uses(self, old: int, new: int) -> int:
        """Point every reader of ``old`` (and the outputs) at ``new``; returns how many uses changed."""
        k = 0
        for n in self.nodes.values():
            if old in n.inputs:
                n.inputs = tuple(new if i == old else i for i in n.inputs)
                k += 1
        if old in self.outputs:
            self.outputs = [new if i == old else i for i in self.outputs]
            k += 1
        return k

    def check_edges(self) -> None:
        """Raise GraphError if a node (or an output) reads a node that does not exist, or the edges form a
        cycle — the two defects that would otherwise surface as a KeyError or an endless walk."""
        for n in self.nodes.values():
            for i in n.inputs:
                if i not in self.nodes:
                    raise GraphError(f"node %{n.id} ({n.op}) reads %{i}, which does not exist in graph "
                                     f"{self.name!r} (a dangling edge: a pass removed %{i} but left this reader)")
        for i in self.outputs:
            if i not in self.nodes:
                raise GraphError(f"graph output %{i} does not exist in graph {self.name!r}")
        state, path = {}, []
        for root in self.nodes:
            if root in state:
                continue
            stack = [(root, iter(self.nodes[root].inputs))]
            state[root], path = 1, [root]
            while stack:
                i, it = stack[-1]
                j = next(it, None)
                if j is None:
                    stack.pop()
                    path.pop()
                    state[i] = 2
                elif state.get(j) == 1:
                    loop = path[path.index(j):] + [j]
                    raise GraphError(f"cycle: {' → '.join(f'%{k}' for k in loop)} (each node reads "
                                     f"the next; a graph must be acyclic)")
                elif j not in state:
                    state[j] = 1
                    path.append(j)
                    stack.append((j, iter(self.nodes[j].inputs)))

    def toposort(self) -> None:
        """Reorder ``nodes`` so every node follows its inputs (stable: keeps the existing order when valid)."""
        self.check_edges()
        order, state = [], {}
        for root in list(self.nodes):
            if root in state:
                continue
            stack = [(root, 0)]
            while stack:
                i, k = stack.pop()
                if k == 0:
                    if state.get(i) == 2:
                        continue
                    if state.get(i) == 1:
                        raise GraphError(f"cycle through %{i}")
                    state[i] = 1
                ins = self.nodes[i].inputs
                if k < len(ins):
                    stack.append((i, k + 1))
                    j = ins[k]
                    if state.get(j) != 2:
                        if state.get(j) == 1:
                            raise GraphError(f"cycle: %{i} reads %{j}, which depends on %{i}")
                        stack.append((j, 0))
                else:
                    state[i] = 2
                    order.append(i)
        self.nodes = {i: self.nodes[i] for i in order}

    def copy(self) -> "Graph":
        """A deep copy: every node copied (O(n) node copies)."""
        COUNTERS["copy"] += 1
        g = Graph(self.name)
        g.nodes = {i: replace(n, attrs=dict(n.attrs)) for i, n in self.nodes.items()}
        g.inputs, g.outputs, g._next = list(self.inputs), list(self.outputs), self._next
        return g

    def snapshot(self) -> "Graph":
        """A structural copy that *shares* the node objects (one dict copy: O(n) pointer copies).

        The pass manager keeps one snapshot per pass for the pass stepper's "before" picture; its rewriter
        swaps a frozen clone into the snapshots before it edits a shared node, so a snapshot never changes."""
        COUNTERS["snapshot"] += 1
        g = Graph(self.name)
        g.nodes = dict(self.nodes)
        g.inputs, g.outputs, g._next = list(self.inputs), list(self.outputs), self._next
        for k in ("returns", "updates", "warnings"):
            if k in self.__dict__:
                setattr(g, k, self.__dict__[k])
        return g

    # ---- text -----------------------------------------------------------------------------------------
    def format_node(self, n: Node) -> str:
        if n.op == "input":
            return f"%{n.id} = input {n.name!r} : {n.type_str()}".replace("'", '"')
        if n.op == "param":
            return f"%{n.id} = param {n.name!r} : {n.type_str()}".replace("'", '"')
        if n.op == "const":
            if n.numel <= 4:
                vals = np.array2string(np.asarray(n.value, dtype=np.float64) if n.dtype.is_floating else n.value,
                                       precision=4, separator=",").replace("\n", "")
                return f"%{n.id} = const {vals} : {n.type_str()}"
            return f"%{n.id} = const : {n.type_str()}"
        args = ", ".join(f"%{i}" for i in n.inputs)
        attrs = ", ".join(f"{k}={format_attr(v)}" for k, v in n.attrs.items() if not k.startswith("_"))
        return f"%{n.id} = {n.op}({args}){' {' + attrs + '}' if attrs else ''} : {n.type_str()}"

    def __str__(self) -> str:
        lines = [f"graph {self.name}({', '.join('%' + str(i) for i in self.inputs)}) {{"]
        lines += ["  " + self.format_node(n) for n in self.nodes.values()]
        lines.append(f"  return {', '.join('%' + str(i) for i in self.outputs)}")
        lines.append("}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Graph {self.name!r}: {len(self.inputs)} inputs, {len(self.op_nodes)} ops, {len(self.outputs)} outputs>"

    def summary(self) -> str:
        ops = ", ".join(f"{k}×{v}" for k, v in self.count_ops().items())
        return (f"graph {self.name}: {len(self.inputs)} inputs, {len(self.params())} params, "
                f"{len(self.op_nodes)} ops ({ops}), {len(self.outputs)} outputs")

    # ---- checks ---------------------------------------------------------------------------------------
    def verify(self, infer=None) -> None:
        """Raise GraphError on use-before-def, unknown ops, missing nodes, or a shape/dtype that the
        registry's inference disagrees with. Run after every compiler pass.

        ``infer``: the ids whose types are re-inferred (None: every op node). The pass manager passes the
        nodes a pass added or re-wired, so checking stays O(n) cheap structure + O(changed) inference."""
        self.check_edges()
        seen = set()
        for n in self.nodes.values():
            for i in n.inputs:
                if i not in self.nodes:
                    raise GraphError(f"%{n.id} = {n.op}: input %{i} does not exist (dangling reference)")
                if i not in seen:
                    raise GraphError(f"%{n.id} = {n.op}: uses %{i} before it is defined (nodes out of order)")
            if n.is_leaf:
                if n.inputs:
                    raise GraphError(f"%{n.id} = {n.op} must have no inputs")
                if n.op != "input" and n.value is None:
                    raise GraphError(f"%{n.id} = {n.op} has no value")
            else:
                if n.op not in OPS:
                    raise GraphError(f"%{n.id}: unknown op {n.op!r}")
                if infer is not None and n.id not in infer:
                    seen.add(n.id)
                    continue
                spec = get_op(n.op).infer(*[self.nodes[i] for i in n.inputs], **n.attrs)
                if tuple(spec.shape) != tuple(n.shape) or spec.dtype is not n.dtype:
                    raise GraphError(f"%{n.id} = {n.op}: recorded type {n.type_str()} but inference gives "
                                     f"{spec.dtype.short}[{','.join(map(str, spec.shape))}]")
            seen.add(n.id)
        for i in self.inputs:
            if i not in self.nodes or self.nodes[i].op != "input":
                raise GraphError(f"graph input %{i} is not an input node")
        for i in self.outputs:
            if i not in self.nodes:
                raise GraphError(f"graph output %{i} does not exist")


def interpret(graph: Graph, *inputs, params: dict | None = None) -> list[np.ndarray]:
    """Run ``graph`` node by node on numpy arrays through the registry's references; returns the outputs.

    ``params`` optionally overrides parameter values by name (e.g. after an optimizer step). (The walk is
    :class:`aisys.framework.interpreter.Interpreter`, shared with every other runner of a graph.)
    """
    graph.check_edges()                  # a dangling edge or a cycle is a GraphError naming it, not a KeyError
    return Interpreter(graph).run(*inputs, params=params)
