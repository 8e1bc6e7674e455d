"""Layer records, lowering to tile programs, and the event-driven simulation with its trace."""
import json

import pytest

from aisys.chip import (Conv, Elementwise, Gemm, LayerNorm, Pool, Softmax, graph_to_layers, lower_graph, lower_layers, preset,
                        resnet18_layers, simulate, simulate_layer, simulate_layers)
from aisys.models import lenet_layers


@pytest.mark.parametrize("chip", ["tiny", "scalesim32", "tpu_v1", "davinci"])
def test_lenet_runs_on_every_preset(chip):
    res = simulate_layers(lenet_layers(), chip)
    assert res.macs == sum(layer.macs for layer in lenet_layers())
    assert res.cycles > 0 and 0 < res.utilization <= 1
    assert res.achieved_tops <= res.peak_tops
    for unit, st in res.unit_stats.items():
        assert st.busy + st.stall + st.idle == res.cycles, unit
        assert min(st.busy, st.stall, st.idle) >= 0
    # instructions respect their dependencies and their unit's order
    prog = res.program
    for ins in prog.instructions:
        for d, _ in ins.deps:
            assert res.end[d] <= res.start[ins.id]
        assert res.issue[ins.id] <= res.start[ins.id]
    for unit in prog.units:
        mine = [i.id for i in prog.instructions if i.unit == unit]
        for a, b in zip(mine, mine[1:]):
            assert res.free[a] <= res.start[b] and res.free[a] <= res.end[a]


