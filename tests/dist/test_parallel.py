"""Parallel training on simulated ranks (threads of this process): data parallel equals one process on the
whole batch, ZeRO equals data parallel, tensor- and pipeline-parallel equal one device; memory, bubbles and the
planner. The same functions run on real MPI ranks in test_mpi.py."""
from __future__ import annotations

import numpy as np
import pytest

from aisys import dist
from aisys.dist.data_parallel import layer_costs, make_buckets, simulate_data_parallel
from aisys.dist.pipeline import bubble_fraction, pipeline_schedule, simulate_pipeline
from aisys.dist.planner import ModelSpec, plan
from aisys.dist.timeline import TaskGraph
from aisys.dist.zero import memory_breakdown, zero_memory
from tests.dist import _training as T


@pytest.fixture(scope="module")
def reference():
    return T.single_process()


@pytest.mark.parametrize("mode", ["plain", "overlap"])
def test_data_parallel_on_4_ranks_equals_one_process_on_the_full_batch(mode, reference):
    res = dist.run(T.data_parallel, nprocs=4, args=(mode,), timeout=60, backend="sim")
    for params, nbuckets in res:
        assert nbuckets >= 2                                   # the gradients really travel in buckets
        np.testing.assert_allclose(params, reference, rtol=1e-12, atol=1e-12 * np.abs(reference).max())
    assert all(np.array_equal(res[0][0], r[0]) for r in res)   # replicas stay identical


