"""Activation checkpointing: the layered model against its closed form, and the graph rewrite."""
import math

import numpy as np
import pytest

from aisys.compiler.memory import (LayeredModel, best_checkpoint_interval, checkpoint_cost, checkpoint_graph,
                                   checkpoint_layers, plan_memory, saved_activations, simulate_checkpointing,
                                   sweep_graph_checkpoints)
from aisys.compiler.memory.recompute import checkpoint_table, forward_nodes
from aisys.compiler.memory.workloads import deep_training_graph
from aisys.framework.graph import interpret


@pytest.mark.parametrize("L", range(1, 41))
def test_simulation_matches_the_closed_form(L):
    for k in range(1, L + 1):
        sim = simulate_checkpointing(L, k)
        assert (sim.peak_bytes, sim.recompute_count) == checkpoint_cost(L, k), (L, k)
        if L % k == 0:      # Chen et al. 2016: L/k kept + one segment of k-1 recomputed
            assert checkpoint_cost(L, k) == (L // k + k - 1, L - L // k)


@pytest.mark.parametrize("L", [4, 9, 16, 25, 36, 49, 64, 100])
def test_best_interval_is_near_sqrt_L(L):
    r = math.isqrt(L)
    best = best_checkpoint_interval(L)
    assert best.peak_bytes == 2 * r - 1 == checkpoint_cost(L, r)[0]     # 2√L − 1 at k = √L
    assert r // 2 <= best.k <= 2 * r
    assert simulate_checkpointing(L, 1).peak_bytes == L == simulate_checkpointing(L, L).peak_bytes


def test_uneven_layers_are_counted_in_bytes():
    # a1 is huge and not a checkpoint at k=2: recomputing it cannot beat the forward pass, where a1
    # and a2 are alive together (step 1, "forward 2").
    model = LayeredModel((100, 1, 1, 1), name="wide first layer")
    plan = simulate_checkpointing(model, 2)
    assert plan.checkpoints == (2, 4)
    assert list(plan.live) == [100, 101, 2, 3, 3, 3, 2, 101, 101, 100]
    assert plan.peak_bytes == 101 and plan.steps[plan.peak_step] == "forward 2"
    assert plan.recompute_count == 2 and plan.baseline_bytes == 103
    assert plan.steps == ("forward 1", "forward 2", "forward 3", "forward 4", "recompute 3", "backward 4",
                          "backward 3", "recompute 1", "backward 2", "backward 1")
    mp = plan.to_memory_plan()
    assert mp.lower_bound_bytes == 101 and mp.validate() is mp
    assert "keep 2 activations, recompute 2 layers; peak 101 B at forward 2 vs 103 B" in plan.summary()


def test_checkpoint_arguments_are_checked():
    assert checkpoint_layers(10, 3) == (3, 6, 9, 10)
    with pytest.raises(ValueError, match=r"integer in 1..10"):
        checkpoint_layers(10, 0)
    with pytest.raises(ValueError, match="at least one layer"):
        LayeredModel.uniform(0)


@pytest.fixture(scope="module")
def train_graph():
    return deep_training_graph(layers=9, width=16, batch=128)


def test_graph_rewrite_keeps_results_and_trades_recompute_for_memory(train_graph):
    g = train_graph
    x = np.random.default_rng(1).standard_normal((128, 16)).astype(np.float32)
    ref = interpret(g, x)
    saved = saved_activations(g)
    assert len(saved) == 9 and all(g.nodes[i].op == "tanh" for i in saved)
    peaks = {}
    for k in (1, 3, 9):
        cg = checkpoint_graph(g, every=k)
        kept = saved[::k]
        assert cg.kept == tuple(kept)
        assert cg.recompute_count == 2 * (9 - len(kept))          # matmul + tanh per dropped layer
        for a, b in zip(interpret(cg.graph, x), ref):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        assert all(g.nodes[cg.graph.nodes[c].provenance[0]].op == g.nodes[o].op for o, c in cg.recomputed.items())
        peaks[k] = plan_memory(cg.graph).peak_bytes
    assert peaks[3] < peaks[1] and peaks[3] < peaks[9]             # k ≈ √L wins, as in the closed form
    act = 128 * 16 * 4
    assert peaks[1] - peaks[3] >= 4 * act                           # at least 4 activations saved


def test_sweep_table_and_keep_list(train_graph):
    rows = sweep_graph_checkpoints(train_graph, [1, 3])
    text = checkpoint_table(rows)
    assert text.splitlines()[0].split() == ["every", "kept", "recomputed", "ops", "peak"]
    assert "(1.00x)" in text.splitlines()[1]
    saved = saved_activations(train_graph)
    cg = checkpoint_graph(train_graph, keep=[saved[4]])
    assert cg.kept == (saved[4],) and cg.every is None and "chosen" in cg.summary()


def test_graph_rewrite_errors(train_graph):
    with pytest.raises(ValueError, match="exactly one of every=k or keep"):
        checkpoint_graph(train_graph)
    with pytest.raises(ValueError, match="every must be a positive integer"):
        checkpoint_graph(train_graph, every=0)
    with pytest.raises(ValueError, match="is not a saved activation"):
        checkpoint_graph(train_graph, keep=[0])
    with pytest.raises(ValueError, match="is not a node"):
        forward_nodes(train_graph, loss=10_000)
