"""Cube (block MAC), vector unit, roofline and energy models."""
import math

import pytest

from aisys.chip import (Conv, Gemm, classify_op, cube_gemm, elementwise_cost, energy_breakdown, horowitz_45nm,
                        layer_roofline, layernorm_cost, matrix_gemm, mma_count, op_flops_bytes, pool_cost, preset,
                        roofline_point, scalar_cycles, simulate_layers, softmax_cost, systolic_gemm,
                        tpu_v1_apps, tpu_v1_paper_points)
from aisys.chip.config import VectorUnit
from aisys.models import lenet_layers


# ---- cube -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("M, N, K, instructions", [
    (16, 16, 16, 1), (17, 16, 16, 2), (32, 48, 64, 2 * 3 * 4), (100, 37, 19, 7 * 3 * 2), (1, 1, 1, 1)])
def test_mma_count_is_the_product_of_ceilings(M, N, K, instructions):
    # CHIP_NOTES §5: a cube GEMM costs ceil(M/16)·ceil(N/16)·ceil(K/16) instructions
    n, waste = mma_count(M, N, K)
    assert n == instructions
    assert waste == pytest.approx(1 - M * N * K / (instructions * 16 ** 3))
    assert cube_gemm(M, N, K).compute_cycles == instructions


def test_aligned_shapes_waste_nothing_and_unaligned_ones_pad():
    assert mma_count(64, 64, 64) == (64, 0.0)
    assert mma_count(17, 16, 16)[1] == pytest.approx(0.46875)            # 17 rows padded to 32
    assert mma_count(16, 16, 32, tile=(16, 16, 32)) == (1, 0.0)            # the int8 cube shape
    with pytest.raises(ValueError, match="tile must be a tuple"):
        mma_count(4, 4, 4, tile=16)
    with pytest.raises(ValueError, match="m0 must be a positive integer"):
        mma_count(4, 4, 4, tile=(0, 16, 16))


def test_matrix_gemm_dispatches_on_the_chip():
    assert matrix_gemm(64, 64, 64, "davinci").dataflow == "cube"
    assert matrix_gemm(64, 64, 64, "tiny").compute_cycles == systolic_gemm(64, 64, 64, 4, 4, "os").compute_cycles
    assert matrix_gemm(64, 64, 64, "tpu_v1", dataflow="os", mode="scalesim").dataflow == "os"
    rep = cube_gemm(20, 20, 20)
    assert rep.pe_macs().sum() == 8000 and "cube instructions" in rep.summary()


# ---- vector ---------------------------------------------------------------------------------------

def test_elementwise_is_vectors_times_cycles_per_vector_plus_startup():
    v = VectorUnit(lanes=16, startup_cycles=4)
    assert elementwise_cost("relu", 100, v).cycles == 4 + math.ceil(100 / 16) * 1
    assert elementwise_cost("exp", 100, v).cycles == 4 + math.ceil(100 / 16) * 4
    wide = VectorUnit(lanes=64, startup_cycles=4)
    assert elementwise_cost("relu", 1000, wide).cycles < elementwise_cost("relu", 1000, v).cycles
    assert elementwise_cost("relu", 8, VectorUnit(lanes=4, op_cycles=(("relu", 3),))).cycles == 4 + 2 * 3


def test_softmax_and_layernorm_add_up_their_passes():
    v = VectorUnit(lanes=16, startup_cycles=0)
    sm = softmax_cost(2, 40, v)
    vec, tree = 3, 4                                      # ceil(40/16) vectors, log2(16) reduction tree
    per_row = (vec + tree) + vec * (1 + 4) + (vec + tree) + 4 + vec
    assert sm.cycles == 2 * per_row == sum(c for _, c in sm.passes)
    ln = layernorm_cost(2, 40, v)
    assert ln.cycles == sum(c for _, c in ln.passes) and ln.cycles > 0
    assert "softmax" in sm.summary()
    # short rows waste lanes: 64 rows of 8 cost as much vector work as 64 rows of 16
    assert softmax_cost(64, 8, v).cycles == softmax_cost(64, 16, v).cycles


def test_pooling_and_scalar_costs():
    v = VectorUnit(lanes=8, startup_cycles=0)
    assert pool_cost("max", 64, 4, v).cycles == 8 + 8 * 3
    assert pool_cost("avg", 64, 4, v).cycles == 8 + 8 * 3 + 8
    assert scalar_cycles(10, "davinci") == 20
    with pytest.raises(ValueError, match="kind must be 'max' or 'avg'"):
        pool_cost("sum", 4, 4, v)
    with pytest.raises(ValueError, match="no cost for op 'lgamma'"):
        elementwise_cost("lgamma", 4, v)
    with pytest.raises(ValueError, match="elements must be a positive integer"):
        elementwise_cost("relu", 0, v)


