"""Collective algorithms written as schedules (who sends which chunk to whom at each step).

The algorithms are the classic ones of MPICH (Thakur, Rabenseifner & Gropp, "Optimization of Collective
Communication Operations in MPICH", IJHPCA 2005) and NCCL:

=============== =====================================================================================
allreduce       ring (reduce-scatter + all-gather), tree (binomial reduce + binomial broadcast),
                reduce_broadcast (everyone to the root and back, flat), recursive_doubling,
                rabenseifner (recursive halving + doubling), double_binary_tree (NCCL's two pipelined
                trees, Sanders, Speck & Träff 2009), direct (one-shot reduce-scatter + all-gather),
                hierarchical (ring inside each node, ring across nodes, ring inside again)
reduce_scatter  ring, recursive_halving, direct
allgather       ring, bruck (any p in ⌈log₂p⌉ steps; recursive doubling when p is a power of two), direct
broadcast       tree (binomial), ring (pipelined chain), direct
reduce          tree (binomial), ring (pipelined chain), direct
alltoall        pairwise (p−1 exchange steps), direct (all at once)
=============== =====================================================================================

Non-powers of two are handled as MPICH does: the first 2r ranks (r = p − 2^⌊log₂p⌋) pair up, odd ones
hand their data to their even neighbour, the power-of-two algorithm runs, and the result is handed back.
Chunks are :func:`chunk_bounds` pieces, so any n works (chunks differ by at most one element).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .schedule import COLLECTIVES, Schedule, chunk_bounds

__all__ = ["ALGORITHMS", "DEFAULT_ALGORITHM", "build_schedule", "btree_parents", "ring_allreduce_steps",
           "pairwise_alltoall_steps"]


class _Plan:
    """Accumulates transfers as numpy arrays: step, src, dst, src_off, dst_off, count, reduce, chunk."""

    _KEYS = ("step", "src", "dst", "src_off", "dst_off", "count", "reduce", "chunk")

    def __init__(self):
        self.parts: list[dict] = []

    def add(self, step, src, dst, src_off, dst_off, count, reduce, chunk=-1):
        arrs = np.broadcast_arrays(*(np.asarray(x, dtype=np.int64) for x in
                                     (step, src, dst, src_off, dst_off, count, reduce, chunk)))
        self.parts.append({k: a.ravel() for k, a in zip(self._KEYS, arrs)})

    def arrays(self) -> dict:
        if not self.parts:
            return {k: np.zeros(0, np.int64) for k in self._KEYS}
        return {k: np.concatenate([p[k] for p in self.parts]) for k in self._KEYS}


# ---------------------------------------------------------------------------------------------------
# building blocks (each returns the next free step)
# ---------------------------------------------------------------------------------------------------

def _ring_reduce_scatter(plan: _Plan, rings, lo: int, length: int, s0: int) -> int:
    """Each ring (a list of ranks) reduce-scatters [lo, lo+length): ring position i ends with chunk i."""
    rings = np.asarray(rings, dtype=np.int64).reshape(-1, np.shape(rings)[-1])
    k = rings.shape[1]
    if k < 2:
        return s0
    b = lo + chunk_bounds(length, k)
    S, I = np.meshgrid(np.arange(k - 1), np.arange(k), indexing="ij")
    c = (I - S - 1) % k
    for ring in rings:
        plan.add(s0 + S, ring[I], ring[(I + 1) % k], b[c], b[c], b[c + 1] - b[c], 1, c)
    return s0 + k - 1


def _ring_allgather(plan: _Plan, rings, lo: int, length: int, s0: int) -> int:
    """Each ring all-gathers [lo, lo+length): position i starts with chunk i, sends chunk i−s at step s."""
    rings = np.asarray(rings, dtype=np.int64).reshape(-1, np.shape(rings)[-1])
    k = rings.shape[1]
    if k < 2:
        return s0
    b = lo + chunk_bounds(length, k)
    S, I = np.meshgrid(np.arange(k - 1), np.arange(k), indexing="ij")
    c = (I - S) % k
    for ring in rings:
        plan.add(s0 + S, ring[I], ring[(I + 1) % k], b[c], b[c], b[c + 1] - b[c], 0, c)
    return s0 + k - 1


def _binomial_reduce(plan: _Plan, p: int, root: int, n: int, s0: int) -> int:
    step, mask = s0, 1
    v = np.arange(p)
    while mask < p:
        senders = v[(v % (2 * mask)) == mask]
        plan.add(step, (senders + root) % p, (senders - mask + root) % p, 0, 0, n, 1, 0)
        mask *= 2
        step += 1
    return step


def _binomial_broadcast(plan: _Plan, p: int, root: int, n: int, s0: int) -> int:
    step, mask = s0, 1
    v = np.arange(p)
    while mask < p:
        senders = v[(v < mask) & (v + mask < p)]
        plan.add(step, (senders + root) % p, (senders + mask + root) % p, 0, 0, n, 0, 0)
        mask *= 2
        step += 1
    return step


def _chain(plan: _Plan, order, n: int, segments: int, reduce: bool, s0: int) -> int:
    """A pipelined chain order[0] -> order[1] -> ...: position j passes segment c on at step c + j."""
    order = np.asarray(order, dtype=np.int64)
    p = len(order)
    if p < 2:
        return s0
    k = max(1, min(int(segments), n)) if n else 1
    b = chunk_bounds(n, k)
    J, C = np.meshgrid(np.arange(p - 1), np.arange(k), indexing="ij")
    plan.add(s0 + C + J, order[J], order[J + 1], b[C], b[C], b[C + 1] - b[C], int(reduce), C)
    return s0 + k + p - 2


def _direct_exchange(plan: _Plan, p: int, n: int, step: int, reduce: bool) -> None:
    """One step in which every rank sends straight to every other: chunk j to rank j, added there (reduce),
    or its own chunk r to everyone, copied (gather)."""
    b = chunk_bounds(n, p)
    R, J = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    off = R != J
    R, J = R[off], J[off]
    c = J if reduce else R
    plan.add(step, R, J, b[c], b[c], b[c + 1] - b[c], int(reduce), c)


def _fold(p: int):
    """MPICH's non-power-of-two fold: (p2, rem, real rank of each virtual rank)."""
    p2 = 1 << (p.bit_length() - 1)
    rem = p - p2
    v = np.arange(p2)
    real = np.where(v < rem, 2 * v, v + rem)
    return p2, rem, real


