"""Liveness (活跃性分析): when each value of a graph is born and when it is read for the last time.

A *schedule* is the order in which the graph's op nodes run; step ``s`` runs ``schedule[s]``.
For an op node run at step ``s`` the live interval is ``[s, last step that reads it]``. Decisions
about the values that are not made by a scheduled op, stated once here:

  * graph inputs, parameters and constants are owned by the caller, so by default they are **not
    planned in the arena** and have no interval. With ``include_inputs=True`` they are planned and
    live from step 0 to their last use (they must be in memory before the first op runs);
  * graph outputs live **to the last step**: the caller reads them after the run;
  * a value nobody reads (and that is not an output) still needs its bytes at the step that
    writes it: its interval is ``[s, s]``;
  * nodes the outputs do not depend on (dead code) are not in the default schedule at all.
"""
from __future__ import annotations

from typing import Sequence

from aisys.framework.graph import Graph

from .records import Buffer

LEAF_OPS = ("input", "param", "const")


def default_schedule(graph: Graph) -> list[int]:
    """The op nodes the outputs depend on, in the graph's own (topological) order."""
    live = graph.live_ids()
    return [n.id for n in graph.nodes.values() if not n.is_leaf and n.id in live]


def check_schedule(graph: Graph, schedule: Sequence[int] | None) -> list[int]:
    """``schedule`` as a list of op-node ids, or a ValueError naming the first broken rule.

    Leaf ids (inputs, params, consts) in a given schedule are skipped: leaves are not executed.
    Every op node the outputs depend on must appear exactly once, after all of its inputs.
    """
    if schedule is None:
        return default_schedule(graph)
    order: list[int] = []
    seen: set[int] = set()
    for pos, i in enumerate(schedule):
        if i not in graph.nodes:
            raise ValueError(f"schedule position {pos}: %{i} is not a node of graph {graph.name!r}")
        n = graph.nodes[i]
        if n.is_leaf:
            continue
        if i in seen:
            raise ValueError(f"schedule position {pos}: %{i} ({n.op}) is scheduled twice")
        for j in n.inputs:
            if not graph.nodes[j].is_leaf and j not in seen:
                raise ValueError(f"schedule position {pos}: %{i} = {n.op} reads %{j} "
                                 f"({graph.nodes[j].op}), which has not run yet; a schedule must be a "
                                 f"topological order (every node after its inputs)")
        seen.add(i)
        order.append(i)
    missing = [i for i in default_schedule(graph) if i not in seen]
    if missing:
        raise ValueError(f"schedule leaves out {len(missing)} op node(s) the outputs need: "
                         + ", ".join(f"%{i} ({graph.nodes[i].op})" for i in missing[:6]))
    return order


def liveness(graph: Graph, schedule: Sequence[int] | None = None,
             include_inputs: bool = False) -> dict[int, tuple[int, int]]:
    """Live interval ``(first step, last step)``, both inclusive, of every value planned in memory.

    Keys are node ids in order of birth. See the module docstring for inputs, params and outputs.
    """
    return _fast_liveness(graph, check_schedule(graph, schedule), include_inputs)


def buffer_name(nid: int) -> str:
    """The buffer of node ``%3`` is called "%3", as the graph prints it."""
    return f"%{nid}"


def graph_buffers(graph: Graph, schedule: Sequence[int] | None = None,
                  include_inputs: bool = False) -> list[Buffer]:
    """One :class:`Buffer` per planned value: its bytes, interval, producing op and kind."""
    outputs = set(graph.outputs)
    out = []
    for nid, (s, e) in _fast_liveness(graph, check_schedule(graph, schedule), include_inputs).items():
        n = graph.nodes[nid]
        kind = n.op if n.is_leaf else ("output" if nid in outputs else "activation")
        out.append(Buffer(buffer_name(nid), n.nbytes, s, e, op=n.op if not n.is_leaf else f"{n.op} {n.name}".strip(),
                          kind=kind))
    return out


def _fast_liveness(graph: Graph, order: list[int], include_inputs: bool) -> dict[int, tuple[int, int]]:
    """Intervals in one pass over the edges: each read moves the reader's step into ``last_use``."""
    step = {nid: s for s, nid in enumerate(order)}
    last = len(order) - 1
    last_use: dict[int, int] = {}
    for nid in order:
        for j in graph.nodes[nid].inputs:
            last_use[j] = step[nid]          # steps increase, so the final write is the last use
    outputs = set(graph.outputs)
    intervals: dict[int, tuple[int, int]] = {}
    if include_inputs:
        for n in graph.nodes.values():
            if n.is_leaf and (n.id in last_use or (n.id in outputs and last >= 0)):
                intervals[n.id] = (0, last if n.id in outputs else last_use[n.id])
    for nid in order:
        s = step[nid]
        intervals[nid] = (s, last if nid in outputs else last_use.get(nid, s))
    return intervals


def step_labels(graph: Graph, schedule: Sequence[int]) -> list[str]:
    """What runs at each step, e.g. "%3 matmul"."""
    return [f"%{i} {graph.nodes[i].op}" for i in schedule]


def inplace_candidates(graph: Graph, schedule: Sequence[int] | None = None) -> list[tuple[str, str]]:
    """(input buffer, output buffer) pairs where an elementwise op may overwrite its input.

    Safe when the op is elementwise (each output element reads only the same-position input
    element, so overwriting element i after computing it never destroys an input still needed),
    the input has the output's shape and byte size, the input is an op's result (not a caller's
    tensor or an output) and this op is its last reader.
    """
    import aisys.framework.ops  # noqa: F401  (fills the op registry)
    from aisys.framework.registry import FusionKind, get as get_op

    order = check_schedule(graph, schedule)
    iv = _fast_liveness(graph, order, include_inputs=False)
    outputs = set(graph.outputs)
    pairs = []
    for s, nid in enumerate(order):
        n = graph.nodes[nid]
        if get_op(n.op).fusion not in (FusionKind.ELEMENTWISE, FusionKind.BROADCAST):
            continue
        for j in dict.fromkeys(n.inputs):
            x = graph.nodes[j]
            if (not x.is_leaf and j not in outputs and iv[j][1] == s and tuple(x.shape) == tuple(n.shape)
                    and x.nbytes == n.nbytes):
                pairs.append((buffer_name(j), buffer_name(nid)))
                break
    return pairs
