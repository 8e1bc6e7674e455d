"""SCALE-Sim's own numbers, reproduced exactly by ``mode="scalesim"``.

The fixture (tests/chip/fixtures/scalesim_v3_fixture.json) was produced by running scalesim 3.0.0
from PyPI (numpy 2.2.6) on 7 layers x 4 array shapes x 3 dataflows with SRAMs large enough that
nothing stalls; ``make_scalesim_fixture.py`` next to it regenerates it. CHIP_NOTES §1.5 states the
formulas these rows follow.
"""
import json
from pathlib import Path

import pytest

from aisys.chip import scalesim_conv_gemm_dims, systolic_conv, systolic_gemm

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "scalesim_v3_fixture.json").read_text())
ROWS = FIXTURE["rows"]


def _gemm_dims(row):
    if row["kind"] == "gemm":
        return tuple(row["params"])
    H, W, Fh, Fw, C, filters, stride = row["params"]
    return scalesim_conv_gemm_dims(H, W, Fh, Fw, C, filters, stride)


def test_fixture_covers_every_dataflow_and_shape():
    assert len(ROWS) == 84
    assert {r["dataflow"] for r in ROWS} == {"os", "ws", "is"}
    assert {(r["rows"], r["cols"]) for r in ROWS} == {(32, 32), (8, 32), (32, 8), (8, 8)}
    assert all(r["stall_cycles"] == 0 for r in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['layer']}-{r['rows']}x{r['cols']}-{r['dataflow']}" for r in ROWS])
def test_scalesim_row_reproduced_exactly(row):
    M, N, K = _gemm_dims(row)
    rep = systolic_gemm(M, N, K, rows=row["rows"], cols=row["cols"], dataflow=row["dataflow"], mode="scalesim")
    assert rep.compute_cycles == row["total_cycles"]
    assert 100 * rep.mapping_efficiency == pytest.approx(row["mapping_efficiency_pct"], rel=1e-12)
    assert 100 * rep.compute_utilization == pytest.approx(row["compute_util_pct"], rel=1e-12)
    assert 100 * rep.overall_utilization == pytest.approx(row["overall_util_pct"], rel=1e-12)
    assert rep.sram_reads["ifmap"] == row["sram_ifmap_reads"]
    assert rep.sram_reads["filter"] == row["sram_filter_reads"]
    assert rep.sram_writes["ofmap"] == row["sram_ofmap_writes"]


def test_conv_rows_through_systolic_conv_when_the_output_size_rules_agree():
    # for stride 1 (and strides that divide H − Fh) SCALE-Sim's ceil rule equals PyTorch's floor rule
    for row in ROWS:
        if row["kind"] != "conv":
            continue
        H, W, Fh, Fw, C, filters, stride = row["params"]
        if (H - Fh) % stride:
            continue
        rep = systolic_conv(H, W, C, filters, Fh, Fw, stride, rows=row["rows"], cols=row["cols"],
                            dataflow=row["dataflow"], mode="scalesim")
        assert rep.compute_cycles == row["total_cycles"]
