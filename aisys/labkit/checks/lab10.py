"""Checks for lab 10 — collective communication and interconnects.

10.1 ``ring_allreduce_steps(p)``: the ring all-reduce as steps of ``(src, dst, chunk, reduce)`` — p−1
     reduce-scatter steps then p−1 all-gather steps. Run as a schedule on random data for p = 1…9: every rank
     must hold the sum, and send 2(p−1)/p of the vector (the busBw factor of nccl-tests).
10.2 ``allreduce_time(algorithm, p, nbytes, alpha, bandwidth)``: the α-β model of ring, tree and flat
     reduce+broadcast all-reduce, compared with the simulator on switch topologies (DGX A100's NVSwitch among
     them), and the ring/tree crossover size that the model predicts.
10.3 ``pairwise_alltoall_steps(p)``: the pairwise all-to-all as steps of ``(src, dst, src_block, dst_block)``;
     block j of rank i must land at block i of rank j, one message in and out per rank and step.
"""
from __future__ import annotations

import math

import numpy as np

from aisys.dist import Schedule, ScheduleError, Topology, chunk_bounds, execute, simulate
from aisys.dist.costs import allreduce_time as _allreduce_time
from aisys.dist.costs import crossover as _crossover
from aisys.labkit import Checker, register
from aisys.labkit.checker import telltale
from aisys.labkit.learner import call as _call

# ---------------------------------------------------------------------------------------------------
# 10.1 ring all-reduce
# ---------------------------------------------------------------------------------------------------


def _steps_schedule(steps, p: int, n: int) -> Schedule:
    return Schedule.from_chunk_steps("allreduce", steps, p, n)


@register("10.1", title="Ring all-reduce = reduce-scatter + all-gather", lab="10_collectives",
          reference="aisys.dist.algorithms:ring_allreduce_steps",
          bad=[("aisys.labkit.checks.lab10:_ring_copies_instead_of_adding", 'must add'),
               ("aisys.labkit.checks.lab10:_ring_forgets_the_allgather", 'the all-gather is missing'),
               ("aisys.labkit.checks.lab10:_ring_allgather_starts_from_the_wrong_chunk", 'sends chunk 1, but'),
               ("aisys.labkit.checks.lab10:_ring_one_step_short", 'p−1 hops'),
               ("aisys.labkit.checks.lab10:_ring_everyone_sends_everything", 'one chunk per step'),
               ("aisys.labkit.checks.lab10:_ring_reduce_scatter_off_by_one_chunk", 'completed chunk 1')])
def _check_10_1(fn, c: Checker):
    ring = ("The lecture's ring: reduce-scatter step s, rank r sends chunk (r−s−1) mod p to rank r+1, which adds it, "
            "so after p−1 steps rank r holds the sum of chunk r; all-gather step s, rank r sends chunk (r−s) mod p on, "
            "which is copied")
    for p in range(1, 10):
        steps, error = _call(fn, p)
        what = f"p = {p} ranks"
        if error:
            c.fail(what, expected="a list of steps of (src, dst, chunk, reduce)", got=error, hint=ring)
        if not isinstance(steps, (list, tuple)):
            c.fail(what, expected="a list of steps", got=repr(steps)[:120], hint=ring)
        n = 12 * p + 5                                  # uneven chunks
        try:
            sched = _steps_schedule(steps, p, n)
        except (ScheduleError, ValueError, TypeError, IndexError) as exc:
            c.fail(what, expected="steps of (src, dst, chunk, reduce) tuples", got=f"{type(exc).__name__}: {exc}",
                   hint=ring)
        _ring_shape(c, steps, p, what)
        _ring_phases(c, steps, p, n, what, ring)
        x = [c.rng.integers(-9, 9, n).astype(np.float64) for _ in range(p)]
        out = execute(sched, x)
        total = sum(x)
        bad = [r for r in range(p) if not np.array_equal(out[r], total)]
        c.true(not bad, what=f"{what}: every rank holds the sum of all vectors",
               expected="the elementwise sum on every rank", got=f"ranks {bad} differ", hint=ring)
        if p > 1:
            chunk = 12                                  # sizes with n = 12p: every chunk holds 12 elements
            even = _steps_schedule(steps, p, chunk * p)
            sent = even.elements_sent()
            c.equal(sent.tolist(), [2 * (p - 1) * chunk] * p,
                    what=f"{what}: elements each rank sends for a vector of {chunk * p}",
                    hint="2(p−1)/p · N per rank — the busBw factor of nccl-tests; sending whole vectors costs p/2 "
                         "times more")


