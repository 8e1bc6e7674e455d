"""Placement rules: which nodes a gang's GPUs come from, once the scheduler decided to start it.

A rule is a function ``rule(free, n, cluster) -> {node name: GPUs taken}``:
``free`` maps the name of every node (of the GPU type chosen for the job) that has a free GPU to
its number of free GPUs, ``n`` is the gang size, and the answer must take exactly ``n`` GPUs, no more
from a node than it has free. The cost model (``aisys.cluster.cost``) then says what the choice
costs: a ring all-reduce inside one node runs on NVLink, across nodes on the NICs, across racks on
the oversubscribed spine.

* ``pack``     — consolidate: the one node with the fewest free GPUs that still holds the gang (best
  fit, keeping emptier nodes whole for larger gangs); otherwise the nodes with the most free GPUs first.
* ``spread``   — balance load: one GPU per node, round-robin over the nodes with the most free GPUs.
* ``topology`` — pack, and never cross a rack boundary that can be avoided: a best-fit node, else the
  rack that holds the gang on the fewest nodes (fewest free GPUs on a tie), else as few racks as possible
  (the roomiest first) and, inside them, as few nodes as possible.

Ties go to the node (or rack) listed first in the cluster, so every rule is deterministic.
"""
from __future__ import annotations

from typing import Callable, Mapping

from .hardware import Cluster

__all__ = ["pack", "spread", "topology_aware", "PLACEMENTS", "resolve_placement", "check_placement"]

PlacementRule = Callable[[Mapping[str, int], int, Cluster], Mapping[str, int]]


def _best_fit_node(free: Mapping[str, int], n: int, cluster: Cluster) -> str | None:
    best, best_key = None, None
    index = cluster.node_index
    for name, f in free.items():
        if f >= n:
            key = (f, index[name])
            if best_key is None or key < best_key:
                best, best_key = name, key
    return best


def _most_free_first(names, free: Mapping[str, int], n: int, cluster: Cluster) -> dict[str, int]:
    index = cluster.node_index
    taken: dict[str, int] = {}
    for name in sorted(names, key=lambda nm: (-free[nm], index[nm])):
        if n <= 0:
            break
        k = min(free[name], n)
        taken[name] = k
        n -= k
    return taken


def pack(free: Mapping[str, int], n: int, cluster: Cluster) -> dict[str, int]:
    """Best-fit single node, else the fewest nodes (most free GPUs first), racks ignored."""
    node = _best_fit_node(free, n, cluster)
    if node is not None:
        return {node: n}
    return _most_free_first(free, free, n, cluster)


def spread(free: Mapping[str, int], n: int, cluster: Cluster) -> dict[str, int]:
    """One GPU per node, round-robin over nodes ordered by most free GPUs (the load-balancing instinct)."""
    index = cluster.node_index
    order = sorted(free, key=lambda nm: (-free[nm], index[nm]))
    taken = dict.fromkeys(order, 0)
    while n > 0:
        progressed = False
        for name in order:
            if n and taken[name] < free[name]:
                taken[name] += 1
                n -= 1
                progressed = True
        if not progressed:
            break
    return {k: v for k, v in taken.items() if v}


def topology_aware(free: Mapping[str, int], n: int, cluster: Cluster) -> dict[str, int]:
    """Best-fit node; else the rack that needs the fewest nodes (then fewest free GPUs); else the fewest
    racks (roomiest first) and the fewest nodes inside them."""
    node = _best_fit_node(free, n, cluster)
    if node is not None:
        return {node: n}
    racks: dict[str, list[str]] = {}
    for name in free:
        racks.setdefault(cluster.rack_of(name), []).append(name)
    best, best_key = None, None
    for rack, names in racks.items():
        total = sum(free[nm] for nm in names)
        if total < n:
            continue
        plan = _most_free_first(names, free, n, cluster)
        key = (len(plan), total, cluster.rack_index(rack))
        if best_key is None or key < best_key:
            best, best_key = plan, key
    if best is not None:
        return best
    room = {r: sum(free[nm] for nm in names) for r, names in racks.items()}
    chosen, total = [], 0
    for rack in sorted(racks, key=lambda r: (-room[r], cluster.rack_index(r))):   # fewest racks ...
        chosen.append(rack)
        total += room[rack]
        if total >= n:
            break
    return _most_free_first([nm for r in chosen for nm in racks[r]], free, n, cluster)   # ... then fewest nodes


PLACEMENTS: dict[str, PlacementRule] = {"pack": pack, "spread": spread, "topology": topology_aware}


def resolve_placement(placement) -> tuple[str, PlacementRule]:
    """(name, rule) for a placement name or a function ``rule(free, n, cluster)``."""
    if callable(placement):
        return getattr(placement, "__name__", "custom"), placement
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}; use one of {', '.join(PLACEMENTS)} or a function "
                         f"rule(free, n, cluster) -> {{node name: GPUs}}")
    return placement, PLACEMENTS[placement]


def check_placement(answer, free: Mapping[str, int], n: int, rule_name: str) -> dict[str, int]:
    """The rule's answer, validated: exactly n GPUs, only from nodes offered, never more than they have."""
    where = f"placement rule {rule_name!r} for a gang of {n}"
    if not isinstance(answer, Mapping):
        raise TypeError(f"{where} returned a {type(answer).__name__}; it must return {{node name: GPUs taken}}")
    total = 0
    for name, k in answer.items():
        if name not in free:
            raise ValueError(f"{where} took GPUs on node {name!r}, which is not among the nodes with free GPUs "
                             f"of this type: {dict(free)}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 0 or k > free[name]:
            raise ValueError(f"{where} took {k!r} GPUs on node {name!r}, which has {free[name]} free")
        total += k
    if total != n:
        raise ValueError(f"{where} took {total} GPUs in total ({dict(answer)}); it must take exactly {n}")
    return {k: v for k, v in answer.items() if v}
