"""The pass manager: run passes in order (or to a fixpoint), verify after each, log everything.

A *pass* is a function ``pass_fn(rw: Rewriter, **options) -> None`` that changes ``rw.graph`` only
through the rewriter. The manager gives every pass a private copy of the graph, so a pass that
fails leaves the caller's graph untouched; afterwards it restores a topological order, runs
``graph.verify()`` and records a :class:`PassResult` (DESIGN.md, "PassResult / PassLog").

    pm = PassManager([fold_constants, dce, Fixpoint([simplify, cse, dce])])
    log = pm.run(graph)          # -> PassLog
    print(log.summary())
    optimized = log.graph

Hooks run around every pass — ``pm.add_hook("before", fn(pass_name, graph))`` and
``pm.add_hook("after", fn(result))`` — for instrumentation (timing, printing, numeric checks).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from ..framework.graph import Graph, GraphError
from .codegen import kernel_source
from .metrics import Metrics, graph_metrics
from .passes import resolve
from .pipeline import Fixpoint, Pass, pass_name
from .rewriter import Decision, Rewrite, Rewriter, rule_location


class PassError(RuntimeError):
    """A pass raised, or left a graph the verifier rejects. Names the pass and its last rewrites."""


@dataclass
class PassResult:
    """What one pass did: the graph before/after, its rewrites, decisions and metrics."""
    name: str
    before: Graph
    graph: Graph                       # the new graph
    changed: bool
    rewrites: list[Rewrite]
    decisions: list[Decision]
    metrics_before: Metrics
    metrics: Metrics
    seconds: float = 0.0
    iteration: int = 0                 # which round of a Fixpoint group (0 outside one)
    location: str = ""                 # file:line of the pass function

    @property
    def after(self) -> Graph:
        return self.graph

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
        lines = [f"pass {self.label}: {'changed' if self.changed else 'no change'}; "
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
            m = graph_metrics(self.initial)
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


def run_pass(fn, graph: Graph, *, iteration: int = 0, verify: bool = True) -> PassResult:
    """Run one pass on a copy of ``graph``; verify; return its PassResult (``graph`` is untouched)."""
    if not callable(fn):
        raise TypeError(f"a pass must be callable as fn(rw), got {type(fn).__name__}: {fn!r}")
    name = pass_name(fn)
    graph.check_edges()                            # a broken input graph is the caller's error, not the pass's
    work = graph.copy()
    rw = Rewriter(work, name)
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
    try:
        work.toposort()
        if verify:
            work.verify()
    except GraphError as e:
        recent = "; ".join(str(r) for r in rw.rewrites[-3:]) or "no rewrites recorded"
        raise PassError(f"pass {name!r} left an invalid graph: {e} (last rewrites: {recent})") from e
    changed = bool(rw.rewrites)
    loc = rule_location(fn.fn if isinstance(fn, Pass) else fn)
    return PassResult(name, graph, work, changed, list(rw.rewrites), list(rw.decisions),
                      graph_metrics(graph), graph_metrics(work), seconds, iteration, loc)


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
        graph.verify()
        log = PassLog(initial=graph)
        if self.fixpoint:
            self._run_group(Fixpoint(self.passes, self.max_rounds, "pipeline"), graph, log)
        else:
            cur = graph
            for p in self.passes:
                cur = self._run_item(p, cur, log, 0)
        return log

    # ---- internals -------------------------------------------------------------------------------
    def _run_item(self, p, graph: Graph, log: PassLog, iteration: int) -> Graph:
        if isinstance(p, Fixpoint):
            return self._run_group(p, graph, log)
        for h in self.hooks["before"]:
            h(pass_name(p), graph)
        res = run_pass(p, graph, iteration=iteration, verify=self.verify)
        for h in self.hooks["after"]:
            h(res)
        log.append(res)
        return res.graph

    def _run_group(self, group: Fixpoint, graph: Graph, log: PassLog) -> Graph:
        cur = graph
        for rnd in range(1, group.max_rounds + 1):
            start = len(log)
            for p in group.passes:
                cur = self._run_item(p, cur, log, rnd)
            if not any(r.changed for r in log[start:]):
                break
        return cur


def run_passes(graph: Graph, passes, **kw) -> PassLog:
    """Shorthand for ``PassManager(passes, **kw).run(graph)``."""
    return PassManager(passes, **kw).run(graph)