def _ring_shape(c: Checker, steps, p: int, what: str) -> None:
    """One chunk per rank per step, to the next rank on the ring; 2(p−1) steps."""
    problem = ""
    for k, step in enumerate(steps):
        senders = [int(t[0]) for t in step]
        extra = sorted({r for r in senders if senders.count(r) > 1})
        wrong = [(int(t[0]), int(t[1])) for t in step if int(t[1]) != (int(t[0]) + 1) % p]
        if extra or wrong:
            problem = (f"step {k}: rank {extra[0]} sends {senders.count(extra[0])} messages" if extra else
                       f"step {k}: rank {wrong[0][0]} sends to rank {wrong[0][1]}")
            break
    c.true(not problem, what=f"{what}: every step uses the ring",
           expected="each rank r sends one chunk per step, to rank (r+1) mod p", got=problem,
           hint="a ring link carries one chunk per step, from rank r to rank r+1: that is what makes every link "
                "busy all the time and each rank send only 2(p−1)/p of the vector; sending every chunk to every "
                "rank moves p/2 times more")
    adds = sum(1 for step in steps if step and all(bool(t[3]) for t in step))
    copies = sum(1 for step in steps if step and not any(bool(t[3]) for t in step))
    if adds == p - 1 and copies == 0:
        hint = ("after the p−1 reduce-scatter steps each rank holds the sum of only one chunk: the all-gather is "
                "missing (p−1 more steps that copy each summed chunk round the ring)")
    elif adds < p - 1:
        hint = (f"your reduce-scatter has {adds} adding step(s): a chunk needs p−1 hops to pick up the contributions "
                f"of all p ranks, one per hop")
    else:
        hint = (f"your all-gather has {copies} copying step(s): a summed chunk needs p−1 hops to reach the other p−1 "
                f"ranks")
    c.equal(len(steps), 2 * (p - 1), what=f"{what}: number of steps", hint=hint)


def _ring_phases(c: Checker, steps, p: int, n: int, what: str, ring: str) -> None:
    """Reduce-scatter adds and leaves each chunk's whole sum on one rank; the all-gather copies whole sums."""
    if p == 1:
        return
    flags = [[bool(t[3]) for t in step] for step in steps]
    copying = [k for k in range(p - 1) if not all(flags[k])]
    c.true(not copying, what=f"{what}: reduce-scatter steps add",
           expected="reduce=True in steps 0..p−2", got=f"a copy (reduce=False) in step {copying[0] if copying else ''}",
           hint="in the reduce-scatter the receiver must add the incoming chunk to its own (reduce=True): a copy "
                "overwrites the contributions it already collected")
    adding = [k for k in range(p - 1, 2 * (p - 1)) if any(flags[k])]
    c.true(not adding, what=f"{what}: all-gather steps copy",
           expected="reduce=False in steps p−1..2p−3", got=f"an addition (reduce=True) in step {adding[0] if adding else ''}",
           hint="in the all-gather the chunks are already summed: the receiver copies (reduce=False); adding would "
                "count contributions twice")
    # each rank contributes 2**r to every element: a chunk's value on a rank says whose contributions it holds
    b = chunk_bounds(n, p)
    x = [np.full(n, float(2 ** r)) for r in range(p)]
    held = execute(_steps_schedule(steps[:p - 1], p, n), x)
    full = float(2 ** p - 1)
    owner = {}
    for r in range(p):
        for ch in range(p):
            if np.all(held[r][b[ch]:b[ch + 1]] == full):
                owner.setdefault(r, ch)
    missing = [ch for ch in range(p) if ch not in owner.values()]
    if missing:
        ch = missing[0]
        best = max(range(p), key=lambda r: bin(int(held[r][b[ch]])).count("1"))
        c.fail(f"{what}: after the p−1 reduce-scatter steps",
               expected=f"the sum of all {p} ranks' chunk {ch} on one rank",
               got=f"at most {bin(int(held[best][b[ch]])).count('1')} of {p} contributions (on rank {best})",
               hint="each chunk must travel p−1 hops, picking up one contribution per hop: at step s rank r "
                    "forwards the chunk it received (and added to) at step s−1. " + ring)
    # the all-gather: every message carries a chunk its sender holds whole
    state = [arr.copy() for arr in held]
    for k, step in enumerate(steps[p - 1:]):
        for src, dst, ch, _ in step:
            src, ch = int(src), int(ch)
            if not np.all(state[src][b[ch]:b[ch + 1]] == full):
                done = [q for q in range(p) if np.all(state[src][b[q]:b[q + 1]] == full)]
                c.fail(f"{what}: all-gather step {k}",
                       expected=f"rank {src} sends a chunk it holds whole ({', '.join(map(str, done))})",
                       got=f"rank {src} sends chunk {ch}, but your reduce-scatter completed chunk "
                           f"{owner.get(src)} on rank {src} (chunk {ch} is only partly summed there)",
                       hint="the all-gather starts where the reduce-scatter ended: at its step 0 each rank sends the "
                            "chunk it completed, then it forwards the chunk it has just received. " + ring)
        nxt = [arr.copy() for arr in state]
        for src, dst, ch, _ in step:
            src, dst, ch = int(src), int(dst), int(ch)
            nxt[dst][b[ch]:b[ch + 1]] = state[src][b[ch]:b[ch + 1]]
        state = nxt


