"""Closed forms of the analytic systolic model (aisys.chip.systolic).

Sources: CHIP_NOTES §1.5 (SCALE-Sim v2/v3 compute model, ``systolic_compute_{os,ws,is}.py``) for the
serialized mode, §4 (TPU v1 double-buffered weights) for the overlapped mode.
"""
import math

import pytest
from hypothesis import given, settings, strategies as st

from aisys.chip import (MODES, compare_modes, conv_gemm_dims, elapsed_cycles, fold_geometry, os_compute_cycles,
                        scalesim_conv_gemm_dims, systolic_conv, systolic_gemm)

dims = st.integers(1, 300)
array = st.integers(1, 48)
dataflows = st.sampled_from(["os", "ws", "is"])


def expected_geometry(M, N, K, df):
    # CHIP_NOTES §1.5 table: OS (M, N, K), WS (K, N, M), IS (K, M, N)
    return {"os": (M, N, K), "ws": (K, N, M), "is": (K, M, N)}[df]


def test_fold_geometry_is_scalesims_table():
    assert fold_geometry(10, 20, 30, "os") == (10, 20, 30)
    assert fold_geometry(10, 20, 30, "ws") == (30, 20, 10)
    assert fold_geometry(10, 20, 30, "is") == (30, 10, 20)


