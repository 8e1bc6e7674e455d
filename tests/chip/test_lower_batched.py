"""Batched matmuls (attention's per-head products) lower to one Gemm layer with a count of products."""
import pytest

import aisys
from aisys import chip
from aisys.chip import Gemm, lower_layers, simulate


def test_batched_matmul_becomes_a_counted_gemm():
    q, k = aisys.randn(2, 3, 5, 8), aisys.randn(2, 3, 8, 7)
    graph = aisys.trace(lambda a, b: a @ b, q, k)
    layers = chip.graph_to_layers(graph)
    assert layers == [Gemm(layers[0].name, 5, 7, 8, count=6)]
    g = layers[0]
    assert g.macs == 6 * 5 * 7 * 8 and g.io_words() == {"ifmap": 6 * 40, "filter": 6 * 56, "ofmap": 6 * 35}
    assert g.describe() == "6 x gemm 5x8 @ 8x7"
    prog = chip.lower_graph(graph, "davinci")
    assert prog.macs == g.macs and prog.count("matrix", "matmul") == 6      # one tile per product here
    one = lower_layers([Gemm("g", 5, 7, 8)], "davinci")
    assert prog.dram_bytes["read"] == 6 * one.dram_bytes["read"]           # every product loads its own operands
    assert simulate(prog).cycles > simulate(one).cycles


def test_broadcast_operands_and_bad_counts():
    graph = aisys.trace(lambda a, b: a @ b, aisys.randn(4), aisys.randn(2, 4, 3))   # a vector against a batch
    (g,) = chip.graph_to_layers(graph)
    assert (g.M, g.N, g.K, g.count) == (1, 3, 4, 2)
    with pytest.raises(ValueError, match="count"):
        Gemm("g", 1, 1, 1, count=0)