def _ring_copies_instead_of_adding(p):
    return [[(s, d, ch, False) for s, d, ch, _ in step] for step in _ring(p)]


def _ring_forgets_the_allgather(p):
    return _ring(p)[:p - 1]


def _ring_allgather_starts_from_the_wrong_chunk(p):
    steps = _ring(p)
    return steps[:p - 1] + [[(s, d, (ch + 1) % p, r) for s, d, ch, r in step] for step in steps[p - 1:]]


def _ring_one_step_short(p):
    steps = _ring(p)
    return steps[:p - 2] + steps[p - 1:] if p > 1 else steps


def _ring_everyone_sends_everything(p):
    return [[(r, q, ch, True) for r in range(p) for q in range(p) if q != r for ch in range(p)]] if p > 1 else []


def _ring_reduce_scatter_off_by_one_chunk(p):
    steps = _ring(p)
    return [[(s, d, (ch + 1) % p, r) for s, d, ch, r in step] for step in steps[:p - 1]] + steps[p - 1:]


def _ring(p):
    from aisys.dist.algorithms import ring_allreduce_steps
    return ring_allreduce_steps(p)


# ---------------------------------------------------------------------------------------------------
# 10.2 the α-β model and the crossover
# ---------------------------------------------------------------------------------------------------

@register("10.2", title="α-β model: ring vs tree vs reduce+broadcast, and the crossover", lab="10_collectives",
          reference="aisys.dist.costs:allreduce_time",
          bad=[("aisys.labkit.checks.lab10:_time_ring_without_the_all_gather", 'the reduce-scatter alone'),
               ("aisys.labkit.checks.lab10:_time_ring_sends_whole_vectors", 'not the whole vector'),
               ("aisys.labkit.checks.lab10:_time_tree_floor_log", 'one more level'),
               ("aisys.labkit.checks.lab10:_time_tree_counts_one_latency_per_level", 'a latency per level'),
               ("aisys.labkit.checks.lab10:_time_flat_is_sequential", 'one latency each way'),
               ("aisys.labkit.checks.lab10:_time_bandwidth_in_gigabits", 'B is in bytes per second')])
