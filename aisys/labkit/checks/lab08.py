"""Checks for lab 08 — AI chips: roofline, systolic array, cube.

8.1 ``classify_op(op, dims, chip, bytes_per_element)``: arithmetic intensity (FLOP per DRAM byte)
    and memory- vs compute-bound on a chip preset. Golden values from the course: fp32 add 1/12
    FLOP/B, fp32 matmul N=1024 ~171 FLOP/B (03GPUBase/02Principle), and a ResNet 3x3 conv.
8.2 ``os_compute_cycles(M, N, K, rows, cols)``: output-stationary cycles F·(T+R+C−2)−1, checked
    on rows that SCALE-Sim 3.0.0 itself produced (tests/chip/fixtures/scalesim_v3_fixture.json).
8.3 ``mma_count(M, N, K, tile)``: how many 16x16x16 MMA (cube / Tensor Core) instructions a GEMM
    needs, and the share of multiplied work that is padding.

Each check also lists plausible mistakes (the ``_…`` functions below) that it must reject.
"""
from __future__ import annotations

import math

from aisys.chip import cube as _cube
from aisys.chip import roofline as _roofline
from aisys.chip import systolic as _systolic
from aisys.labkit import Checker, register
from aisys.labkit.learner import call as _call

# (layer, M, N, K, rows, cols, SCALE-Sim 3.0.0 "Total Cycles" with no stalls), output-stationary
SCALESIM_OS_ROWS = [
    ("gemm_100x37x19", 100, 37, 19, 32, 32, 647),
    ("gemm_100x37x19", 100, 37, 19, 8, 32, 1481),
    ("gemm_100x37x19", 100, 37, 19, 32, 8, 1139),
    ("gemm_64x64x64", 64, 64, 64, 8, 8, 4991),
    ("gemm_31x45x70", 31, 45, 70, 32, 8, 647),
    ("lenet_conv1", 784, 6, 25, 32, 32, 2174),
    ("lenet_conv2", 100, 16, 150, 8, 32, 2443),
    ("resnet_conv3x3", 196, 32, 288, 32, 8, 9127),
]

RESNET_CONV = {"batch": 1, "C": 64, "H": 56, "W": 56, "F": 64, "k": 3, "stride": 1, "padding": 1}


def _pair(c: Checker, got, what: str, hint: str):
    """The answer must be a 2-tuple (number, something)."""
    c.true(isinstance(got, (tuple, list)) and len(got) == 2, what=f"{what}: returns a pair",
           expected="a tuple of two values", got=repr(got)[:120], hint=hint)
    return got


# ---------------------------------------------------------------------------------------------
# 8.1 arithmetic intensity and bound
# ---------------------------------------------------------------------------------------------

@register("8.1", title="Arithmetic intensity and memory- vs compute-bound", lab="08_chips",
          reference="aisys.chip.roofline:classify_op",
          bad=["aisys.labkit.checks.lab08:_classify_forgets_the_output",
               "aisys.labkit.checks.lab08:_classify_counts_macs",
               "aisys.labkit.checks.lab08:_classify_inverted_bound",
               "aisys.labkit.checks.lab08:_classify_conv_ignores_padding"])
