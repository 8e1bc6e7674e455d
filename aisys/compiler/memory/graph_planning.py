"""``plan_memory(graph)``: liveness + a planner = every intermediate's offset in one arena."""
from __future__ import annotations

import numbers
from typing import Sequence

from aisys.framework.graph import Graph

from .liveness import buffers_of, check_schedule, inplace_candidates, step_labels
from .records import DEFAULT_ALIGNMENT, MemoryPlan
from .offset_planners import Planner, plan_buffers
from .schedule import choose_schedule


def plan_memory(graph: Graph, planner: str | Planner = "greedy_by_size", schedule: Sequence[int] | str | None = None,
                limit_bytes: int | None = None, *, alignment: int = DEFAULT_ALIGNMENT, inplace: bool = False,
                include_inputs: bool = False) -> MemoryPlan:
    """Plan the memory of ``graph``: one buffer per op result, placed by ``planner``.

    planner         "naive" | "exact_size" | "linear_scan" | "greedy_by_size", or a function
                    ``buffers -> {name: offset}`` (see :mod:`aisys.compiler.memory.offset_planners`).
    schedule        None: program order; a list of node ids; or "best": try a few topological
                    orders and keep the one with the lowest simulated peak (see ``choose_schedule``).
    limit_bytes     raise :class:`MemoryLimitError` if the arena would exceed it.
    inplace         let elementwise ops overwrite an input that dies there (relu over its input).
    include_inputs  also plan graph inputs, params and consts (live from step 0).

    Buffers are named after their node ("%3"); ``plan.schedule`` holds the order the steps refer to.
    """
    graph.check_edges()
    if limit_bytes is not None:
        if isinstance(limit_bytes, bool) or not isinstance(limit_bytes, numbers.Integral):
            raise TypeError(f"plan_memory: limit_bytes={limit_bytes!r} must be a whole number of bytes (e.g. "
                            f"64 * 1024), or None for no limit")
        if limit_bytes <= 0:
            raise ValueError(f"plan_memory: limit_bytes={limit_bytes} must be positive (bytes the arena may use)")
    note = ""
    if isinstance(schedule, str):
        if schedule != "best":
            raise ValueError(f"schedule={schedule!r}: pass None (program order), a list of node ids, or 'best'")
        choice = choose_schedule(graph, alignment=alignment, include_inputs=include_inputs)
        order = list(choice.order)
        note = f"schedule {choice.name!r} chosen from " + ", ".join(f"{k} {v} B" for k, v in choice.peaks.items())
    else:
        order = check_schedule(graph, schedule)
    bufs = buffers_of(graph, order, include_inputs)
    pairs = inplace_candidates(graph, order) if inplace else ()
    plan = plan_buffers(bufs, planner, alignment=alignment, inplace_pairs=pairs, limit_bytes=limit_bytes,
                        steps=step_labels(graph, order), schedule=order)
    if note:
        plan.note = (plan.note + "; " if plan.note else "") + note
    return plan
