"""The quantization convention, q = clamp(round(x/s) + z, qmin, qmax), x̂ = s·(q − z), end to end.

Round trips hold within s/2 inside the range and clamp outside (hypothesis); scale/zero-point derivation
handles its edge cases; the course's two sign conventions (02Quant's +z, 04PTQ's −z) are compared; fp8 goes
through ml_dtypes as the oracle; gemmlowp's fixed-point requantization matches a Python-int reference.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from aisys.framework import compress as C
from tests.framework.op_info import requantize_ref

PROPS = settings(max_examples=40, deadline=None, derandomize=True, database=None)
INT_TYPES = ["int8", "uint8", "int4"]


def _finite(shape):
    return hnp.arrays(np.float64, shape, elements=st.floats(-50, 50, allow_nan=False, width=32))


@PROPS
@given(x=_finite(st.integers(1, 40)), dtype=st.sampled_from(INT_TYPES), symmetric=st.booleans(),
       pad=st.floats(0.5, 3.0))
def test_round_trip_within_half_a_step_and_clamping_outside(x, dtype, symmetric, pad):
    lo, hi = float(x.min()), float(x.max())
    s, z = C.qparams_from_range(lo, hi, dtype, symmetric)
    qmin, qmax = C.qrange(dtype)
    q = C.quantize_tensor(x, s, z, dtype)
    assert q.min() >= qmin and q.max() <= qmax
    xh = C.dequantize(q, s, z, dtype=np.float64)
    r_lo, r_hi = s * (qmin - z), s * (qmax - z)
    inside = (x >= r_lo) & (x <= r_hi)
    assert np.all(np.abs(x - xh)[inside] <= s / 2 * (1 + 1e-9)), "inside the range the error is at most s/2"
    outside = np.concatenate([x * 0 + r_hi + pad * s * np.arange(1, 4)[:, None].repeat(x.size, 1)[0],
                              x * 0 + r_lo - pad * s])
    qo = C.quantize_tensor(outside, s, z, dtype)
    assert set(np.unique(qo)) <= {qmin, qmax}, "beyond the range codes clamp to qmin/qmax"
    assert C.quantize_tensor(np.array([0.0]), s, z, dtype)[0] == z, "real 0 is exactly the zero point"


@PROPS
@given(w=hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 9)),
                    elements=st.floats(-3, 3, allow_nan=False, width=32)),
       dtype=st.sampled_from(["int8", "int4"]))
def test_per_channel_round_trip(w, dtype):
    amax = np.abs(w).max(axis=1)
    s, z = C.qparams_from_range(-amax, amax, dtype, symmetric=True)
    q = C.quantize_tensor(w, s, z, dtype, axis=0)
    xh = C.dequantize(q, s, z, axis=0, dtype=np.float64)
    assert np.all(np.abs(w - xh) <= s[:, None] / 2 * (1 + 1e-9))
    assert np.all(z == 0)


def test_scale_and_zero_point_by_hand():
    # affine int8 over [-1, 3]: s = 4/255, z = -128 - round(-1/s) = -128 + 64 = -64
    s, z = C.qparams_from_range(-1.0, 3.0, "int8")
    assert s == pytest.approx(4 / 255) and z == -64
    # symmetric int8: s = max|x| / 127, z = 0; uint8 symmetric puts z in the middle
    assert C.qparams_from_range(-2.0, 1.0, "int8", symmetric=True) == (pytest.approx(2 / 127), 0)
    assert C.qparams_from_range(-2.0, 1.0, "uint8", symmetric=True)[1] == 128
    assert C.qparams_from_range(0.0, 7.0, "int4") == (pytest.approx(7 / 15), -8)


def test_range_edge_cases():
    # a range without 0 is widened to contain it, so 0 stays exact
    s, z = C.qparams_from_range(2.0, 6.0, "int8")
    assert z == -128 and s == pytest.approx(6 / 255)
    s, z = C.qparams_from_range(-6.0, -2.0, "uint8")
    assert z == 255 and s == pytest.approx(6 / 255)
    # a constant tensor c: the range [min(c, 0), max(c, 0)] represents c exactly
    for c in (3.5, -0.25):
        s, z = C.qparams_from_range(c, c, "int8")
        assert C.dequantize(C.quantize_tensor([c], s, z), s, z, dtype=np.float64)[0] == pytest.approx(c)
    # all zeros: any scale represents 0; aisys picks 1
    assert C.qparams_from_range(0.0, 0.0, "int8") == (1.0, -128)
    assert C.qparams_from_range(0.0, 0.0, "int8", symmetric=True) == (1.0, 0)


@pytest.mark.parametrize("lo,hi,match", [(float("nan"), 1.0, "not finite"), (0.0, float("inf"), "not finite"),
                                         (2.0, 1.0, "lo > hi"), (np.zeros(0), np.zeros(0), "empty")])
def test_range_errors(lo, hi, match):
    with pytest.raises(ValueError, match=match):
        C.qparams_from_range(lo, hi)


def test_quantize_errors_name_the_problem():
    with pytest.raises(ValueError, match="NaN"):
        C.quantize_tensor([1.0, np.nan], 0.1, 0)
    with pytest.raises(ValueError, match="positive finite"):
        C.quantize_tensor([1.0], 0.0, 0)
    with pytest.raises(ValueError, match="unsupported quantized dtype 'int3'.*int8, uint8, int4, fp8_e4m3"):
        C.quantize_tensor([1.0], 0.1, 0, "int3")
    with pytest.raises(ValueError, match="outside"):
        C.quantize_tensor([1.0], 0.1, 200, "int8")
    with pytest.raises(ValueError, match="one value per channel"):
        C.quantize_tensor(np.ones((2, 3)), [0.1, 0.2], 0, axis=1)
    # ±inf saturate like any value beyond the range
    assert C.quantize_tensor([np.inf, -np.inf], 0.1, 0).tolist() == [127, -128]


def test_the_course_sign_conventions_02quant_plus_z_and_04ptq_minus_z():
    """ZOMI's 03Slim/02Quant writes q = round(x/s) + z; 04PTQ writes q = round(x/s) − z. Both are self-consistent
    only with their own dequantization (x = s(q − z) and x = s(q + z), i.e. the two z's have opposite signs);
    aisys states one convention, +z, and dequantizes with s(q − z)."""
    x = np.array([-1.0, -0.5, 0.0, 0.7, 0.95])                     # (small enough that no code clamps below)
    s, z = C.qparams_from_range(-1.0, 3.0, "int8")                # z = -64 under aisys's convention
    q_02 = np.clip(np.round(x / s) + z, -128, 127)                  # 02Quant
    assert np.array_equal(q_02, C.quantize_tensor(x, s, z))
    assert np.allclose(s * (q_02 - z), C.dequantize(q_02, s, z, dtype=np.float64))
    assert np.max(np.abs(s * (q_02 - z) - x)) <= s / 2
    q_04 = np.clip(np.round(x / s) - z, -128, 127)                  # 04PTQ's formula with the same number z
    assert not np.allclose(s * (q_04 - z), x, atol=s)               # mixed with x = s(q − z): off by 2·z·s
    assert np.allclose(s * (q_04 - z) - x, -2 * z * s, atol=s / 2 + 1e-12)
    assert np.array_equal(q_04, C.quantize_tensor(x, s, -z))        # 04PTQ's z is aisys's −z


@pytest.mark.parametrize("fmt,npname,fmax", [("fp8_e4m3", "float8_e4m3fn", 448.0), ("fp8_e5m2", "float8_e5m2", 57344.0)])
def test_fp8_against_ml_dtypes(fmt, npname, fmax):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(3)
    x = rng.standard_normal(500) * 4
    s, z = C.qparams_from_range(x.min(), x.max(), fmt)
    assert z == 0 and s == pytest.approx(np.abs(x).max() / fmax)
    q = C.quantize_tensor(x, s, z, fmt)
    assert q.dtype == np.dtype(getattr(ml_dtypes, npname))
    assert np.array_equal(q.astype(np.float64), (x / s).astype(getattr(ml_dtypes, npname)).astype(np.float64))
    big = C.quantize_tensor([1e9, -1e9], 1.0, 0, fmt).astype(np.float64)
    assert big.tolist() == [fmax, -fmax], "values beyond the format saturate to its largest finite number"
    with pytest.raises(ValueError, match="no zero point"):
        C.quantize_tensor(x, s, 3, fmt)


@PROPS
@given(m=st.floats(1e-9, 50.0, allow_nan=False))
def test_fixed_point_multiplier(m):
    m0, n = C.quantize_multiplier(m)
    assert (1 << 30) <= m0 < (1 << 31)
    assert abs(C.real_multiplier(m0, n) - m) <= m * 2.0 ** -31


@PROPS
@given(acc=hnp.arrays(np.int32, st.integers(1, 30), elements=st.integers(-(1 << 24), 1 << 24)),
       m=st.floats(1e-6, 4.0), z=st.integers(-20, 20))
def test_requantize_matches_gemmlowp_and_the_real_product(acc, m, z):
    m0, n = C.quantize_multiplier(m)
    got = C.requantize(acc, m0, n, z, -(1 << 30), 1 << 30)
    want = requantize_ref(acc, np.array(m0), np.array(n), np.array(z), qmin=-(1 << 30), qmax=1 << 30, dtype="int64")
    assert np.array_equal(got, want)
    exact = acc.astype(np.float64) * C.real_multiplier(m0, n) + z
    assert np.all(np.abs(got - exact) <= 1.0), "within one code of the exact product (gemmlowp rounds twice)"


def test_requantize_double_rounding_example():
    """gemmlowp rounds twice: 9 · M0/2³¹ with M0 = 2³⁰ is 4.5 → 5 (ties away from zero), then 5 / 2¹ = 2.5 → 3;
    the exact 9 · 0.25 = 2.25 would give 2. The library follows gemmlowp, as integer kernels on a chip do."""
    m0, n = 1 << 30, 1                                      # M = 2⁻¹ · 2⁻¹ = 0.25
    assert C.rounding_doubling_high_mul(np.array([9]), m0).tolist() == [5]
    assert C.rounding_divide_by_pot(np.array([5]), n).tolist() == [3]
    assert C.requantize(np.array([9, -9]), m0, n, 0, -128, 127).tolist() == [3, -2]
    # (−9: the high multiply's nudge rounds −4.5 toward zero, to −4, and −4 / 2 = −2 exactly)
    assert round(9 * C.real_multiplier(m0, n)) == 2