def _fold_in(plan: _Plan, rem: int, n: int, step: int) -> int:
    if rem:
        i = np.arange(rem)
        plan.add(step, 2 * i + 1, 2 * i, 0, 0, n, 1, -1)
        return step + 1
    return step


def _fold_out(plan: _Plan, rem: int, lo, count, step: int) -> int:
    if rem:
        i = np.arange(rem)
        plan.add(step, 2 * i, 2 * i + 1, lo, lo, count, 0, -1)
        return step + 1
    return step


def _virtual_block_bounds(p: int, n: int):
    """Element offset where virtual rank v's blocks start (v = 0..p2): folded pairs own two blocks."""
    p2, rem, _ = _fold(p)
    b = chunk_bounds(n, p)
    v = np.arange(p2 + 1)
    first_block = np.where(v < rem, 2 * v, v + rem)
    return b[first_block]


def _halving(plan: _Plan, p: int, n: int, step: int) -> int:
    """Recursive halving among the virtual ranks: v ends owning its blocks, fully reduced."""
    p2, _, real = _fold(p)
    E = _virtual_block_bounds(p, n)
    v = np.arange(p2)
    m = p2 // 2
    while m >= 1:
        base = v & ~(2 * m - 1)
        lower = (v & m) == 0
        send_lo = np.where(lower, base + m, base)           # the partner's half, in virtual ranks
        a, b = E[send_lo], E[send_lo + m]
        plan.add(step, real[v], real[v ^ m], a, a, b - a, 1, send_lo)
        m //= 2
        step += 1
    return step


