"""Checks for lab 01 — tensors, bits and layouts.

1.1 ``to_nz(A, h0, w0)``: the NZ fractal order of lecture 05LayoutAlgo, plus a property test on
    padded (unaligned) shapes.
1.2 ``nchw_to_nc1hwc0(x, c0)``: Ascend's NC1HWC0 with the channel dimension zero-padded.
1.3 ``fp32_to_bf16_bits(x)``: fp32 → bf16 with round to nearest, ties to even, on uint32 bits.

Each check also lists plausible mistakes (the ``_…`` functions below) that it must reject, with the words
its report shows for each.
"""

from __future__ import annotations

import numpy as np

from aisys.framework import bits as _bits
from aisys.framework import layout as _layout
from aisys.labkit import Checker, Mistake, register
from aisys.labkit.learner import call as _call_raw, first_failure as _first_failure
from aisys.labkit.learner import hypothesis_settings as _hypothesis_settings

LECTURE_NZ_ORDER = [0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15]


def _call(fn, *args):
    """The learner's result as an array, or the problem it raised (a readable message, not a traceback)."""
    value, problem = _call_raw(fn, *args)
    return (None, problem) if problem else (np.asarray(value), None)


# ---------------------------------------------------------------------------------------------
# 1.1 to_nz
# ---------------------------------------------------------------------------------------------

def _nz_problem(fn, A: np.ndarray, h0: int, w0: int) -> str | None:
    got, error = _call(fn, A, h0, w0)
    label = f"A of shape {A.shape}, h0={h0}, w0={w0}"
    if error:
        return f"{label}: {error}"
    H, W = A.shape[-2:]
    expected = _layout.to_nz(A, h0, w0)
    if got.shape != expected.shape:
        return (f"{label}: shape {got.shape}, expected (W1, H1, h0, w0) = {expected.shape} "
                f"with H1 = ⌈{H}/{h0}⌉, W1 = ⌈{W}/{w0}⌉")
    if not np.array_equal(got, expected):
        first = tuple(int(i) for i in np.argwhere(got != expected)[0])
        return f"{label}: element at NZ index {first} is {got[first]!r}, expected {expected[first]!r}"
    if not np.array_equal(_layout.from_nz(got, H, W), A):
        return f"{label}: from_nz(to_nz(A)) does not give A back"
    return None


@register("1.1", title="ND → NZ fractal layout", lab="01_tensors",
          reference="aisys.framework.layout:to_nz",
          bad=[Mistake("aisys.labkit.checks.lab01:_to_nz_fractals_row_by_row", says="column by column (big N)"),
               Mistake("aisys.labkit.checks.lab01:_to_nz_columns_inside_fractal", says="row by row (small z)"),
               Mistake("aisys.labkit.checks.lab01:_to_nz_assumes_aligned", says="pad H up to"),
               Mistake("aisys.labkit.checks.lab01:_to_nz_pads_at_the_front", says="padding goes after the data"),
               Mistake("aisys.labkit.checks.lab01:_to_nz_only_2d", says="leading dims"),
               Mistake("aisys.labkit.checks.lab01:_to_nz_h0_w0_swapped", says="h0 rows")])
