"""Float formats bit by bit: worked examples from the lecture and the OCP spec, ml_dtypes as oracle."""

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aisys.framework import bits

ML_DTYPES = {
    "fp32": np.float32,
    "fp16": np.float16,
    "bf16": ml_dtypes.bfloat16,
    "fp8_e4m3": ml_dtypes.float8_e4m3fn,
    "fp8_e5m2": ml_dtypes.float8_e5m2,
}
UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32}

finite_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
any_f32_bits = st.integers(min_value=0, max_value=0xFFFFFFFF)


def f32_from_bits(u: int) -> np.float32:
    return np.array([u], dtype=np.uint32).view(np.float32)[0]


def oracle_bits(value, fmt: str) -> int:
    """ml_dtypes' rounding of an fp32 value into ``fmt``, as an integer bit pattern."""
    f = bits.get_format(fmt)
    with np.errstate(all="ignore"):
        arr = np.array([value], dtype=np.float32).astype(ML_DTYPES[fmt])
    return int(arr.view(UINT[f.total_bits])[0])


# ---- worked examples -------------------------------------------------------------------------

def test_lecture_example_26_in_fp32():
    # 06BitWidth: 0 10000011 10100000000000000000000 = (-1)^0 × 2^(131-127) × (1 + 0.625) = 26
    fields = bits.decompose(26.0, "fp32")
    assert fields.bit_string == "0 10000011 10100000000000000000000"
    assert (fields.sign, fields.exponent_raw, fields.exponent, fields.kind) == (0, 131, 4, "normal")
    assert fields.mantissa == 0b101 << 20
    assert fields.value == 26.0
    assert fields.formula() == "(-1)^0 × 2^(131-127) × (1 + 0.625)"


def test_e4m3_largest_is_448_and_has_no_inf():
    # 06BitWidth / OCP OFP8: 0 1111 110 = 1.75 · 2^8 = 448; 0 1111 111 is NaN; no inf pattern
    assert bits.from_bits(0b0_1111_110, "fp8_e4m3") == 448.0
    assert bits.decompose_bits(0b0_1111_111, "fp8_e4m3").kind == "nan"
    assert bits.decompose_bits(0b0_1111_000, "fp8_e4m3").kind == "normal"  # 256: a number, not inf
    f = bits.get_format("e4m3")
    assert (f.max_finite, f.min_normal, f.min_subnormal) == (448.0, 2.0**-6, 2.0**-9)
    assert bits.decompose(math.inf, "fp8_e4m3").kind == "nan"
    assert bits.decompose(1e6, "fp8_e4m3", saturate=True).value == 448.0
    with pytest.raises(ValueError, match="no infinity"):
        f.inf_bits()


def test_format_constants_match_ml_dtypes_finfo():
    for name, dtype in ML_DTYPES.items():
        f, info = bits.get_format(name), ml_dtypes.finfo(dtype)
        assert f.max_finite == float(info.max), name
        assert f.min_normal == float(info.tiny), name
        assert f.min_subnormal == float(info.smallest_subnormal), name
        assert f.epsilon == float(info.eps), name
    assert bits.get_format("e5m2").max_finite == 57344.0


@pytest.mark.parametrize(
    "fmt, value, kind, exponent",
    [
        ("fp16", 0.0, "zero", -14),
        ("fp16", 2.0**-24, "subnormal", -14),
        ("fp16", 65504.0, "normal", 15),
        ("fp16", math.inf, "inf", None),
        ("bf16", math.nan, "nan", None),
        ("fp8_e5m2", 2.0**-16, "subnormal", -14),
    ],
)
def test_kinds_and_effective_exponent(fmt, value, kind, exponent):
    fields = bits.decompose(value, fmt)
    assert fields.kind == kind
    assert fields.exponent == exponent


def test_negative_zero_keeps_its_sign():
    fields = bits.decompose(-0.0, "bf16")
    assert (fields.bits, fields.kind) == (0x8000, "zero")
    assert math.copysign(1.0, fields.value) == -1.0


# ---- rounding against ml_dtypes ----------------------------------------------------------------

@pytest.mark.parametrize("fmt", sorted(ML_DTYPES))
@settings(max_examples=60, deadline=None)
@given(x=finite_f32)
def test_rounding_matches_ml_dtypes(fmt, x):
    got = bits.to_bits(x, fmt)
    want = oracle_bits(x, fmt)
    if bits.decompose_bits(want, fmt).kind == "nan":
        assert bits.decompose_bits(got, fmt).kind == "nan"
    else:
        assert got == want, f"{fmt}: {x!r} → {got:#x}, ml_dtypes {want:#x}"


