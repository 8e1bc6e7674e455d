"""The one door through which a pass changes a graph: :class:`Rewriter`.

A pass never edits ``graph.nodes`` directly. It asks the rewriter to ``add`` nodes, ``replace`` a
node by another, ``remove`` dead ones, and to record what it *decided* — including the candidates
it turned down and why (``reject``). Because every change goes through here, the pass log can say
exactly which rule removed which nodes and added which ones, and where that rule lives in the
source (``file:line``), which is what the PassStepper widget shows.

Ids are never reused, so a node keeps its id (and its place in a drawing) from pass to pass; new
nodes get fresh ids and carry ``provenance``, the ids of the original nodes they came from.
"""
from __future__ import annotations

import inspect
import os
import sys
from dataclasses import dataclass

import numpy as np

from ..framework.graph import Graph, GraphError, Node

_PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))    # .../aisys


def _short_path(filename: str) -> str:
    """'aisys/compiler/passes/cse.py' for library files; the plain path (or '<cell>') otherwise."""
    if filename.startswith(_PKG_ROOT):
        return "aisys" + filename[len(_PKG_ROOT):]
    if "ipykernel_" in filename:
        return "<cell>"
    return filename


def rule_location(rule) -> str:
    """``file:line`` where a rule (a function, or anything with ``__code__``) is defined."""
    fn = getattr(rule, "func", rule)              # functools.partial
    code = getattr(fn, "__code__", None)
    if code is None:
        try:
            return f"{_short_path(inspect.getsourcefile(fn))}:{inspect.getsourcelines(fn)[1]}"
        except (TypeError, OSError):
            return "<unknown>"
    return f"{_short_path(code.co_filename)}:{code.co_firstlineno}"


def _caller_location(depth: int = 2) -> str:
    """``file:line`` of the pass code that called a rewriter method."""
    f = sys._getframe(depth)
    here = os.path.abspath(__file__)
    while f is not None and os.path.abspath(f.f_code.co_filename) == here:
        f = f.f_back
    return "<unknown>" if f is None else f"{_short_path(f.f_code.co_filename)}:{f.f_lineno}"


@dataclass(frozen=True)
class Rewrite:
    """One applied rewrite: which rule fired, what it removed, added and re-wired."""
    rule: str
    removed: tuple[int, ...]
    added: tuple[int, ...]
    changed: tuple[int, ...] = ()     # nodes whose inputs were redirected (their op is unchanged)
    location: str = ""                # file:line of the rule
    note: str = ""                    # e.g. "%7 = add(%3, %5) → %3"

    def __str__(self) -> str:
        return self.describe()

    def describe(self, location: bool = True) -> str:
        """'[rule] note removed %a, %b added %c  (file:line)'; ``location=False`` drops the file:line."""
        parts = [f"[{self.rule}]"]
        if self.note:
            parts.append(self.note)
        if self.removed:
            parts.append("removed " + ", ".join(f"%{i}" for i in self.removed))
        if self.added:
            parts.append("added " + ", ".join(f"%{i}" for i in self.added))
        return " ".join(parts) + (f"  ({self.location})" if self.location and location else "")


@dataclass(frozen=True)
class Decision:
    """A candidate the pass looked at, with its verdict: 'accepted' or 'rejected' and the reason."""
    rule: str
    candidate: str
    verdict: str
    reason: str
    nodes: tuple[int, ...] = ()
    location: str = ""

    def __str__(self) -> str:
        if self.verdict == "rejected":
            return f"[{self.rule}] cannot {self.candidate}: {self.reason}"
        return f"[{self.rule}] {self.candidate}: {self.reason}"


