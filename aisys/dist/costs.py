"""Closed-form costs of the collective algorithms (α-β-γ model), bus bandwidth, crossovers, and fitting α, β.

Every algorithm's time is affine in the message size n (bytes): T(n) = A + B·n. The formulas are those of
Thakur, Rabenseifner & Gropp, "Optimization of Collective Communication Operations in MPICH" (IJHPCA 2005),
written for the *port model* the simulator uses on a switch: a rank sends and receives at the same time,
messages that leave one rank together overlap their latencies and share its port's bandwidth. So on
``Topology.switch(p, alpha, bandwidth)`` the simulator reproduces these numbers exactly (for powers of two
where the formula has ⌈log₂p⌉; for ring, tree and direct algorithms for any p when n splits evenly), and a
test holds them together. α: latency per message, β = 1/bandwidth seconds per byte, γ: seconds per byte
reduced.
"""
from __future__ import annotations

import math

import numpy as np

from .topology import Topology

__all__ = ["cost_coefficients", "collective_time", "allreduce_time", "bytes_sent_per_rank", "bus_factor", "crossover",
           "link_alpha_beta", "fit_alpha_beta"]


def bus_factor(collective: str, p: int) -> float:
    """nccl-tests' busBw / algBw (``NVIDIA/nccl-tests: doc/PERFORMANCE.md``): the share of the vector that
    crosses each rank's busiest link, so bus bandwidth can be compared with the hardware's link speed.
    All-reduce: 2(p−1)/p; reduce-scatter, all-gather, all-to-all: (p−1)/p; broadcast, reduce: 1."""
    if p <= 1:
        return 1.0
    try:
        return {"allreduce": 2 * (p - 1) / p, "reduce_scatter": (p - 1) / p, "allgather": (p - 1) / p,
                "alltoall": (p - 1) / p, "broadcast": 1.0, "reduce": 1.0}[collective]
    except KeyError:
        raise ValueError(f"bus_factor: unknown collective {collective!r}") from None


def _lg(p: int) -> int:
    return math.ceil(math.log2(p)) if p > 1 else 0


def cost_coefficients(collective: str, algorithm: str, p: int, alpha: float, beta: float, gamma: float = 0.0,
                      segments: int | None = None) -> tuple[float, float]:
    """(A, B) with time = A + B·nbytes for one algorithm on p ranks (see the module doc)."""
    if p <= 1:
        return 0.0, 0.0
    lg, f = _lg(p), (p - 1) / p
    fold = int(p & (p - 1) != 0)                 # non-power of two: MPICH's fold in and fold out
    lg2 = p.bit_length() - 1                      # log2 of the largest power of two <= p
    f2 = (2 ** lg2 - 1) / 2 ** lg2
    table = {
        ("allreduce", "ring"): (2 * (p - 1) * alpha, 2 * f * beta + f * gamma),
        ("allreduce", "tree"): (2 * lg * alpha, 2 * lg * beta + lg * gamma),
        ("allreduce", "reduce_broadcast"): (2 * alpha, 2 * (p - 1) * beta + (p - 1) * gamma),
        ("allreduce", "recursive_doubling"): ((lg2 + 2 * fold) * alpha,
                                              (lg2 + 2 * fold) * beta + (lg2 + fold) * gamma),
        # exact for powers of two; with a fold the halving steps are uneven and this is the even estimate
        ("allreduce", "rabenseifner"): ((2 * lg2 + 2 * fold) * alpha,
                                        2 * f2 * beta + f2 * gamma + fold * (2 * beta + gamma)),
        ("allreduce", "direct"): (2 * alpha, 2 * f * beta + f * gamma),
        ("reduce_scatter", "ring"): ((p - 1) * alpha, f * beta + f * gamma),
        ("reduce_scatter", "recursive_halving"): (lg * alpha, f * beta + f * gamma),
        ("reduce_scatter", "direct"): (alpha, f * beta + f * gamma),
        ("allgather", "ring"): ((p - 1) * alpha, f * beta),
        ("allgather", "bruck"): (lg * alpha, f * beta),
        ("allgather", "direct"): (alpha, f * beta),
        ("broadcast", "tree"): (lg * alpha, lg * beta),
        ("broadcast", "direct"): (alpha, (p - 1) * beta),
        ("reduce", "tree"): (lg * alpha, lg * (beta + gamma)),
        ("reduce", "direct"): (alpha, (p - 1) * (beta + gamma)),
        ("alltoall", "pairwise"): ((p - 1) * alpha, f * beta),
        ("alltoall", "direct"): (alpha, f * beta),
    }
    if (collective, algorithm) in (("broadcast", "ring"), ("reduce", "ring")):
        k = segments or p
        g = gamma if collective == "reduce" else 0.0
        return (k + p - 2) * alpha, (k + p - 2) / k * (beta + g)
    try:
        return table[(collective, algorithm)]
    except KeyError:
        raise ValueError(f"no closed form for {collective}/{algorithm}; it has "
                         f"{'a pipelined schedule' if 'tree' in algorithm or algorithm == 'hierarchical' else 'none'}: "
                         f"use aisys.dist.simulate for its time. Closed forms: "
                         f"{', '.join(sorted(f'{c}/{a}' for c, a in table))}") from None


