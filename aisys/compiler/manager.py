"""The pass manager: run passes in order (or to a fixpoint), verify after each, log everything.

A *pass* is a function ``pass_fn(rw: Rewriter, **options) -> None`` that changes ``rw.graph`` only
through the rewriter. The manager gives every pass a private copy of the graph, so a pass that
fails leaves the caller's graph untouched; afterwards it restores a topological order, runs
``graph.verify()`` and records a :class:`PassResult` (DESIGN.md, "PassResult / PassLog").

At scale (thousands of ops) every step is linear or better in the graph size:
  * one working graph for the whole run, with use-def chains built once and kept up to date by the
    rewriter (:class:`~aisys.compiler.rewriter.UseDef`);
  * the "before"/"after" graphs of each pass are *snapshots* (``Graph.snapshot``: a dict copy sharing
    the nodes); before the rewriter edits a node in place it swaps a frozen clone into the snapshots
    that hold it, so every snapshot — and the caller's graph — stays exactly as it was;
  * after a pass that changed something: a topological re-sort (O(n)), the structural check of every
    node and the registry's type inference of only the nodes the pass added or re-wired;
  * metrics are computed once per snapshot, when something reads ``PassResult.metrics``;
  * a :class:`Fixpoint` group is a worklist driver: a pass runs again only when the graph changed since
    its last run (otherwise its result is recorded as "skipped", no change), and it is told which
    nodes changed (``rw.dirty``) so it can revisit only those. A pass in a group must therefore leave
    nothing for itself to do (run to its own fixpoint, as every pass here does).

    pm = PassManager([fold_constants, dce, Fixpoint([simplify, cse, dce])])
    log = pm.run(graph)          # -> PassLog
    print(log.summary())
    optimized = log.graph

Hooks run around every pass — ``pm.add_hook("before", fn(pass_name, graph))`` and
``pm.add_hook("after", fn(result))`` — for instrumentation (timing, printing, numeric checks).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable

from ..framework.graph import Graph, GraphError
from .codegen import kernel_source
from .metrics import Metrics, graph_metrics
from .passes import resolve
from .pipeline import Fixpoint, Pass, pass_name
from .rewriter import Decision, Rewrite, Rewriter, UseDef, rule_location


class PassError(RuntimeError):
    """A pass raised, or left a graph the verifier rejects. Names the pass and its last rewrites."""


def snapshot_metrics(graph: Graph) -> Metrics:
    """``graph_metrics`` of a snapshot, computed on first request and kept with it (snapshots never change)."""
    m = graph.__dict__.get("_metrics")
    key = (graph._next, len(graph.nodes))
    if m is None or m[0] != key:
        m = (key, graph_metrics(graph))
        graph.__dict__["_metrics"] = m
    return m[1]


@dataclass
class PassResult:
    """What one pass did: the graph before/after (snapshots), its rewrites, decisions and metrics
    (computed when first read)."""
    name: str
    before: Graph
    graph: Graph                       # the new graph
    changed: bool
    rewrites: list[Rewrite]
    decisions: list[Decision]
    seconds: float = 0.0
    iteration: int = 0                 # which round of a Fixpoint group (0 outside one)
    location: str = ""                 # file:line of the pass function
    skipped: bool = False              # a Fixpoint round found nothing changed since this pass last ran

    @property
    def after(self) -> Graph:
        return self.graph

    @property
    def metrics_before(self) -> Metrics:
        return snapshot_metrics(self.before)

    @property
    def metrics(self) -> Metrics:
        return snapshot_metrics(self.graph)

    @property
    def rejected(self) -> list[Decision]:
        return [d for d in self.decisions if d.verdict == "rejected"]

    @property
    def accepted(self) -> list[Decision]:
        return [d for d in self.decisions if d.verdict == "accepted"]

    @property
    def kernels(self) -> dict[str, str]:
        """Generated source of every fused node this pass created, keyed by node ("%12"): what the pass
        log shows next to the rewrite (numba compiles it only when the graph runs)."""
        added = {i for w in self.rewrites for i in w.added}
        return {f"%{n.id}": kernel_source(n) for n in self.graph.nodes.values() if n.op == "fused" and n.id in added}

    @property
    def label(self) -> str:
        return f"{self.name}#{self.iteration}" if self.iteration else self.name

    def summary(self, locations: bool = True) -> str:
        """Header line, then one line per rewrite and per decision (``locations`` adds each rule's file:line)."""
        mb, ma = self.metrics_before, self.metrics
        lines = [f"pass {self.label}: {'skipped (nothing changed since its last run)' if self.skipped else 'changed' if self.changed else 'no change'}; "
                 f"{len(self.rewrites)} rewrites, {len(self.rejected)} rejected; "
                 f"nodes {mb.nodes}→{ma.nodes}, kernels {mb.kernels}→{ma.kernels}, "
                 f"bytes {mb.bytes_moved}→{ma.bytes_moved}"]
        lines += ["  " + r.describe(locations) for r in self.rewrites]
        lines += ["  " + str(d) for d in self.decisions]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<PassResult {self.label}: {'changed' if self.changed else 'no change'}, "
                f"{len(self.rewrites)} rewrites, nodes {self.metrics_before.nodes}→{self.metrics.nodes}>")