def _check_10_2(fn, c: Checker):
    hint = ("ring: 2(p−1)α + 2(p−1)/p·n/B; tree (binomial reduce, then binomial broadcast): 2⌈log₂p⌉(α + n/B); "
            "reduce_broadcast (all to the root through its one port, and back): 2α + 2(p−1)·n/B. B is in bytes "
            "per second (25 GB/s is 25e9, which is 200 Gbps)")
    nvswitch = Topology.preset("dgx_a100")
    alpha_nv = float(nvswitch.link_alpha[nvswitch.route(0, 1)].sum())
    bw_nv = float(nvswitch.link_bandwidth[0])
    cases = [(8, alpha_nv, bw_nv, "DGX A100, 8 GPUs on NVSwitch (300 GB/s)")]
    for p in (3, 5, 6):
        cases.append((p, float(c.rng.uniform(1e-6, 2e-5)), float(c.rng.choice([12.5e9, 25e9, 50e9])),
                      f"{p} ranks on a switch"))
    for p, alpha, bw, name in cases:
        topo = nvswitch if p == 8 else Topology.switch(p, alpha=alpha, bandwidth=bw)
        for algorithm in ("ring", "tree", "reduce_broadcast"):
            for nbytes in (p * 4096, p << 18, p << 24):          # chunks of whole float32 elements
                sim = simulate("allreduce", algorithm, topology=topo, nbytes=nbytes).time
                got, error = _call(fn, algorithm, p, nbytes, alpha, bw)
                what = f"{algorithm} all-reduce of {nbytes} B on {name}"
                if error:
                    c.fail(what, expected=f"{sim:.6g} s (the simulator)", got=error, hint=hint)
                known = [(wrong(algorithm, p, nbytes, alpha, bw), words) for wrong, words in _TIME_MISTAKES]
                c.close(float(got), sim, what=f"{what}: your model vs the simulator", rtol=1e-9,
                        hint=telltale(float(got), known, hint))
    # the crossover the model predicts on the DGX A100 preset
    p, alpha, bw = 8, alpha_nv, bw_nv
    want = _crossover("ring", "tree", p, alpha, bw)
    lo, hi = 1.0, 1e12
    f = lambda n: fn("ring", p, n, alpha, bw) - fn("tree", p, n, alpha, bw)  # noqa: E731
    if f(lo) * f(hi) > 0:
        c.fail("ring vs tree crossover on DGX A100", expected=f"{want:.4g} B", got="no sign change between 1 B and 1 TB",
               hint="tree wins small messages (fewer latencies), ring wins large ones (less data per rank)")
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if f(lo) * f(mid) > 0 else (lo, mid)
    c.close(hi, want, what="ring vs tree crossover on DGX A100 (where both take equal time)", rtol=1e-6, hint=hint)


def _time_ring_without_the_all_gather(algorithm, p, nbytes, alpha, bandwidth):
    if algorithm == "ring":
        return (p - 1) * alpha + (p - 1) / p * nbytes / bandwidth
    return _allreduce_time(algorithm, p, nbytes, alpha, bandwidth)


def _time_ring_sends_whole_vectors(algorithm, p, nbytes, alpha, bandwidth):
    if algorithm == "ring":
        return 2 * (p - 1) * (alpha + nbytes / bandwidth)
    return _allreduce_time(algorithm, p, nbytes, alpha, bandwidth)


def _time_tree_floor_log(algorithm, p, nbytes, alpha, bandwidth):
    if algorithm == "tree":
        return 2 * math.floor(math.log2(p)) * (alpha + nbytes / bandwidth)
    return _allreduce_time(algorithm, p, nbytes, alpha, bandwidth)


def _time_tree_counts_one_latency_per_level(algorithm, p, nbytes, alpha, bandwidth):
    if algorithm == "tree":
        lg = math.ceil(math.log2(p))
        return lg * alpha + 2 * lg * nbytes / bandwidth
    return _allreduce_time(algorithm, p, nbytes, alpha, bandwidth)


def _time_flat_is_sequential(algorithm, p, nbytes, alpha, bandwidth):
    if algorithm == "reduce_broadcast":
        return 2 * (p - 1) * (alpha + nbytes / bandwidth)
    return _allreduce_time(algorithm, p, nbytes, alpha, bandwidth)


def _time_bandwidth_in_gigabits(algorithm, p, nbytes, alpha, bandwidth):
    return _allreduce_time(algorithm, p, nbytes, alpha, bandwidth * 8)     # read "GB/s" as if it were Gbps


