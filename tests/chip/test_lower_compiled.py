"""Lowering compiled graphs (with ``fused`` nodes) to the chip: fusion's payoff shows up as DRAM traffic."""
import pytest

import aisys
from aisys import chip, nn
from aisys.framework.graph import Graph


def _chain(x, w, b, s):
    return ((x * w + b).relu() * s).sigmoid()


def _inputs(n=256):
    aisys.manual_seed(0)
    return [aisys.randn(n, n) for _ in range(3)] + [aisys.tensor(0.5)]


def test_a_fused_elementwise_chain_reads_each_input_once():
    xs = _inputs()
    unfused = chip.simulate(chip.lower_graph(aisys.trace(_chain, *xs), "davinci"))
    compiled = aisys.compile(_chain, *xs)
    assert [n.op for n in compiled.graph.op_nodes] == ["fused"]
    fused = chip.simulate(chip.lower_graph(compiled.graph, "davinci"))
    word = chip.preset("davinci").matrix.input_bytes     # fp16 operands: 2 bytes
    n = 256 * 256
    # closed form: the group loads x, w, b once (the scalar s is not a tensor stream) and stores one result
    assert fused.dram_bytes == {"read": 3 * n * word, "write": n * word}
    # unfused: mul reads 2, add 2, relu 1, mul 1, sigmoid 1 tensors and each writes one
    assert unfused.dram_bytes == {"read": 7 * n * word, "write": 5 * n * word}
    assert fused.cycles < unfused.cycles


def test_epilogue_fusion_lowers_like_the_chips_own_activation_fusion():
    aisys.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    x = aisys.randn(32, 64)
    compiled = aisys.compile(model, x)
    assert any(n.op == "fused" and n.attrs["kind"] == "epilogue" for n in compiled.graph.op_nodes)
    a = chip.simulate(chip.lower_graph(compiled.graph, "davinci"))
    b = chip.simulate(chip.lower_graph(aisys.trace(model, x), "davinci"))
    assert a.cycles == b.cycles and a.dram_bytes == b.dram_bytes


def test_a_fused_group_with_an_op_the_vector_unit_cannot_run_is_refused():
    xs = _inputs(8)
    compiled = aisys.compile(_chain, *xs)
    node = compiled.graph.op_nodes[0]
    body: Graph = node.attrs["_body"]
    body.op_nodes[0].op = "conv2d_backward_input"          # not something a vector unit executes
    with pytest.raises(ValueError, match="fused node .* contains conv2d_backward_input"):
        chip.lower_graph(compiled.graph, "davinci")


def test_compiled_functions_expose_their_memory_plan():
    aisys.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    compiled = aisys.compile(model, aisys.randn(8, 16))
    plan = compiled.memory_plan
    assert plan is compiled.memory_plan                       # computed once
    plan.validate()
    assert plan.lower_bound_bytes <= plan.peak_bytes
    assert {b.name for b in plan.buffers} and plan.planner == "greedy_by_size"


def test_gelu_cost_follows_the_form_the_op_computes():
    """Exact GELU evaluates an erf, its tanh form a tanh: the chip costs the one the graph asks for."""
    from aisys.chip.vector import DEFAULT_OP_CYCLES, elementwise_cost
    x = aisys.randn(64, 64)
    exact = chip.graph_to_layers(aisys.trace(lambda v: aisys.gelu(v), x))
    tanh = chip.graph_to_layers(aisys.trace(lambda v: aisys.gelu(v, approximate="tanh"), x))
    erf = chip.graph_to_layers(aisys.trace(lambda v: aisys.erf(v), x))
    assert [l.op for l in exact] == ["gelu"] and [l.op for l in tanh] == ["gelu_tanh"]
    assert [l.op for l in erf] == ["erf"]
    cfg = chip.preset("davinci")
    assert elementwise_cost("gelu", 4096, cfg).cycles > elementwise_cost("gelu_tanh", 4096, cfg).cycles
    assert DEFAULT_OP_CYCLES["gelu"] == DEFAULT_OP_CYCLES["erf"] + 2
    compiled = aisys.compile(lambda v: aisys.gelu(v, approximate="tanh") * 2.0, x)
    (fused,) = chip.graph_to_layers(compiled.graph)
    assert fused.chain == ("gelu_tanh", "mul")
