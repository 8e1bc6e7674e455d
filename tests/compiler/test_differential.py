"""Differential testing: on random graphs, every pass alone and the whole pipeline must compute what
the unoptimized graph computes (the registry's numpy references are the ground truth), and every
result must pass the verifier.

Generated cases per run: 6 passes × 30 + pipeline 40 (reference) + pipeline 30 (numba kernels)
+ conv pipelines 25 (reference) + 15 (numba) = 290 from hypothesis, plus 16 seeded deeper graphs
through the numba kernels. The numba tests are derandomized / seeded so CI compiles the same kernel
signatures every run and the on-disk kernel cache makes reruns fast.
"""
import pytest
from hypothesis import HealthCheck, given, settings

from aisys.compiler import (PassManager, cse, dce, default_pipeline, fold_constants, fold_conv_bn, fuse, simplify,
                            to_nhwc)
from aisys.compiler.runtime import Executable
from aisys.compiler.testing import assert_same_outputs, conv_graphs, graphs, random_graph, random_inputs
from aisys.framework.graph import interpret

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(graph, passes, backend="reference", seed=0, rtol=1e-4, atol=1e-4):
    graph.verify()
    xs = random_inputs(graph, seed)
    want = interpret(graph, *xs)
    log = PassManager(passes).run(graph)
    log.graph.verify()
    got = Executable(log.graph, backend).run(*xs)
    assert_same_outputs(got, want, rtol=rtol, atol=atol, what=f"{[r.label for r in log]}\n{graph}\n→\n{log.graph}")
    return log


@pytest.mark.parametrize("pass_fn", [fold_constants, dce, cse, simplify, fuse, to_nhwc], ids=lambda p: p.__name__)
@FAST
@given(g=graphs(dropout=True))
def test_each_pass_alone_keeps_values(pass_fn, g):
    _check(g, [pass_fn])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=graphs())
def test_pipeline_keeps_values_reference_backend(g):
    log = _check(g, default_pipeline())
    assert log.graph.count_ops().get("fused", 0) == sum(1 for n in log.graph.nodes.values() if n.op == "fused")


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(g=graphs())
def test_pipeline_keeps_values_numba_kernels(g):
    _check(g, default_pipeline(), backend="numba")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=conv_graphs())
def test_conv_pipelines_keep_values_reference_backend(g):
    _check(g, [fold_conv_bn], atol=1e-5)
    _check(g, [to_nhwc], atol=1e-5)
    log = _check(g, default_pipeline(layout=True), atol=1e-5)
    assert "batch_norm" not in log.graph.count_ops()          # every eval-mode BN folded
    assert "conv2d" not in log.graph.count_ops()              # every conv runs channels-last


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(g=conv_graphs())
def test_conv_pipeline_keeps_values_numba_kernels(g):
    _check(g, default_pipeline(layout=True), backend="numba", atol=1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_random_graph_generator_is_reproducible_and_varied(seed):
    a, b = random_graph(seed), random_graph(seed)
    assert str(a) == str(b)
    a.verify()
    ops = set()
    for s in range(40):
        ops |= set(random_graph(s).count_ops())
    assert {"add", "mul", "matmul", "where", "permute", "reshape", "cast"} <= ops
    assert ops & {"sum", "mean", "max", "min"}


@pytest.mark.parametrize("seed", range(16))
def test_bigger_seeded_graphs_numba_kernels(seed):
    """Deeper graphs (up to 20 ops, rank 4) than hypothesis tends to keep: longer fused chains and more
    broadcasting patterns through the numba kernels."""
    g = random_graph(1000 + seed, max_ops=20, max_rank=4)
    log = _check(g, default_pipeline(), backend="numba")
    assert all(n.attrs["kind"] in ("elementwise", "reduce", "epilogue") for n in log.graph.nodes.values()
               if n.op == "fused")
