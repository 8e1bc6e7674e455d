"""Collectives as schedules: every algorithm equals numpy on 1-9 ranks, sends what the closed forms say,
and the simulator's time equals Thakur-Rabenseifner-Gropp's formulas on a switch."""
from __future__ import annotations

import numpy as np
import pytest

from aisys import dist
from aisys.dist import ALGORITHMS, Schedule, ScheduleError, DeadlockError, Topology, build_schedule, chunk_bounds

CASES = [(c, a) for c, algs in ALGORITHMS.items() for a in algs]


def _nodes(p):
    per = 3 if p == 9 else 2 if p % 2 == 0 else 1
    return [list(range(i, i + per)) for i in range(0, p, per)]


def _expected(collective, x, p, root):
    n = len(x[0])
    b = chunk_bounds(n, p)
    if collective == "allreduce":
        return [sum(x)] * p
    if collective == "reduce_scatter":
        return [sum(x)[b[r]:b[r + 1]] for r in range(p)]
    if collective == "allgather":
        return [x[0]] * p
    if collective == "broadcast":
        return [x[root]] * p
    if collective == "reduce":
        return [sum(x) if r == root else None for r in range(p)]
    blk = n // p
    return [np.concatenate([x[i][j * blk:(j + 1) * blk] for i in range(p)]) for j in range(p)]


def _inputs(collective, x, p, root):
    b = chunk_bounds(len(x[0]), p)
    if collective == "allgather":
        return [x[0][b[r]:b[r + 1]] for r in range(p)]
    if collective == "broadcast":
        return [x[r] if r == root else None for r in range(p)]
    return x


@pytest.mark.parametrize("collective,algorithm", CASES, ids=[f"{c}-{a}" for c, a in CASES])
def test_every_collective_equals_numpy_on_1_to_9_ranks(collective, algorithm):
    rng = np.random.default_rng(0)
    for p in range(1, 10):
        if algorithm == "hierarchical" and p in (3, 5, 7):
            nodes = [[r] for r in range(p)]      # one rank per node: the ring across nodes does everything
        else:
            nodes = _nodes(p) if algorithm == "hierarchical" else None
        for n in ((0, p, 3 * p) if collective == "alltoall" else (0, 1, 7, 40)):
            for root in ((0, p - 1) if collective in ("broadcast", "reduce") else (0,)):
                sched = build_schedule(collective, algorithm, p, n, root=root, nodes=nodes)
                x = [rng.integers(-9, 9, n).astype(np.float64) for _ in range(p)]     # exact sums in any order
                got = dist.execute(sched, _inputs(collective, x, p, root))
                for r, (g, e) in enumerate(zip(got, _expected(collective, x, p, root))):
                    if e is None:
                        assert g is None
                    else:
                        np.testing.assert_array_equal(g, e, err_msg=f"{collective}/{algorithm} p={p} n={n} "
                                                                     f"root={root} rank {r}")


@pytest.mark.parametrize("p", [2, 3, 4, 5, 8, 9])
def test_ring_allreduce_sends_2_p_minus_1_over_p_n_per_rank(p):
    n = 12 * p
    rep = dist.simulate("allreduce", "ring", topology=Topology.fully_connected(p, bandwidth=1e9), nbytes=4 * n)
    expected = 2 * (p - 1) / p * 4 * n                   # the busBw factor of nccl-tests
    np.testing.assert_array_equal(rep.bytes_sent, np.full(p, expected))
    assert dist.bytes_sent_per_rank("allreduce", "ring", p, 4 * n) == expected
    # uneven chunks: rank r sends everything but its own chunk (reduce-scatter) and chunk r+1 (all-gather)
    sched = build_schedule("allreduce", "ring", p, 37)
    b = np.diff(chunk_bounds(37, p))
    np.testing.assert_array_equal(sched.elements_sent(), [2 * 37 - b[r] - b[(r + 1) % p] for r in range(p)])


@pytest.mark.parametrize("collective,algorithm", [
    ("reduce_scatter", "ring"), ("reduce_scatter", "direct"), ("allgather", "ring"), ("allgather", "bruck"),
    ("allgather", "direct"), ("alltoall", "pairwise"), ("alltoall", "direct"), ("allreduce", "direct")])
def test_bytes_sent_equal_the_closed_form(collective, algorithm):
    for p in (2, 3, 4, 6, 8):
        nbytes = 8 * p * p
        rep = dist.simulate(collective, algorithm, topology=Topology.switch(p, bandwidth=1e9), nbytes=nbytes)
        np.testing.assert_allclose(rep.bytes_sent, dist.bytes_sent_per_rank(collective, algorithm, p, nbytes))