class Rewriter:
    """Records every change a pass makes to ``graph`` (a private copy owned by the pass manager).

    Typical use inside a pass::

        new = rw.add("mul", (x, x), rule="pow2_to_mul")     # stage a node
        rw.replace(node.id, new.id, rule="pow2_to_mul")      # re-wire users, drop the old node
        rw.reject("fold %5", "%5 has 1000000 elements (cap 65536)", rule="fold_constants")
    """

    def __init__(self, graph: Graph, pass_name: str = "pass"):
        self.graph = graph
        self.pass_name = pass_name
        self.rewrites: list[Rewrite] = []
        self.decisions: list[Decision] = []
        self._pending: list[int] = []          # nodes added since the last recorded rewrite

    # ---- reading ---------------------------------------------------------------------------------
    def node(self, i: int) -> Node:
        return self.graph.nodes[i]

    def exists(self, i: int) -> bool:
        return i in self.graph.nodes

    def users(self) -> dict[int, list[int]]:
        return self.graph.users()

    def fresh_name(self, base: str) -> str:
        """``base``, or ``base2``, ``base3``, … — the first that no input or parameter of the graph has."""
        taken = self.graph.names()
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}{k}"
        return name

    def value_of(self, i: int) -> np.ndarray | None:
        """The array of a const node (None for anything else)."""
        n = self.graph.nodes[i]
        return n.value if n.op == "const" else None

    # ---- adding ----------------------------------------------------------------------------------
    def add(self, op: str, inputs, attrs: dict | None = None, *, provenance=(), source: str = "",
            rule=None) -> Node:
        """Add an op node (shape and dtype inferred by the registry). It is listed as *added* by the
        next ``replace`` (or ``commit``). ``provenance`` defaults to the union of the inputs'."""
        inputs = tuple(int(i) for i in inputs)
        if not provenance:
            provenance = tuple(sorted({p for i in inputs for p in self.graph.nodes[i].provenance}))
        n = self.graph.add(op, inputs, attrs, source=source, provenance=tuple(provenance))
        self._pending.append(n.id)
        return n

    def add_const(self, value, *, provenance=(), source: str = "") -> Node:
        n = self.graph.add_const(np.asarray(value), source=source, provenance=tuple(provenance))
        self._pending.append(n.id)
        return n

    def add_param(self, name: str, value, *, provenance=(), source: str = "") -> Node:
        """A new parameter (e.g. folded weights). Its name must be new to the graph."""
        if name in self.graph.names():
            raise ValueError(f"{self.pass_name}: a parameter or input named {name!r} already exists; "
                             f"pick a new name for the rewritten parameter (e.g. {name + '_1'!r})")
        n = self.graph.add_param(name, np.asarray(value), source=source)
        if provenance:
            n.provenance = tuple(provenance)
        self._pending.append(n.id)
        return n

    # ---- rewiring --------------------------------------------------------------------------------
    def replace(self, old: int, new: int, *, rule=None, note: str = "") -> Rewrite:
        """Make every user of ``old`` (and the graph outputs) read ``new``, then remove ``old`` and any
        nodes that only fed it. ``new`` must have the same shape and dtype: a rewrite that changes a
        value's type is a bug in the rule, caught here rather than three passes later."""
        g = self.graph
        if old not in g.nodes:
            raise GraphError(f"{self.pass_name}: cannot replace %{old}: it is no longer in the graph "
                             f"(already replaced or removed earlier in this pass)")
        if new not in g.nodes:
            raise GraphError(f"{self.pass_name}: replacement %{new} for %{old} is not in the graph")
        if old == new:
            raise GraphError(f"{self.pass_name}: cannot replace %{old} by itself")
        a, b = g.nodes[old], g.nodes[new]
        if tuple(a.shape) != tuple(b.shape) or a.dtype is not b.dtype:
            raise GraphError(f"{self.pass_name} [{self._rule_name(rule)}]: replacing %{old} ({a.op}: {a.type_str()}) "
                             f"by %{new} ({b.op}: {b.type_str()}) changes the value's type; a rewrite must "
                             f"keep shape and dtype")
        if old in self.graph.ancestors([new]):
            raise GraphError(f"{self.pass_name} [{self._rule_name(rule)}]: %{new} depends on %{old}; "
                             f"replacing would create a cycle")
        changed = tuple(sorted({n.id for n in g.nodes.values() if old in n.inputs and n.id != new}))
        g.replace_uses(old, new)
        removed = self._erase_dead_from([old])
        return self._record(rule, removed, changed, note, depth=3)

    def remove(self, ids, *, rule=None, note: str = "") -> Rewrite:
        """Remove nodes nobody reads (dead code). Refuses graph inputs and nodes still in use."""
        ids = [int(i) for i in ids]
        g = self.graph
        live_users = g.users()
        doomed = set(ids)
        for i in ids:
            if i not in g.nodes:
                raise GraphError(f"{self.pass_name}: cannot remove %{i}: not in the graph")
            if i in g.inputs:
                raise GraphError(f"{self.pass_name}: cannot remove graph input %{i} ({g.nodes[i].name!r}); "
                                 f"inputs define the function's signature")
            if i in g.outputs:
                raise GraphError(f"{self.pass_name}: cannot remove %{i}: it is a graph output")
            outside = [u for u in live_users[i] if u not in doomed]
            if outside:
                raise GraphError(f"{self.pass_name}: cannot remove %{i} = {g.nodes[i].op}: still read by "
                                 + ", ".join(f"%{u}" for u in outside))
        for i in ids:
            g.remove(i)
        return self._record(rule, tuple(ids), (), note, depth=3)

    def set_outputs(self, outputs, *, rule=None, note: str = "") -> None:
        """Point the graph outputs elsewhere (e.g. a layout pass adding a final permute)."""
        self.graph.set_outputs(outputs)
        self._record(rule, (), (), note or "outputs re-pointed", depth=3)

    def commit(self, *, rule=None, note: str = "") -> Rewrite | None:
        """Record the nodes added since the last rewrite as one rewrite (used when a pass only adds)."""
        if not self._pending:
            return None
        return self._record(rule, (), (), note, depth=3)

    def discard_pending(self) -> None:
        """Drop nodes staged with ``add`` that the pass decided not to use (so nothing is half-changed)."""
        for i in reversed(self._pending):
            if i in self.graph.nodes and not any(i in n.inputs for n in self.graph.nodes.values()):
                self.graph.remove(i)
        self._pending.clear()

    # ---- decisions -------------------------------------------------------------------------------
    def reject(self, candidate: str, reason: str, *, rule=None, nodes=()) -> Decision:
        """Log a candidate the pass turned down: 'cannot <candidate>: <reason>'."""
        d = Decision(self._rule_name(rule), candidate, "rejected", reason, tuple(nodes),
                     self._rule_loc(rule, depth=3))
        self.decisions.append(d)
        return d

    def accept(self, candidate: str, reason: str = "", *, rule=None, nodes=()) -> Decision:
        """Log a candidate the pass took (the rewrite itself is recorded by replace/remove)."""
        d = Decision(self._rule_name(rule), candidate, "accepted", reason, tuple(nodes),
                     self._rule_loc(rule, depth=3))
        self.decisions.append(d)
        return d

    # ---- internals -------------------------------------------------------------------------------
    def _rule_name(self, rule) -> str:
        if rule is None:
            return self.pass_name
        if isinstance(rule, str):
            return rule
        return getattr(rule, "rule_name", None) or getattr(getattr(rule, "func", rule), "__name__", str(rule))

    def _rule_loc(self, rule, depth: int) -> str:
        if rule is not None and not isinstance(rule, str):
            return rule_location(rule)
        return _caller_location(depth)

    def _record(self, rule, removed, changed, note, depth) -> Rewrite:
        added = tuple(i for i in self._pending if i in self.graph.nodes)
        self._pending.clear()
        changed = tuple(i for i in changed if i in self.graph.nodes and i not in added)
        r = Rewrite(self._rule_name(rule), tuple(removed), added, changed, self._rule_loc(rule, depth + 1), note)
        self.rewrites.append(r)
        return r

    def _erase_dead_from(self, roots) -> tuple[int, ...]:
        """Remove ``roots`` and, transitively, producers left without readers (never graph inputs,
        outputs, or nodes staged in this rewrite). Returns the removed ids in removal order."""
        g = self.graph
        users = g.users()
        removed: list[int] = []
        stack = list(roots)
        keep = set(g.inputs) | set(g.outputs) | set(self._pending)
        while stack:
            i = stack.pop()
            if i not in g.nodes or i in keep or users.get(i):
                continue
            n = g.nodes[i]
            g.remove(i)
            removed.append(i)
            for j in n.inputs:
                if j in users:
                    users[j] = [u for u in users[j] if u != i]
                    if not users[j]:
                        stack.append(j)
        return tuple(removed)