@settings(max_examples=60, deadline=None)
@given(M=dims, N=dims, K=dims, R=array, C=array, df=dataflows)
def test_scalesim_mode_is_the_published_formula(M, N, K, R, C, df):
    # CHIP_NOTES §1.5: OS F·(T+R+C−2)−1, WS/IS F·(2R+C+T−2)−1, F = ceil(Sr/R)·ceil(Sc/C)
    Sr, Sc, T = expected_geometry(M, N, K, df)
    F = math.ceil(Sr / R) * math.ceil(Sc / C)
    per_fold = T + R + C - 2 if df == "os" else 2 * R + C + T - 2
    rep = systolic_gemm(M, N, K, rows=R, cols=C, dataflow=df, mode="scalesim")
    assert rep.folds == F
    assert rep.compute_cycles == F * per_fold - 1
    assert rep.elapsed_cycles == F * per_fold
    # mapping efficiency = Sr·Sc / (F·R·C); compute util = mapping x T / cycles per fold, with
    # SCALE-Sim's WS/IS fold length 2R+2C+T−3 (one skew more than the fold takes)
    assert rep.mapping_efficiency == pytest.approx(Sr * Sc / (F * R * C), rel=1e-12)
    util_fold = T + R + C - 2 if df == "os" else 2 * R + 2 * C + T - 3
    assert rep.compute_utilization == pytest.approx(Sr * Sc / (F * R * C) * T / util_fold, rel=1e-12)
    assert rep.overall_utilization == pytest.approx(M * N * K / (max(1, rep.compute_cycles) * R * C), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(M=dims, N=dims, K=dims, R=array, C=array, df=dataflows)
def test_overlapped_mode_pays_fill_and_drain_once(M, N, K, R, C, df):
    # CHIP_NOTES §4 (TPU v1): with the next fold's weights loading during the current stream, a fold
    # costs max(T, R) in steady state; fill/drain (and for WS/IS the first weight load) once.
    Sr, Sc, T = expected_geometry(M, N, K, df)
    F = math.ceil(Sr / R) * math.ceil(Sc / C)
    once = T + R + C - 2 if df == "os" else 2 * R + C + T - 2
    for mode in ("overlapped", "tpu"):
        rep = systolic_gemm(M, N, K, rows=R, cols=C, dataflow=df, mode=mode)
        assert rep.compute_cycles == rep.elapsed_cycles == (F - 1) * max(T, R) + once
        assert rep.compute_utilization == pytest.approx(M * N * K / (R * C * rep.elapsed_cycles), rel=1e-12)
    ser = systolic_gemm(M, N, K, rows=R, cols=C, dataflow=df, mode="accumulate")
    assert ser.elapsed_cycles == F * once
    assert rep.elapsed_cycles <= ser.elapsed_cycles
    if F == 1:
        assert rep.elapsed_cycles == ser.elapsed_cycles


@settings(max_examples=60, deadline=None)
@given(M=dims, N=dims, K=dims, R=array, C=array, df=dataflows)
def test_sram_counts_follow_scalesims_table(M, N, K, R, C, df):
    # CHIP_NOTES §1.5 SRAM access table. OS has SCALE-Sim's extra F·(R+C) ofmap writes (*_os.py:403)
    rep = systolic_gemm(M, N, K, rows=R, cols=C, dataflow=df, mode="scalesim")
    cd = lambda a, b: -(-a // b)  # noqa: E731
    F = rep.folds
    want = {
        "os": (M * K * cd(N, C), K * N * cd(M, R), M * N + F * (R + C)),
        "ws": (M * K * cd(N, C), K * N, M * N * cd(K, R)),
        "is": (K * M, K * N * cd(M, C), M * N * cd(K, R)),
    }[df]
    assert (rep.sram_reads["ifmap"], rep.sram_reads["filter"], rep.sram_writes["ofmap"]) == want
    # accumulating across K-folds writes each output once and reads no partial sums back
    acc = systolic_gemm(M, N, K, rows=R, cols=C, dataflow=df, mode="accumulate")
    assert acc.sram_writes["ofmap"] == M * N
    assert acc.dram_writes["ofmap"] == M * N and acc.dram_reads["ofmap"] == 0
    # without accumulation, WS/IS partial sums leave the array once per K-fold and come back to be added
    ov = systolic_gemm(M, N, K, rows=R, cols=C, dataflow=df, mode="overlapped")
    kf = cd(K, R) if df != "os" else 1
    assert ov.sram_writes["ofmap"] == M * N * kf
    assert ov.dram_reads["ofmap"] == M * N * (kf - 1)


def test_worked_example_gemm_100x37x19_on_32x32():
    # By hand: OS Sr=100, Sc=37, T=19 -> F = 4·2 = 8, 8·(19+62)−1 = 647 (the SCALE-Sim fixture value);
    # WS Sr=19, Sc=37, T=100 -> F = 1·2 = 2, 2·(64+32+100−2)−1 = 387
    assert os_compute_cycles(100, 37, 19, 32, 32) == 647
    assert systolic_gemm(100, 37, 19, 32, 32, "os").compute_cycles == 647
    assert systolic_gemm(100, 37, 19, 32, 32, "ws").compute_cycles == 387
    rep = systolic_gemm(100, 37, 19, 32, 32, "os")
    assert rep.mapping_efficiency == pytest.approx(0.45166015625)


def test_textbook_form_overestimates_output_stationary_by_FR_plus_1():
    # CHIP_NOTES §1.5: F·(2R+C+T−2) overestimates OS by F·R + 1
    for (M, N, K, R, C) in [(100, 37, 19, 32, 8), (64, 64, 64, 8, 8), (7, 300, 5, 16, 4)]:
        rep = systolic_gemm(M, N, K, R, C, "os")
        textbook = rep.folds * (2 * R + C + K - 2)
        assert textbook - rep.compute_cycles == rep.folds * R + 1


def test_non_square_arrays_and_shapes_that_do_not_divide():
    # 8x32 vs 32x8 for M=100, N=37, K=19, OS: F = ceil(100/8)·ceil(37/32) = 13·2 = 26, per fold 19+38 = 57
    assert systolic_gemm(100, 37, 19, 8, 32, "os").compute_cycles == 26 * 57 - 1
    # 32x8: F = 4·5 = 20, per fold 19+38 = 57
    assert systolic_gemm(100, 37, 19, 32, 8, "os").compute_cycles == 20 * 57 - 1
    rep = systolic_gemm(33, 17, 5, 32, 16, "os")
    assert (rep.row_folds, rep.col_folds) == (2, 2)
    assert rep.mapping_efficiency == pytest.approx(33 * 17 / (4 * 32 * 16))


def test_pe_macs_heatmap_sums_to_the_work_and_shows_edge_folds():
    rep = systolic_gemm(10, 5, 7, 4, 4, "os")       # row folds cover rows 0-3, 4-7, 8-9
    heat = rep.pe_macs()
    assert heat.sum() == 10 * 5 * 7
    assert heat[0, 0] == 7 * 3 * 2 and heat[3, 3] == 7 * 2 * 1   # PE row 3 unused in the last row fold
    ws = systolic_gemm(10, 5, 7, 4, 4, "ws").pe_macs()     # Sr=K=7 over 2 row folds, Sc=N=5 over 2 col folds
    assert ws.sum() == 350 and ws[0, 0] == 10 * 2 * 2 and ws[3, 1] == 10 * 1 * 1


def test_modes_compare_against_scalesim():
    out = compare_modes(256, 256, 256, 32, 32, "ws")
    assert out["scalesim"]["delta_vs_scalesim"] == 0
    assert out["overlapped"]["elapsed_cycles"] < out["scalesim"]["elapsed_cycles"]
    assert out["tpu"]["speedup"] == pytest.approx(out["scalesim"]["elapsed_cycles"] / out["tpu"]["elapsed_cycles"])
    assert set(out) == set(MODES)


def test_conv_lowering_uses_pytorch_output_sizes():
    g = conv_gemm_dims(H=28, W=28, C=16, F=32, kh=3, stride=2, padding=1, batch=4)
    assert (g["OH"], g["OW"]) == (14, 14)
    assert (g["M"], g["N"], g["K"]) == (4 * 14 * 14, 32, 16 * 9)
    rep = systolic_conv(28, 28, 16, 32, 3, stride=2, padding=1, batch=4, rows=16, cols=16, dataflow="ws")
    assert (rep.M, rep.N, rep.K) == (784, 32, 144)
    assert rep.layer["kind"] == "conv" and rep.dram_reads["ifmap"] == 4 * 16 * 28 * 28
    assert rep.compute_cycles == systolic_gemm(784, 32, 144, 16, 16, "ws").compute_cycles


def test_scalesim_conv_rule_differs_when_stride_does_not_divide():
    # CHIP_NOTES §1.2: SCALE-Sim's Eh = ceil((H − Fh + S)/S) simulates 28x28, 1x1, stride 2 as 15x15
    assert scalesim_conv_gemm_dims(28, 28, 1, 1, 16, 32, 2) == (225, 32, 16)
    assert conv_gemm_dims(28, 28, 16, 32, 1, stride=2)["M"] == 196
    assert scalesim_conv_gemm_dims(32, 32, 5, 5, 1, 6, 1) == (784, 6, 25) == \
        tuple(conv_gemm_dims(32, 32, 1, 6, 5)[k] for k in "MNK")


def test_elapsed_cycles_helper_agrees():
    assert elapsed_cycles(64, 64, 64, 8, 8, "ws", "tpu") == systolic_gemm(64, 64, 64, 8, 8, "ws", "tpu").elapsed_cycles


@pytest.mark.parametrize("call, match", [
    (lambda: systolic_gemm(0, 4, 4), "M must be a positive integer"),
    (lambda: systolic_gemm(4, 4, 4, rows=-1), "rows must be a positive integer"),
    (lambda: systolic_gemm(4, 4, 4, dataflow="rs"), "dataflow 'rs' is not known"),
    (lambda: systolic_gemm(4, 4, 4, mode="turbo"), "mode 'turbo' is not known"),
    (lambda: systolic_gemm(4.0, 4, 4), "M must be a positive integer"),
    (lambda: systolic_conv(4, 4, 1, 1, 7), "does not fit an input of size 4"),
    (lambda: systolic_conv(8, 8, 1, 1, 3, padding=-1), "padding must be an integer >= 0"),
    (lambda: os_compute_cycles(4, 4, 4, 0, 4), "rows must be a positive integer"),
])
def test_errors_name_the_bad_value(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_summary_is_plain_text():
    s = systolic_gemm(100, 37, 19, 32, 32).summary()
    assert "8 folds" in s and "compute cycles 647" in s and "mapping efficiency 45.17%" in s