def test_data_parallel_in_float32_is_within_the_documented_tolerance():
    """float32 sums in another order differ by rounding: the documented tolerance is 1e-5 relative after 3 steps."""
    ref = T.single_process(float32=True)
    res = dist.run(T.data_parallel, nprocs=4, args=("plain",), kwargs={"float32": True}, timeout=60, backend="sim")
    for params, _ in res:
        assert params.dtype == np.float32
        np.testing.assert_allclose(params, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_zero_stages_equal_plain_data_parallel(reference):
    plain = dist.run(T.data_parallel, nprocs=4, args=("plain",), timeout=60, backend="sim")
    runs = {}
    for stage in (1, 2, 3):
        zero = dist.run(T.data_parallel, nprocs=4, args=(f"zero{stage}",), timeout=60, backend="sim")
        shards = [z[1] for z in zero]
        assert sum(shards) == plain[0][0].size and max(shards) - min(shards) <= 1    # even shards
        assert all(np.array_equal(zero[0][0], z[0]) for z in zero)
        runs[stage] = zero[0][0]
        # the buckets of plain data parallelism add the ranks' gradients in another order: equal up to rounding
        np.testing.assert_allclose(runs[stage], plain[0][0], rtol=1e-12, atol=1e-12 * np.abs(reference).max())
    # a ring all-reduce is a ring reduce-scatter and a ring all-gather, and Adam is elementwise: the stages agree
    # bit for bit
    np.testing.assert_array_equal(runs[1], runs[2])
    np.testing.assert_array_equal(runs[2], runs[3])


@pytest.mark.parametrize("p", [2, 4])
def test_tensor_parallel_mlp_equals_one_device_with_one_allreduce_in_the_forward(p):
    T.check_tensor_parallel(list(dist.run(T.tensor_parallel, nprocs=p, timeout=60, backend="sim")),
                            T.tensor_reference())


@pytest.mark.parametrize("p,kind", [(2, "gpipe"), (4, "1f1b")])
def test_pipeline_parallel_gradients_equal_one_device(p, kind):
    T.check_pipeline(list(dist.run(T.pipeline, nprocs=p, args=(kind,), timeout=60, backend="sim")),
                     T.pipeline_reference())


def test_zero_memory_matches_the_zero_paper():
    """Rajbhandari et al., ZeRO (SC 2020), Figure 1: Ψ = 7.5 B, N_d = 64, mixed-precision Adam (K = 12)."""
    got = [zero_memory(7.5e9, 64, stage) / 1e9 for stage in range(4)]
    assert [round(g, 1) for g in got] == [120.0, 31.4, 16.6, 1.9]
    assert got[0] == 16 * 7.5                       # the 16Ψ of plain data parallelism
    parts = memory_breakdown(7.5e9, 64, 2, activations=3e9)
    assert parts == {"parameters": 15e9, "gradients": 15e9 * 2 / 2 / 64 * 1, "optimizer states": 90e9 / 64,
                     "activations": 3e9}
    with pytest.raises(ValueError, match="stage must be 0"):
        zero_memory(7.5e9, 64, 4)
    with pytest.raises(ValueError, match="ndevices must be a positive integer"):
        zero_memory(7.5e9, 0, 1)


@pytest.mark.parametrize("kind", ["gpipe", "1f1b"])
@pytest.mark.parametrize("p,m", [(2, 1), (4, 4), (4, 16), (8, 3)])
def test_simulated_bubble_equals_p_minus_1_over_m_plus_p_minus_1(kind, p, m):
    rep = simulate_pipeline(p, m, kind, t_forward=1.0, t_backward=2.0)
    assert rep.bubble == pytest.approx(bubble_fraction(p, m), abs=1e-12)
    assert rep.makespan == pytest.approx((m + p - 1) * 3.0)
    # 1F1B keeps at most p - s micro-batches alive on stage s; GPipe keeps all m
    assert rep.peak_activations == ([min(m, p - s) for s in range(p)] if kind == "1f1b" else [m] * p)


def test_pipeline_schedules_order_and_errors():
    assert pipeline_schedule(2, 3, "1f1b") == [[("F", 0), ("F", 1), ("B", 0), ("F", 2), ("B", 1), ("B", 2)],
                                                [("F", 0), ("B", 0), ("F", 1), ("B", 1), ("F", 2), ("B", 2)]]
    with pytest.raises(ValueError, match="is not one of"):
        pipeline_schedule(2, 3, "zigzag")
    with pytest.raises(ValueError, match="need p >= 1"):
        bubble_fraction(0, 3)


def test_task_graph_cycle_is_reported():
    g = TaskGraph("two streams")
    a = g.add("F0", "stage 0", 1.0)
    b = g.add("F0", "stage 1", 1.0, deps=[a])
    g.depend(a, b)
    with pytest.raises(ValueError, match=r"(?s)wait for each other in a cycle .*stage 0: 'F0' waits for 'F0' \(stage 1\)"):
        g.simulate()


def test_data_parallel_overlap_hides_communication():
    model = T.make_mlp()
    layers = layer_costs(model, batch=16)
    topo = dist.Topology.switch(4, alpha=5e-6, bandwidth=1e9)
    on = simulate_data_parallel(layers, topology=topo, flops_per_s=1e9, bucket_cap_mb=0.004, overlap=True)
    off = simulate_data_parallel(layers, topology=topo, flops_per_s=1e9, bucket_cap_mb=0.004, overlap=False)
    assert on.step_time < off.step_time and off.exposed_comm == pytest.approx(sum(off.bucket_times))
    assert len(on.buckets) >= 2 and {"compute", "comm"} <= set(on.trace.lanes)
    assert make_buckets([3, 3, 3, 10, 1], 6) == [[0, 1], [2], [3], [4]]


def test_planner_prefers_layouts_that_fit_and_explains():
    model = ModelSpec.gpt(layers=48, hidden=8192, seq_len=2048, global_batch=512)
    rep = plan(model, dist.Topology.cluster(8, 8))
    best = rep.best
    assert best.fits and best.dp * best.tp * best.pp == 64 and best.tp <= 8
    assert all(l.step_time >= best.step_time for l in rep.layouts if l.fits)
    text = rep.explain()
    assert text.startswith(f"best: {best.label()}") and "runner-up" in text
    assert "faster but too big" in text                 # plain dp=64 would be faster but needs > 80 GB
    with pytest.raises(ValueError, match="no layout fits"):
        plan(ModelSpec.gpt(layers=96, hidden=12288), dist.Topology.cluster(1, 8)).best
