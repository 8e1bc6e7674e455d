"""The compiler at scale (issue 13): graphs of 1,000+ ops through the whole pipeline and the planner.

No timing here (speed lives in benchmarks/bench_compile.py). Instead the tests count the whole-graph
work a pipeline run does — full use-def rebuilds (``Graph.users``) and deep copies (``Graph.copy``) —
so the quadratic path (a rebuild per rewrite, a copy per pass) cannot come back unnoticed, and check
that what the faster machinery produces is still right: snapshots that never change, values equal
to the unoptimized graph, a sweep validator that agrees with the all-pairs check.
"""
import random

import numpy as np
import pytest

from aisys.compiler import Fixpoint, PassManager, cse, dce, default_pipeline, fold_constants, simplify
from aisys.compiler.memory import Buffer, MemoryPlan, plan_buffers, plan_memory
from aisys.compiler.memory.workloads import random_buffers, sgd_training_graph
from aisys.compiler.testing import assert_same_outputs, random_inputs
from aisys.framework import graph as graph_module
from aisys.framework.graph import interpret


@pytest.fixture(scope="module")
def big():
    g = sgd_training_graph(64)                  # 1,096 ops: forward, backward and 128 parameter updates
    assert len(g.op_nodes) > 1000
    return g


def test_a_pipeline_run_builds_use_def_chains_once_and_copies_nothing(big):
    before = dict(graph_module.COUNTERS)
    log = PassManager(default_pipeline()).run(big)
    used = {k: graph_module.COUNTERS[k] - before[k] for k in before}
    changing = sum(r.changed for r in log)
    assert len(log) >= 8 and changing >= 4
    assert used["users"] == 1, f"{used['users']} full use-def rebuilds in one run of {len(log)} passes"
    assert used["copy"] == 0
    assert used["snapshot"] == 1 + changing       # the working graph, then one per pass that changed it
    assert len(log.graph.op_nodes) < len(big.op_nodes) / 2


def test_metrics_are_computed_only_when_read(big, monkeypatch):
    from aisys.compiler import manager
    calls = []
    real = manager.graph_metrics
    monkeypatch.setattr(manager, "graph_metrics", lambda g: calls.append(g) or real(g))
    log = PassManager(default_pipeline()).run(big)
    assert calls == []
    log.summary()
    assert len(calls) == len({id(r.graph) for r in log} | {id(log.initial)})    # once per distinct snapshot
    log.summary()
    assert len(calls) == len({id(r.graph) for r in log} | {id(log.initial)})


def test_snapshots_never_change_and_the_callers_graph_is_untouched(big):
    text = str(big)
    seen = []
    pm = PassManager(default_pipeline())
    pm.add_hook("after", lambda res: seen.append((str(res.before), str(res.graph))))
    log = pm.run(big)
    assert str(big) == text
    assert [(str(r.before), str(r.graph)) for r in log] == seen
    for r in log:
        r.graph.verify()


def test_a_1000_op_training_step_computes_the_same_after_the_pipeline(big):
    log = PassManager(default_pipeline()).run(big)
    xs = random_inputs(big, 0)
    assert_same_outputs(interpret(log.graph, *xs), interpret(big, *xs), rtol=1e-4, atol=1e-5)


def test_fixpoint_driver_reruns_only_after_a_change_and_hands_over_what_changed(big):
    seen = {}

    def spy(rw):
        seen.setdefault("dirty", []).append(None if rw.dirty is None else set(rw.dirty))

    log = PassManager([Fixpoint([fold_constants, simplify, cse, dce, spy])]).run(big)
    assert seen["dirty"] == [None]                            # called once, told to look at everything
    rounds = [r for r in log if r.name == "spy"]
    assert [r.skipped for r in rounds] == [False, True]       # round 2: nothing changed after it, so skipped
    assert [r.skipped for r in log if r.name == "fold_constants"] == [False, False]   # cse/dce changed after it
    assert not log[-1].changed


def test_worklist_passes_see_only_changed_nodes_on_a_rerun(big):
    calls = []

    def adds_zero_once(rw):
        calls.append(rw.dirty)
        if len(calls) == 1:
            out = rw.graph.outputs[0]
            z = rw.add_const(np.zeros((), rw.graph.nodes[out].dtype.np))
            s = rw.add("add", (out, z.id))
            rw.set_outputs([s.id] + rw.graph.outputs[1:], rule="adds_zero_once")

    log = PassManager([Fixpoint([simplify, adds_zero_once])]).run(big)
    simp = [r for r in log if r.name == "simplify"]
    assert len(simp[0].rewrites) > 100                        # the first run looks at every node
    assert calls[0] is None and len(calls[1]) == 0             # adds_zero_once: all, then nothing new since
    assert [w.rule for w in simp[1].rewrites] == ["add_zero"]  # the rerun visits the two new nodes' area
    assert log.graph.outputs == simp[0].graph.outputs


def _all_pairs_clash(plan: MemoryPlan):
    a, pairs = plan.alignment, set(plan.inplace) | {(d, s) for s, d in plan.inplace}
    for i, x in enumerate(plan.buffers):
        for y in plan.buffers[i + 1:]:
            live = x.start <= y.end and y.start <= x.end
            xs, ys = x.padded(a), y.padded(a)
            if live and xs and ys and x.offset < y.offset + ys and y.offset < x.offset + xs \
                    and (x.name, y.name) not in pairs:
                return x.name, y.name
    return None


@pytest.mark.parametrize("seed", range(12))
def test_sweep_validation_agrees_with_the_all_pairs_check(seed):
    r = random.Random(seed)
    bufs = random_buffers(60, seed, steps=40)
    plan = plan_buffers(bufs, "greedy_by_size", alignment=64)
    assert _all_pairs_clash(plan) is None
    moved = list(plan.buffers)
    for _ in range(3):                                  # move a few buffers to random aligned offsets
        k = r.randrange(len(moved))
        moved[k] = moved[k].at(64 * r.randrange(0, plan.peak_bytes // 64 + 1))
    bad = MemoryPlan(moved, "shuffled", alignment=64)
    clash = _all_pairs_clash(bad)
    if clash is None:
        bad.validate()
    else:
        with pytest.raises(ValueError, match="overlapping bytes"):
            bad.validate()


def test_sweep_validation_sees_a_clash_beside_an_inplace_pair():
    bufs = [Buffer("x", 128, 0, 1, offset=0), Buffer("y", 64, 1, 2, offset=0), Buffer("w", 64, 1, 2, offset=64)]
    with pytest.raises(ValueError, match="'x'.*'w'"):
        MemoryPlan(bufs, "hand", alignment=64, inplace=[("x", "y")]).validate()
    ok = [Buffer("x", 128, 0, 1, offset=0), Buffer("y", 64, 1, 2, offset=0), Buffer("w", 64, 2, 2, offset=64)]
    MemoryPlan(ok, "hand", alignment=64, inplace=[("x", "y")]).validate()


def test_the_1000_op_training_graph_plans_at_its_lower_bound(big):
    log = PassManager(default_pipeline()).run(big)
    plan = plan_memory(log.graph)
    assert len(plan) > 400
    assert _all_pairs_clash(plan) is None
    assert plan.peak_bytes <= 1.05 * plan.lower_bound_bytes
