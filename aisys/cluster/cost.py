"""How fast a job runs where it is placed: roofline compute plus an α-β ring all-reduce.

One training iteration of a data-parallel job = compute + one all-reduce of its gradients (no overlap:
an upper bound on step time that keeps the effect of placement visible).

* **Compute** (roofline, Williams, Waterman & Patterson, CACM 2009): a model class does ``step_flops``
  per GPU per iteration at ``intensity`` FLOPs per byte, so it attains ``min(peak, bandwidth x
  intensity)`` on a GPU type; we take :data:`EFFICIENCY` of that (mixed-precision training rarely
  exceeds a third of the attainable peak). Ratios between GPU types follow from the datasheet
  figures: a memory-bound LSTM gains the HBM ratio, a compute-bound transformer the FLOP ratio.
* **Communication** (ring all-reduce, Patarasuk & Yuan, JPDC 2009): p GPUs in a ring each send
  2(p−1) chunks of N/p bytes. Every step, all hops send at once, so a step lasts as long as the
  slowest hop: ``T = 2(p−1) · max_hop(α + (N/p) / bandwidth)``. With one kind of link this is the
  closed form ``2(p−1)·α + 2(p−1)/p · N / bandwidth`` (:func:`ring_allreduce_time`). Placement decides
  which links the ring crosses — NVLink inside a node, NICs between nodes, the oversubscribed spine
  between racks — and so its speed. Jobs do not slow each other down on shared links (no contention).

A job's *rate* is how many reference seconds of work it does per second where it runs: the step time
packed on the reference GPU type divided by its step time here. ``duration / rate`` is its run time.

Where ``aisys.dist`` lands its topologies and collective cost model, :func:`allreduce_time` is the
one function to swap: it asks the topology only ``ring_order(gpus)`` and ``link_between(a, b)``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..dist.costs import allreduce_time as _dist_allreduce_time
from .hardware import Cluster, GPUType
from .jobs import ModelClass

__all__ = ["EFFICIENCY", "ring_allreduce_time", "allreduce_time", "compute_time", "StepTime", "step_time",
           "reference_step_time", "rate"]

EFFICIENCY = 0.3


def ring_allreduce_time(p: int, nbytes: float, alpha: float, bandwidth: float) -> float:
    """Closed form of a ring all-reduce over p GPUs on identical links: 2(p−1)α + 2(p−1)/p · N/bandwidth
    (dist's α-β cost model, :func:`aisys.dist.costs.allreduce_time`)."""
    return _dist_allreduce_time("ring", p, nbytes, alpha, bandwidth)


def allreduce_time(cluster: Cluster, gpus, nbytes: float) -> float:
    """Seconds for a ring all-reduce of ``nbytes`` over these GPUs, limited by the slowest hop."""
    ring = cluster.ring_order(gpus)
    p = len(ring)
    if p <= 1 or nbytes <= 0:
        return 0.0
    chunk = nbytes / p
    slowest = 0.0
    for a, b in zip(ring, ring[1:] + ring[:1]):
        link = cluster.link_between(a, b)
        slowest = max(slowest, link.alpha + chunk / link.bandwidth)
    return 2 * (p - 1) * slowest


def compute_time(model: ModelClass, gpu: GPUType) -> float:
    """Seconds of one iteration's compute on one GPU (roofline attainable x EFFICIENCY)."""
    attainable = min(gpu.peak_flops, gpu.bandwidth * model.intensity)
    return model.step_flops / (EFFICIENCY * attainable)


@dataclass(frozen=True)
class StepTime:
    compute: float
    comm: float

    @property
    def total(self) -> float:
        return self.compute + self.comm

    @property
    def comm_fraction(self) -> float:
        return self.comm / self.total if self.total else 0.0


def step_time(cluster: Cluster, model: ModelClass, gpus, *, num_gpus: int | None = None) -> StepTime:
    """One iteration of ``model`` on these GPUs (all of one type). ``num_gpus``: the gang the job asked
    for, when an elastic job runs on a different count (its global batch is split over len(gpus))."""
    gpus = list(gpus)
    if not gpus:
        raise ValueError("step_time needs at least one GPU")
    types = {cluster.node_of_gpu(g).gpu for g in gpus}
    if len(types) != 1:
        raise ValueError(f"a job's GPUs must all be of one type; got {sorted(types)}")
    gpu = cluster.gpu_type(types.pop())
    n = len(gpus) if num_gpus is None else num_gpus
    compute = compute_time(model, gpu) * n / len(gpus)
    return StepTime(compute, allreduce_time(cluster, gpus, model.grad_bytes))


def reference_step_time(cluster: Cluster, model: ModelClass, num_gpus: int) -> StepTime:
    """The step a gang of ``num_gpus`` takes packed on the reference GPU type: the unit of a job's duration.

    Packed = the fewest nodes of the reference type's node model (its first node in the cluster; nodes
    beyond what the cluster has are imagined alike), all in one rack.
    """
    ref = cluster.reference_gpu
    spec = next((n for n in cluster.nodes if n.gpu == ref), cluster.nodes[0])
    compute = compute_time(model, cluster.gpu_type(ref))
    p = num_gpus
    if p <= 1:
        return StepTime(compute, 0.0)
    chunk = model.grad_bytes / p
    hops = []
    if min(p, spec.num_gpus) > 1:
        hops.append(spec.intra)
    if p > spec.num_gpus:
        hops.append(cluster.link_between_nodes(spec, _twin(spec)))
    slowest = max(link.alpha + chunk / link.bandwidth for link in hops)
    return StepTime(compute, 2 * (p - 1) * slowest)


def rate(cluster: Cluster, model: ModelClass, gpus, num_gpus: int) -> float:
    """Reference seconds of work done per second on these GPUs (1.0 = as fast as packed on the reference)."""
    here = step_time(cluster, model, gpus, num_gpus=num_gpus).total
    return reference_step_time(cluster, model, num_gpus).total / here


def _twin(node):
    from dataclasses import replace
    return replace(node, name=node.name + "'")

