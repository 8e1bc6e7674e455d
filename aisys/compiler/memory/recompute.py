"""Activation checkpointing on a real training graph: rematerialization as a graph rewrite.

A traced training step (``aisys.trace`` of a function that calls ``loss.backward()``) is one joint
graph: the forward ops that compute the loss, then the backward ops autodiff wrote. Backward ops
read forward values ("saved activations"), which is what keeps them alive across the whole step.

``checkpoint_graph(graph, every=k)`` keeps every k-th saved activation (in forward order) and
makes the backward read a *recomputed copy* of each other one: the copy's forward ops, back to
the nearest kept value or leaf, are cloned and scheduled right before the first backward op that
needs them. Forward values then die as soon as the forward pass is done with them, and the copies
live only through the part of the backward that uses them — fewer bytes alive at once, paid for
with the cloned ops. Results are unchanged (recomputation is deterministic; impure ops are never
cloned but always kept).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from aisys.framework.graph import Graph


def forward_nodes(graph: Graph, loss: int | None = None) -> list[int]:
    """Op nodes the loss depends on, in graph order. ``loss`` defaults to the first value the traced
    function returned (``graph.returns[0]``), else the first output."""
    if loss is None:
        returns = getattr(graph, "returns", None) or graph.outputs
        if not returns:
            raise ValueError(f"graph {graph.name!r} has no outputs; pass loss=<node id of the loss>")
        loss = returns[0]
    if loss not in graph.nodes:
        raise ValueError(f"loss=%{loss} is not a node of graph {graph.name!r}")
    anc = graph.ancestors([loss])
    return [n.id for n in graph.nodes.values() if n.id in anc and not n.is_leaf]


def saved_activations(graph: Graph, loss: int | None = None) -> list[int]:
    """Forward values that backward ops read (what training keeps alive), in forward order."""
    fwd = forward_nodes(graph, loss)
    fset = set(fwd)
    read_by_bwd = {j for n in graph.nodes.values() if not n.is_leaf and n.id not in fset for j in n.inputs}
    return [i for i in fwd if i in read_by_bwd]


@dataclass
class CheckpointedGraph:
    """The rewritten graph and what the rewrite did."""
    graph: Graph
    kept: tuple[int, ...]              # saved activations kept from the forward pass
    recomputed: dict                   # original node id -> id of its recomputed copy
    every: int | None

    @property
    def recompute_count(self) -> int:
        return len(self.recomputed)

    def summary(self) -> str:
        how = f"every {self.every}" if self.every else "chosen"
        return (f"checkpointed {self.graph.name}: keep {len(self.kept)} saved activations ({how}), "
                f"recompute {self.recompute_count} ops")


def checkpoint_graph(graph: Graph, every: int | None = None, keep: Iterable[int] | None = None,
                     loss: int | None = None) -> CheckpointedGraph:
    """Rewrite a joint forward+backward graph to keep only some saved activations.

    every   keep saved activations number 0, k, 2k, ... (in forward order); every=1 keeps all
    keep    or name the node ids to keep explicitly
    loss    the loss node (default: the first returned value)
    """
    import aisys.framework.ops  # noqa: F401  (registry: purity of ops)
    from aisys.framework.registry import get as get_op

    saved = saved_activations(graph, loss)
    if (every is None) == (keep is None):
        raise ValueError("checkpoint_graph: pass exactly one of every=k or keep=[node ids]")
    if every is not None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer (1 keeps every saved activation), got {every!r}")
        kept = set(saved[::every])
    else:
        kept = set(int(i) for i in keep)
        unknown = sorted(kept - set(saved))
        if unknown:
            raise ValueError(f"keep: %{unknown[0]} is not a saved activation; saved activations are "
                             + ", ".join(f"%{i}" for i in saved[:12]))
    fwd = forward_nodes(graph, loss)
    fset = set(fwd)
    for i in fwd:                                   # never re-run an impure op: keep it
        if not get_op(graph.nodes[i].op).pure:
            kept.add(i)

    g = graph.copy()
    for attr in ("updates", "returns", "output_names", "warnings", "baked_branches"):
        if hasattr(graph, attr):
            setattr(g, attr, getattr(graph, attr))
    clones: dict[int, int] = {}
    order: list[int] = [n.id for n in graph.nodes.values() if n.is_leaf or n.id in fset]

    def needs_clone(i: int) -> bool:
        return i in fset and i not in kept

    def clone(root: int) -> int:
        """Id of the value the backward should read for forward node ``root`` (cloning its
        not-kept forward ancestors first, inputs before users; iterative, so deep nets are fine)."""
        if not needs_clone(root):
            return root
        stack = [root]
        while stack:
            i = stack[-1]
            if i in clones:
                stack.pop()
                continue
            n = graph.nodes[i]
            todo = [j for j in n.inputs if needs_clone(j) and j not in clones]
            if todo:
                stack.extend(todo)
                continue
            ins = [clones.get(j, j) if needs_clone(j) else j for j in n.inputs]
            c = g.add(n.op, ins, dict(n.attrs), source=n.source, provenance=n.provenance,
                      shape=n.shape, dtype=n.dtype)
            clones[i] = c.id
            order.append(c.id)
            stack.pop()
        return clones[root]

    for n in graph.nodes.values():
        if n.is_leaf or n.id in fset:
            continue
        new_inputs = tuple(clone(j) for j in n.inputs)
        g.nodes[n.id].inputs = new_inputs
        order.append(n.id)
    g.nodes = {i: g.nodes[i] for i in order}
    g.verify()
    return CheckpointedGraph(g, tuple(i for i in saved if i in kept), clones, every)


def sweep_graph_checkpoints(graph: Graph, everies: Iterable[int] | None = None, planner="greedy_by_size",
                            loss: int | None = None, alignment: int = 64) -> list[tuple[CheckpointedGraph, "object"]]:
    """(rewritten graph, its memory plan) for each interval; default 1..number of saved activations."""
    from .graph_planning import plan_memory

    n = len(saved_activations(graph, loss))
    rows = []
    for k in (everies or range(1, max(1, n) + 1)):
        cg = checkpoint_graph(graph, every=k, loss=loss)
        rows.append((cg, plan_memory(cg.graph, planner, alignment=alignment)))
    return rows


def checkpoint_table(rows) -> str:
    """Plain-text table of a sweep: interval, kept, recomputed ops, peak."""
    from .records import format_bytes

    lines = [f"{'every':>5}  {'kept':>4}  {'recomputed ops':>14}  {'peak':>10}"]
    base = rows[0][1].peak_bytes if rows else 0
    for cg, plan in rows:
        lines.append(f"{cg.every:>5}  {len(cg.kept):>4}  {cg.recompute_count:>14}  "
                     f"{format_bytes(plan.peak_bytes):>10}  ({plan.peak_bytes / base:.2f}x)")
    return "\n".join(lines)
