"""Tiling, capacity and bandwidth (aisys.chip.tiling + the event simulation)."""
import math

import numpy as np
import pytest

from aisys.chip import (CapacityError, Conv, Gemm, Softmax, bandwidth_demand, bandwidth_for_zero_stalls, lower_layers, plan_gemm_tiles,
                        preset, simulate)


def test_a_layer_that_fits_is_one_tile_with_no_extra_traffic():
    plan = plan_gemm_tiles(16, 16, 16, "tiny")
    assert plan.tiles == (1, 1, 1) and plan.extra_bytes == 0
    assert plan.dram_bytes == {"ifmap": 256, "filter": 256, "ofmap": 256}


def test_splitting_k_keeps_partial_sums_on_chip_so_no_extra_traffic():
    # tiny: 512 B per ifmap/filter tile. A and B are 1 KiB each: K is cut in two, the 16x16 partial
    # sums stay in the accumulators, and every operand still crosses the DRAM interface once.
    plan = plan_gemm_tiles(16, 16, 64, "tiny")
    assert (plan.Mt, plan.Nt, plan.Kt) == (16, 16, 32)
    assert plan.extra_bytes == 0


def test_when_outputs_do_not_fit_one_operand_is_read_again():
    # By hand, tiny chip, 32x32x32: the 32x32 int32 accumulators (4 KiB) exceed the 1 KiB per tile,
    # so outputs are made as four 16x16 tiles; the best order keeps each A half (16x32 = 512 B) and
    # reads B once per M-tile: 1024 B of extra traffic.
    plan = plan_gemm_tiles(32, 32, 32, "tiny")
    assert (plan.Mt, plan.Nt, plan.Kt) == (16, 16, 32)
    assert plan.dram_bytes == {"ifmap": 1024, "filter": 2048, "ofmap": 1024}
    assert plan.extra_bytes == 1024
    for name, (need, limit) in plan.buffer_use.items():
        assert need <= limit, name
    assert "extra traffic from tiling: 1,024 B" in plan.summary()


@pytest.mark.parametrize("layer, chip", [
    (Gemm("g", 32, 32, 32), "tiny"),
    (Gemm("g", 300, 200, 700), "scalesim32"),
    (Conv("c", 28, 28, 16, 32, 3, padding=1), "davinci"),
    (Gemm("fc", 64, 3000, 2048), "tpu_v1"),
])
def test_the_program_moves_exactly_the_planned_bytes(layer, chip):
    prog = lower_layers([layer], chip)
    plan = prog.plans[layer.name]
    assert prog.dram_bytes["read"] == plan.dram_bytes["ifmap"] + plan.dram_bytes["filter"]
    assert prog.dram_bytes["write"] == plan.dram_bytes["ofmap"]
    assert prog.macs == layer.macs


def test_refusing_to_tile_names_the_buffer_its_size_and_the_need():
    with pytest.raises(CapacityError, match=r"needs 2,048 B in buffer 'ifmap_sram', which offers 512 B") as info:
        plan_gemm_tiles(32, 32, 64, "tiny", on_overflow="error")
    assert (info.value.buffer, info.value.size_bytes, info.value.need_bytes) == ("ifmap_sram", 512, 2048)
    with pytest.raises(CapacityError, match="ifmap_sram"):
        lower_layers([Gemm("big", 32, 32, 64)], "tiny", on_overflow="error")


def test_resident_activations_that_overflow_the_unified_buffer_are_refused():
    # TPU v1 keeps activations in its 24 MiB Unified Buffer
    with pytest.raises(CapacityError, match="unified_buffer.*smaller batch"):
        lower_layers([Conv("huge", 224, 224, 64, 64, 3, padding=1, batch=8)], "tpu_v1")


def test_a_row_too_long_for_the_vector_buffer_is_refused():
    with pytest.raises(CapacityError, match="ofmap_sram"):
        lower_layers([Softmax("sm", 4, 4096)], "tiny")


def test_bad_tiling_arguments():
    with pytest.raises(ValueError, match="on_overflow must be"):
        plan_gemm_tiles(4, 4, 4, "tiny", on_overflow="spill")
    with pytest.raises(ValueError, match="K must be a positive integer"):
        plan_gemm_tiles(4, 4, 0, "tiny")


# ---- bandwidth and stalls ---------------------------------------------------------------------

def _weight_streaming_program(latency: int):
    """TPU v1 with activations on chip: only weights stream, as uniform tiles (w bytes, c cycles each)."""
    chip = preset("tpu_v1").with_(dram_latency_cycles=latency, scalar_issue_cycles=0)
    prog = lower_layers([Gemm("fc", 256, 1024, 1024)], chip)
    loads = [i for i in prog.instructions if i.kind == "load"]
    mms = [i for i in prog.instructions if i.kind == "matmul"]
    assert len({i.bytes for i in loads}) == 1 and len({i.cycles for i in mms}) == 1
    return chip, prog, loads[0].bytes, mms[0].cycles