def _doubling_gather(plan: _Plan, p: int, n: int, step: int) -> int:
    """Recursive doubling all-gather among the virtual ranks (the mirror of :func:`_halving`)."""
    p2, _, real = _fold(p)
    E = _virtual_block_bounds(p, n)
    v = np.arange(p2)
    m = 1
    while m < p2:
        own = v & ~(m - 1)
        a, b = E[own], E[own + m]
        plan.add(step, real[v], real[v ^ m], a, a, b - a, 0, own)
        m *= 2
        step += 1
    return step


def btree_parents(p: int, mirror: bool = False, shift: bool = False) -> np.ndarray:
    """Parent of each rank in NCCL-style in-order binary trees (-1 for the root). Position v+1 in 1..p:
    parent = (v | 2·lowbit) & ~lowbit, climbing past positions beyond p. The second tree of a double binary
    tree is the first shifted by one rank (p even) or mirrored (p odd), so a rank that is a leaf in one tree
    is inside the other."""
    top = 1 << (p.bit_length() - 1)                     # the root: the largest power of two <= p
    par_pos = np.full(p, -1, np.int64)
    for pos in range(p):
        v = pos + 1
        if v == top:
            continue
        lb = v & -v
        up = (v | (lb << 1)) & ~lb
        while up > p:                                      # climb past positions that do not exist
            lb <<= 1
            up = (up | (lb << 1)) & ~lb
        par_pos[pos] = up - 1
    if mirror:
        rank_of = p - 1 - np.arange(p)
    elif shift:
        rank_of = (np.arange(p) + 1) % p
    else:
        rank_of = np.arange(p)
    parent = np.full(p, -1, np.int64)
    parent[rank_of] = np.where(par_pos >= 0, rank_of[np.maximum(par_pos, 0)], -1)
    return parent


def _tree_shape(parent: np.ndarray):
    p = len(parent)
    depth = np.zeros(p, np.int64)
    for r in range(p):
        d, x = 0, r
        while parent[x] >= 0:
            x = parent[x]
            d += 1
        depth[r] = d
    height = np.zeros(p, np.int64)
    for r in np.argsort(-depth):
        if parent[r] >= 0:
            height[parent[r]] = max(height[parent[r]], height[r] + 1)
    return depth, height


def _pipelined_tree_allreduce(plan: _Plan, parent: np.ndarray, lo: int, length: int, segments: int,
                              s0: int, chunk0: int = 0) -> int:
    """Reduce segments up the tree, then broadcast them down, pipelined: a node sends segment c up at step
    c + height(node); the root starts segment c down at step c + H and a node at depth d passes it on at
    c + H + d."""
    p = len(parent)
    if p < 2 or length == 0:
        return s0
    k = max(1, min(int(segments), length))
    b = lo + chunk_bounds(length, k)
    depth, height = _tree_shape(parent)
    H = int(height.max())
    kids = np.flatnonzero(parent >= 0)
    X, C = np.meshgrid(kids, np.arange(k), indexing="ij")
    plan.add(s0 + C + height[X], X, parent[X], b[C], b[C], b[C + 1] - b[C], 1, chunk0 + C)
    plan.add(s0 + C + H + depth[parent[X]], parent[X], X, b[C], b[C], b[C + 1] - b[C], 0, chunk0 + C)
    return s0 + k + H + int(depth.max())


# ---------------------------------------------------------------------------------------------------
# the algorithms
# ---------------------------------------------------------------------------------------------------

def _allreduce_ring(p, n, root, **kw):
    plan = _Plan()
    s = _ring_reduce_scatter(plan, [list(range(p))], 0, n, 0)
    _ring_allgather(plan, [list(range(p))], 0, n, s)
    return plan, "ring reduce-scatter (p−1 steps) then ring all-gather (p−1 steps)"


def _allreduce_tree(p, n, root, **kw):
    plan = _Plan()
    s = _binomial_reduce(plan, p, 0, n, 0)
    _binomial_broadcast(plan, p, 0, n, s)
    return plan, "binomial-tree reduce to rank 0, then binomial-tree broadcast (2⌈log₂p⌉ steps of n)"


def _allreduce_reduce_broadcast(p, n, root, **kw):
    plan = _Plan()
    others = np.arange(1, p)
    plan.add(0, others, 0, 0, 0, n, 1, 0)
    plan.add(1, 0, others, 0, 0, n, 0, 0)
    return plan, "flat: every rank sends its vector to rank 0, which sums and sends the result to everyone"


