"""Fairness between tenants: Dominant Resource Fairness, Jain's index, finish-time fairness.

* **DRF** (Ghodsi et al., "Dominant Resource Fairness", NSDI 2011): a tenant's *dominant share* is the
  largest of its shares of each resource (GPUs, CPUs, memory ... each divided by the cluster's
  capacity). DRF equalises dominant shares by *progressive filling*: give the next task to the tenant
  whose (weighted) dominant share is smallest; a tenant whose next task no longer fits drops out and
  the others keep filling, so no resource that some task could use is left idle (Pareto efficiency).
  The paper's example: 9 CPUs and 18 GB; tenant A's tasks need <1 CPU, 4 GB>, B's <3 CPUs, 1 GB>;
  DRF gives A three tasks and B two, both at dominant share 2/3.
* **Jain's index** (Jain, Chiu & Hawe, DEC-TR-301, 1984): ``(Σx)² / (n·Σx²)`` — 1 when every x is
  equal, 1/n when one tenant gets everything.
* **Finish-time fairness** (Mahajan et al., "Themis", NSDI 2020): ρ = the time a job takes in the
  shared cluster ÷ the time it would take alone on its tenant's fair slice of the cluster. ρ ≤ 1: the
  tenant did at least as well as on its own slice.
"""
from __future__ import annotations

import math
from typing import Mapping

__all__ = ["dominant_share", "drf_allocate", "jain_index"]


def dominant_share(usage: Mapping[str, float], capacity: Mapping[str, float]) -> float:
    """max over resources of usage / capacity (resources missing from ``usage`` count as 0)."""
    return max((usage.get(r, 0.0) / capacity[r] for r in capacity if capacity[r] > 0), default=0.0)


def _validate(capacity, demands, weights):
    if not isinstance(capacity, Mapping) or not capacity:
        raise ValueError(f"capacity must be a non-empty {{resource: amount}} dict, got {capacity!r}")
    for r, v in capacity.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"capacity of {r!r} must be a finite number >= 0, got {v!r}")
    if not isinstance(demands, Mapping) or not demands:
        raise ValueError(f"demands must be a non-empty {{tenant: {{resource: per-task amount}}}} dict")
    for t, d in demands.items():
        unknown = set(d) - set(capacity)
        if unknown:
            raise ValueError(f"tenant {t!r} asks for {sorted(unknown)}, which the capacity does not list "
                             f"(resources: {sorted(capacity)})")
        if not any(d.get(r, 0) > 0 for r in capacity):
            raise ValueError(f"tenant {t!r}: a task must need some resource, got {dict(d)}")
        if any(v < 0 for v in d.values()):
            raise ValueError(f"tenant {t!r}: per-task demands must be >= 0, got {dict(d)}")
    weights = dict(weights or {})
    for t, w in weights.items():
        if t not in demands:
            raise ValueError(f"weight given for tenant {t!r}, who has no demands")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
            raise ValueError(f"weight of tenant {t!r} must be a positive number, got {w!r}")
    return weights


def drf_allocate(capacity: Mapping[str, float], demands: Mapping[str, Mapping[str, float]],
                 weights: Mapping[str, float] | None = None, max_tasks: Mapping[str, int] | None = None
                 ) -> dict[str, int]:
    """Tasks per tenant under DRF progressive filling (ties: the tenant listed first).

    ``demands[t]`` is one task of tenant t, e.g. ``{"gpu": 1, "cpu": 4, "mem": 16}``; ``weights[t]``
    (default 1) divides t's dominant share, so weight 2 earns twice the share; ``max_tasks[t]`` caps
    how many tasks t wants (default: unlimited).
    """
    weights = _validate(capacity, demands, weights)
    used = {r: 0.0 for r in capacity}
    usage = {t: {r: 0.0 for r in capacity} for t in demands}
    tasks = {t: 0 for t in demands}
    active = list(demands)
    eps = 1e-9
    while active:
        t = min(active, key=lambda u: dominant_share(usage[u], capacity) / weights.get(u, 1.0))
        need = demands[t]
        wants_more = max_tasks is None or tasks[t] < max_tasks.get(t, math.inf)
        if wants_more and all(used[r] + need.get(r, 0) <= capacity[r] + eps for r in capacity):
            for r in capacity:
                used[r] += need.get(r, 0)
                usage[t][r] += need.get(r, 0)
            tasks[t] += 1
        else:
            active.remove(t)
    return tasks


def jain_index(values) -> float:
    """Jain's fairness index of non-negative values: 1 = all equal; 1/n = one takes all (1.0 for none)."""
    xs = [float(v) for v in values]
    if any(x < 0 or not math.isfinite(x) for x in xs):
        raise ValueError(f"jain_index needs finite values >= 0, got {xs}")
    total, squares = sum(xs), sum(x * x for x in xs)
    if not xs or squares == 0:
        return 1.0
    return total * total / (len(xs) * squares)