def _check_8_1(fn, c: Checker):
    hint_bytes = "bytes = every input read once + the output written once, times bytes_per_element"
    cases = [
        ("fp32 add: 1 FLOP per 12 bytes (read a and b, write c)", ("add", {"n": 1 << 20}, "davinci", 4),
         1 / 12, "memory"),
        ("fp32 matmul N=1024: 2N³ / (3·4·N²) ~ 171 FLOP/B", ("matmul", {"M": 1024, "N": 1024, "K": 1024}, "davinci", 4),
         1024 / 6, "memory"),
        ("fp16 matmul N=1024: twice the intensity, now above davinci's ridge (218 FLOP/B)",
         ("matmul", {"M": 1024, "N": 1024, "K": 1024}, "davinci", 2), 1024 / 3, "compute"),
        ("ResNet 3x3 conv 64->64 at 56x56, fp32, padding 1", ("conv2d", RESNET_CONV, "davinci", 4),
         231_211_008 / 1_753_088, "memory"),
        ("the same conv in int8 on tpu_v1 (ridge 2699 op/B)", ("conv2d", RESNET_CONV, "tpu_v1", 1),
         4 * 231_211_008 / 1_753_088, "memory"),
        ("fp16 matmul 4096x4096x4096 on scalesim32 (ridge 205 op/B)",
         ("matmul", {"M": 4096, "N": 4096, "K": 4096}, "scalesim32", 2), 2 * 4096 / 6, "compute"),
    ]
    for what, args, intensity, bound in cases:
        got, error = _call(fn, *args)
        if error:
            c.fail(what, expected=f"({intensity:.6g}, {bound!r})", got=error)
        _pair(c, got, what, "return (intensity, 'memory' or 'compute')")
        c.close(float(got[0]), intensity, what=f"{what}: intensity", rtol=1e-9,
                hint="FLOPs count a multiply-add as 2; " + hint_bytes
                     + "; conv output is (H + 2·padding − k)//stride + 1 per side")
        c.equal(got[1], bound, what=f"{what}: bound",
                hint="below the ridge point (peak FLOP/s ÷ DRAM bytes/s, chip.ridge_point) an op is memory-bound")
    for _ in range(3):
        M, N, K = (int(x) for x in c.rng.integers(1, 3000, size=3))
        chip = ["tiny", "scalesim32", "tpu_v1", "davinci"][int(c.rng.integers(0, 4))]
        expected = _roofline.classify_op("matmul", {"M": M, "N": N, "K": K}, chip, 2)
        got, error = _call(fn, "matmul", {"M": M, "N": N, "K": K}, chip, 2)
        what = f"fp16 matmul M={M} N={N} K={K} on {chip}"
        if error:
            c.fail(what, expected=str(expected), got=error)
        _pair(c, got, what, "return (intensity, bound)")
        c.close(float(got[0]), expected[0], what=f"{what}: intensity", rtol=1e-9, hint=hint_bytes)
        c.equal(got[1], expected[1], what=f"{what}: bound")


def _classify_forgets_the_output(op, dims, chip, bytes_per_element=4):
    flops, nbytes = _roofline.op_flops_bytes(op, dims, bytes_per_element)
    if op == "add":
        nbytes = 2 * dims["n"] * bytes_per_element
    elif op == "matmul":
        nbytes -= dims["M"] * dims["N"] * bytes_per_element
    intensity = flops / nbytes
    return intensity, "memory" if intensity < _ridge(chip) else "compute"


def _classify_counts_macs(op, dims, chip, bytes_per_element=4):
    flops, nbytes = _roofline.op_flops_bytes(op, dims, bytes_per_element)
    if op != "add":
        flops //= 2
    intensity = flops / nbytes
    return intensity, "memory" if intensity < _ridge(chip) else "compute"


def _classify_inverted_bound(op, dims, chip, bytes_per_element=4):
    intensity, bound = _roofline.classify_op(op, dims, chip, bytes_per_element)
    return intensity, "compute" if bound == "memory" else "memory"


def _classify_conv_ignores_padding(op, dims, chip, bytes_per_element=4):
    if op == "conv2d":
        dims = {**dims, "padding": 0}
    return _roofline.classify_op(op, dims, chip, bytes_per_element)


def _ridge(chip) -> float:
    from aisys.chip import preset
    return preset(chip).ridge_point


# ---------------------------------------------------------------------------------------------
# 8.2 output-stationary cycles
# ---------------------------------------------------------------------------------------------

@register("8.2", title="Output-stationary systolic cycles (SCALE-Sim)", lab="08_chips",
          reference="aisys.chip.systolic:os_compute_cycles",
          bad=["aisys.labkit.checks.lab08:_os_cycles_forgot_minus_one",
               "aisys.labkit.checks.lab08:_os_cycles_textbook_form",
               "aisys.labkit.checks.lab08:_os_cycles_floor_folds",
               "aisys.labkit.checks.lab08:_os_cycles_rows_and_cols_swapped",
               "aisys.labkit.checks.lab08:_os_cycles_one_fold"])
def _check_8_2(fn, c: Checker):
    hint = ("F = ceil(M/R)·ceil(N/C) folds, each T+R+C−2 cycles with T = K; SCALE-Sim reports the index of "
            "the last cycle, so subtract 1. M goes on the rows, N on the columns")
    for name, M, N, K, R, C, cycles in SCALESIM_OS_ROWS:
        got, error = _call(fn, M, N, K, R, C)
        what = f"SCALE-Sim 3.0.0, {name} (M={M}, N={N}, K={K}) on {R}x{C}"
        if error:
            c.fail(what, expected=cycles, got=error, hint=hint)
        c.equal(got, cycles, what=what, hint=hint)
    for _ in range(6):
        M, N, K = (int(x) for x in c.rng.integers(1, 400, size=3))
        R, C = (int(x) for x in c.rng.integers(1, 40, size=2))
        expected = _systolic.os_compute_cycles(M, N, K, R, C)
        got, error = _call(fn, M, N, K, R, C)
        what = f"M={M} N={N} K={K} on {R}x{C}"
        if error:
            c.fail(what, expected=expected, got=error, hint=hint)
        c.equal(got, expected, what=what, hint=hint)