def _allreduce_recursive_doubling(p, n, root, **kw):
    plan = _Plan()
    p2, rem, real = _fold(p)
    s = _fold_in(plan, rem, n, 0)
    v = np.arange(p2)
    m = 1
    while m < p2:
        plan.add(s, real[v], real[v ^ m], 0, 0, n, 1, -1)
        m *= 2
        s += 1
    _fold_out(plan, rem, 0, n, s)
    return plan, "recursive doubling: ⌈log₂p⌉ exchanges of the whole vector (plus a fold for non-powers of two)"


def _allreduce_rabenseifner(p, n, root, **kw):
    plan = _Plan()
    _, rem, _ = _fold(p)
    s = _fold_in(plan, rem, n, 0)
    s = _halving(plan, p, n, s)
    s = _doubling_gather(plan, p, n, s)
    _fold_out(plan, rem, 0, n, s)
    return plan, "Rabenseifner: recursive-halving reduce-scatter then recursive-doubling all-gather"


def _allreduce_double_binary_tree(p, n, root, segments: int | None = None, **kw):
    plan = _Plan()
    k = segments or 8
    half = n // 2
    t1 = btree_parents(p)
    t2 = btree_parents(p, mirror=p % 2 == 1, shift=p % 2 == 0)
    _pipelined_tree_allreduce(plan, t1, 0, half, k, 0, chunk0=0)
    _pipelined_tree_allreduce(plan, t2, half, n - half, k, 0, chunk0=k)
    return plan, (f"NCCL's double binary tree: each half of the vector goes up one tree and back down, in {k} "
                  f"pipelined segments; a leaf of one tree is inside the other")


def _allreduce_direct(p, n, root, **kw):
    plan = _Plan()
    _direct_exchange(plan, p, n, 0, reduce=True)
    _direct_exchange(plan, p, n, 1, reduce=False)
    return plan, "direct: every rank sends chunk j straight to rank j (reduce), then rank j sends it to everyone"


def _allreduce_hierarchical(p, n, root, nodes=None, **kw):
    if nodes is None:
        raise ValueError("allreduce/hierarchical needs the node layout: pass topology= (a cluster) or "
                         "nodes=[[0, 1, ...], [8, 9, ...]]")
    nodes = [list(x) for x in nodes]
    sizes = {len(x) for x in nodes}
    if len(sizes) != 1 or sorted(r for x in nodes for r in x) != list(range(p)):
        raise ValueError(f"allreduce/hierarchical: nodes must partition ranks 0..{p - 1} into equal groups, got "
                         f"sizes {[len(x) for x in nodes]}")
    L = sizes.pop()
    plan = _Plan()
    s = _ring_reduce_scatter(plan, nodes, 0, n, 0)
    b = chunk_bounds(n, L)
    s_mid = s
    for j in range(L):
        across = [[node[j] for node in nodes]]
        e = _ring_reduce_scatter(plan, across, int(b[j]), int(b[j + 1] - b[j]), s_mid)
        e = _ring_allgather(plan, across, int(b[j]), int(b[j + 1] - b[j]), e)
        s = max(s, e)
    _ring_allgather(plan, nodes, 0, n, s)
    return plan, (f"hierarchical: ring reduce-scatter inside each of the {len(nodes)} nodes, ring all-reduce of "
                  f"each chunk across nodes, ring all-gather inside each node")


def _reduce_scatter_ring(p, n, root, **kw):
    plan = _Plan()
    _ring_reduce_scatter(plan, [list(range(p))], 0, n, 0)
    return plan, "ring: p−1 steps, each rank passes one chunk on and adds the one it receives"


def _reduce_scatter_recursive_halving(p, n, root, **kw):
    plan = _Plan()
    p2, rem, _ = _fold(p)
    s = _fold_in(plan, rem, n, 0)
    s = _halving(plan, p, n, s)
    b = chunk_bounds(n, p)
    i = np.arange(rem)
    _fold_out(plan, rem, b[2 * i + 1], b[2 * i + 2] - b[2 * i + 1], s)
    return plan, "recursive halving: ⌈log₂p⌉ steps, each exchanging half of what is left"


