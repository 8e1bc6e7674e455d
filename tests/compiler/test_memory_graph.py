"""Liveness, schedules, plan_memory and the arena executor on real graphs."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import aisys.framework.ops  # noqa: F401
from aisys.compiler.memory import (PLANNERS, ArenaExecutor, MemoryLimitError, MemoryPlan, choose_schedule,
                                   graph_buffers, inplace_candidates, liveness, plan_memory, run_in_arena,
                                   simulate_live_bytes)
from aisys.compiler.memory.schedule import breadth_first_order, depth_first_order, memory_greedy_order
from aisys.compiler.memory.workloads import mlp_graph, random_graph
from aisys.framework.graph import Graph, interpret


def residual_graph():
    """x -> a=relu(x) -> b=tanh(a) -> c=add(b, a) -> d=sum(c) ; e=neg(a) is dead code.

    Program order of ops: a(%1) b(%2) c(%3) e(%4) d(%5). The default schedule drops e, so
    steps are a=0, b=1, c=2, d=3; a is read by b and c (last use step 2).
    """
    g = Graph("residual")
    x = g.add_input("x", (4, 8))
    a = g.add("relu", [x.id])
    b = g.add("tanh", [a.id])
    c = g.add("add", [b.id, a.id])
    g.add("neg", [a.id])
    d = g.add("sum", [c.id], {"dim": 1, "keepdim": True})
    g.set_outputs([d.id, b.id])
    return g


def test_liveness_golden_intervals():
    g = residual_graph()
    assert liveness(g) == {1: (0, 2), 2: (1, 3), 3: (2, 3), 5: (3, 3)}   # b is an output: lives to the end
    # the caller's tensors are planned only on request, live from step 0 to their last use
    assert liveness(g, include_inputs=True) == {0: (0, 0), 1: (0, 2), 2: (1, 3), 3: (2, 3), 5: (3, 3)}
    # running the dead op too: its value lives only at its own step
    assert liveness(g, [1, 2, 3, 4, 5]) == {1: (0, 3), 2: (1, 4), 3: (2, 4), 4: (3, 3), 5: (4, 4)}
    kinds = {b.name: (b.kind, b.op, b.size) for b in graph_buffers(g)}
    assert kinds == {"%1": ("activation", "relu", 128), "%2": ("output", "tanh", 128),
                     "%3": ("activation", "add", 128), "%5": ("output", "sum", 16)}


@pytest.mark.parametrize("schedule, msg", [
    ([2, 1, 3, 5], r"%2 = tanh reads %1 \(relu\), which has not run yet"),
    ([1, 2], r"leaves out 2 op node\(s\) the outputs need: %3 \(add\), %5 \(sum\)"),
    ([1, 1, 2, 3, 5], "scheduled twice"),
    ([1, 2, 3, 99], "%99 is not a node"),
])
def test_bad_schedules_are_explained(schedule, msg):
    with pytest.raises(ValueError, match=msg):
        liveness(residual_graph(), schedule)


def test_leaf_ids_in_a_schedule_are_ignored():
    g = residual_graph()
    assert liveness(g, list(g.nodes)) == liveness(g, [1, 2, 3, 4, 5])


def test_mlp_lower_bound_closed_form():
    # batch 32, 784 -> 256 -> 128 -> 10, f32. Worst step is "add bias" of layer 0: the matmul result
    # and the add result (32*256*4 B each) are alive together -> 65536 B. With in-place add/relu the
    # worst step is layer 1's matmul: relu output (32768 B) + matmul output (32*128*4 = 16384 B).
    g = mlp_graph(32, (784, 256, 128, 10))
    assert max(simulate_live_bytes(g)) == 65536
    for name in PLANNERS:
        plan = plan_memory(g, name)
        assert plan.lower_bound_bytes == 65536 and plan.peak_bytes >= 65536
    assert plan_memory(g, "naive").peak_bytes == 3 * 32768 + 3 * 16384 + 2 * 1280    # every result kept
    assert plan_memory(g, "greedy_by_size").peak_bytes == 65536
    inplace = plan_memory(g, "greedy_by_size", inplace=True)
    assert inplace.inplace == (("%3", "%4"), ("%4", "%5"), ("%8", "%9"), ("%9", "%10"), ("%13", "%14"))
    assert inplace.lower_bound_bytes == inplace.peak_bytes == 49152


def test_inplace_only_when_elementwise_same_size_and_last_use():
    g = residual_graph()
    # relu(x): x is a graph input (never overwritten); tanh(a): a is read later by add; add(b, a):
    # b is an output; a dies at add -> (a, c) is the one safe pair.
    assert inplace_candidates(g) == [("%1", "%3")]


def two_branch_graph():
    """Program order interleaves two branches: big a1, big b1, then reduce each, then join.
    Breadth-first keeps both big tensors alive; finishing one branch first needs one big + smalls."""
    g = Graph("two_branch")
    x = g.add_input("x", (64, 64))
    a1 = g.add("tanh", [x.id])
    b1 = g.add("sigmoid", [x.id])
    a2 = g.add("sum", [a1.id], {"dim": 1, "keepdim": True})
    b2 = g.add("sum", [b1.id], {"dim": 1, "keepdim": True})
    g.set_outputs([g.add("add", [a2.id, b2.id]).id])
    return g


def test_schedule_choice_keeps_the_lowest_peak():
    g = two_branch_graph()
    big, small = 64 * 64 * 4, 64 * 4
    assert max(simulate_live_bytes(g, breadth_first_order(g), alignment=1)) == 2 * big + small
    assert max(simulate_live_bytes(g, depth_first_order(g), alignment=1)) == big + 2 * small
    assert depth_first_order(g) == [1, 3, 2, 4, 5]
    assert memory_greedy_order(g) == [1, 3, 2, 4, 5]
    choice = choose_schedule(g, alignment=1)
    assert choice.name == "depth_first" and choice.peaks["program"] == 2 * big + small
    assert "<- kept" in choice.summary()
    plan = plan_memory(g, schedule="best")
    assert plan.schedule == (1, 3, 2, 4, 5) and "depth_first" in plan.note
    with pytest.raises(ValueError, match="'fastest'"):
        plan_memory(g, schedule="fastest")


def _inputs(g, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(g.nodes[i].shape).astype(np.float32) for i in g.inputs]


def _same(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("planner", list(PLANNERS))
@pytest.mark.parametrize("inplace", [False, True])
def test_arena_run_equals_the_interpreter_on_an_mlp(planner, inplace):
    g = mlp_graph(8, (32, 16, 16, 4))
    xs = _inputs(g)
    ex = ArenaExecutor(g, planner=planner, inplace=inplace)
    assert ex.arena.nbytes == ex.plan.peak_bytes
    _same(ex.run(*xs), interpret(g, *xs))
    _same(ex.run(*_inputs(g, 1)), interpret(g, *_inputs(g, 1)))     # the arena is reusable


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(list(PLANNERS)), st.booleans(), st.booleans(),
       st.sampled_from([None, "best"]))
def test_arena_run_equals_the_interpreter_on_random_graphs(seed, planner, inplace, include_inputs, schedule):
    g = random_graph(seed, n_ops=25)
    xs = _inputs(g, seed)
    plan = plan_memory(g, planner, schedule=schedule, inplace=inplace, include_inputs=include_inputs)
    outs, trace = run_in_arena(g, *xs, plan=plan, clock="steps")
    _same(outs, interpret(g, *xs))
    assert len(trace.events) == len(plan.schedule)
    live = trace.counter_series("live bytes")[1]     # before step 0, then (after alloc, after free) per step
    assert live[1::2] == plan.live_bytes()
    assert max(live) == plan.lower_bound_bytes


def test_a_clobbering_plan_is_refused_and_would_be_wrong(monkeypatch):
    g = residual_graph()        # tanh(a) written over a, then add(b, a) reads a clobbered a
    good = plan_memory(g, "greedy_by_size")
    bad = MemoryPlan([b.at(0) for b in good.buffers], "everything at 0", schedule=good.schedule,
                     steps=good.steps)
    with pytest.raises(ValueError, match="overlapping bytes"):
        ArenaExecutor(g, bad)
    monkeypatch.setattr(MemoryPlan, "validate", lambda self: self)   # skip the proof: results go wrong
    xs = _inputs(g)
    got = ArenaExecutor(g, bad).run(*xs)
    assert not np.allclose(got[0], interpret(g, *xs)[0])


def test_trace_records_ops_bytes_and_live_counter():
    g = mlp_graph(8, (32, 16, 4))
    plan = plan_memory(g, "greedy_by_size", inplace=True)
    ex = ArenaExecutor(g, plan, clock="steps")
    ex.run(*_inputs(g))
    tr = ex.trace
    assert tr.lanes == ["cpu"] and [e.name for e in tr.events] == ["matmul %3", "add %4", "relu %5",
                                                                   "matmul %8", "add %9"]
    assert [e.args["inplace"] for e in tr.events] == [False, True, True, False, True]
    assert [e.args["allocated"] for e in tr.events] == [512, 0, 0, 128, 0]
    assert [e.args["freed"] for e in tr.events] == [0, 0, 0, 512, 0]
    assert tr.counter_series("live bytes")[1] == [0, 512, 512, 512, 512, 512, 512, 640, 128, 128, 128]
    assert max(tr.counter_series("live bytes")[1]) == plan.lower_bound_bytes == 640
    assert "5 events on 1 lanes, span 0..5 steps" in tr.summary()
    _, wall = run_in_arena(g, *_inputs(g), plan=plan)
    assert wall.unit == "us" and len(wall.events) == 5


def test_limit_bytes_on_a_graph_names_the_op():
    g = mlp_graph(32, (784, 256, 128, 10))
    with pytest.raises(MemoryLimitError) as err:
        plan_memory(g, "greedy_by_size", limit_bytes=50_000)
    assert err.value.op == "%4 add" and [b.name for b in err.value.live] == ["%3", "%4"]
    assert "busiest step 1 (%4 add)" in str(err.value)
    assert plan_memory(g, "greedy_by_size", limit_bytes=50_000, inplace=True).peak_bytes == 49152


def test_executor_errors():
    g = mlp_graph(4, (8, 4))
    with pytest.raises(ValueError, match="takes 1 inputs"):
        ArenaExecutor(g).run()
    with pytest.raises(ValueError, match=r"expects shape \(4, 8\)"):
        ArenaExecutor(g).run(np.zeros((3, 8), np.float32))
    with pytest.raises(ValueError, match="has no schedule"):
        from aisys.compiler.memory import plan_buffers
        ArenaExecutor(g, plan_buffers(graph_buffers(g)))
    with pytest.raises(ValueError, match="does not match graph"):
        ArenaExecutor(mlp_graph(8, (8, 4)), plan_memory(g))
    with pytest.raises(ValueError, match="clock must be"):
        ArenaExecutor(g, clock="sundial")


# ---- the compiler's random-graph generator (differential testing shared with the passes) -------------
from aisys.compiler.testing import assert_same_outputs, graphs, random_inputs  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(graphs(max_ops=14, dropout=True), st.sampled_from(list(PLANNERS)), st.booleans(), st.booleans())
def test_arena_run_equals_the_interpreter_on_compiler_random_graphs(g, planner, inplace, best):
    xs = random_inputs(g, seed=0)
    want = interpret(g, *xs)
    plan = plan_memory(g, planner, schedule="best" if best else None, inplace=inplace)
    outs, _ = run_in_arena(g, *xs, plan=plan, clock="steps")
    assert_same_outputs(outs, want, rtol=1e-6, atol=1e-6, what=f"{planner} inplace={inplace}")


def test_arena_run_equals_the_interpreter_on_conv_graphs():
    from aisys.compiler.testing import random_conv_graph

    ran = 0
    for seed in range(12):
        g = random_conv_graph(seed)
        xs = random_inputs(g, seed=1)
        for planner in ("linear_scan", "greedy_by_size"):
            outs, _ = run_in_arena(g, *xs, planner=planner, inplace=True, clock="steps")
            assert_same_outputs(outs, interpret(g, *xs), rtol=1e-6, atol=1e-6, what=f"seed {seed} {planner}")
        ran += 1
    assert ran == 12