@pytest.mark.parametrize("fmt", sorted(ML_DTYPES))
@settings(max_examples=40, deadline=None)
@given(u=any_f32_bits)
def test_rounding_of_any_fp32_pattern_matches_ml_dtypes(fmt, u):
    # every fp32 pattern, including NaN, inf and subnormals
    x = f32_from_bits(u)
    got, want = bits.to_bits(float(x), fmt), oracle_bits(x, fmt)
    if bits.decompose_bits(want, fmt).kind == "nan":
        assert bits.decompose_bits(got, fmt).kind == "nan"
    else:
        assert got == want


@pytest.mark.parametrize("fmt", ["fp16", "bf16", "fp8_e4m3", "fp8_e5m2"])
def test_every_pattern_decodes_like_ml_dtypes(fmt):
    f = bits.get_format(fmt)
    patterns = np.arange(1 << f.total_bits, dtype=UINT[f.total_bits])
    with np.errstate(invalid="ignore"):
        want = patterns.view(ML_DTYPES[fmt]).astype(np.float64)
    got = np.array([bits.from_bits(int(p), f) for p in patterns])
    assert np.array_equal(np.isnan(got), np.isnan(want))
    keep = ~np.isnan(want)
    assert np.array_equal(got[keep], want[keep])
    # and to_bits(from_bits(p)) gives p back for every non-NaN pattern
    assert all(bits.to_bits(got[i], f) == i for i in np.nonzero(keep)[0])


@pytest.mark.parametrize(
    "fmt, value, expected",
    [
        ("fp8_e4m3", 464.0, 448.0),     # halfway between 448 (mantissa 110, even) and 480: ties to even
        ("fp8_e4m3", 465.0, math.nan),  # above half-way: overflow → NaN (no inf in e4m3)
        ("fp8_e5m2", 61439.0, 57344.0),
        ("fp8_e5m2", 61440.0, math.inf),  # tie with max (mantissa 11, odd): rounds up to inf
        ("fp16", 65520.0, math.inf),
        ("fp16", 2.0**-25, 0.0),        # half the smallest subnormal: ties to even (zero)
        ("fp16", 3 * 2.0**-26, 2.0**-24),
    ],
)
def test_overflow_and_underflow_edges(fmt, value, expected):
    got = bits.from_bits(bits.to_bits(value, fmt), fmt)
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == expected


def test_tf32_keeps_ten_mantissa_bits_with_rne():
    # tf32 = fp32 with the low 13 mantissa bits rounded away (RNE), checked on uint32 arithmetic
    rng = np.random.default_rng(3)
    u = rng.integers(0, 0x7F7FFFFF, size=300, dtype=np.uint64)
    for word in u:
        lsb = (int(word) >> 13) & 1
        expected = ((int(word) + 0xFFF + lsb) >> 13) << 13
        x = float(f32_from_bits(int(word)))
        assert bits.from_bits(bits.to_bits(x, "tf32"), "tf32") == float(f32_from_bits(expected))


# ---- fp32 → bf16 on uint32 arithmetic -------------------------------------------------------

@pytest.mark.parametrize(
    "u, expected",
    [
        (0x3F800000, 0x3F80),  # 1.0
        (0x3F808000, 0x3F80),  # exact tie, kept part even: stays
        (0x3F818000, 0x3F82),  # exact tie, kept part odd: rounds up to even
        (0x3F808001, 0x3F81),  # just above the tie
        (0x3F807FFF, 0x3F80),  # just below the tie
        (0x7F7FFFFF, 0x7F80),  # fp32 max overflows to +inf
        (0xFF7FFFFF, 0xFF80),  # and -max to -inf
        (0x7F800000, 0x7F80),  # inf stays inf
        (0x7F800001, 0x7FC0),  # signalling NaN with a low payload: must not become inf
        (0xFFFFFFFF, 0xFFC0),  # NaN with all-ones payload: must not carry into the sign
        (0x80000000, 0x8000),  # -0.0
        (0x00000001, 0x0000),  # smallest fp32 subnormal rounds to zero
        (0x00018000, 0x0002),  # subnormal tie, odd kept part → even
    ],
)
def test_fp32_to_bf16_bits_golden(u, expected):
    assert int(bits.fp32_to_bf16_bits(f32_from_bits(u))) == expected


@settings(max_examples=60, deadline=None)
@given(words=st.lists(any_f32_bits, min_size=1, max_size=64))
def test_fp32_to_bf16_bits_matches_ml_dtypes(words):
    x = np.array(words, dtype=np.uint32).view(np.float32)
    got = bits.fp32_to_bf16_bits(x)
    want = x.astype(ml_dtypes.bfloat16).view(np.uint16)
    assert got.dtype == np.uint16 and got.shape == x.shape
    assert np.array_equal(got, want)