def _reduce_scatter_direct(p, n, root, **kw):
    plan = _Plan()
    _direct_exchange(plan, p, n, 0, reduce=True)
    return plan, "direct: every rank sends chunk j straight to rank j, which adds them up"


def _allgather_ring(p, n, root, **kw):
    plan = _Plan()
    _ring_allgather(plan, [list(range(p))], 0, n, 0)
    return plan, "ring: p−1 steps, each rank passes on the chunk it received last"


def _allgather_bruck(p, n, root, **kw):
    plan = _Plan()
    b = chunk_bounds(n, p)
    r = np.arange(p)
    d, step = 1, 0
    while d < p:
        cnt = min(d, p - d)
        first = r                                   # owned blocks r .. r+cnt-1 (mod p)
        last = r + cnt                              # exclusive, may pass p
        dst = (r - d) % p
        # the run up to the end of the buffer, then the wrapped part
        end1 = np.minimum(last, p)
        plan.add(step, r, dst, b[first], b[first], b[end1] - b[first], 0, first)
        wrap = last > p
        if wrap.any():
            plan.add(step, r[wrap], dst[wrap], 0, 0, b[last[wrap] - p], 0, 0)
        d *= 2
        step += 1
    return plan, "Bruck (dissemination): at step k send everything you have to rank r − 2^k; ⌈log₂p⌉ steps"


def _allgather_direct(p, n, root, **kw):
    plan = _Plan()
    _direct_exchange(plan, p, n, 0, reduce=False)
    return plan, "direct: every rank sends its chunk to everyone in one step"


def _broadcast_tree(p, n, root, **kw):
    plan = _Plan()
    _binomial_broadcast(plan, p, root, n, 0)
    return plan, "binomial tree: the set of ranks holding the data doubles each step"


def _broadcast_ring(p, n, root, segments: int | None = None, **kw):
    plan = _Plan()
    order = [(root + j) % p for j in range(p)]
    _chain(plan, order, n, segments or p, False, 0)
    return plan, "pipelined chain: segments flow root -> root+1 -> ... one hop per step"


def _broadcast_direct(p, n, root, **kw):
    plan = _Plan()
    others = np.array([r for r in range(p) if r != root], dtype=np.int64)
    plan.add(0, root, others, 0, 0, n, 0, 0)
    return plan, "direct: the root sends the whole vector to every rank at once"


def _reduce_tree(p, n, root, **kw):
    plan = _Plan()
    _binomial_reduce(plan, p, root, n, 0)
    return plan, "binomial tree: half of the remaining ranks send to a partner each step"


def _reduce_ring(p, n, root, segments: int | None = None, **kw):
    plan = _Plan()
    order = [(root + 1 + j) % p for j in range(p)]
    _chain(plan, order, n, segments or p, True, 0)
    return plan, "pipelined chain ending at the root: segments are summed hop by hop"


def _reduce_direct(p, n, root, **kw):
    plan = _Plan()
    others = np.array([r for r in range(p) if r != root], dtype=np.int64)
    plan.add(0, others, root, 0, 0, n, 1, 0)
    return plan, "direct: every rank sends its vector to the root, which adds them"


def _alltoall_pairwise(p, n, root, **kw):
    plan = _Plan()
    blk = n // p
    S, I = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    J = (I + S) % p
    plan.add(S, I, J, J * blk, n + I * blk, blk, 0, J)
    return plan, "pairwise exchange: at step s rank i sends block i+s to rank i+s (step 0 is the local copy)"


def _alltoall_direct(p, n, root, **kw):
    plan = _Plan()
    blk = n // p
    I, J = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    plan.add(0, I, J, J * blk, n + I * blk, blk, 0, J)
    return plan, "direct: every rank sends all p−1 blocks at once"


