"""Chip presets and validation (aisys.chip.config)."""
import pytest

import aisys.chip as chip
from aisys.chip import Buffer, ChipConfig, MatrixUnit, preset


@pytest.mark.parametrize("name", ["tiny", "scalesim32", "tpu_v1", "davinci"])
def test_every_preset_builds_and_cites_its_sources(name):
    c = preset(name)
    assert c.name == name
    assert c.sources, "each preset says where its numbers come from"
    assert all(isinstance(v, str) and v for v in c.sources.values())
    assert c.summary().startswith(f"chip {name}")
    assert c.peak_ops_per_s == 2 * c.matrix.macs_per_cycle * c.clock_hz


def test_tpu_v1_matches_the_paper():
    # Jouppi et al., ISCA 2017: 256x256 int8 MACs at 700 MHz (~92 TOPS), 24 MiB UB, 4 MiB accumulators,
    # 34 GB/s weight memory; ridge ~1350 MAC per weight byte.
    c = preset("tpu_v1")
    assert (c.matrix.rows, c.matrix.cols, c.matrix.input_bytes, c.matrix.dataflow) == (256, 256, 1, "ws")
    assert c.clock_hz == 700e6
    assert c.peak_tops == pytest.approx(91.75, abs=0.01)
    assert c.buffer("unified_buffer").size_bytes == 24 * 2**20
    assert c.buffer("accumulators").size_bytes == 4 * 2**20
    assert c.dram_bytes_per_s == pytest.approx(34e9)
    assert c.ridge_point_macs == pytest.approx(1350, rel=0.01)
    assert c.resident_activations


def test_davinci_cube_and_hierarchy():
    c = preset("davinci")
    assert (c.matrix.kind, c.matrix.rows, c.matrix.cols, c.matrix.depth, c.matrix.input_bytes) == \
        ("cube", 16, 16, 16, 2)
    assert {b.name for b in c.buffers} == {"l1", "l0a", "l0b", "l0c", "ub"}
    assert c.engines == ("mte2", "mte1", "fixpipe", "mte3")
    assert c.operand_buffer("ifmap") == "l0a" and c.operand_buffer("filter") == "l0b"
    assert c.operand_buffer("ofmap") == "l0c"


def test_scalesim32_is_the_sample_config():
    c = preset("scalesim32")
    assert (c.matrix.rows, c.matrix.cols) == (32, 32)
    assert all(c.buffer(b).size_bytes == 64 * 1024 for b in ("ifmap_sram", "filter_sram", "ofmap_sram"))
    assert c.dram.bytes_per_cycle == 10 and c.matrix.mode == "scalesim"


def test_with_changes_fields_and_keeps_the_rest():
    c = preset("tiny")
    d = c.with_(rows=8, cols=2, dram_bytes_per_cycle=1.5, lanes=8, filter_sram=4096)
    assert (d.matrix.rows, d.matrix.cols, d.dram.bytes_per_cycle, d.vector.lanes) == (8, 2, 1.5, 8)
    assert d.buffer("filter_sram").size_bytes == 4096
    assert c.matrix.rows == 4, "the original is unchanged"
    with pytest.raises(ValueError, match="unknown field"):
        c.with_(colour="red")


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="davinci"):
        preset("tpu_v9")


@pytest.mark.parametrize("kwargs, match", [
    (dict(rows=0), "rows must be a positive integer"),
    (dict(dataflow="xs"), "dataflow 'xs' is not known"),
    (dict(mode="fast"), "mode 'fast' is not known"),
    (dict(kind="hexagon"), "kind 'hexagon'"),
    (dict(depth=4), "systolic array has depth 1"),
    (dict(input_bytes=0), "input_bytes"),
])
def test_invalid_matrix_units_raise(kwargs, match):
    base = dict(kind="systolic", rows=4, cols=4)
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MatrixUnit(**base)


def test_invalid_chips_raise_with_the_field_named():
    c = preset("tiny")
    with pytest.raises(ValueError, match="clock_hz must be a positive"):
        c.with_(clock_hz=0)
    with pytest.raises(ValueError, match="bytes_per_cycle must be a positive"):
        c.with_(dram_bytes_per_cycle=-1)
    with pytest.raises(ValueError, match="latency_cycles must be an integer >= 0"):
        c.with_(dram_latency_cycles=-3)
    # a buffer too small for one array-sized tile names the buffer, its size, and what it needs
    with pytest.raises(ValueError, match=r"buffer 'filter_sram' \(16 B.*4x4.*make it at least 32 B"):
        c.with_(filter_sram=16)
    with pytest.raises(ValueError, match="names must be unique"):
        c.with_(buffers=c.buffers + (Buffer("ifmap_sram", 4096),))
    with pytest.raises(ValueError, match="not a buffer of this chip"):
        c.with_(routes={**c.routes, "ifmap": chip.Route((("dma_in", "dram", "nowhere"),))})
    with pytest.raises(ValueError, match="needs an entry for operand 'ofmap'"):
        c.with_(routes={k: v for k, v in c.routes.items() if k != "ofmap"})
    with pytest.raises(TypeError, match="matrix must be a MatrixUnit"):
        ChipConfig("x", 1e9, "4x4", c.vector, c.buffers, c.dram, c.routes)
    with pytest.raises(ValueError, match="size_bytes must be a positive integer"):
        Buffer("b", 0)