def test_alltoall_block_j_of_rank_i_lands_at_block_i_of_rank_j():
    for algorithm in ALGORITHMS["alltoall"]:
        for p in range(1, 8):
            blk = 3
            x = [np.array([100 * i + 10 * j + k for j in range(p) for k in range(blk)], float) for i in range(p)]
            out = dist.execute(build_schedule("alltoall", algorithm, p, p * blk), x)
            for i in range(p):
                for j in range(p):
                    np.testing.assert_array_equal(out[j][i * blk:(i + 1) * blk], x[i][j * blk:(j + 1) * blk])


# exact on a switch: these (collective, algorithm, p) follow the formulas without any approximation
EXACT = [(c, a, p) for c, a in CASES for p in (2, 3, 4, 5, 8)
         if a not in ("double_binary_tree", "hierarchical")
         and not (a in ("rabenseifner", "recursive_halving", "recursive_doubling", "bruck") and p & (p - 1))]


@pytest.mark.parametrize("collective,algorithm,p", EXACT, ids=[f"{c}-{a}-{p}" for c, a, p in EXACT])
def test_simulated_time_equals_the_closed_form_on_a_switch(collective, algorithm, p):
    alpha, bandwidth, gamma = 3e-6, 10e9, 2e-10
    nbytes = 4 * 64 * p * p
    rep = dist.simulate(collective, algorithm, topology=Topology.switch(p, alpha=alpha, bandwidth=bandwidth),
                        nbytes=nbytes, gamma=gamma)
    assert rep.time == pytest.approx(dist.collective_time(collective, algorithm, p, nbytes, alpha, bandwidth,
                                                          gamma=gamma), rel=1e-12)


def test_ring_time_on_a_full_mesh_is_thakur_formula():
    p, alpha, bw, n = 8, 5e-6, 25e9, 64 << 20
    rep = dist.simulate("allreduce", "ring", topology=Topology.fully_connected(p, alpha=alpha, bandwidth=bw), nbytes=n)
    assert rep.time == pytest.approx(2 * (p - 1) * alpha + 2 * (p - 1) / p * n / bw, rel=1e-12)
    assert rep.busbw == pytest.approx(rep.algbw * 2 * (p - 1) / p)


def test_link_contention_halves_the_bandwidth_of_a_shared_port():
    topo = Topology.switch(3, alpha=0.0, bandwidth=1e9)
    one = Schedule.from_steps("broadcast", "custom", 3, 1000, [[(0, 1, 0, 0, 1000, 0)]])
    two = Schedule.from_steps("broadcast", "custom", 3, 1000, [[(0, 1, 0, 0, 1000, 0), (0, 2, 0, 0, 1000, 0)]])
    t1 = dist.simulate(one, topology=topo, dtype="float32").time
    t2 = dist.simulate(two, topology=topo, dtype="float32").time
    assert t1 == pytest.approx(4000 / 1e9) and t2 == pytest.approx(2 * t1)
    # on a full mesh the two messages use different links
    assert dist.simulate(two, topology=Topology.fully_connected(3, alpha=0.0, bandwidth=1e9)).time == pytest.approx(t1)


def test_simulated_trace_is_a_perfetto_trace_with_one_lane_per_rank():
    rep = dist.simulate("allreduce", "ring", topology="dgx_a100", nbytes=1 << 20)
    tr = rep.trace
    assert tr.lanes == [f"rank {r}" for r in range(8)]
    assert len(tr.events) == 8 * rep.steps
    chrome = tr.to_chrome()
    assert {e["ph"] for e in chrome["traceEvents"]} >= {"X", "M"}
    assert max(e.end for e in tr.events) == pytest.approx(rep.time * 1e6)


def test_hierarchical_allreduce_is_faster_than_a_flat_ring_across_nodes():
    topo = Topology.preset("dgx_a100_x2_ib")
    flat = dist.simulate("allreduce", "ring", topology=topo, nbytes=64 << 20)
    hier = dist.simulate("allreduce", "hierarchical", topology=topo, nbytes=64 << 20)
    assert hier.time < flat.time
    x = [np.full(16, float(r)) for r in range(16)]
    out = dist.simulate("allreduce", "hierarchical", topology=topo, inputs=x).outputs
    assert all(np.array_equal(o, np.full(16, 120.0)) for o in out)