class PassLog(list):
    """The list of PassResults of one pipeline run, in order."""

    def __init__(self, results=(), initial: Graph | None = None):
        super().__init__(results)
        self.initial = initial

    @property
    def graph(self) -> Graph | None:
        """The final graph (the input graph when no pass ran)."""
        return self[-1].graph if self else self.initial

    @property
    def changed(self) -> bool:
        return any(r.changed for r in self)

    def summary(self) -> str:
        """A fixed-width table: one row per pass, then the totals."""
        head = f"{'pass':<20} {'changed':>7} {'rewrites':>8} {'rejected':>8} {'nodes':>6} {'kernels':>7} {'bytes moved':>12} {'FLOPs':>12}"
        lines = [head, "-" * len(head)]
        if self.initial is not None:
            m = snapshot_metrics(self.initial)
            lines.append(f"{'(input)':<20} {'':>7} {'':>8} {'':>8} {m.nodes:>6} {m.kernels:>7} {m.bytes_moved:>12} {m.flops:>12}")
        for r in self:
            m = r.metrics
            lines.append(f"{r.label:<20} {('yes' if r.changed else 'no'):>7} {len(r.rewrites):>8} {len(r.rejected):>8} "
                         f"{m.nodes:>6} {m.kernels:>7} {m.bytes_moved:>12} {m.flops:>12}")
        return "\n".join(lines)

    def rewrites(self) -> list[tuple[str, Rewrite]]:
        return [(r.label, w) for r in self for w in r.rewrites]

    def __repr__(self) -> str:
        return f"<PassLog: {len(self)} passes, {sum(len(r.rewrites) for r in self)} rewrites>"


class _Run:
    """The state of one pipeline run: the working graph, its use-def chains and the snapshots taken so far."""

    def __init__(self, graph: Graph, isolate: bool = False):
        self.snapshots: list[Graph] = [graph]        # the caller's graph first: it must never change
        self.work = graph.copy() if isolate else graph.snapshot()
        self.full_verify = isolate
        self.usedef = UseDef(self.work)
        self.changes: list[set] = []                 # ids added or re-wired by each changing pass, in order

    def before_edit(self, node) -> None:
        """Give every snapshot holding ``node`` a frozen clone before the rewriter edits it in place."""
        clone = None
        for snap in reversed(self.snapshots):
            if snap.nodes.get(node.id) is not node:
                break                                  # older snapshots hold it only if this one does
            clone = clone or replace(node)
            snap.nodes[node.id] = clone

    def run(self, fn, *, iteration: int = 0, verify: bool = True, dirty=None) -> PassResult:
        name = pass_name(fn)
        work, before = self.work, self.snapshots[-1]
        rw = Rewriter(work, name, usedef=self.usedef, before_edit=self.before_edit, dirty=dirty)
        t0 = time.perf_counter()
        try:
            ret = fn(rw)
        except GraphError as e:
            raise PassError(f"pass {name!r} made an invalid rewrite: {e}") from e
        if ret is not None and not isinstance(ret, (bool, Graph)):
            raise TypeError(f"pass {name!r} returned {type(ret).__name__}; a pass changes rw.graph through the "
                            f"rewriter and returns None")
        if isinstance(ret, Graph) and ret is not work:
            raise TypeError(f"pass {name!r} returned a new Graph; change rw.graph through rw.add / rw.replace / "
                            f"rw.remove instead, so the pass log can record each rewrite")
        if rw._pending:
            rw.commit(rule=name, note="nodes added")
        seconds = time.perf_counter() - t0
        changed = bool(rw.rewrites)
        touched = {i for w in rw.rewrites for i in (*w.added, *w.changed) if i in work.nodes}
        if changed or self.full_verify:
            try:
                work.toposort()
                if not self.usedef.consistent(work):
                    raise GraphError("the graph was edited outside the rewriter (its use-def chains no longer "
                                     "match); change rw.graph only through rw.add / rw.replace / rw.remove")
                if verify:
                    work.verify(infer=None if self.full_verify else touched)
            except GraphError as e:
                recent = "; ".join(str(r) for r in rw.rewrites[-3:]) or "no rewrites recorded"
                raise PassError(f"pass {name!r} left an invalid graph: {e} (last rewrites: {recent})") from e
        if changed:
            after = work.snapshot()
            self.snapshots.append(after)
            self.changes.append(touched)
        else:
            after = before
        loc = rule_location(fn.fn if isinstance(fn, Pass) else fn)
        return PassResult(name, before, after, changed, list(rw.rewrites), list(rw.decisions), seconds, iteration, loc)


