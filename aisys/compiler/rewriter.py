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

import heapq
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
    here = _caller_location.__code__.co_filename          # this module, as its code objects name it
    while f is not None and f.f_code.co_filename == here:
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


class UseDef:
    """Use-def chains of a graph, kept up to date edit by edit (no full rebuild after a rewrite).

    ``users[i]``: the ids of the nodes that read node ``i`` (repeated if read twice), as ``Graph.users()``
    builds them; ``rank[i]``: a number that grows along every edge (an input's rank is below its
    reader's), so "can ``new`` reach ``old``?" — the cycle check of a replace — is answered by a search
    that never walks below ``old``'s rank. Built once per pipeline run (O(n + edges)); each edit costs
    O(degree) (re-wiring) or O(the nodes between ``old`` and ``new``) (the cycle check).
    """

    def __init__(self, graph: Graph):
        self.users: dict[int, list[int]] = graph.users()
        self.rank: dict[int, int] = {i: k for k, i in enumerate(graph.nodes)}
        self.edges = sum(len(n.inputs) for n in graph.nodes.values())

    def added(self, n: Node) -> None:
        self.users[n.id] = []
        for i in n.inputs:
            self.users[i].append(n.id)
        self.rank[n.id] = 1 + max((self.rank[i] for i in n.inputs), default=-1)
        self.edges += len(n.inputs)

    def removed(self, n: Node) -> None:
        for i in n.inputs:
            us = self.users.get(i)
            if us is not None:
                us.remove(n.id)
        self.users.pop(n.id, None)
        self.rank.pop(n.id, None)
        self.edges -= len(n.inputs)

    def reaches(self, graph: Graph, start: int, target: int) -> bool:
        """Whether ``target`` is ``start`` or an ancestor of it (pruned by rank)."""
        rank, floor = self.rank, self.rank[target]
        if start == target:
            return True
        if rank[start] <= floor:
            return False
        seen, stack = {start}, [start]
        while stack:
            for j in graph.nodes[stack.pop()].inputs:
                if j == target:
                    return True
                if j not in seen and rank[j] > floor:
                    seen.add(j)
                    stack.append(j)
        return False

    def raise_ranks(self, graph: Graph, ids) -> None:
        """Restore "rank grows along every edge" after ``ids`` were re-wired to read other nodes."""
        rank, stack = self.rank, list(ids)
        while stack:
            i = stack.pop()
            need = 1 + max((rank[j] for j in graph.nodes[i].inputs), default=-1)
            if rank[i] < need:
                rank[i] = need
                stack.extend(self.users[i])

    def consistent(self, graph: Graph) -> bool:
        """A cheap O(n) sanity check that every edit went through the rewriter (same node and edge counts)."""
        return len(self.users) == len(graph.nodes) and self.edges == sum(len(n.inputs) for n in graph.nodes.values())


class Worklist:
    """The nodes a pass still has to look at, popped in topological order (lowest rank first).

    Seeded with every node (``rw.dirty`` is None: a pass's first run) or with the nodes changed since the
    pass last ran and their readers; ``wanted(i)`` filters what is worth visiting. Each push and pop is
    O(log n); a node is queued at most once at a time, and removed nodes are skipped.
    """

    def __init__(self, rw: "Rewriter", wanted=lambda i: True):
        self.rw, self.wanted = rw, wanted
        g = rw.graph
        if rw.dirty is None:
            seeds = list(g.nodes)
        else:
            users = rw.users()
            seeds = {i for i in rw.dirty if i in g.nodes}
            seeds |= {u for i in list(seeds) for u in users[i]}
        self.heap = [(rw.rank(i), i) for i in seeds if wanted(i)]
        heapq.heapify(self.heap)
        self.queued = {i for _, i in self.heap}

    def push(self, *ids) -> None:
        g = self.rw.graph
        for i in ids:
            if i in g.nodes and i not in self.queued and self.wanted(i):
                self.queued.add(i)
                heapq.heappush(self.heap, (self.rw.rank(i), i))

    def __iter__(self):
        g = self.rw.graph
        while self.heap:
            _, i = heapq.heappop(self.heap)
            self.queued.discard(i)
            if i in g.nodes:
                yield i