# ---- roofline -------------------------------------------------------------------------------------

def test_lecture_intensities():
    # CURRICULUM lab 08: fp32 add 1/12 FLOP/B; matmul N=1024 fp32 2N³/(3·4N²) ~ 171 FLOP/B
    flops, nbytes = op_flops_bytes("add", {"n": 1 << 20}, 4)
    assert flops / nbytes == pytest.approx(1 / 12)
    flops, nbytes = op_flops_bytes("matmul", {"M": 1024, "N": 1024, "K": 1024}, 4)
    assert flops / nbytes == pytest.approx(1024 / 6) and round(flops / nbytes) == 171
    # ResNet 3x3 conv, 64->64 channels at 56x56, batch 1, fp32: 231,211,008 FLOPs over 1,753,088 B
    conv = {"batch": 1, "C": 64, "H": 56, "W": 56, "F": 64, "k": 3, "stride": 1, "padding": 1}
    assert op_flops_bytes("conv2d", conv, 4) == (231_211_008, 1_753_088)


def test_classify_against_the_ridge():
    davinci = preset("davinci")                        # ridge 218.5 FLOP/B
    assert classify_op("add", {"n": 4096}, davinci)[1] == "memory"
    assert classify_op("matmul", {"M": 1024, "N": 1024, "K": 1024}, davinci, 4)[1] == "memory"   # 171 < 218
    assert classify_op("matmul", {"M": 1024, "N": 1024, "K": 1024}, davinci, 2)[1] == "compute"  # fp16: 341
    with pytest.raises(ValueError, match="missing"):
        classify_op("matmul", {"M": 4}, davinci)
    with pytest.raises(ValueError, match="op 'fft' is not known"):
        op_flops_bytes("fft", {}, 4)


def test_tpu_v1_ridge_and_the_six_apps():
    # Jouppi et al. 2017: ridge ~1350 MAC per weight byte; MLPs and LSTMs memory-bound, CNNs compute-bound
    tpu = preset("tpu_v1")
    assert tpu.ridge_point_macs == pytest.approx(1350, rel=0.005)
    paper = {p.name: p for p in tpu_v1_paper_points()}
    assert {n for n, p in paper.items() if p.bound == "memory"} == {"MLP0", "MLP1", "LSTM0", "LSTM1"}
    assert paper["CNN0"].macs_per_byte == 2888
    for app in tpu_v1_apps():
        pt = layer_roofline(app.layer, tpu)           # intensity from the simulator's own DRAM counters
        assert pt.bound == ("compute" if app.kind == "CNN" else "memory"), app.name
        if app.kind != "CNN":
            assert pt.macs_per_byte == pytest.approx(app.batch)   # each weight byte used once per example
        assert pt.achieved_ops_per_s <= pt.attainable_ops_per_s * (1 + 1e-9)
    assert layer_roofline(tpu_v1_apps()[4].layer, tpu).macs_per_byte == pytest.approx(2888)


def test_layer_ceilings_sit_under_the_roof():
    pt = layer_roofline(Conv("c", 14, 14, 32, 48, 3, padding=1), "scalesim32")
    peak = preset("scalesim32").peak_ops_per_s
    assert peak >= pt.ceilings["mapping efficiency"] >= pt.ceilings["pipeline fill"] > 0
    assert "ops/B" in pt.summary()
    p = roofline_point("x", 100.0, 0.0, "tiny")
    assert p.intensity == math.inf and p.bound == "compute"
    with pytest.raises(ValueError, match="dram_bytes must be a finite number"):
        roofline_point("x", 1.0, -1.0, "tiny")


# ---- energy -----------------------------------------------------------------------------------------

def test_energy_is_counts_times_the_table():
    rep = systolic_gemm(64, 64, 64, 8, 8, "ws", "tpu")
    t = horowitz_45nm("int8")
    e = energy_breakdown(rep, t)
    assert e.parts_pj["MAC"] == pytest.approx(64 ** 3 * 0.3)
    assert e.parts_pj["DRAM"] == pytest.approx(rep.dram_bytes(1, 1) * 162.5)
    assert e.idle_pe_cycles == 64 * rep.elapsed_cycles - 64 ** 3
    assert sum(e.fractions.values()) == pytest.approx(1.0)
    assert "pJ per MAC" in e.summary()


def test_data_movement_dominates_a_simulated_network():
    e = energy_breakdown(simulate_layers(lenet_layers(), "davinci"))
    assert e.table.name == "Horowitz 45nm fp16"
    assert e.parts_pj["DRAM"] > e.parts_pj["MAC"]
    with pytest.raises(ValueError, match="dtype must be one of"):
        horowitz_45nm("int4")
    with pytest.raises(TypeError, match="MatrixReport or a ProgramResult"):
        energy_breakdown(Gemm("g", 1, 1, 1))
