"""One source of lifetimes, planned under each option: planner, in-place reuse, checkpoint interval.

What the memory timeline draws when a learner clicks through planners is computed here, as plain
records: :func:`replan` gives the plan of a source for one choice of options (with a note saying what
was done: checkpointing, a fallback), :func:`compare_planners` the plans of every planner side by side.

A source is a :class:`MemoryPlan` (its buffers are re-placed), a :class:`Graph` (planned from liveness;
a traced training graph can also be checkpointed), or a :class:`LayeredModel` / :class:`CheckpointPlan`
(the chain model of activation checkpointing).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from aisys.framework.graph import Graph

from .checkpoint import CheckpointPlan, LayeredModel, simulate_checkpointing
from .graph_planning import plan_memory
from .offset_planners import PLANNERS, plan_buffers
from .records import Buffer, MemoryPlan, format_bytes
from .recompute import checkpoint_graph, saved_activations


@dataclass(frozen=True)
class Replanned:
    """A source planned with one planner and one set of options; ``note`` says what else was done."""
    plan: MemoryPlan
    note: str = ""


def planner_name(planner) -> str:
    return getattr(planner, "__name__", "custom") if callable(planner) else str(planner)


def replan(source, planner: str | Callable = "greedy_by_size", *, inplace: bool = False, every: int = 1) -> Replanned:
    """Plan ``source`` with ``planner``, in-place reuse on or off, and (for training graphs and layered
    models) activation checkpointing keeping every ``every``-th activation."""
    if isinstance(source, MemoryPlan):
        own = source
        if planner_name(planner) == own.planner and not callable(planner) and inplace == bool(own.inplace):
            return Replanned(own)                     # the plan as given (a learner's planner included)
        note = ""
        if not callable(planner) and planner not in PLANNERS:
            note = f"{planner} cannot be re-run with other options; showing greedy_by_size"
            planner = "greedy_by_size"
        bare = [Buffer(b.name, b.size, b.start, b.end, op=b.op, kind=b.kind) for b in own.buffers]
        return Replanned(plan_buffers(bare, planner, alignment=own.alignment,
                                      inplace_pairs=own.inplace if inplace else (), steps=own.steps,
                                      schedule=own.schedule), note)
    if isinstance(source, Graph):
        g, note = source, ""
        kept, recomputed = set(training_activations(source)), set()
        if every > 1:
            cg = checkpoint_graph(source, every=every)
            g, note = cg.graph, cg.summary()
            kept, recomputed = set(cg.kept), set(cg.recomputed.values())
        plan = plan_memory(g, planner, inplace=inplace)
        if kept or recomputed:                        # what training keeps, and what it recomputes
            plan = _relabel(plan, kept, recomputed)
        return Replanned(plan, note)
    model = source.model if isinstance(source, CheckpointPlan) else source
    if isinstance(model, LayeredModel):
        cp = simulate_checkpointing(model, every)
        return Replanned(cp.to_memory_plan(planner), cp.summary())
    raise TypeError(f"replan: expected a MemoryPlan, a Graph or a LayeredModel/CheckpointPlan, got "
                    f"{type(source).__name__}; make a plan with aisys.compiler.memory.plan_memory(graph) first")


def training_activations(graph: Graph) -> list[int]:
    """The saved activations of a traced training graph (what checkpointing may drop), else []."""
    if not getattr(graph, "returns", None):
        return []
    try:
        return saved_activations(graph)
    except ValueError:
        return []


def _relabel(plan: MemoryPlan, kept: set, recomputed: set) -> MemoryPlan:
    """The same plan with kept activations marked "checkpoint" and recomputed copies "recomputed"."""
    def kind(b: Buffer) -> str:
        nid = int(b.name[1:])
        return "recomputed" if nid in recomputed else "checkpoint" if nid in kept else b.kind
    bufs = [Buffer(b.name, b.size, b.start, b.end, b.offset, b.op, kind(b)) for b in plan.buffers]
    return MemoryPlan(bufs, plan.planner, plan.alignment, plan.inplace, plan.steps, plan.schedule, plan.note)


@dataclass
class PlannerComparison:
    """Every planner's plan of one source under the same options (a planner that raised keeps its error)."""
    options: dict
    results: dict = field(default_factory=dict)      # planner name -> Replanned | Exception

    def peak_bytes(self) -> dict:
        return {name: r.plan.peak_bytes for name, r in self.results.items() if isinstance(r, Replanned)}

    def summary(self) -> str:
        cells = []
        for name, r in self.results.items():
            cells.append(f"{name} {r.plan.peak_bytes}" if isinstance(r, Replanned) else f"{name} failed ({type(r).__name__})")
        return "peak bytes: " + ", ".join(cells)

    def cells(self) -> list[tuple[str, str]]:
        """(planner, its peak as text or the error's type) for display."""
        return [(name, format_bytes(r.plan.peak_bytes) if isinstance(r, Replanned) else type(r).__name__)
                for name, r in self.results.items()]


def compare_planners(source, planners: Sequence = tuple(PLANNERS), *, inplace: bool = False,
                     every: int = 1) -> PlannerComparison:
    """:func:`replan` with each planner (names or functions); a planner that raises is reported, not fatal
    (a learner's planner may fail)."""
    out = PlannerComparison({"inplace": inplace, "every": every})
    for p in planners:
        try:
            out.results[planner_name(p)] = replan(source, p, inplace=inplace, every=every)
        except Exception as e:  # noqa: BLE001  (shown to the learner, not swallowed)
            out.results[planner_name(p)] = e
    return out