# ---- errors that say what went wrong ------------------------------------------------------------

def test_rank_count_the_topology_lacks():
    with pytest.raises(ValueError, match=r"9 ranks do not fit topology 'DGX A100.*which has 8 devices"):
        dist.simulate("allreduce", "ring", topology="dgx_a100", nbytes=1024, nranks=9)


def test_mismatched_buffers_name_the_ranks():
    sched = build_schedule("allreduce", "ring", 3, 8)
    with pytest.raises(ScheduleError, match=r"mismatched buffers: ranks pass rank 0: 8, rank 1: 7, rank 2: 8 .*"
                                            r"needs rank 1: 8"):
        dist.execute(sched, [np.ones(8), np.ones(7), np.ones(8)])
    with pytest.raises(ScheduleError, match=r"mismatched buffers: rank 0 step 1 sends 4 elements to rank 1, but rank "
                                            r"1 step 1 receives 3 elements from rank 0"):
        Schedule.from_programs([[[], [("send", 1, 0, 4)]], [[], [("recv", 0, 0, 3)]]], n=4)


def test_a_send_nobody_receives_is_reported():
    with pytest.raises(ScheduleError, match=r"rank 0 step 0 sends 2 elements to rank 2, but rank 2 posts only 0 "
                                            r"receive\(s\) from rank 0: that send would wait forever"):
        Schedule.from_programs([[[("send", 2, 0, 2)]], [[]], [[]]], n=2)


def test_a_deadlocking_schedule_names_the_ranks_and_steps():
    # both ranks first wait to receive, and only then send: a classic head-to-head deadlock
    progs = [[[("recv", 1, 0, 4)], [("send", 1, 0, 4)]],
             [[("recv", 0, 0, 4)], [("send", 0, 0, 4)]]]
    with pytest.raises(DeadlockError) as info:
        Schedule.from_programs(progs, n=4)
    msg = str(info.value)
    assert "deadlock" in msg and "rank 0 at step 0 waits to receive from rank 1" in msg
    assert "rank 1 at step 0 waits to receive from rank 0" in msg and "rank 1's step 1" in msg


def test_a_per_rank_program_without_deadlock_runs_in_both_orders():
    progs = [[[("send", 1, 0, 4)], [("recv", 1, 0, 4)]],
             [[("recv", 0, 0, 4)], [("send", 0, 0, 4)]]]
    sched = Schedule.from_programs(progs, n=4, collective="broadcast")
    assert not sched.lockstep and sched.nsteps == 2
    out = dist.execute(sched, [np.arange(4.0), None])
    np.testing.assert_array_equal(out[1], np.arange(4.0))
    rep = dist.simulate(sched, topology=Topology.fully_connected(2, alpha=1e-6, bandwidth=1e9))
    assert rep.time == pytest.approx(2 * (1e-6 + 16 / 1e9))          # two float32 messages of 4 elements


def test_two_copies_onto_the_same_elements_in_one_step_are_rejected():
    with pytest.raises(ScheduleError, match=r"at step 0 rank 2 receives two messages into overlapping elements"):
        Schedule.from_steps("allreduce", "custom", 3, 4, [[(0, 2, 0, 0, 4, 0), (1, 2, 0, 1, 2, 1)]])


def test_out_of_range_regions_and_ranks():
    with pytest.raises(ScheduleError, match=r"names rank 5, but there are only ranks 0..2"):
        Schedule.from_steps("allreduce", "custom", 3, 4, [[(0, 5, 0, 0, 4, 0)]])
    with pytest.raises(ScheduleError, match=r"region \[2:6\] lies outside its buffer of 4 elements"):
        Schedule.from_steps("allreduce", "custom", 3, 4, [[(0, 1, 2, 2, 4, 0)]])
    with pytest.raises(ValueError, match="allgather has no algorithm 'nope'; choose one of ring, bruck, direct"):
        build_schedule("allgather", "nope", 4, 8)
    with pytest.raises(ValueError, match="do not split into 3 equal blocks"):
        build_schedule("alltoall", "direct", 3, 10)


def test_one_thousand_ranks_schedule_and_time():
    """1,024 ranks on a 128-node cluster: the schedule has 2·1023·1024 messages and still simulates (its speed
    is measured by benchmarks/bench_dist.py, not asserted here)."""
    rep = dist.simulate("allreduce", "double_binary_tree", topology=Topology.cluster(128, 8), nbytes=1 << 20)
    assert rep.schedule.p == 1024 and rep.time > 0