class Rewriter:
    """Records every change a pass makes to ``graph`` (the pass manager's working graph).

    Typical use inside a pass::

        new = rw.add("mul", (x, x), rule="pow2_to_mul")     # stage a node
        rw.replace(node.id, new.id, rule="pow2_to_mul")      # re-wire users, drop the old node
        rw.reject("fold %5", "%5 has 1000000 elements (cap 65536)", rule="fold_constants")

    ``rw.users()`` is the live use-def map (read it, never edit it): the rewriter updates it on every
    edit, so a pass may read it after each rewrite at no cost. ``rw.dirty`` is the worklist hint of the
    pass driver: the ids added or re-wired since this pass last ran in a fixpoint group (None: look at
    every node).
    """

    def __init__(self, graph: Graph, pass_name: str = "pass", *, usedef: UseDef | None = None,
                 before_edit=None, dirty: set | None = None):
        self.graph = graph
        self.pass_name = pass_name
        self.rewrites: list[Rewrite] = []
        self.decisions: list[Decision] = []
        self.dirty = dirty
        self._pending: list[int] = []          # nodes added since the last recorded rewrite
        self._ud = usedef if usedef is not None else UseDef(graph)
        self._before_edit = before_edit        # called with a node before its inputs change in place
        self._names: set | None = None
        self._outputs = set(graph.outputs)
        self._inputs = set(graph.inputs)
        self._output_positions = self._positions(graph.outputs)

    # ---- reading ---------------------------------------------------------------------------------
    def node(self, i: int) -> Node:
        return self.graph.nodes[i]

    def exists(self, i: int) -> bool:
        return i in self.graph.nodes

    def users(self) -> dict[int, list[int]]:
        """node id -> ids of its readers (live: kept up to date by every rewrite; do not edit)."""
        return self._ud.users

    def rank(self, i: int) -> int:
        """A topological rank of node ``i``: inputs rank below their readers (for ordering worklists)."""
        return self._ud.rank[i]

    def fresh_name(self, base: str) -> str:
        """``base``, or ``base2``, ``base3``, … — the first that no input or parameter of the graph has."""
        taken = self._taken_names()
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
        self._staged(n)
        return n

    def add_const(self, value, *, provenance=(), source: str = "") -> Node:
        n = self.graph.add_const(np.asarray(value), source=source, provenance=tuple(provenance))
        self._staged(n)
        return n

    def add_param(self, name: str, value, *, provenance=(), source: str = "") -> Node:
        """A new parameter (e.g. folded weights). Its name must be new to the graph."""
        if name in self._taken_names():
            raise ValueError(f"{self.pass_name}: a parameter or input named {name!r} already exists; "
                             f"pick a new name for the rewritten parameter (e.g. {name + '_1'!r})")
        n = self.graph.add_param(name, np.asarray(value), source=source)
        if provenance:
            n.provenance = tuple(provenance)
        self._names.add(name)
        self._staged(n)
        return n

    # ---- rewiring --------------------------------------------------------------------------------
    def replace(self, old: int, new: int, *, rule=None, note: str = "") -> Rewrite:
        """Make every user of ``old`` (and the graph outputs) read ``new``, then remove ``old`` and any
        nodes that only fed it. ``new`` must have the same shape and dtype: a rewrite that changes a
        value's type is a bug in the rule, caught here rather than three passes later.

        Cost: O(readers of ``old`` + removed nodes), plus the rank-pruned cycle check."""
        g = self.graph
        if old not in g.nodes:
            raise GraphError(f"{self.pass_name}: cannot replace %{old}: it is no longer in the graph "
                             f"(already replaced or removed earlier in this pass)")
        if new not in g.nodes:
            raise GraphError(f"{self.pass_name} [{self._rule_name(rule)}]: cannot replace %{old} by %{new}: "
                             f"%{new} is not in the graph")
        a, b = g.nodes[old], g.nodes[new]
        if tuple(a.shape) != tuple(b.shape) or a.dtype is not b.dtype:
            raise GraphError(f"{self.pass_name} [{self._rule_name(rule)}]: replacing %{old} ({a.op}: {a.type_str()}) "
                             f"by %{new} ({b.op}: {b.type_str()}) changes the value's type; a rewrite must "
                             f"keep shape and dtype")
        if self._ud.reaches(g, new, old):
            raise GraphError(f"{self.pass_name} [{self._rule_name(rule)}]: %{new} depends on %{old}; "
                             f"replacing would create a cycle")
        changed = tuple(sorted(set(self._ud.users[old])))
        self._rewire(old, new)
        removed = self._erase_dead_from([old])
        return self._record(rule, removed, changed, note, depth=3)

    def remove(self, ids, *, rule=None, note: str = "") -> Rewrite:
        """Remove nodes nobody reads (dead code). Refuses graph inputs and nodes still in use."""
        ids = [int(i) for i in ids]
        g = self.graph
        users = self._ud.users
        doomed = set(ids)
        for i in ids:
            if i not in g.nodes:
                raise GraphError(f"{self.pass_name}: cannot remove %{i}: not in the graph")
            if i in self._inputs:
                raise GraphError(f"{self.pass_name}: cannot remove graph input %{i} ({g.nodes[i].name!r}); "
                                 f"inputs define the function's signature")
            if i in self._outputs:
                raise GraphError(f"{self.pass_name}: cannot remove %{i}: it is a graph output")
            outside = [u for u in users[i] if u not in doomed]
            if outside:
                raise GraphError(f"{self.pass_name}: cannot remove %{i} = {g.nodes[i].op}: still read by "
                                 + ", ".join(f"%{u}" for u in outside))
        for i in ids:
            self._delete(i)
        return self._record(rule, tuple(ids), (), note, depth=3)

    def set_outputs(self, outputs, *, rule=None, note: str = "") -> None:
        """Point the graph outputs elsewhere (e.g. a layout pass adding a final permute)."""
        self.graph.set_outputs(outputs)
        self._outputs = set(self.graph.outputs)
        self._output_positions = self._positions(self.graph.outputs)
        self._record(rule, (), (), note or "outputs re-pointed", depth=3)

    def commit(self, *, rule=None, note: str = "") -> Rewrite | None:
        """Record the nodes added since the last rewrite as one rewrite (used when a pass only adds)."""
        if not self._pending:
            return None
        return self._record(rule, (), (), note, depth=3)

    def discard_pending(self) -> None:
        """Drop nodes staged with ``add`` that the pass decided not to use (so nothing is half-changed)."""
        for i in reversed(self._pending):
            if i in self.graph.nodes and not self._ud.users[i]:
                self._delete(i)
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

    @staticmethod
    def _positions(ids) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for k, i in enumerate(ids):
            out.setdefault(i, []).append(k)
        return out

    def _taken_names(self) -> set:
        if self._names is None:
            self._names = self.graph.names()
        return self._names

    def _staged(self, n: Node) -> None:
        self._ud.added(n)
        self._pending.append(n.id)

    def _delete(self, i: int) -> None:
        n = self.graph.nodes[i]
        self._ud.removed(n)
        self.graph.remove(i)

    def _rewire(self, old: int, new: int) -> None:
        """Every reader of ``old`` reads ``new`` instead (the outputs too): O(readers)."""
        g, users = self.graph, self._ud.users
        readers = list(dict.fromkeys(users[old]))
        for u in readers:
            n = g.nodes[u]
            if self._before_edit is not None:
                self._before_edit(n)
            n.inputs = tuple(new if i == old else i for i in n.inputs)
        users[new].extend(users[old])
        users[old] = []
        if old in self._outputs:
            positions = self._output_positions.pop(old)
            for k in positions:
                g.outputs[k] = new
            self._output_positions.setdefault(new, []).extend(positions)
            self._outputs.discard(old)
            self._outputs.add(new)
        self._ud.raise_ranks(g, readers)

    def _record(self, rule, removed, changed, note, depth) -> Rewrite:
        added = tuple(i for i in self._pending if i in self.graph.nodes)
        self._pending.clear()
        changed = tuple(i for i in changed if i in self.graph.nodes and i not in added)
        r = Rewrite(self._rule_name(rule), tuple(removed), added, changed, self._rule_loc(rule, depth + 1), note)
        self.rewrites.append(r)
        return r

    def _erase_dead_from(self, roots) -> tuple[int, ...]:
        """Remove ``roots`` and, transitively, producers left without readers (never graph inputs,
        outputs, or nodes staged in this rewrite). Returns the removed ids in removal order.
        O(removed nodes' edges)."""
        g, users = self.graph, self._ud.users
        removed: list[int] = []
        stack = list(roots)
        pending = set(self._pending)
        while stack:
            i = stack.pop()
            if i not in g.nodes or i in self._inputs or i in self._outputs or i in pending or users.get(i):
                continue
            n = g.nodes[i]
            self._delete(i)
            removed.append(i)
            for j in n.inputs:
                if j in users and not users[j]:
                    stack.append(j)
        return tuple(removed)