def test_davinci_has_one_lane_per_pipe_and_exports_chrome_json(tmp_path):
    res = simulate_layers(lenet_layers(), "davinci")
    tr = res.trace()
    assert tr.lanes[:3] == ["scalar", "matrix", "vector"]
    assert {"mte1", "mte2", "mte3", "fixpipe"} <= set(tr.lanes)
    data = tr.to_chrome()
    names = {e["args"]["name"] for e in data["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"matrix", "mte2"} <= names
    busy = [e for e in data["traceEvents"] if e["ph"] == "X" and e["args"]["state"] == "busy"]
    stalls = [e for e in data["traceEvents"] if e["ph"] == "X" and e["args"]["state"] == "stall"]
    assert busy and stalls and all(e["name"].startswith("stall: ") for e in stalls)
    assert sum(e["args"].get("macs", 0) for e in busy) == res.macs
    path = tr.save(tmp_path / "lenet.json")
    assert json.loads(open(path).read())["otherData"]["clock_hz"] == 1e9


def test_double_buffering_overlaps_loads_with_compute():
    res = simulate_layer(Gemm("g", 256, 256, 1024), "scalesim32")
    mm = [i.id for i in res.program.instructions if i.kind == "matmul"]
    loads = [i.id for i in res.program.instructions if i.kind == "load"]
    overlapping = [(m, ld) for m in mm for ld in loads
                   if res.start[ld] < res.end[m] and res.start[m] < res.end[ld]]
    assert overlapping, "some load runs while the matrix unit computes"
    single = preset("scalesim32").with_(buffers=tuple(b.__class__(b.name, b.size_bytes, False)
                                                      for b in preset("scalesim32").buffers))
    res1 = simulate_layer(Gemm("g", 256, 256, 1024), single)
    assert res1.cycles > res.cycles, "without ping-pong buffers loads and compute serialize"


def test_weights_of_the_next_layer_prefetch_during_this_one():
    res = simulate_layers([Gemm("a", 64, 256, 256), Gemm("b", 64, 256, 256)], "tpu_v1")
    instrs = res.program.instructions
    last_a = max(res.end[i.id] for i in instrs if i.layer == "a" and i.kind == "matmul")
    first_b_load = min(res.start[i.id] for i in instrs if i.layer == "b" and i.kind == "load")
    assert first_b_load < last_a


def test_a_following_activation_is_fused_into_the_matmul_layer():
    fused = lower_layers([Gemm("fc", 8, 16, 32), Elementwise("act", "relu", 8 * 16)], "tiny")
    assert [i.layer for i in fused.instructions if i.kind == "vector"] == ["fc"]
    unfused = lower_layers([Gemm("fc", 8, 16, 32), Elementwise("act", "relu", 8 * 16)], "tiny",
                           fuse_activations=False)
    assert {i.layer for i in unfused.instructions if i.kind == "vector"} == {"act"}
    assert simulate(fused).cycles < simulate(unfused).cycles


def test_scalar_issue_cost_shows_up_when_tiles_are_tiny():
    layers = [Gemm("g", 64, 64, 64)]
    quick = simulate_layers(layers, preset("tiny").with_(scalar_issue_cycles=0))
    slow = simulate_layers(layers, preset("tiny").with_(scalar_issue_cycles=200))
    assert slow.cycles > quick.cycles
    assert slow.unit_stats["matrix"].stall_causes.get("issue", 0) > 0
    assert slow.unit_stats["scalar"].busy == 200 * len(slow.program.instructions)


def test_resnet18_layers_are_the_known_network():
    layers = resnet18_layers()
    convs = [layer for layer in layers if isinstance(layer, Conv)]
    assert len(convs) == 20 and isinstance(layers[-1], Gemm)
    # ResNet-18 at 224x224: about 1.8 GMACs (He et al. 2016 give 1.8e9 FLOPs, counting multiply-adds)
    assert sum(layer.macs for layer in layers) == pytest.approx(1.814e9, rel=0.01)
    assert sum(layer.io_words()["filter"] for layer in layers) == pytest.approx(11.68e6, rel=0.01)


def test_layer_records_validate():
    with pytest.raises(ValueError, match="Gemm 'g': K must be a positive integer"):
        Gemm("g", 1, 1, 0)
    with pytest.raises(ValueError, match="activation must be None or one of"):
        Gemm("g", 1, 1, 1, activation="swish")
    with pytest.raises(ValueError, match="does not fit an input of size 3"):
        Conv("c", 3, 3, 1, 1, 5)
    with pytest.raises(ValueError, match="kind_ must be 'max' or 'avg'"):
        Pool("p", "min", 1, 1, 4, 4, 2)
    with pytest.raises(ValueError, match="window 5 is larger"):
        Pool("p", "max", 1, 1, 4, 4, 5)
    with pytest.raises(ValueError, match="rows must be a positive integer"):
        Softmax("s", 0, 3)
    with pytest.raises(ValueError, match="cols must be a positive integer"):
        LayerNorm("l", 3, -1)
    with pytest.raises(ValueError, match="op must be a name"):
        Elementwise("e", "", 4)


def test_lowering_errors_are_specific():
    with pytest.raises(ValueError, match="layer list is empty"):
        lower_layers([], "tiny")
    with pytest.raises(TypeError, match="item 1 is a str"):
        lower_layers([Gemm("g", 1, 1, 1), "relu"], "tiny")
    with pytest.raises(ValueError, match="two layers are named 'g'"):
        lower_layers([Gemm("g", 1, 1, 1), Gemm("g", 1, 1, 1)], "tiny")
    with pytest.raises(ValueError, match="no cost for op 'lgamma'"):
        lower_layers([Elementwise("e", "lgamma", 4)], "tiny")


def test_vector_layers_lower_to_load_compute_store():
    layers = [Pool("p", "avg", 1, 8, 16, 16, 2), Softmax("s", 4, 10), LayerNorm("ln", 4, 32),
              Elementwise("add", "add", 100)]
    prog = lower_layers(layers, "davinci")
    for layer in layers:
        kinds = [i.kind for i in prog.instructions if i.layer == layer.name]
        assert kinds[:3] == ["load", "vector", "store"]
    res = simulate(prog)
    assert res.unit_stats["vector"].busy > 0 and res.macs == 0
    assert "vector" in res.summary()


def test_simulation_is_deterministic_and_reports_text():
    a = simulate_layers(lenet_layers(), "tiny")
    b = simulate_layers(lenet_layers(), "tiny")
    assert a.start == b.start and a.end == b.end
    assert a.summary() == b.summary() and "achieved" in a.summary()
    assert "program for tiny" in a.program.summary()
    assert "#0" in a.program.listing(5)
    layers = lenet_layers()
    fused = {b.name for a_, b in zip(layers, layers[1:]) if isinstance(a_, (Conv, Gemm)) and b.op == "relu"}
    assert fused == {"conv1.relu", "conv2.relu", "fc1.relu", "fc2.relu"}     # applied as the accumulators drain
    assert set(a.layer_cycles()) == {layer.name for layer in layers} - fused
    with pytest.raises(ValueError, match="queue_depth"):
        simulate(a.program, queue_depth=0)


def test_graph_lowering_maps_ops_to_layers():
    import numpy as np

    from aisys.framework.graph import Graph
    g = Graph("mlp")
    x = g.add_input("x", (8, 32))
    w = g.add_param("w", np.zeros((32, 16), np.float32))
    b = g.add_param("b", np.zeros(16, np.float32))
    h = g.add("matmul", [x.id, w.id])
    hb = g.add("add", [h.id, b.id])                  # a bias: absorbed by the matmul
    r = g.add("relu", [hb.id])
    s = g.add("softmax", [r.id], {"dim": -1})
    g.set_outputs([s.id])
    layers = graph_to_layers(g)
    assert [type(layer).__name__ for layer in layers] == ["Gemm", "Elementwise", "Softmax"]
    assert layers[0].gemm == (8, 16, 32) and layers[1].op == "relu" and layers[1].elements == 128
    prog = lower_graph(g, "tiny")
    assert [i.layer for i in prog.instructions if i.kind == "vector"][0] == layers[0].name   # relu fused
    bad = Graph("bwd")
    gy = bad.add_input("g", (1, 2, 4, 4))
    xx = bad.add_input("x", (1, 3, 6, 6))
    bad.add("conv2d_backward_weight", [gy.id, xx.id], {"weight_shape": (2, 3, 3, 3), "stride": (1, 1),
                                                     "padding": (0, 0), "dilation": (1, 1), "groups": 1})
    with pytest.raises(ValueError, match="conv2d_backward_weight has no chip model"):
        graph_to_layers(bad)


def test_a_traced_lenet_lowers_to_the_same_work_as_the_layer_list():
    import numpy as np

    import aisys
    from aisys.models.lenet import LeNet
    graph = aisys.trace(LeNet(), np.zeros((1, 1, 28, 28), np.float32))
    layers = graph_to_layers(graph)
    kinds = [type(layer).__name__ for layer in layers]
    assert kinds == ["Conv", "Elementwise", "Pool", "Conv", "Elementwise", "Pool", "Gemm", "Elementwise",
                     "Gemm", "Elementwise", "Gemm"]
    assert sum(layer.macs for layer in layers) == sum(layer.macs for layer in lenet_layers())
    res = simulate(lower_graph(graph, "davinci"))
    assert res.macs == 416_520 and res.cycles > 0


def test_a_simulation_too_large_is_refused_in_milliseconds_with_the_analytic_estimate():
    """A 10^7 x 10^3 x 10^3 GEMM on `tiny` once ran without end (3.8 M instructions at 10^4 rows in 29 s)."""
    import time
    from aisys.chip import AnalyticEstimate, SimulationTooLarge, count_instructions
    from aisys.chip.estimate import MAX_INSTRUCTIONS
    big = Gemm("big", 10**7, 10**3, 10**3)
    t0 = time.perf_counter()
    with pytest.raises(SimulationTooLarge, match=r"about 3,819,375,000 instructions on 'tiny', over max_instructions="
                                                 r"250,000.*'big' \(gemm 10000000x1000 @ 1000x1000\).*mode='analytic'"):
        simulate_layer(big, "tiny")
    with pytest.raises(SimulationTooLarge):
        lower_layers([big], "tiny")
    est = simulate_layer(big, "tiny", mode="analytic")
    assert time.perf_counter() - t0 < 2.0
    assert isinstance(est, AnalyticEstimate) and est.layers[0].instructions == 3_819_375_000
    assert "analytic estimate on 'tiny'" in est.summary() and est.cycles > 0 and MAX_INSTRUCTIONS == 250_000
    with pytest.raises(ValueError, match="mode must be 'simulate' or 'analytic'"):
        simulate_layer(big, "tiny", mode="fast")
    small = Gemm("g", 16, 16, 16)
    with pytest.raises(SimulationTooLarge):
        simulate_layer(small, "tiny", max_instructions=1)
    assert count_instructions([small], "tiny") == len(lower_layers([small], "tiny").instructions)


@pytest.mark.parametrize("chip_name", ["tiny", "davinci", "tpu_v1", "int8"])
def test_instruction_count_is_exact_and_the_analytic_estimate_is_close(chip_name):
    from aisys.chip import count_instructions, estimate_layers
    layers = lenet_layers() + [Softmax("sm", 3, 10)]
    if chip_name == "int8":                                   # narrow words, fused requantize, a batched matmul
        chip_name = preset("scalesim32").with_datapath(4)
        layers = [Gemm("a", 64, 128, 256, word_bytes=1), Elementwise("r", "requantize", 64 * 128, word_bytes=1),
                  Gemm("b", 32, 64, 128, count=3), Elementwise("e", "relu", 32 * 64 * 3, word_bytes=1)]
    prog = lower_layers(layers, chip_name)
    assert count_instructions(layers, chip_name) == len(prog.instructions)
    ratio = estimate_layers(layers, chip_name).cycles / simulate(prog).cycles
    assert 0.4 < ratio < 1.1, ratio


def test_the_pe_heat_map_is_part_of_the_program_result():
    res = simulate_layers([Gemm("fc", 40, 20, 30)], "tiny")
    heat = res.pe_heat()
    m = preset("tiny").matrix
    assert heat.shape == (m.rows, m.cols) and 0 < heat.max() <= 1
    assert res.pe_heat(0, 1).sum() <= heat.sum() * res.cycles        # a window sees at most its share
    assert not res.pe_heat(res.cycles, res.cycles + 10).any()        # nothing runs after the end


def test_every_registry_op_lowers_or_names_its_reason():
    """Including ops that appear only after compiler passes (conv2d_nhwc after the layout pass)."""
    import numpy as np

    import aisys
    from aisys.compiler import run_passes, default_pipeline
    from aisys.framework.registry import OPS
    for name, op in OPS.items():
        low = op.lowering
        assert low.lowerable or len(low.why) > 20, f"{name}: {low}"
    model = aisys.nn.Sequential(aisys.nn.Conv2d(3, 4, 3, padding=1), aisys.nn.ReLU(), aisys.nn.Conv2d(4, 2, 3))
    graph = aisys.trace(model, np.zeros((1, 3, 8, 8), np.float32))
    nhwc = run_passes(graph, default_pipeline(layout=True, fusion=False)).graph
    assert "conv2d_nhwc" in nhwc.count_ops()
    layers = graph_to_layers(nhwc)
    convs = [layer for layer in layers if isinstance(layer, Conv)]
    assert [(c.C, c.H, c.F) for c in convs] == [(3, 8, 4), (4, 8, 2)]  # NHWC shapes read as NHWC
    assert [c.macs for c in convs] == [c.macs for c in graph_to_layers(graph) if isinstance(c, Conv)]