def collective_time(collective: str, algorithm: str, p: int, nbytes: float, alpha: float, bandwidth: float,
                    gamma: float = 0.0, segments: int | None = None) -> float:
    """Seconds for one collective of ``nbytes`` per rank: ``collective_time("allreduce", "ring", 8, 1 << 20,
    alpha=5e-6, bandwidth=25e9)``. ``bandwidth`` in bytes/s (β = 1/bandwidth)."""
    A, B = cost_coefficients(collective, algorithm, p, alpha, 1.0 / bandwidth, gamma, segments)
    return A + B * nbytes


def allreduce_time(algorithm: str, p: int, nbytes: float, alpha: float, bandwidth: float) -> float:
    """Lab 10's α-β model of an all-reduce: ``ring`` 2(p−1)α + 2(p−1)/p·n/B, ``tree`` (binomial reduce, then
    broadcast) 2⌈log₂p⌉(α + n/B), ``reduce_broadcast`` (flat, through the root's port) 2α + 2(p−1)·n/B."""
    if algorithm not in ("ring", "tree", "reduce_broadcast"):
        raise ValueError(f"allreduce_time: algorithm {algorithm!r} must be 'ring', 'tree' or 'reduce_broadcast'")
    return collective_time("allreduce", algorithm, p, nbytes, alpha, bandwidth)


def bytes_sent_per_rank(collective: str, algorithm: str, p: int, nbytes: float) -> float:
    """Bytes each rank sends when chunks split evenly (ring all-reduce: 2(p−1)/p·n, the busBw factor)."""
    if p <= 1:
        return 0.0
    f = (p - 1) / p
    pow2 = not p & (p - 1)
    if collective == "allreduce" and (algorithm in ("ring", "direct") or (algorithm == "rabenseifner" and pow2)):
        return 2 * f * nbytes
    if (collective, algorithm) in (("reduce_scatter", "ring"), ("reduce_scatter", "direct"),
                                   ("allgather", "ring"), ("allgather", "bruck"), ("allgather", "direct"),
                                   ("alltoall", "pairwise"), ("alltoall", "direct")) or \
            ((collective, algorithm) == ("reduce_scatter", "recursive_halving") and pow2):
        return f * nbytes
    if (collective, algorithm) == ("allreduce", "recursive_doubling") and pow2:
        return _lg(p) * nbytes
    raise ValueError(f"no closed form for the bytes each rank sends in {collective}/{algorithm} on {p} ranks "
                     f"(ranks differ); use aisys.dist.simulate(...).bytes_sent")


def crossover(algorithm_a: str, algorithm_b: str, p: int, alpha: float, bandwidth: float,
              collective: str = "allreduce", gamma: float = 0.0) -> float | None:
    """The message size (bytes) where the two algorithms take equal time, or None if one always wins.
    Below it the algorithm with the smaller latency term is faster."""
    A1, B1 = cost_coefficients(collective, algorithm_a, p, alpha, 1.0 / bandwidth, gamma)
    A2, B2 = cost_coefficients(collective, algorithm_b, p, alpha, 1.0 / bandwidth, gamma)
    if B1 == B2:
        return None
    n = (A2 - A1) / (B1 - B2)
    return n if n > 0 else None


def link_alpha_beta(topology: Topology, src: int = 0, dst: int = 1) -> tuple[float, float]:
    """(α seconds, bandwidth bytes/s) of one message from ``src`` to ``dst`` on a topology: the path's
    latencies add up, its slowest link sets the bandwidth."""
    path = topology.route(src, dst)
    if not path:
        raise ValueError(f"link_alpha_beta: rank {src} and rank {dst} are the same device")
    return float(topology.link_alpha[path].sum()), float(topology.link_bandwidth[path].min())


def fit_alpha_beta(nbytes, seconds) -> tuple[float, float]:
    """Least-squares fit of t = α + n/bandwidth to measurements; returns (α seconds, bandwidth bytes/s)."""
    n = np.asarray(nbytes, dtype=float)
    t = np.asarray(seconds, dtype=float)
    if n.shape != t.shape or n.size < 2 or np.ptp(n) == 0:
        raise ValueError("fit_alpha_beta needs at least two measurements at different sizes (same length lists)")
    slope, intercept = np.polyfit(n, t, 1)
    if slope <= 0:
        raise ValueError(f"fit_alpha_beta: the time does not grow with the size (slope {slope:.3g} s/B); "
                         f"measure larger messages or repeat the timing")
    return float(max(intercept, 0.0)), float(1.0 / slope)