_TIME_MISTAKES = [
    (_time_ring_without_the_all_gather,
     "that is the reduce-scatter alone: the all-gather that follows costs as much again, 2(p−1)α + 2(p−1)/p·n/B "
     "in all"),
    (_time_ring_sends_whole_vectors,
     "each ring step moves one chunk of n/p bytes, not the whole vector: the bandwidth term is 2(p−1)/p·n/B"),
    (_time_tree_floor_log,
     "with p not a power of two the binomial tree needs one more level: ⌈log₂p⌉ levels (⌊log₂p⌋ leaves ranks out)"),
    (_time_tree_counts_one_latency_per_level,
     "the reduce and the broadcast each pay a latency per level of the tree: 2⌈log₂p⌉·α, with the bytes"),
    (_time_flat_is_sequential,
     "the p−1 messages to the root are sent at once and queue only for its port's bandwidth: one latency each way "
     "(2α), and 2(p−1)·n/B for the bytes"),
    (_time_bandwidth_in_gigabits,
     "B is in bytes per second (25 GB/s is 25e9 B/s, 200 Gbps): read as bits, the bandwidth term comes out 8x too "
     "small"),
]


# ---------------------------------------------------------------------------------------------------
# 10.3 all-to-all
# ---------------------------------------------------------------------------------------------------

@register("10.3", title="Pairwise all-to-all: block j of rank i lands at block i of rank j", lab="10_collectives",
          reference="aisys.dist.algorithms:pairwise_alltoall_steps",
          bad=[("aisys.labkit.checks.lab10:_a2a_keeps_the_block_index", 'it becomes block'),
               ("aisys.labkit.checks.lab10:_a2a_wrong_partner", 'its block d to rank d'),
               ("aisys.labkit.checks.lab10:_a2a_forgets_the_own_block", "own block"),
               ("aisys.labkit.checks.lab10:_a2a_all_at_once", 'one per step'),
               ("aisys.labkit.checks.lab10:_a2a_xor_pairs", 'power of two'),
               ("aisys.labkit.checks.lab10:_a2a_one_partner_short", 'p steps')])
def _check_10_3(fn, c: Checker):
    hint = ("at step s (0..p−1) rank i sends its block (i+s) mod p to rank (i+s) mod p, where it becomes block i; "
            "step 0 copies each rank's own block. Every rank sends one message and receives one per step")
    for p in range(1, 10):
        steps, error = _call(fn, p)
        what = f"p = {p} ranks"
        if error:
            c.fail(what, expected="a list of steps of (src, dst, src_block, dst_block)", got=error, hint=hint)
        blk = 3
        try:
            rows = [[(int(s), int(d), int(sb) * blk, p * blk + int(db) * blk, blk, 0, int(sb))
                     for s, d, sb, db in step] for step in steps]
            sched = Schedule.from_steps("alltoall", "yours", p, p * blk, rows)
        except (ScheduleError, ValueError, TypeError) as exc:
            c.fail(what, expected="steps of (src, dst, src_block, dst_block)", got=f"{type(exc).__name__}: {exc}",
                   hint=hint)
        _a2a_messages(c, steps, p, what)
        x = [np.array([100 * i + 10 * j + k for j in range(p) for k in range(blk)], float) for i in range(p)]
        out = execute(sched, x)
        wrong = [(i, j) for i in range(p) for j in range(p)
                 if not np.array_equal(out[j][i * blk:(i + 1) * blk], x[i][j * blk:(j + 1) * blk])]
        i, j = wrong[0] if wrong else (0, 0)
        c.true(not wrong, what=f"{what}: block j of rank i at block i of rank j, for all {p * p} pairs",
               expected=f"block {j} of rank {i} = {x[i][j * blk:(j + 1) * blk].tolist()} at block {i} of rank {j}",
               got=f"{out[j][i * blk:(i + 1) * blk].tolist()} there ({len(wrong)} blocks misplaced)", hint=hint)
        worst = 0
        for step in steps:
            remote = [(int(s), int(d)) for s, d, _, _ in step if s != d]
            outs = np.bincount([s for s, _ in remote], minlength=p) if remote else np.zeros(p)
            ins = np.bincount([d for _, d in remote], minlength=p) if remote else np.zeros(p)
            worst = max(worst, int(outs.max()), int(ins.max()))
        c.true(worst <= 1, what=f"{what}: at most one message out of and into each rank per step (pairwise)",
               expected="<= 1", got=worst,
               hint="pairwise exchange: each rank sends one message and receives one per step, so no port is "
                    "oversubscribed; sending all blocks at once makes every rank's port carry p−1 messages together")