ALGORITHMS = {
    "allreduce": {"ring": _allreduce_ring, "tree": _allreduce_tree, "reduce_broadcast": _allreduce_reduce_broadcast,
                  "recursive_doubling": _allreduce_recursive_doubling, "rabenseifner": _allreduce_rabenseifner,
                  "double_binary_tree": _allreduce_double_binary_tree, "direct": _allreduce_direct,
                  "hierarchical": _allreduce_hierarchical},
    "reduce_scatter": {"ring": _reduce_scatter_ring, "recursive_halving": _reduce_scatter_recursive_halving,
                       "direct": _reduce_scatter_direct},
    "allgather": {"ring": _allgather_ring, "bruck": _allgather_bruck, "direct": _allgather_direct},
    "broadcast": {"tree": _broadcast_tree, "ring": _broadcast_ring, "direct": _broadcast_direct},
    "reduce": {"tree": _reduce_tree, "ring": _reduce_ring, "direct": _reduce_direct},
    "alltoall": {"pairwise": _alltoall_pairwise, "direct": _alltoall_direct},
}
DEFAULT_ALGORITHM = {"allreduce": "ring", "reduce_scatter": "ring", "allgather": "ring", "broadcast": "tree",
                     "reduce": "tree", "alltoall": "pairwise"}


def build_schedule(collective: str, algorithm: str | None = None, p: int = 2, n: int = 0, *, root: int = 0,
                   nodes=None, segments: int | None = None) -> Schedule:
    """The schedule of one collective: ``build_schedule("allreduce", "ring", p=4, n=1024)``.

    ``n`` is the length of the whole vector in elements (for allgather: all ranks' pieces together; for
    alltoall: p blocks). ``nodes`` (rank groups) is needed by ``hierarchical``; ``segments`` sets the
    pipeline depth of ``double_binary_tree`` and the chains.
    """
    if collective not in ALGORITHMS:
        raise ValueError(f"unknown collective {collective!r}; choose one of {', '.join(COLLECTIVES)}")
    algorithm = algorithm or DEFAULT_ALGORITHM[collective]
    if algorithm not in ALGORITHMS[collective]:
        raise ValueError(f"{collective} has no algorithm {algorithm!r}; choose one of "
                         f"{', '.join(ALGORITHMS[collective])}")
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
        raise ValueError(f"{collective}/{algorithm}: p must be a positive number of ranks, got {p!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{collective}/{algorithm}: n must be a number of elements >= 0, got {n!r}")
    if not 0 <= root < p:
        raise ValueError(f"{collective}/{algorithm}: root {root} is not a rank of 0..{p - 1}")
    nodes_key = None if nodes is None else tuple(tuple(int(r) for r in x) for x in nodes)
    return _cached(collective, algorithm, int(p), int(n), int(root), nodes_key, segments)


@lru_cache(maxsize=64)
def _cached(collective, algorithm, p, n, root, nodes, segments) -> Schedule:
    plan, desc = ALGORITHMS[collective][algorithm](p, n, root, nodes=nodes, segments=segments)
    uses_root = collective in ("broadcast", "reduce")
    return Schedule.from_steps(collective, algorithm, p, n, plan.arrays(), root=root if uses_root else None,
                               description=desc, check_overlaps=False)


def ring_allreduce_steps(p: int) -> list[list[tuple[int, int, int, bool]]]:
    """The ring all-reduce of p chunks as steps of ``(src, dst, chunk, reduce)``: p−1 reduce-scatter steps
    (rank r passes chunk r−s−1 to rank r+1, which adds it), then p−1 all-gather steps (rank r passes chunk r−s
    on, which is copied). Read off the library's schedule with one element per chunk."""
    sched = build_schedule("allreduce", "ring", p, p)
    return [[(t.src, t.dst, t.chunk, t.reduce) for t in sched.transfers_at(k)] for k in range(sched.nsteps)]


def pairwise_alltoall_steps(p: int) -> list[list[tuple[int, int, int, int]]]:
    """Pairwise all-to-all as steps of ``(src, dst, src_block, dst_block)``: at step s rank i sends its block
    i+s to rank i+s, where it becomes block i (step 0 is each rank's copy of its own block)."""
    sched = build_schedule("alltoall", "pairwise", p, p)
    return [[(t.src, t.dst, t.src_off, t.dst_off - p) for t in sched.transfers_at(k)] for k in range(sched.nsteps)]
