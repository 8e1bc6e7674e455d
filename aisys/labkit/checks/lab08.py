"""Checks for lab 08 — AI chips: roofline, systolic array, cube.

8.1 ``classify_op(op, dims, chip, bytes_per_element)``: arithmetic intensity (FLOP per DRAM byte)
    and memory- vs compute-bound on a chip preset. Golden values from the course: fp32 add 1/12
    FLOP/B, fp32 matmul N=1024 ~171 FLOP/B (03GPUBase/02Principle), and a ResNet 3x3 conv.
8.2 ``os_compute_cycles(M, N, K, rows, cols)``: output-stationary cycles, derived by the learner from the
    wavefront (one fold, then folds, then partial folds), checked on rows that SCALE-Sim 3.0.0 itself
    produced (tests/chip/fixtures/scalesim_v3_fixture.json).
8.3 ``mma_count(M, N, K, tile)``: how many 16x16x16 MMA (cube / Tensor Core) instructions a GEMM
    needs, and the share of multiplied work that is padding.

Each check also lists plausible mistakes (the ``_…`` functions below) that it must reject, with the words
its report shows for each; 8.2 and 8.3 go from the simplest case to the general one so each mistake
meets the case (and the hint) that isolates it.
"""
from __future__ import annotations

import math

from aisys.chip import cube as _cube
from aisys.chip import roofline as _roofline
from aisys.chip import systolic as _systolic
from aisys.labkit import Checker, Mistake, register
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
RESNET_STEM = {"batch": 8, "C": 3, "H": 224, "W": 224, "F": 64, "k": 7, "stride": 2, "padding": 3}   # conv1


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
          bad=[Mistake("aisys.labkit.checks.lab08:_classify_forgets_the_output", says="the output written once"),
               Mistake("aisys.labkit.checks.lab08:_classify_counts_macs", says="a multiply-add as 2"),
               Mistake("aisys.labkit.checks.lab08:_classify_inverted_bound", says="below the ridge point"),
               Mistake("aisys.labkit.checks.lab08:_classify_conv_ignores_padding", says="2·padding"),
               Mistake("aisys.labkit.checks.lab08:_classify_ignores_bytes_per_element", says="times bytes_per_element"),
               Mistake("aisys.labkit.checks.lab08:_classify_conv_ignores_stride", says="// stride")])
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
        ("ResNet's stem: 8 images, 7x7 conv 3->64, stride 2, padding 3, fp16",
         ("conv2d", RESNET_STEM, "davinci", 2), *_stem_intensity_bound()),
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
                     + "; conv output is (H + 2·padding − k) // stride + 1 per side, for every image of the batch")
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


def _stem_intensity_bound():
    """ResNet-50's first conv (8×3×224×224 → 8×64×112×112), fp16, written out: 1 843 200 multiply-adds per image
    ... counted from the output size (224 + 2·3 − 7)//2 + 1 = 112."""
    d, b = RESNET_STEM, 2
    flops = 2 * d["batch"] * d["F"] * 112 * 112 * d["C"] * d["k"] ** 2
    nbytes = (d["batch"] * d["C"] * 224 * 224 + d["F"] * d["C"] * d["k"] ** 2 + d["batch"] * d["F"] * 112 * 112) * b
    intensity = flops / nbytes
    return intensity, "memory" if intensity < _ridge("davinci") else "compute"


def _classify_ignores_bytes_per_element(op, dims, chip, bytes_per_element=4):
    """Mistake: bytes counted as fp32 whatever the format."""
    return _roofline.classify_op(op, dims, chip, 4)


def _classify_conv_ignores_stride(op, dims, chip, bytes_per_element=4):
    """Mistake: the output size computed without the stride (as if stride were 1)."""
    if op == "conv2d":
        dims = {**dims, "stride": 1}
    return _roofline.classify_op(op, dims, chip, bytes_per_element)


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

_FOLD_HINT = ("the lecture's 3×3 wavefront: PE(i, j) does its k-th MAC at cycle k + i + j (from 0), so the last PE "
              "finishes its T-th MAC T + (R − 1) + (C − 1) cycles in; output-stationary loads no weights first. "
              "SCALE-Sim counts cycles from 0 and reports the index of the last cycle")
_FOLDS_HINT = ("a GEMM bigger than the array runs in folds, one after another, each paying its own fill and drain: "
               "M is cut over the R rows, N over the C columns (T = K streams through)")
_PARTIAL_HINT = ("a partial fold (10 rows of M on a 4-row array: 4 + 4 + 2) still costs a whole fold: the idle PEs "
                 "wait for the wavefront like the busy ones")


@register("8.2", title="Output-stationary systolic cycles (SCALE-Sim)", lab="08_chips",
          reference="aisys.chip.systolic:os_compute_cycles",
          bad=[Mistake("aisys.labkit.checks.lab08:_os_cycles_forgot_minus_one", says="index of the last cycle"),
               Mistake("aisys.labkit.checks.lab08:_os_cycles_textbook_form", says="loads no weights first"),
               Mistake("aisys.labkit.checks.lab08:_os_cycles_floor_folds", says="a partial fold"),
               Mistake("aisys.labkit.checks.lab08:_os_cycles_rows_and_cols_swapped", says="M is cut over the R rows"),
               Mistake("aisys.labkit.checks.lab08:_os_cycles_one_fold", says="runs in folds")])