def run_pass(fn, graph: Graph, *, iteration: int = 0, verify: bool = True) -> PassResult:
    """Run one pass on a copy of ``graph``; verify every node; return its PassResult (``graph`` is untouched).

    The one-pass door (a learner's pass in lab 04): it pays for a deep copy and a full check, so even a
    pass that edits nodes behind the rewriter's back cannot touch ``graph`` and is caught. A
    :class:`PassManager` pipeline works on snapshots and re-checks only what each pass changed."""
    if not callable(fn):
        raise TypeError(f"a pass must be callable as fn(rw), got {type(fn).__name__}: {fn!r}")
    graph.check_edges()                            # a broken input graph is the caller's error, not the pass's
    return _Run(graph, isolate=True).run(fn, iteration=iteration, verify=verify)


class PassManager:
    """An ordered pipeline of passes (functions, :class:`Pass` objects or :class:`Fixpoint` groups)."""

    def __init__(self, passes, *, verify: bool = True, fixpoint: bool = False, max_rounds: int = 8):
        if any(isinstance(p, (str, Fixpoint)) for p in passes):
            passes = resolve(passes)            # names like "cse"
        self.passes = list(passes)
        for p in self.passes:
            if not (callable(p) or isinstance(p, Fixpoint)):
                raise TypeError(f"PassManager: {p!r} is not a pass; give functions fn(rw), Pass(...) or Fixpoint([...])")
        self.verify = verify
        self.fixpoint = fixpoint
        self.max_rounds = max_rounds
        self.hooks: dict[str, list[Callable]] = {"before": [], "after": []}

    def add_hook(self, when: str, fn: Callable) -> None:
        """``when='before'``: fn(pass_name, graph); ``when='after'``: fn(result)."""
        if when not in self.hooks:
            raise ValueError(f"hook time must be 'before' or 'after', got {when!r}")
        self.hooks[when].append(fn)

    def run(self, graph: Graph) -> PassLog:
        """Run the pipeline on ``graph`` (left unchanged); O(passes × n) plus what the passes themselves cost."""
        graph.verify()
        log = PassLog(initial=graph)
        state = _Run(graph)
        if self.fixpoint:
            self._run_group(Fixpoint(self.passes, self.max_rounds, "pipeline"), state, log)
        else:
            for p in self.passes:
                self._run_item(p, state, log, 0)
        return log

    # ---- internals -------------------------------------------------------------------------------
    def _run_item(self, p, state: _Run, log: PassLog, iteration: int, last_seen: dict | None = None) -> None:
        if isinstance(p, Fixpoint):
            self._run_group(p, state, log)
            return
        for h in self.hooks["before"]:
            h(pass_name(p), state.snapshots[-1])
        seen = None if last_seen is None else last_seen.get(id(p))
        if seen is not None and seen == len(state.changes):
            cur = state.snapshots[-1]
            loc = rule_location(p.fn if isinstance(p, Pass) else p)
            res = PassResult(pass_name(p), cur, cur, False, [], [], 0.0, iteration, loc, skipped=True)
        else:
            dirty = None if seen is None else set().union(*state.changes[seen:])
            res = state.run(p, iteration=iteration, verify=self.verify, dirty=dirty)
        if last_seen is not None:
            last_seen[id(p)] = len(state.changes)
        for h in self.hooks["after"]:
            h(res)
        log.append(res)

    def _run_group(self, group: Fixpoint, state: _Run, log: PassLog) -> None:
        last_seen: dict = {}            # pass -> number of changing passes when it last finished
        for rnd in range(1, group.max_rounds + 1):
            start = len(log)
            for p in group.passes:
                self._run_item(p, state, log, rnd, last_seen)
            if not any(r.changed for r in log[start:]):
                break


def run_passes(graph: Graph, passes, **kw) -> PassLog:
    """Shorthand for ``PassManager(passes, **kw).run(graph)``."""
    return PassManager(passes, **kw).run(graph)