@pytest.mark.parametrize("latency", [0, 100])
def test_stalls_appear_exactly_when_bandwidth_falls_below_the_need(latency):
    # Closed form: with double-buffered weights the next tile (w bytes) must arrive while this one
    # computes (c cycles): ceil(w / B) + latency <= c, so the need is w / (c − latency).
    chip, prog, w, c = _weight_streaming_program(latency)
    need = w / (c - latency)
    at_need = simulate(prog, chip=chip.with_(dram_bytes_per_cycle=need))
    assert at_need.unit_stats["matrix"].stall == 0
    below = simulate(prog, chip=chip.with_(dram_bytes_per_cycle=need * (1 - 1e-6)))
    assert below.unit_stats["matrix"].stall > 0
    assert set(below.unit_stats["matrix"].stall_causes) == {"data <- dma_weights"}
    half = simulate(prog, chip=chip.with_(dram_bytes_per_cycle=need / 2))
    assert half.unit_stats["matrix"].stall > below.unit_stats["matrix"].stall
    assert bandwidth_for_zero_stalls(prog) == pytest.approx(need, rel=1e-5)


def test_average_demand_is_bytes_over_compute_cycles():
    # with uniform weight tiles the average demand equals the zero-stall need w / c (latency 0)
    chip, prog, w, c = _weight_streaming_program(0)
    demand = bandwidth_demand(prog)
    assert demand["fc"] == pytest.approx(w / c) and demand["total"] == pytest.approx(w / c)
    lenet = lower_layers([Gemm("fc1", 1, 120, 400), Softmax("sm", 1, 10)], "davinci")
    d = bandwidth_demand(lenet)
    moved = sum(i.bytes for i in lenet.instructions if i.layer == "fc1" and i.uses_dram)
    cycles = sum(i.cycles for i in lenet.instructions if i.layer == "fc1" and i.kind == "matmul")
    assert d["fc1"] == pytest.approx(moved / cycles)
    assert set(d) == {"fc1", "sm", "total"}


def test_a_single_tile_never_stalls_on_bandwidth():
    prog = lower_layers([Gemm("g", 16, 16, 16)], "tiny")
    assert bandwidth_for_zero_stalls(prog) == 0.0


def test_no_dram_traffic_needs_no_bandwidth():
    prog = lower_layers([Softmax("sm", 8, 64)], "tpu_v1")
    assert prog.dram_bytes == {"read": 0, "write": 0}
    assert bandwidth_for_zero_stalls(prog) == 0.0


def test_latency_stalls_remain_at_any_bandwidth():
    # a tile that computes in fewer cycles than one DRAM round trip cannot hide the latency
    chip = preset("scalesim32").with_(dram_latency_cycles=20_000)      # each tile computes in 5,088 cycles
    prog = lower_layers([Gemm("g", 256, 256, 256)], chip)
    fast = simulate(prog, chip=chip.with_(dram_bytes_per_cycle=1e9))
    assert fast.unit_stats["matrix"].stall > 0
    need = bandwidth_for_zero_stalls(prog)
    assert math.isfinite(need)
    assert simulate(prog, chip=chip.with_(dram_bytes_per_cycle=need)).unit_stats["matrix"].stall == \
        fast.unit_stats["matrix"].stall


def test_tile_loads_closed_form_equals_walking_the_schedule():
    """plan_gemm_tiles counts DRAM traffic in closed form (it walked every tile, hours for a 10^7-row GEMM):
    the count must equal schedule()'s, for both loop orders and ragged tiles."""
    from dataclasses import replace
    from aisys.chip.tiling import tile_loads
    rng = np.random.default_rng(0)
    checked = 0
    for chip_name in ("tiny", "davinci", "tpu_v1", "scalesim32"):
        for _ in range(25):
            M, N, K = (int(v) for v in rng.choice([1, 3, 17, 64, 100, 257, 1000], 3))
            try:
                plan = plan_gemm_tiles(M, N, K, chip_name)
            except CapacityError:
                continue
            for order in ("m_outer", "n_outer"):
                p = replace(plan, order=order)
                a, b = {}, {}
                for _, _, _, (mt, nt, kt), new_a, new_b in p.schedule():
                    a[(mt, kt)] = a.get((mt, kt), 0) + new_a
                    b[(kt, nt)] = b.get((kt, nt), 0) + new_b
                assert tile_loads(p) == (a, b), (chip_name, M, N, K, order)
                checked += 1
    assert checked > 100