def _check_1_1(fn, c: Checker):
    A = np.arange(16).reshape(4, 4)
    got, error = _call(fn, A, 2, 2)
    c.true(error is None, what="to_nz(4×4 matrix, 2, 2) runs", expected="an array", got=error,
           hint="pad → reshape (H1, h0, W1, w0) → transpose to (W1, H1, h0, w0)")
    c.equal(tuple(got.shape), (2, 2, 2, 2), what="shape (W1, H1, h0, w0) of the 4×4 example",
            hint="the fractal grid goes first, fractal-column index W1 outermost")
    c.equal(got.reshape(-1).tolist(), LECTURE_NZ_ORDER,
            what="memory order of the lecture's 4×4 matrix with 2×2 fractals (05LayoutAlgo)",
            hint="inside a fractal go row by row (small z); the fractals go column by column (big N): "
                 "0 1 4 5 is the top-left fractal, 8 9 12 13 the one below it")

    R = np.arange(1, 25).reshape(4, 6)
    c.true(_nz_problem(fn, R, 2, 3) is None, what="4×6 matrix with 2×3 fractals (fractals that are not square)",
           expected="shape (2, 2, 2, 3)", got=_nz_problem(fn, R, 2, 3),
           hint="a fractal has h0 rows and w0 columns: reshape (H1, h0, W1, w0), then put W1 first")
    B = np.arange(1, 36, dtype=np.float32).reshape(5, 7)
    problem = _nz_problem(fn, B, 2, 4)
    padded = _call(fn, B, 2, 4)[0]
    if problem and padded is not None and padded.shape == (2, 3, 2, 4) and padded.reshape(-1)[0] != B[0, 0]:
        problem += " (element (0, 0) of A must stay the first element in memory)"
    c.true(problem is None, what="unaligned 5×7 matrix with 2×4 fractals (zero padding)",
           expected="shape (2, 3, 2, 4) with zeros in the padding", got=problem,
           hint="pad H up to ⌈H/h0⌉·h0 and W up to ⌈W/w0⌉·w0 with zeros before cutting fractals; the padding "
                "goes after the data (bottom rows, right columns)")
    batch = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    c.true(_nz_problem(fn, batch, 2, 2) is None, what="a batch of two 3×4 matrices (shape (2, 3, 4))",
           expected="shape (2, 2, 2, 2, 2), each matrix in NZ order", got=_nz_problem(fn, batch, 2, 2),
           hint="a batch of matrices (…, H, W) keeps its leading dims; only the last two are cut into fractals")

    from hypothesis import given
    from hypothesis import strategies as st

    @_hypothesis_settings(40)
    @given(batch=st.lists(st.integers(1, 3), max_size=1), H=st.integers(1, 12), W=st.integers(1, 12),
           h0=st.integers(1, 6), w0=st.integers(1, 6))
    def round_trip(failures, batch, H, W, h0, w0):
        A = np.arange(1, 1 + int(np.prod(batch)) * H * W, dtype=np.int32).reshape(tuple(batch) + (H, W))
        problem = _nz_problem(fn, A, h0, w0)
        if problem:
            failures.append(problem)
            raise AssertionError(problem)

    failure = _first_failure(round_trip)
    c.true(failure is None, what="hypothesis: 40 random padded shapes (…, H, W), from_nz(to_nz(A)) == A",
           expected="every shape round-trips", got=f"smallest failing case: {failure}",
           hint="a batch of matrices (…, H, W) keeps its leading dims; only the last two are cut into fractals")


