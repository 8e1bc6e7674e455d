"""What compression buys on the simulated chip (issue 18): int8 layers pack into a wider datapath and move a
quarter of the bytes, cost Horowitz's int8 MAC energy; channel-pruned layers are smaller GEMMs; unstructured
sparsity leaves a dense systolic array's cycles exactly as they were (zero-skipping PEs save only energy)."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import aisys
from aisys import chip, nn
from aisys.framework import compress as C
from aisys.models import LeNet, MLP

FP32 = chip.preset("scalesim32").with_datapath(4)          # the dense systolic preset with an fp32 datapath


def test_datapath_packing_and_fp32_equivalent_presets():
    m = chip.preset("davinci").matrix
    assert m.macs_per_pe(1) == 2 and m.macs_per_pe() == 1, "Ascend's cube: twice the MACs in int8"
    with pytest.raises(ValueError, match="4-byte operand does not fit the 2-byte datapath"):
        m.macs_per_pe(4)
    tpu, wide = chip.preset("tpu_v1"), chip.preset("tpu_v1").with_datapath(4)
    assert wide.matrix.input_bytes == 4 and wide.matrix.macs_per_pe(1) == 4 and wide.name == "tpu_v1@fp32"
    assert wide.buffer("weight_fifo").size_bytes == 4 * tpu.buffer("weight_fifo").size_bytes
    assert wide.peak_macs_per_cycle == tpu.peak_macs_per_cycle and wide.dram == tpu.dram
    with pytest.raises(ValueError, match="input_bytes must be a positive integer"):
        tpu.with_datapath(0)


def test_an_int8_gemm_packs_four_macs_per_pe_and_moves_a_quarter_of_the_bytes():
    fp32 = chip.simulate(chip.lower_layers([chip.Gemm("g", 64, 64, 256)], FP32))
    int8 = chip.simulate(chip.lower_layers([chip.Gemm("g", 64, 64, 256, word_bytes=1)], FP32))
    assert int8.macs == fp32.macs == 64 * 64 * 256
    assert int8.dram_bytes["read"] * 4 == fp32.dram_bytes["read"]
    mm32 = [i for i in fp32.program.instructions if i.kind == "matmul"]
    mm8 = [i for i in int8.program.instructions if i.kind == "matmul"]
    t32 = mm32[0]
    assert t32.cycles == chip.systolic_gemm(*t32.dims, 32, 32, "os", "scalesim").elapsed_cycles
    Mt, Nt, Kt = mm8[0].dims
    assert mm8[0].cycles == chip.systolic_gemm(Mt, Nt, math.ceil(Kt / 4), 32, 32, "os", "scalesim").elapsed_cycles
    assert fp32.cycles / int8.cycles > 2.5
    with pytest.raises(ValueError, match="does not fit the 1-byte datapath"):
        chip.lower_layers([chip.Gemm("g", 8, 8, 8, word_bytes=4)], "scalesim32")


def test_int8_mac_energy_is_horowitz_int8_and_zero_skipping_saves_only_energy():
    layers32 = [chip.Gemm("g", 64, 64, 128, density=0.1)]
    run32 = chip.simulate(chip.lower_layers(layers32, FP32))
    run8 = chip.simulate(chip.lower_layers([chip.Gemm("g", 64, 64, 128, word_bytes=1, density=0.1)], FP32))
    e32, e8 = chip.energy_breakdown(run32), chip.energy_breakdown(run8)
    assert e32.parts_pj["MAC"] == pytest.approx(run32.macs * 4.6)
    assert e8.parts_pj["MAC"] == pytest.approx(run8.macs * 0.3)
    assert e32.parts_pj["MAC"] / e8.parts_pj["MAC"] == pytest.approx(4.6 / 0.3), "Horowitz: fp32 4.6 pJ, int8 0.3"
    skipping = FP32.with_(zero_skipping=True)
    run_skip = chip.simulate(chip.lower_layers(layers32, skipping))
    assert run_skip.cycles == run32.cycles, "a lockstep wavefront does not go faster"
    assert chip.energy_breakdown(run_skip).parts_pj["MAC"] == pytest.approx(0.1 * e32.parts_pj["MAC"])


def _int8_graph(model, x):
    q = C.quantize(model, [x], activations="minmax")
    return aisys.compile(q, x, passes=["fold_quantization", "dce"], backend="reference").graph


def test_the_integer_graph_lowers_as_int8_layers():
    aisys.manual_seed(0)
    model = LeNet(image_size=8, channels=(16, 32)).eval()
    x = aisys.randn(32, 1, 8, 8)
    layers = chip.graph_to_layers(_int8_graph(model, x))
    matrix = [l for l in layers if l.kind in ("gemm", "conv")]
    assert len(matrix) == 5 and all(l.word_bytes == 1 for l in matrix)
    assert [l.op for l in layers if l.kind == "elementwise"].count("requantize") == 5
    prog = chip.lower_layers(layers, FP32)
    fused = [i for i in prog.instructions if i.kind == "vector" and "requantize" in i.name]
    assert fused, "requantization drains with the matrix tiles (as the TPU's Activate or Ascend's FixPipe)"
    float_layers = chip.graph_to_layers(aisys.trace(model, x))
    assert all(l.word_bytes is None for l in float_layers if l.kind in ("gemm", "conv"))


def test_structured_pruning_is_smaller_gemms_and_unstructured_sparsity_is_not():
    aisys.manual_seed(0)
    model = LeNet(image_size=8, channels=(16, 32)).eval()
    x = aisys.randn(32, 1, 8, 8)
    sparse, slim = copy.deepcopy(model), copy.deepcopy(model)
    C.prune(sparse, 0.9)
    C.prune(slim, 0.5, structured=True, layers=nn.Conv2d, example=x[:2])
    runs = chip.compare_graphs({"dense": aisys.trace(model, x), "90% sparse": aisys.trace(sparse, x),
                                "50% channels": aisys.trace(slim, x)}, FP32)
    assert runs.run("90% sparse").cycles == runs.baseline.cycles, "the dense array multiplies the zeros"
    assert runs.run("90% sparse").dram_bytes == runs.baseline.dram_bytes
    assert runs.speedup("50% channels") >= 1.6, runs.summary()
    gemm = [l for l in chip.graph_to_layers(aisys.trace(sparse, x)) if l.kind in ("gemm", "conv")]
    assert all(abs(l.density - 0.1) < 0.01 for l in gemm), "layers know their weights' density"
    skip = chip.compare_graphs({"dense": aisys.trace(model, x), "90% sparse": aisys.trace(sparse, x)},
                               FP32.with_(zero_skipping=True))
    assert skip.run("90% sparse").cycles == skip.baseline.cycles
    assert skip.run("90% sparse").energy.parts_pj["MAC"] < 0.11 * skip.baseline.energy.parts_pj["MAC"]


def test_int8_runs_faster_and_cheaper_than_fp32_on_the_same_chip():
    aisys.manual_seed(0)
    model = LeNet(image_size=8, channels=(16, 32)).eval()
    x = aisys.randn(128, 1, 8, 8)
    runs = chip.compare_graphs({"fp32": aisys.trace(model, x), "int8": _int8_graph(model, x)}, FP32)
    assert runs.speedup("int8") > 3.0, runs.summary()
    assert runs.energy_ratio("int8") > 3.5
    assert runs.run("int8").dram_bytes < 0.3 * runs.baseline.dram_bytes


def test_tpu_v1_int8_against_its_fp32_equivalent():
    """The factors the energy table and the datapath imply: 15.3× less MAC energy (4.6 / 0.3 pJ), about 4×
    fewer DRAM bytes; cycles fall only where the layer waits on memory (TPU v1's PEs are int8 already)."""
    aisys.manual_seed(0)
    model = MLP([64, 128, 10]).eval()
    x = aisys.randn(8, 64)
    runs = chip.compare_graphs({"fp32": (aisys.trace(model, x), chip.preset("tpu_v1").with_datapath(4)),
                                "int8": (_int8_graph(model, x), "tpu_v1")})
    fp32, int8 = runs.baseline, runs.run("int8")
    assert fp32.energy.parts_pj["MAC"] / int8.energy.parts_pj["MAC"] == pytest.approx(4.6 / 0.3, rel=1e-9)
    assert 3.0 < fp32.dram_bytes / int8.dram_bytes <= 4.0
    assert runs.speedup("int8") >= 1.0 and runs.energy_ratio("int8") > 4