def _os_cycles_forgot_minus_one(M, N, K, rows, cols):
    return math.ceil(M / rows) * math.ceil(N / cols) * (K + rows + cols - 2)


def _os_cycles_textbook_form(M, N, K, rows, cols):
    return math.ceil(M / rows) * math.ceil(N / cols) * (2 * rows + cols + K - 2) - 1


def _os_cycles_floor_folds(M, N, K, rows, cols):
    return max(1, M // rows) * max(1, N // cols) * (K + rows + cols - 2) - 1


def _os_cycles_rows_and_cols_swapped(M, N, K, rows, cols):
    return math.ceil(M / cols) * math.ceil(N / rows) * (K + rows + cols - 2) - 1


def _os_cycles_one_fold(M, N, K, rows, cols):
    return K + rows + cols - 2 - 1


# ---------------------------------------------------------------------------------------------
# 8.3 MMA tiling
# ---------------------------------------------------------------------------------------------

@register("8.3", title="Tile a GEMM into 16x16x16 MMA instructions", lab="08_chips",
          reference="aisys.chip.cube:mma_count",
          bad=["aisys.labkit.checks.lab08:_mma_floor_division",
               "aisys.labkit.checks.lab08:_mma_waste_against_useful",
               "aisys.labkit.checks.lab08:_mma_ignores_tile_argument",
               "aisys.labkit.checks.lab08:_mma_forgets_k"])
def _check_8_3(fn, c: Checker):
    hint = ("instructions = ceil(M/m0)·ceil(N/n0)·ceil(K/k0); waste = 1 − M·N·K / (instructions·m0·n0·k0), "
            "the share of multiplied work that is padding")
    cases = [((64, 64, 64, (16, 16, 16)), (64, 0.0), "aligned 64³: no padding"),
             ((17, 16, 16, (16, 16, 16)), (2, 0.46875), "17 rows pad to 32"),
             ((100, 37, 19, (16, 16, 16)), (42, 1 - 70300 / (42 * 4096)), "100x37x19 (the SCALE-Sim GEMM)"),
             ((16, 16, 32, (16, 16, 32)), (1, 0.0), "int8 cube shape 16x16x32"),
             ((1, 1, 1, (16, 16, 16)), (1, 1 - 1 / 4096), "a single MAC still costs one instruction")]
    for args, (n, waste), what in cases:
        got, error = _call(fn, *args)
        if error:
            c.fail(what, expected=(n, waste), got=error, hint=hint)
        _pair(c, got, what, "return (instructions, padding waste)")
        c.equal(int(got[0]), n, what=f"{what}: instructions", hint=hint)
        c.close(float(got[1]), waste, what=f"{what}: padding waste", rtol=1e-9, atol=1e-12, hint=hint)
    for _ in range(5):
        M, N, K = (int(x) for x in c.rng.integers(1, 600, size=3))
        tile = (16, 16, 16) if c.rng.random() < 0.6 else (16, 16, 32)
        expected = _cube.mma_count(M, N, K, tile)
        got, error = _call(fn, M, N, K, tile)
        what = f"M={M} N={N} K={K}, tile {tile}"
        if error:
            c.fail(what, expected=expected, got=error, hint=hint)
        _pair(c, got, what, "return (instructions, padding waste)")
        c.equal(int(got[0]), expected[0], what=f"{what}: instructions", hint=hint)
        c.close(float(got[1]), expected[1], what=f"{what}: padding waste", rtol=1e-9, atol=1e-12, hint=hint)


def _mma_floor_division(M, N, K, tile=(16, 16, 16)):
    m0, n0, k0 = tile
    n = max(1, M // m0) * max(1, N // n0) * max(1, K // k0)
    return n, 1 - M * N * K / (n * m0 * n0 * k0)


def _mma_waste_against_useful(M, N, K, tile=(16, 16, 16)):
    n, _ = _cube.mma_count(M, N, K, tile)
    m0, n0, k0 = tile
    return n, (n * m0 * n0 * k0 - M * N * K) / (M * N * K)


def _mma_ignores_tile_argument(M, N, K, tile=(16, 16, 16)):
    return _cube.mma_count(M, N, K, (16, 16, 16))


def _mma_forgets_k(M, N, K, tile=(16, 16, 16)):
    m0, n0, k0 = tile
    n = math.ceil(M / m0) * math.ceil(N / n0)
    return n, 1 - M * N / (n * m0 * n0)