def _a2a_messages(c: Checker, steps, p: int, what: str) -> None:
    """Every message carries the block its receiver owns, to the right place, and every pair is served once."""
    sent, wrong_block, wrong_place = {}, "", ""
    for k, step in enumerate(steps):
        for src, dst, sb, db in step:
            src, dst, sb, db = int(src), int(dst), int(sb), int(db)
            if sb != dst and not wrong_block:
                wrong_block = f"step {k}: rank {src} sends its block {sb} to rank {dst}"
            if db != src and not wrong_place:
                wrong_place = f"step {k}: rank {src}'s block {sb} lands at block {db} of rank {dst}"
            sent[src, dst] = sent.get((src, dst), 0) + 1
    c.true(not wrong_block, what=f"{what}: each message carries the block its receiver owns",
           expected="rank i sends block d to rank d", got=wrong_block,
           hint="block j of every rank belongs to rank j: rank i sends its block d to rank d (at step s, "
                "d = (i+s) mod p)")
    c.true(not wrong_place, what=f"{what}: each block lands at the index of the rank it came from",
           expected="block i of rank j holds what rank i sent", got=wrong_place,
           hint="at the receiver it becomes block i, i being the rank it came from: block i of rank j holds "
                "what rank i had for j (the source's block index says whom it is for, not where it goes)")
    own = [i for i in range(p) if (i, i) not in sent]
    c.true(not own, what=f"{what}: each rank keeps its own block", expected=f"(i, i, i, i) for every rank",
           got=f"rank {own[0]} never copies its own block" if own else "",
           hint="block i of rank i stays on rank i, moved to its place by a local copy: step 0 (s = 0, partner i+0) "
                "copies each rank's own block")
    missing = [(i, j) for i in range(p) for j in range(p) if (i, j) not in sent]
    twice = [pair for pair, n in sent.items() if n > 1]
    if missing:
        i, j = missing[0]
        xor = p & (p - 1) != 0 and any(int(t[1]) == int(t[0]) ^ k for k, step in enumerate(steps) for t in step
                                       if k > 0)
        c.fail(f"{what}: every rank sends to every rank", expected=f"rank {i} sends its block {j} to rank {j}",
               got=f"never ({len(missing)} pairs missing, {len(steps)} steps)",
               hint=("XOR partners i ^ s pair every rank only when p is a power of two; (i+s) mod p does for any p"
                     if xor else "p steps: at step s = 0..p−1 rank i exchanges with rank (i+s) mod p, so over the p "
                                 "steps it meets every rank once, itself included"))
    c.true(not twice, what=f"{what}: each block sent once", expected="once",
           got=f"rank {twice[0][0]} sends to rank {twice[0][1]} {sent[twice[0]]} times" if twice else "",
           hint="each (source, destination) pair exchanges one block, at the step s = (j − i) mod p")


def _a2a_keeps_the_block_index(p):
    return [[(s, d, sb, sb) for s, d, sb, _ in step] for step in _a2a(p)]


def _a2a_wrong_partner(p):
    return [[(i, (i - s) % p, (i + s) % p, i) for i in range(p)] for s in range(p)]


def _a2a_forgets_the_own_block(p):
    return _a2a(p)[1:]


def _a2a_all_at_once(p):
    return [[t for step in _a2a(p) for t in step]]


def _a2a_xor_pairs(p):
    return [[(i, i ^ s, i ^ s, i) for i in range(p) if (i ^ s) < p] for s in range(p)]


def _a2a_one_partner_short(p):
    return _a2a(p)[:-1] if p > 1 else _a2a(p)


def _a2a(p):
    from aisys.dist.algorithms import pairwise_alltoall_steps
    return pairwise_alltoall_steps(p)