def _check_8_2(fn, c: Checker):
    staged = [((3, 3, 3, 3, 3), 6, "the lecture's 3×3 example: A and B 3×3 on a 3×3 array (one fold)", _FOLD_HINT),
              ((2, 4, 6, 2, 4), 9, "M=2, N=4 on a 2×4 array, K = 6: one fold",
               "M is cut over the R rows and N over the C columns, so M=2 fills the 2 rows and N=4 the 4 columns: "
               "one fold. " + _FOLD_HINT),
              ((8, 9, 5, 4, 3), 59, "M=8, N=9 on a 4×3 array: 2 × 3 whole folds", _FOLDS_HINT),
              ((10, 7, 4, 4, 3), 80, "M=10, N=7 on a 4×3 array: the last row and column folds are partial",
               _PARTIAL_HINT)]
    for args, cycles, what, hint in staged:
        got, error = _call(fn, *args)
        c.equal(got if error is None else error, cycles, what=what, hint=hint)
    for name, M, N, K, R, C, cycles in SCALESIM_OS_ROWS:
        got, error = _call(fn, M, N, K, R, C)
        what = f"SCALE-Sim 3.0.0, {name} (M={M}, N={N}, K={K}) on {R}x{C}"
        c.equal(got if error is None else error, cycles, what=what, hint=_FOLDS_HINT + "; " + _PARTIAL_HINT)
    for _ in range(6):
        M, N, K = (int(x) for x in c.rng.integers(1, 400, size=3))
        R, C = (int(x) for x in c.rng.integers(1, 40, size=2))
        expected = _systolic.os_compute_cycles(M, N, K, R, C)
        got, error = _call(fn, M, N, K, R, C)
        c.equal(got if error is None else error, expected, what=f"M={M} N={N} K={K} on {R}x{C}",
                hint=_FOLDS_HINT + "; " + _PARTIAL_HINT)


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
          bad=[Mistake("aisys.labkit.checks.lab08:_mma_floor_division", says="a partial tile"),
               Mistake("aisys.labkit.checks.lab08:_mma_waste_against_useful", says="share of the multiplied work"),
               Mistake("aisys.labkit.checks.lab08:_mma_ignores_tile_argument", says="use the tile argument"),
               Mistake("aisys.labkit.checks.lab08:_mma_forgets_k", says="K is cut"),
               Mistake("aisys.labkit.checks.lab08:_mma_tile_read_k_first", says="tile = (m0, n0, k0)")])
def _check_8_3(fn, c: Checker):
    general = ("each output tile m0×n0 needs one instruction per k0-slice of K; partial tiles count whole; waste is "
               "the share of the multiplied work (instructions × m0·n0·k0) that is padding")
    staged = [((64, 64, 64, (16, 16, 16)), (64, 0.0), "aligned 64³: no padding",
               "one 16×16×16 MMA covers a 16×16 output tile and 16 of K: K is cut into k0-deep slices too"),
              ((1, 1, 1, (16, 16, 16)), (1, 1 - 1 / 4096), "a single MAC still costs one instruction",
               "waste is the share of the multiplied work (1 instruction × 16·16·16 products) that is padding: "
               "a number between 0 and 1"),
              ((17, 16, 16, (16, 16, 16)), (2, 0.46875), "17 rows: 16 + 1",
               "a partial tile (the 17th row alone) still costs a whole instruction, and its padding is multiplied"),
              ((16, 16, 32, (16, 16, 32)), (1, 0.0), "int8 cube shape 16x16x32",
               "use the tile argument, tile = (m0, n0, k0): an int8 cube multiplies blocks of m0 = 16 rows of M, "
               "n0 = 16 columns of N and k0 = 32 of K"),
              ((48, 16, 64, (16, 16, 32)), (6, 0.0), "48×16×64 with the int8 tile (16, 16, 32)",
               "tile = (m0, n0, k0): m0 rows of M, n0 columns of N, k0 of K"),
              ((100, 37, 19, (16, 16, 16)), (42, 1 - 70300 / (42 * 4096)), "100x37x19 (the SCALE-Sim GEMM)", general)]
    for args, (n, waste), what, hint in staged:
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
            c.fail(what, expected=expected, got=error, hint=general)
        _pair(c, got, what, "return (instructions, padding waste)")
        c.equal(int(got[0]), expected[0], what=f"{what}: instructions", hint=general)
        c.close(float(got[1]), expected[1], what=f"{what}: padding waste", rtol=1e-9, atol=1e-12, hint=general)


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


def _mma_tile_read_k_first(M, N, K, tile=(16, 16, 16)):
    """Mistake: unpacks the tile as (k0, m0, n0)."""
    k0, m0, n0 = tile
    return _cube.mma_count(M, N, K, (m0, n0, k0))
