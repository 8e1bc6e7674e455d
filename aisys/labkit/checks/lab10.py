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
from aisys.labkit.learner import call as _call

# ---------------------------------------------------------------------------------------------------
# 10.1 ring all-reduce
# ---------------------------------------------------------------------------------------------------


def _steps_schedule(steps, p: int, n: int) -> Schedule:
    return Schedule.from_chunk_steps("allreduce", steps, p, n)


@register("10.1", title="Ring all-reduce = reduce-scatter + all-gather", lab="10_collectives",
          reference="aisys.dist.algorithms:ring_allreduce_steps",
          bad=["aisys.labkit.checks.lab10:_ring_copies_instead_of_adding",
               "aisys.labkit.checks.lab10:_ring_forgets_the_allgather",
               "aisys.labkit.checks.lab10:_ring_allgather_starts_from_the_wrong_chunk",
               "aisys.labkit.checks.lab10:_ring_one_step_short",
               "aisys.labkit.checks.lab10:_ring_everyone_sends_everything",
               "aisys.labkit.checks.lab10:_ring_reduce_scatter_off_by_one_chunk"])
def _check_10_1(fn, c: Checker):
    hint = ("reduce-scatter: at step s rank r sends chunk (r−s−1) mod p to rank r+1, which adds it; after p−1 "
            "steps rank r holds the sum of chunk r. All-gather: at step s rank r sends chunk (r−s) mod p on, which "
            "is copied. Each rank sends one chunk per step")
    for p in range(1, 10):
        steps, error = _call(fn, p)
        what = f"p = {p} ranks"
        if error:
            c.fail(what, expected="a list of steps of (src, dst, chunk, reduce)", got=error, hint=hint)
        if not isinstance(steps, (list, tuple)):
            c.fail(what, expected="a list of steps", got=repr(steps)[:120], hint=hint)
        n = 12 * p + 5                                  # uneven chunks
        try:
            sched = _steps_schedule(steps, p, n)
        except (ScheduleError, ValueError, TypeError, IndexError) as exc:
            c.fail(what, expected="steps of (src, dst, chunk, reduce) tuples", got=f"{type(exc).__name__}: {exc}",
                   hint=hint)
        x = [c.rng.integers(-9, 9, n).astype(np.float64) for _ in range(p)]
        out = execute(sched, x)
        total = sum(x)
        bad = [r for r in range(p) if not np.array_equal(out[r], total)]
        c.true(not bad, what=f"{what}: every rank holds the sum of all vectors",
               expected="the elementwise sum on every rank", got=f"ranks {bad} differ", hint=hint)
        c.equal(len(steps), 2 * (p - 1), what=f"{what}: number of steps", hint="2(p−1): p−1 to reduce, p−1 to gather")
        if p > 1:
            chunk = 12                                  # sizes with n = 12p: every chunk holds 12 elements
            even = _steps_schedule(steps, p, chunk * p)
            sent = even.elements_sent()
            c.equal(sent.tolist(), [2 * (p - 1) * chunk] * p,
                    what=f"{what}: elements each rank sends for a vector of {chunk * p}",
                    hint="2(p−1)/p · N per rank — the busBw factor of nccl-tests; sending whole vectors costs p/2 "
                         "times more")


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
          bad=["aisys.labkit.checks.lab10:_time_ring_without_the_all_gather",
               "aisys.labkit.checks.lab10:_time_ring_sends_whole_vectors",
               "aisys.labkit.checks.lab10:_time_tree_floor_log",
               "aisys.labkit.checks.lab10:_time_tree_counts_one_latency_per_level",
               "aisys.labkit.checks.lab10:_time_flat_is_sequential",
               "aisys.labkit.checks.lab10:_time_bandwidth_in_gigabits"])
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
                c.close(float(got), sim, what=f"{what}: your model vs the simulator", rtol=1e-9, hint=hint)
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


# ---------------------------------------------------------------------------------------------------
# 10.3 all-to-all
# ---------------------------------------------------------------------------------------------------

@register("10.3", title="Pairwise all-to-all: block j of rank i lands at block i of rank j", lab="10_collectives",
          reference="aisys.dist.algorithms:pairwise_alltoall_steps",
          bad=["aisys.labkit.checks.lab10:_a2a_keeps_the_block_index",
               "aisys.labkit.checks.lab10:_a2a_wrong_partner",
               "aisys.labkit.checks.lab10:_a2a_forgets_the_own_block",
               "aisys.labkit.checks.lab10:_a2a_all_at_once",
               "aisys.labkit.checks.lab10:_a2a_xor_pairs",
               "aisys.labkit.checks.lab10:_a2a_one_partner_short"])
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
        x = [np.array([100 * i + 10 * j + k for j in range(p) for k in range(blk)], float) for i in range(p)]
        out = execute(sched, x)
        for i in range(p):
            for j in range(p):
                c.true(np.array_equal(out[j][i * blk:(i + 1) * blk], x[i][j * blk:(j + 1) * blk]),
                       what=f"{what}: block {j} of rank {i} at block {i} of rank {j}",
                       expected=x[i][j * blk:(j + 1) * blk].tolist(), got=out[j][i * blk:(i + 1) * blk].tolist(),
                       hint=hint)
        worst = 0
        for step in steps:
            remote = [(int(s), int(d)) for s, d, _, _ in step if s != d]
            outs = np.bincount([s for s, _ in remote], minlength=p) if remote else np.zeros(p)
            ins = np.bincount([d for _, d in remote], minlength=p) if remote else np.zeros(p)
            worst = max(worst, int(outs.max()), int(ins.max()))
        c.true(worst <= 1, what=f"{what}: at most one message out of and into each rank per step (pairwise)",
               expected="<= 1", got=worst, hint=hint)


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