def test_fp32_to_bf16_bits_agrees_with_generic_rounding_and_widens_back():
    x = np.random.default_rng(0).standard_normal(500).astype(np.float32) * 1e3
    got = bits.fp32_to_bf16_bits(x.reshape(20, 25))
    assert got.shape == (20, 25)
    assert [bits.to_bits(float(v), "bf16") for v in x] == got.ravel().tolist()
    widened = bits.bf16_bits_to_fp32(got).ravel()
    assert np.all(np.abs(widened - x) <= np.abs(x) * 2.0**-8)


def test_fp32_to_bf16_rejects_non_numbers():
    with pytest.raises(TypeError, match="float32"):
        bits.fp32_to_bf16_bits(np.array(["a"]))
    with pytest.raises(ValueError, match="0xFFFF"):
        bits.bf16_bits_to_fp32(np.array([70000]))


# ---- flipping bits, ulp, tables -------------------------------------------------------------

def test_flip_bit_sign_exponent_mantissa():
    assert bits.flip_bit(26.0, "fp32", 31).value == -26.0
    assert bits.flip_bit(1.0, "fp32", 23).value == 0.5   # lowest exponent bit of 127 → 126
    assert bits.flip_bit(1.0, "bf16", 14).kind == "inf"  # top exponent bit: 0x3F80 ^ 0x4000 = 0x7F80
    assert bits.flip_bit(1.0, "fp16", 0).value == 1.0 + 2.0**-10
    assert bits.flip_bit(1.0, "fp8_e4m3", 6).value == 256.0  # 0 0111 000 → 0 1111 000 (a number in e4m3)


def test_flip_bit_errors_name_the_range():
    with pytest.raises(ValueError, match=r"bits 0 … 7"):
        bits.flip_bit(1.0, "fp8_e5m2", 8)
    with pytest.raises(TypeError, match="integer"):
        bits.flip_bit(1.0, "fp16", 1.5)


def test_ulp_values():
    assert bits.ulp(1.0, "fp32") == 2.0**-23
    assert bits.ulp(1.0, "bf16") == 2.0**-7
    assert bits.ulp(300.0, "fp8_e4m3") == 32.0
    assert bits.ulp(0.0, "fp16") == 2.0**-24
    assert math.isnan(bits.ulp(math.inf, "fp16"))
    assert bits.ulp(1.0, "fp32") == float(np.spacing(np.float32(1.0)))


@settings(max_examples=50, deadline=None)
@given(x=st.floats(min_value=6.2e-5, max_value=57344.0), fmt=st.sampled_from(["fp16", "bf16", "fp8_e5m2"]))
@example(x=61439.0, fmt="fp8_e5m2")  # just under the overflow threshold: rounds to 57344, error 4095 < 4096
def test_rounding_error_is_at_most_half_an_ulp(x, fmt):
    # inside the normal range (up to the largest finite value of every format drawn)
    rounded = bits.from_bits(bits.to_bits(x, fmt), fmt)
    assert abs(rounded - x) <= bits.ulp(x, fmt) / 2


def test_rounding_error_table_stays_under_unit_roundoff():
    rows = bits.rounding_error_table(samples=1500, seed=1)
    assert [r.format for r in rows] == ["fp32", "tf32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2"]
    for r in rows:
        assert r.max_rel_error <= r.unit_roundoff
        if r.format != "fp32":  # fp32 samples are exact in fp32
            assert r.max_rel_error > 0.8 * r.unit_roundoff, r.format
            assert r.mean_rel_error < r.max_rel_error
    text = bits.format_rounding_table(rows)
    assert "bf16" in text.splitlines()[5] and "0.00391" in text


def test_rounding_error_table_on_own_values_and_errors():
    (row,) = bits.rounding_error_table(["fp16"], values=[1.0, 1e5])  # 1e5 overflows fp16
    assert row.samples == 2 and row.max_rel_error == math.inf
    with pytest.raises(ValueError, match="finite non-zero"):
        bits.rounding_error_table(["fp16"], values=[0.0])


def test_unknown_format_lists_the_known_ones():
    with pytest.raises(ValueError, match="fp8_e4m3"):
        bits.get_format("fp4")
    with pytest.raises(TypeError):
        bits.get_format(16)
    with pytest.raises(ValueError, match="does not fit"):
        bits.decompose_bits(0x1FF, "fp8_e4m3")


@settings(max_examples=60, deadline=None)
@given(x=st.floats(allow_nan=False, allow_infinity=False))
def test_float64_to_fp32_rounds_like_numpy(x):
    # numpy's float64 → float32 cast is IEEE round-to-nearest-even, overflow to inf
    with np.errstate(over="ignore"):
        want = int(np.array([x]).astype(np.float32).view(np.uint32)[0])
    assert bits.to_bits(x, "fp32") == want