def _to_nz_fractals_row_by_row(A, h0, w0):
    """Mistake: fractals stored row by row (zZ) instead of column by column."""
    A = np.asarray(A)
    H, W = A.shape[-2:]
    H1, W1 = -(-H // h0), -(-W // w0)
    P = np.zeros(A.shape[:-2] + (H1 * h0, W1 * w0), A.dtype)
    P[..., :H, :W] = A
    return P.reshape(A.shape[:-2] + (H1, h0, W1, w0)).swapaxes(-3, -2)


def _to_nz_columns_inside_fractal(A, h0, w0):
    """Mistake: column-major inside each fractal (the nN order)."""
    return np.swapaxes(_layout.to_nz(A, h0, w0), -1, -2)


def _to_nz_pads_at_the_front(A, h0, w0):
    """Mistake: zero rows/columns inserted before the data (np.pad on the wrong side)."""
    A = np.asarray(A)
    H, W = A.shape[-2:]
    H1, W1 = -(-H // h0), -(-W // w0)
    widths = [(0, 0)] * (A.ndim - 2) + [(H1 * h0 - H, 0), (W1 * w0 - W, 0)]
    P = np.pad(A, widths)
    k = A.ndim - 2
    return P.reshape(A.shape[:-2] + (H1, h0, W1, w0)).transpose(tuple(range(k)) + (k + 2, k, k + 1, k + 3))


def _to_nz_only_2d(A, h0, w0):
    """Mistake: written for one matrix: the batch dimensions are folded into the rows."""
    A = np.asarray(A)
    return _layout.to_nz(A.reshape(-1, A.shape[-1]), h0, w0)


def _to_nz_h0_w0_swapped(A, h0, w0):
    """Mistake: fractals of w0 rows and h0 columns (right whenever fractals are square)."""
    return _layout.to_nz(A, w0, h0)


def _to_nz_assumes_aligned(A, h0, w0):
    """Mistake: no padding, so unaligned shapes fail (right for the lecture's 4×4 example only)."""
    A = np.asarray(A)
    H, W = A.shape[-2:]
    tiles = A.reshape(A.shape[:-2] + (H // h0, h0, W // w0, w0))
    k = A.ndim - 2
    return tiles.transpose(tuple(range(k)) + (k + 2, k, k + 1, k + 3))


# ---------------------------------------------------------------------------------------------
# 1.2 nchw_to_nc1hwc0
# ---------------------------------------------------------------------------------------------

def _nc1hwc0_problem(fn, x: np.ndarray, c0: int) -> str | None:
    got, error = _call(fn, x, c0)
    N, C, H, W = x.shape
    label = f"x of shape {x.shape}, c0={c0}"
    if error:
        return f"{label}: {error}"
    expected = _layout.nchw_to_nc1hwc0(x, c0)
    if got.shape != expected.shape:
        return f"{label}: shape {got.shape}, expected (N, ⌈C/C0⌉, H, W, C0) = {expected.shape}"
    if not np.array_equal(got, expected):
        first = tuple(int(i) for i in np.argwhere(got != expected)[0])
        return f"{label}: element at NC1HWC0 index {first} is {got[first]!r}, expected {expected[first]!r}"
    return None


@register("1.2", title="NCHW → NC1HWC0 with channel padding", lab="01_tensors",
          reference="aisys.framework.layout:nchw_to_nc1hwc0",
          bad=[Mistake("aisys.labkit.checks.lab01:_nc1hwc0_floor_blocks", says="rounds up"),
               Mistake("aisys.labkit.checks.lab01:_nc1hwc0_reshape_without_transpose", says="block c // C0, lane c % C0"),
               Mistake("aisys.labkit.checks.lab01:_nc1hwc0_channel_split_swapped", says="block c // C0, lane c % C0"),
               Mistake("aisys.labkit.checks.lab01:_nc1hwc0_pads_first_lanes", says="block c // C0, lane c % C0"),
               Mistake("aisys.labkit.checks.lab01:_nc1hwc0_h_w_swapped", says="H before W"),
               Mistake("aisys.labkit.checks.lab01:_nc1hwc0_pads_with_ones", says="pad with zeros")])
def _check_1_2(fn, c: Checker):
    x = np.arange(2 * 5 * 3 * 4, dtype=np.float32).reshape(2, 5, 3, 4) + 1
    y, error = _call(fn, x, 4)
    c.true(error is None, what="nchw_to_nc1hwc0(x of shape (2, 5, 3, 4), 4) runs", expected="an array", got=error,
           hint="pad C to C1·C0, reshape (N, C1, C0, H, W), transpose (0, 1, 3, 4, 2)")
    c.equal(tuple(y.shape), (2, 2, 3, 4, 4), what="shape (N, ⌈C/C0⌉, H, W, C0) for C=5, C0=4",
            hint="C1 = ⌈C/C0⌉ rounds up: 5 channels need 2 blocks of 4; the axes are (N, C1, H, W, C0), H before W")
    c.equal(float(y[1, 0, 2, 3, 1]), float(x[1, 1, 2, 3]), what="channel 1 of pixel (row 2, column 3) lands in block 0, lane 1",
            hint="channel c goes to block c // C0, lane c % C0; the 5-D result keeps H before W: (N, C1, H, W, C0)")
    c.equal(float(y[0, 1, 1, 2, 0]), float(x[0, 4, 1, 2]), what="channel 4 lands in block 1, lane 0",
            hint="channel c goes to block c // C0, lane c % C0")
    c.equal(int(np.count_nonzero(y[:, 1, :, :, 1:])), 0, what="lanes 1-3 of the last block are zero padding",
            hint="pad with zeros: a cube unit multiplies whole C0 blocks, so the padding must not add anything")
    c.true(y.shape == (2, 2, 3, 4, 4) and np.array_equal(_layout.nc1hwc0_to_nchw(y, 5), x),
           what="the inverse nc1hwc0_to_nchw(y, C=5) gives x back", expected="x", got="a different tensor",
           hint="check which axis of the 5-D result holds C0")

    aligned = np.arange(1 * 32 * 2 * 2).reshape(1, 32, 2, 2)
    c.true(_nc1hwc0_problem(fn, aligned, 16) is None,
           what="aligned C=32, C0=16 equals the lecture's reshape([N, C1, C0, H, W]).transpose([0, 1, 3, 4, 2])",
           expected="equal", got=_nc1hwc0_problem(fn, aligned, 16), hint="see 05LayoutAlgo")

    from hypothesis import given
    from hypothesis import strategies as st

    @_hypothesis_settings(30)
    @given(N=st.integers(1, 2), C=st.integers(1, 20), H=st.integers(1, 3), W=st.integers(1, 3),
           c0=st.sampled_from([1, 2, 3, 4, 8, 16]))
    def shapes(failures, N, C, H, W, c0):
        x = np.arange(1, 1 + N * C * H * W, dtype=np.int32).reshape(N, C, H, W)
        problem = _nc1hwc0_problem(fn, x, c0)
        if problem:
            failures.append(problem)
            raise AssertionError(problem)

    failure = _first_failure(shapes)
    c.true(failure is None, what="hypothesis: 30 random (N, C, H, W, C0), including C0 > C and C0 = 1",
           expected="all equal the library", got=f"smallest failing case: {failure}",
           hint="C0 larger than C still gives one (mostly padding) block")


def _padded_channels(x, c0, *, fill=0, at_front=False):
    """(x with C padded to C1·C0 by ``fill``, C1): the first step of a learner's NC1HWC0 conversion."""
    x = np.asarray(x)
    N, C, H, W = x.shape
    C1 = -(-C // c0)
    P = np.full((N, C1 * c0, H, W), fill, x.dtype)
    if at_front:
        P[:, C1 * c0 - C:] = x
    else:
        P[:, :C] = x
    return P, C1


def _nc1hwc0_pads_first_lanes(x, c0):
    """Mistake: the padding lanes come first, so channel c sits at lane c + padding."""
    P, C1 = _padded_channels(x, c0, at_front=True)
    N, _, H, W = P.shape
    return P.reshape(N, C1, c0, H, W).transpose(0, 1, 3, 4, 2)


def _nc1hwc0_h_w_swapped(x, c0):
    """Mistake: transpose (0, 1, 4, 3, 2): the result is (N, C1, W, H, C0)."""
    return np.swapaxes(_layout.nchw_to_nc1hwc0(x, c0), 2, 3)


def _nc1hwc0_pads_with_ones(x, c0):
    """Mistake: np.ones for the padded block (the cube would add the padding lanes into every sum)."""
    P, C1 = _padded_channels(x, c0, fill=1)
    N, _, H, W = P.shape
    return P.reshape(N, C1, c0, H, W).transpose(0, 1, 3, 4, 2)


def _nc1hwc0_floor_blocks(x, c0):
    """Mistake: C1 = C // C0, silently dropping the channels of a partial last block."""
    x = np.asarray(x)
    N, C, H, W = x.shape
    C1 = C // c0
    return x[:, :C1 * c0].reshape(N, C1, c0, H, W).transpose(0, 1, 3, 4, 2)


def _nc1hwc0_reshape_without_transpose(x, c0):
    """Mistake: pad, then reshape straight to (N, C1, H, W, C0): right shape, scrambled values."""
    P, C1 = _padded_channels(x, c0)
    N, _, H, W = P.shape
    return P.reshape(N, C1, H, W, c0)


def _nc1hwc0_channel_split_swapped(x, c0):
    """Mistake: channel c taken as lane c // C1, block c % C1 (the split factors swapped)."""
    P, C1 = _padded_channels(x, c0)
    N, _, H, W = P.shape
    return P.reshape(N, c0, C1, H, W).transpose(0, 2, 3, 4, 1)


# ---------------------------------------------------------------------------------------------
# 1.3 fp32_to_bf16_bits
# ---------------------------------------------------------------------------------------------

_BF16_CASES = [  # (fp32 bits, bf16 bits, what)
    (0x3F800000, 0x3F80, "1.0"),
    (0xC0000000, 0xC000, "-2.0"),
    (0x40490FDB, 0x4049, "pi: dropped half 0x0FDB < 0x8000 rounds down"),
    (0x3F807FFF, 0x3F80, "just below the half-way point rounds down"),
    (0x3F808001, 0x3F81, "just above the half-way point rounds up"),
    (0x3F808000, 0x3F80, "exact tie, kept part 0x3F80 even: stays"),
    (0x3F818000, 0x3F82, "exact tie, kept part 0x3F81 odd: rounds up to even 0x3F82"),
    (0x3FFF8000, 0x4000, "tie that carries into the exponent: 1.99609375 → 2.0"),
    (0x80000000, 0x8000, "-0.0 keeps its sign"),
    (0x00018000, 0x0002, "subnormal tie rounds to even"),
    (0x7F800000, 0x7F80, "+inf stays inf"),
    (0xFF800000, 0xFF80, "-inf stays -inf"),
    (0x7F7FFFFF, 0x7F80, "largest fp32 overflows to +inf"),
    (0xFF7F8000, 0xFF80, "tie above bf16's largest value (odd) overflows to -inf"),
    (0x7F7F7FFF, 0x7F7F, "just below that tie stays bf16's largest finite value"),
]
_NAN_CASES = [0x7FC00000, 0x7F800001, 0x7FFFFFFF, 0xFFFFFFFF, 0xFF800001, 0x7FA00000]


def _f32(words) -> np.ndarray:
    return np.asarray(words, dtype=np.uint32).view(np.float32)


@register("1.3", title="fp32 → bf16 bits with round-to-nearest-even", lab="01_tensors",
          reference="aisys.framework.bits:fp32_to_bf16_bits",
          bad=[Mistake("aisys.labkit.checks.lab01:_bf16_truncate", says="above the half-way point rounds up"),
               Mistake("aisys.labkit.checks.lab01:_bf16_round_half_up", says="exact tie"),
               Mistake("aisys.labkit.checks.lab01:_bf16_rne_forgets_nan", says="check NaN first"),
               Mistake("aisys.labkit.checks.lab01:_bf16_lowest_kept_bit_off_by_one", says="exact tie"),
               Mistake("aisys.labkit.checks.lab01:_bf16_forgets_the_shift", says="uint16"),
               Mistake("aisys.labkit.checks.lab01:_bf16_flushes_subnormals", says="subnormal")])
def _check_1_3(fn, c: Checker):
    words = np.array([w for w, _, _ in _BF16_CASES], dtype=np.uint32)
    got, error = _call(fn, _f32(words))
    c.true(error is None, what=f"fp32_to_bf16_bits on an array of {len(words)} fp32 values runs",
           expected="an array of uint16 bit patterns", got=error,
           hint="view the float32 array as uint32 (x.view(np.uint32)) and work on the bits")
    c.true(got.shape == words.shape and got.dtype == np.uint16,
           what="one uint16 bit pattern per input value, same shape", expected=f"shape {words.shape}, uint16",
           got=f"shape {got.shape}, dtype {got.dtype}",
           hint="a bf16 pattern is the top 16 bits of the rounded fp32 pattern: shift right by 16 and return uint16")
    first_wrong = next(
        ((word, want, what, int(have)) for (word, want, what), have in zip(_BF16_CASES, got.reshape(-1).tolist())
         if int(have) != want),
        None,
    )
    c.true(first_wrong is None,
           what=f"{len(_BF16_CASES)} hand-picked values: ties (both parities), just above/below half, -0.0, "
                "subnormals, inf, overflow to inf",
           expected=first_wrong and f"fp32 {first_wrong[0]:#010x} ({first_wrong[2]}) → {first_wrong[1]:#06x}",
           got=first_wrong and f"{first_wrong[3]:#06x}",
           hint="RNE: add 0x7FFF plus the lowest kept bit ((u >> 16) & 1), then shift right by 16")

    nan_out, error = _call(fn, _f32(_NAN_CASES))
    ok = error is None and nan_out.shape == (len(_NAN_CASES),)
    bad = []
    if ok:
        for word, out in zip(_NAN_CASES, nan_out.reshape(-1).tolist()):
            out = int(out)
            if not (0 <= out <= 0xFFFF and (out & 0x7F80) == 0x7F80 and (out & 0x7F) and (out & 0x40)):
                bad.append(f"{word:#010x} → {out:#06x}")
    c.true(ok and not bad, what="every NaN (quiet, signalling, all-ones payload) stays a quiet NaN",
           expected="exponent 0xFF with the quiet bit 0x0040 set, e.g. 0x7FC0",
           got=error or "; ".join(bad) or "shape mismatch",
           hint="check NaN first ((u & 0x7FFFFFFF) > 0x7F800000): rounding a NaN with a low payload gives inf, "
                "and an all-ones payload carries into the sign bit")

    rng = np.random.default_rng(2024)
    sample = rng.integers(0, 1 << 32, size=4096, dtype=np.uint64).astype(np.uint32)
    sample[:64] = (sample[:64] & 0xFFFF0000) | 0x8000  # plenty of exact ties
    have, error = _call(fn, _f32(sample))
    want = _bits.fp32_to_bf16_bits(_f32(sample)).astype(np.int64)
    mismatch = None
    if error is None:
        have = have.reshape(-1).astype(np.int64)
        is_nan = (sample & 0x7FFFFFFF) > 0x7F800000
        wrong = np.nonzero(~is_nan & (have != want))[0]
        if wrong.size:
            i = int(wrong[0])
            mismatch = f"{wrong.size} wrong, first fp32 {int(sample[i]):#010x} → {int(have[i]):#06x}, expected {int(want[i]):#06x}"
    else:
        mismatch = error
    c.true(mismatch is None, what="4096 random fp32 bit patterns (64 exact ties) against uint32 RNE arithmetic",
           expected="identical bf16 bits for every non-NaN input", got=mismatch,
           hint="compare against the rule: bf16 = (u + 0x7FFF + ((u >> 16) & 1)) >> 16")


def _bf16_truncate(x):
    """Mistake: keep the top 16 bits ("bf16 is the first half of fp32"): rounds toward zero."""
    return (np.asarray(x, np.float32).view(np.uint32) >> 16).astype(np.uint16)


def _bf16_round_half_up(x):
    """Mistake: add half (0x8000) and shift: ties always round away from zero, a biased rounding."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x8000) >> 16).astype(np.uint16)


def _bf16_rne_forgets_nan(x):
    """Mistake: RNE on uint32 with no NaN case: low-payload NaNs become inf, all-ones ones wrap."""
    u = np.asarray(x, np.float32).view(np.uint32)
    with np.errstate(over="ignore"):
        return ((u + np.uint32(0x7FFF) + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def _bf16_lowest_kept_bit_off_by_one(x):
    """Mistake: the parity of the tie read from bit 15 (the first dropped bit) instead of bit 16."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    out = ((u + 0x7FFF + ((u >> 15) & 1)) >> 16).astype(np.uint16)
    return np.where(nan, ((u >> 16) | 0x40).astype(np.uint16), out)


def _bf16_forgets_the_shift(x):
    """Mistake: rounds correctly but returns the rounded fp32 pattern (low half zeroed), not its top half."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((_bits.fp32_to_bf16_bits(x).astype(np.uint64)) << 16).astype(np.uint32) + 0 * u.astype(np.uint32)


def _bf16_flushes_subnormals(x):
    """Mistake: subnormal inputs flushed to (signed) zero, as a fast-math mode would."""
    u = np.asarray(x, np.float32).view(np.uint32)
    out = _bits.fp32_to_bf16_bits(x)
    sub = (u & 0x7F800000) == 0
    return np.where(sub, (u >> 16) & 0x8000, out).astype(np.uint16)
