"""Floating-point formats bit by bit: fields, rounding, and what one flipped bit does.

Follows the lecture "计算之比特位宽" (ZOMI's AISystem course, ``02Hardware/01Foundation/06BitWidth``):
a float is sign · 2^(E−B) · (1 + M) when normal (规格化), sign · 2^(1−B) · M when subnormal
(非规格化), and the all-ones exponent is kept for inf/NaN (特殊值). The lecture's worked example,
``0 10000011 10100000000000000000000`` = 26 in fp32, is a test in ``tests/framework/test_bits.py``.

Formats and where their rules come from:

- fp32, fp16: IEEE 754-2008 binary32 / binary16.
- bf16: the top 16 bits of fp32 (same 8-bit exponent, 7 mantissa bits), from Google Brain.
  The lecture calls it "the first 16 bits of fp32"; a *conversion* that merely truncates is biased
  towards zero, so :func:`fp32_to_bf16_bits` rounds to nearest, ties to even (RNE).
- tf32: NVIDIA A100 TensorFloat-32, 8 exponent bits and 10 mantissa bits (19 bits in a 32-bit slot).
- fp8 e4m3 and e5m2: the OCP 8-bit floating point specification (OFP8, 2023; Micikevicius et al.,
  "FP8 formats for deep learning", arXiv:2209.05433). e5m2 follows IEEE rules. e4m3 gives up inf and
  keeps a single NaN pattern per sign, S.1111.111, so S.1111.110 = 1.75·2^8 = 448 is its largest
  finite value (the lecture's example); out-of-range values become NaN unless you ask to saturate.

Everything here is plain integer arithmetic on the bit patterns (Python ints or numpy uint32), so a
learner can read each step; ``ml_dtypes`` is used only by the tests, as an independent cross-check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "FloatFormat",
    "FloatFields",
    "FORMATS",
    "get_format",
    "to_bits",
    "from_bits",
    "round_to_format",
    "decompose",
    "decompose_bits",
    "flip_bit",
    "ulp",
    "fp32_to_bf16_bits",
    "bf16_bits_to_fp32",
    "RoundingRow",
    "rounding_error_table",
    "format_rounding_table",
]


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format: 1 sign bit, ``exponent_bits``, ``mantissa_bits``.

    ``ieee_specials`` is True when the all-ones exponent is reserved for inf (mantissa 0) and NaN
    (mantissa ≠ 0). OCP e4m3 sets it False: the all-ones exponent holds normal numbers, except
    mantissa all-ones, which is NaN, and there is no inf.
    """

    name: str
    exponent_bits: int
    mantissa_bits: int
    ieee_specials: bool = True
    description: str = ""

    @property
    def total_bits(self) -> int:
        return 1 + self.exponent_bits + self.mantissa_bits

    @property
    def bias(self) -> int:
        """B = 2^(E_bw − 1) − 1 (the lecture's formula)."""
        return (1 << (self.exponent_bits - 1)) - 1

    @property
    def max_raw_exponent(self) -> int:
        return (1 << self.exponent_bits) - 1

    @property
    def min_exponent(self) -> int:
        """Unbiased exponent of the smallest normal number, 1 − B (also used by subnormals)."""
        return 1 - self.bias

    @property
    def has_inf(self) -> bool:
        return self.ieee_specials

    @property
    def _max_finite_fields(self) -> tuple[int, int]:
        """(raw exponent, mantissa) of the largest finite value."""
        all_ones_mantissa = (1 << self.mantissa_bits) - 1
        if self.ieee_specials:
            return self.max_raw_exponent - 1, all_ones_mantissa
        return self.max_raw_exponent, all_ones_mantissa - 1

    @property
    def max_finite(self) -> float:
        raw, mantissa = self._max_finite_fields
        return math.ldexp(1.0 + mantissa / (1 << self.mantissa_bits), raw - self.bias)

    @property
    def min_normal(self) -> float:
        return math.ldexp(1.0, self.min_exponent)

    @property
    def min_subnormal(self) -> float:
        return math.ldexp(1.0, self.min_exponent - self.mantissa_bits)

    @property
    def epsilon(self) -> float:
        """Gap between 1 and the next representable number, 2^−m (machine epsilon)."""
        return math.ldexp(1.0, -self.mantissa_bits)

    @property
    def unit_roundoff(self) -> float:
        """Worst relative error of round-to-nearest inside the normal range, 2^−(m+1)."""
        return math.ldexp(1.0, -self.mantissa_bits - 1)

    def pack(self, sign: int, raw_exponent: int, mantissa: int) -> int:
        return (sign << (self.total_bits - 1)) | (raw_exponent << self.mantissa_bits) | mantissa

    def unpack(self, bits: int) -> tuple[int, int, int]:
        sign = (bits >> (self.total_bits - 1)) & 1
        raw_exponent = (bits >> self.mantissa_bits) & self.max_raw_exponent
        mantissa = bits & ((1 << self.mantissa_bits) - 1)
        return sign, raw_exponent, mantissa

    def nan_bits(self, sign: int = 0) -> int:
        """The canonical quiet NaN: all-ones exponent, top mantissa bit set (e4m3: all-ones mantissa)."""
        if self.ieee_specials:
            return self.pack(sign, self.max_raw_exponent, 1 << (self.mantissa_bits - 1))
        return self.pack(sign, self.max_raw_exponent, (1 << self.mantissa_bits) - 1)

    def inf_bits(self, sign: int = 0) -> int:
        if not self.has_inf:
            raise ValueError(f"format {self.name} has no infinity (OCP e4m3 keeps that pattern for numbers)")
        return self.pack(sign, self.max_raw_exponent, 0)

    def max_finite_bits(self, sign: int = 0) -> int:
        raw, mantissa = self._max_finite_fields
        return self.pack(sign, raw, mantissa)

    def is_nan_fields(self, raw_exponent: int, mantissa: int) -> bool:
        if raw_exponent != self.max_raw_exponent:
            return False
        if self.ieee_specials:
            return mantissa != 0
        return mantissa == (1 << self.mantissa_bits) - 1


FORMATS: dict[str, FloatFormat] = {
    f.name: f
    for f in (
        FloatFormat("fp32", 8, 23, True, "IEEE 754 binary32 (single precision)"),
        FloatFormat("tf32", 8, 10, True, "NVIDIA TensorFloat-32: fp32 range, fp16 precision"),
        FloatFormat("fp16", 5, 10, True, "IEEE 754 binary16 (half precision)"),
        FloatFormat("bf16", 8, 7, True, "bfloat16: the top half of fp32"),
        FloatFormat("fp8_e4m3", 4, 3, False, "OCP FP8 E4M3 (no inf, NaN = S.1111.111, max 448)"),
        FloatFormat("fp8_e5m2", 5, 2, True, "OCP FP8 E5M2 (IEEE-style, max 57344)"),
    )
}

_ALIASES = {
    "float32": "fp32", "single": "fp32", "f32": "fp32",
    "float16": "fp16", "half": "fp16", "f16": "fp16",
    "bfloat16": "bf16",
    "e4m3": "fp8_e4m3", "e4m3fn": "fp8_e4m3", "fp8e4m3": "fp8_e4m3", "float8_e4m3fn": "fp8_e4m3",
    "e5m2": "fp8_e5m2", "fp8e5m2": "fp8_e5m2", "float8_e5m2": "fp8_e5m2",
    "tensorfloat32": "tf32",
}


def get_format(fmt: str | FloatFormat) -> FloatFormat:
    """Look a format up by name ('fp32', 'bf16', 'fp8_e4m3', …, or an alias such as 'bfloat16')."""
    if isinstance(fmt, FloatFormat):
        return fmt
    if not isinstance(fmt, str):
        raise TypeError(f"format must be a name such as 'bf16' or a FloatFormat, got {type(fmt).__name__}")
    key = fmt.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in FORMATS:
        raise ValueError(
            f"unknown float format {fmt!r}; known formats: {', '.join(FORMATS)} "
            f"(aliases: {', '.join(sorted(_ALIASES))})"
        )
    return FORMATS[key]


# ---------------------------------------------------------------------------------------------
# value → bits (round to nearest, ties to even) and back
# ---------------------------------------------------------------------------------------------

def to_bits(value: float, fmt: str | FloatFormat, *, saturate: bool = False) -> int:
    """Round ``value`` into ``fmt`` (round to nearest, ties to even) and return the bit pattern.

    The rounding is done on the exact value: |x| = n · 2^(E−m) with E = max(⌊log2|x|⌋, 1−B), and n is
    rounded to an integer with ties going to the even one. Overflow gives ±inf, or NaN for e4m3 (it
    has no inf), or the largest finite value when ``saturate=True`` (the OCP "saturating" mode).
    """
    f = get_format(fmt)
    x = float(value)
    sign = 1 if math.copysign(1.0, x) < 0 else 0
    if math.isnan(x):
        return f.nan_bits(sign)
    magnitude = abs(x)
    if math.isinf(magnitude):
        if saturate:
            return f.max_finite_bits(sign)
        return f.inf_bits(sign) if f.has_inf else f.nan_bits(sign)
    if magnitude == 0.0:
        return f.pack(sign, 0, 0)

    _, frexp_exponent = math.frexp(magnitude)  # magnitude = frac · 2^e with 0.5 ≤ frac < 1
    exponent = max(frexp_exponent - 1, f.min_exponent)
    scaled = math.ldexp(magnitude, f.mantissa_bits - exponent)  # exact: a power-of-two scale
    significand = round(scaled)  # Python rounds floats to nearest, ties to even, exactly
    if significand == 0:
        return f.pack(sign, 0, 0)  # underflow to (signed) zero
    if significand == 1 << (f.mantissa_bits + 1):  # rounding carried into the next binade
        significand >>= 1
        exponent += 1
    if significand < 1 << f.mantissa_bits:  # no hidden 1: subnormal (only possible at min exponent)
        raw_exponent, mantissa = 0, significand
    else:
        raw_exponent, mantissa = exponent + f.bias, significand - (1 << f.mantissa_bits)

    if (raw_exponent, mantissa) > f._max_finite_fields:
        if saturate:
            return f.max_finite_bits(sign)
        return f.inf_bits(sign) if f.has_inf else f.nan_bits(sign)
    return f.pack(sign, raw_exponent, mantissa)


def _check_bits(bits: int, f: FloatFormat) -> int:
    if isinstance(bits, (bool, float)) or not isinstance(bits, (int, np.integer)):
        raise TypeError(f"bits must be an integer bit pattern, got {type(bits).__name__} {bits!r}")
    bits = int(bits)
    if not 0 <= bits < (1 << f.total_bits):
        raise ValueError(
            f"bit pattern {bits:#x} does not fit {f.name}, which has {f.total_bits} bits "
            f"(valid: 0 … {(1 << f.total_bits) - 1:#x})"
        )
    return bits


def from_bits(bits: int, fmt: str | FloatFormat) -> float:
    """Decode a bit pattern of ``fmt`` into a Python float (exact: every format here fits in float64)."""
    f = get_format(fmt)
    sign, raw_exponent, mantissa = f.unpack(_check_bits(bits, f))
    signum = -1.0 if sign else 1.0
    if f.is_nan_fields(raw_exponent, mantissa):
        return math.copysign(math.nan, signum)
    if f.ieee_specials and raw_exponent == f.max_raw_exponent:
        return signum * math.inf
    if raw_exponent == 0:
        return signum * math.ldexp(mantissa, f.min_exponent - f.mantissa_bits)
    return signum * math.ldexp((1 << f.mantissa_bits) + mantissa, raw_exponent - f.bias - f.mantissa_bits)


def round_to_format(x, fmt: str | FloatFormat, *, saturate: bool = False) -> np.ndarray:
    """Round every element of ``x`` into ``fmt`` and return the values as float64 (same shape)."""
    f = get_format(fmt)
    arr = np.asarray(x, dtype=np.float64)
    out = np.array([from_bits(to_bits(v, f, saturate=saturate), f) for v in arr.ravel()], dtype=np.float64)
    return out.reshape(arr.shape)


# ---------------------------------------------------------------------------------------------
# fields
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FloatFields:
    """One bit pattern of a format, split into its fields, with what they mean.

    ``exponent`` is the *effective* unbiased exponent: raw − B for normal numbers, 1 − B for
    subnormals and zero (the lecture's 2^(1−B)·M formula), None for inf and NaN.
    """

    format: str
    bits: int
    sign: int
    exponent_raw: int
    exponent: int | None
    mantissa: int
    kind: str  # "normal" | "subnormal" | "zero" | "inf" | "nan"
    value: float

    @property
    def fmt(self) -> FloatFormat:
        return get_format(self.format)

    @property
    def sign_bits(self) -> str:
        return str(self.sign)

    @property
    def exponent_bits(self) -> str:
        return format(self.exponent_raw, f"0{self.fmt.exponent_bits}b")

    @property
    def mantissa_bits(self) -> str:
        return format(self.mantissa, f"0{self.fmt.mantissa_bits}b")

    @property
    def bit_string(self) -> str:
        """'S EEEEEEEE MMMM…' with spaces between the fields, as the lecture writes them."""
        return f"{self.sign_bits} {self.exponent_bits} {self.mantissa_bits}"

    def formula(self) -> str:
        """The value written with the lecture's formula, e.g. '(-1)^0 × 2^(131-127) × (1 + 0.625)'."""
        f = self.fmt
        if self.kind == "nan":
            return "NaN (exponent all ones, " + ("mantissa ≠ 0)" if f.ieee_specials else "mantissa all ones)")
        if self.kind == "inf":
            return ("-" if self.sign else "+") + "inf (exponent all ones, mantissa 0)"
        fraction = self.mantissa / (1 << f.mantissa_bits)
        if self.kind == "normal":
            return f"(-1)^{self.sign} × 2^({self.exponent_raw}-{f.bias}) × (1 + {fraction:.10g})"
        return f"(-1)^{self.sign} × 2^(1-{f.bias}) × {fraction:.10g}"

    def __str__(self) -> str:
        return f"{self.format} {self.bit_string} = {self.value!r} ({self.kind})"


def decompose_bits(bits: int, fmt: str | FloatFormat) -> FloatFields:
    """Split a bit pattern of ``fmt`` into sign, exponent (raw and unbiased), mantissa and kind."""
    f = get_format(fmt)
    bits = _check_bits(bits, f)
    sign, raw_exponent, mantissa = f.unpack(bits)
    value = from_bits(bits, f)
    if f.is_nan_fields(raw_exponent, mantissa):
        kind, exponent = "nan", None
    elif f.ieee_specials and raw_exponent == f.max_raw_exponent:
        kind, exponent = "inf", None
    elif raw_exponent == 0:
        kind, exponent = ("zero" if mantissa == 0 else "subnormal"), f.min_exponent
    else:
        kind, exponent = "normal", raw_exponent - f.bias
    return FloatFields(f.name, bits, sign, raw_exponent, exponent, mantissa, kind, value)


def decompose(value: float, fmt: str | FloatFormat, *, saturate: bool = False) -> FloatFields:
    """Round ``value`` into ``fmt`` and split the result into its fields.

    >>> decompose(26.0, "fp32").bit_string
    '0 10000011 10100000000000000000000'
    """
    f = get_format(fmt)
    return decompose_bits(to_bits(value, f, saturate=saturate), f)


def flip_bit(value: float, fmt: str | FloatFormat, bit: int) -> FloatFields:
    """Round ``value`` into ``fmt``, flip one bit, and return the new fields.

    Bits are numbered from the least significant: 0 is the last mantissa bit, ``total_bits − 1``
    the sign. Flipping the top exponent bit of 1.0 in fp32 gives 2^128 → inf, in bf16 too.
    """
    f = get_format(fmt)
    if isinstance(bit, bool) or not isinstance(bit, (int, np.integer)):
        raise TypeError(f"bit must be an integer index, got {type(bit).__name__} {bit!r}")
    if not 0 <= bit < f.total_bits:
        raise ValueError(
            f"bit {bit} is outside {f.name}, which has bits 0 … {f.total_bits - 1} "
            f"(0 = last mantissa bit, {f.total_bits - 1} = sign)"
        )
    return decompose_bits(to_bits(value, f) ^ (1 << int(bit)), f)


def ulp(value: float, fmt: str | FloatFormat) -> float:
    """Unit in the last place of ``fmt`` at ``value``: the gap to the next representable magnitude.

    ulp(x) = 2^(E − m) with E = max(⌊log2|x|⌋, 1 − B) for x rounded into the format; at zero it is the
    smallest subnormal. Rounding to nearest is off by at most ulp/2.
    """
    f = get_format(fmt)
    x = from_bits(to_bits(value, f), f)
    if math.isnan(x) or math.isinf(x):
        return math.nan
    if x == 0.0:
        return f.min_subnormal
    _, frexp_exponent = math.frexp(abs(x))
    exponent = max(frexp_exponent - 1, f.min_exponent)
    return math.ldexp(1.0, exponent - f.mantissa_bits)


# ---------------------------------------------------------------------------------------------
# fp32 → bf16 on uint32 bit arithmetic (exercise 1.3 of lab 01)
# ---------------------------------------------------------------------------------------------

def fp32_to_bf16_bits(x) -> np.ndarray:
    """Round fp32 values to bf16 with round-to-nearest-even and return the bf16 bit patterns (uint16).

    Work on the fp32 bits u (uint32). bf16 keeps the top 16 bits; the 16 dropped bits decide the
    rounding. Adding 0x7FFF + (the lowest kept bit) and shifting right by 16 rounds to nearest with
    ties going to the even pattern: below half the carry never reaches bit 16, above half it always
    does, and exactly half (0x8000) carries only when the kept part is odd.
    Overflow needs no special case: the carry out of the largest finite fp32 lands on the inf pattern
    0x7F80. NaN does: a NaN whose payload sits only in the low 16 bits would truncate to inf, and a
    payload near all ones would carry into the sign, so NaNs become the quiet NaN 0x7FC0 (sign kept).
    """
    arr = np.asarray(x)
    if arr.dtype != np.float32:
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(f"fp32_to_bf16_bits expects float32 values, got dtype {arr.dtype}")
        arr = arr.astype(np.float32)
    u = np.ascontiguousarray(arr).view(np.uint32).astype(np.uint64)  # room for the carry
    lowest_kept_bit = (u >> 16) & 1
    rounded = ((u + 0x7FFF + lowest_kept_bit) >> 16) & 0xFFFF
    is_nan = (u & 0x7FFFFFFF) > 0x7F800000
    quiet_nan = ((u >> 16) & 0x8000) | 0x7FC0
    return np.where(is_nan, quiet_nan, rounded).astype(np.uint16).reshape(arr.shape)


def bf16_bits_to_fp32(bits) -> np.ndarray:
    """Widen bf16 bit patterns (uint16) to fp32 values: exact, the 16 low bits become zero."""
    arr = np.asarray(bits)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"bf16_bits_to_fp32 expects integer bit patterns (uint16), got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 0xFFFF):
        raise ValueError(f"bf16 bit patterns must lie in 0 … 0xFFFF, got min {arr.min()} max {arr.max()}")
    return (arr.astype(np.uint32) << 16).view(np.float32)


# ---------------------------------------------------------------------------------------------
# rounding error tables
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RoundingRow:
    """One format's range and precision, and the relative error measured rounding samples into it."""

    format: str
    total_bits: int
    exponent_bits: int
    mantissa_bits: int
    epsilon: float
    unit_roundoff: float
    max_finite: float
    min_normal: float
    min_subnormal: float
    samples: int
    max_rel_error: float
    mean_rel_error: float


def _log_uniform_fp32_samples(f: FloatFormat, count: int, seed: int) -> np.ndarray:
    """Positive fp32 values spread evenly in log scale over the normal range of ``f``."""
    rng = np.random.default_rng(seed)
    low = max(math.log2(f.min_normal), math.log2(float(np.finfo(np.float32).tiny)))
    high = min(math.log2(f.max_finite), math.log2(float(np.finfo(np.float32).max)))
    return np.exp2(rng.uniform(low, high, size=count)).astype(np.float32)


def rounding_error_table(
    formats: Sequence[str] = ("fp32", "tf32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2"),
    *,
    samples: int = 2000,
    seed: int = 0,
    values: Iterable[float] | None = None,
) -> list[RoundingRow]:
    """Round fp32 samples into each format and measure the relative error |x̂ − x| / |x|.

    By default the samples are log-uniform over each format's own normal range, where round to
    nearest guarantees an error ≤ 2^−(m+1) (the unit roundoff); pass ``values`` to measure on
    your own data instead (errors can then exceed it: subnormals lose precision, overflow gives inf).
    """
    rows = []
    for name in formats:
        f = get_format(name)
        if values is None:
            xs = _log_uniform_fp32_samples(f, samples, seed).astype(np.float64)
        else:
            xs = np.asarray(list(values), dtype=np.float32).astype(np.float64)
            xs = xs[np.isfinite(xs) & (xs != 0)]
        if xs.size == 0:
            raise ValueError("rounding_error_table needs at least one finite non-zero value to measure")
        rounded = round_to_format(xs, f)
        with np.errstate(invalid="ignore"):
            rel = np.abs(rounded - xs) / np.abs(xs)
        rows.append(
            RoundingRow(
                f.name, f.total_bits, f.exponent_bits, f.mantissa_bits, f.epsilon, f.unit_roundoff,
                f.max_finite, f.min_normal, f.min_subnormal, int(xs.size),
                float(np.nanmax(rel)) if np.isfinite(rel).any() else math.inf,
                float(np.mean(rel)),
            )
        )
    return rows


def format_rounding_table(rows: Sequence[RoundingRow]) -> str:
    """A plain-text table of :func:`rounding_error_table` rows (what a notebook prints)."""
    header = (
        f"{'format':<9}{'bits':>5}{'E':>3}{'M':>4}{'eps 2^-m':>11}{'u = eps/2':>11}"
        f"{'max finite':>12}{'min normal':>12}{'max rel err':>13}{'mean rel err':>14}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.format:<9}{r.total_bits:>5}{r.exponent_bits:>3}{r.mantissa_bits:>4}"
            f"{r.epsilon:>11.3g}{r.unit_roundoff:>11.3g}{r.max_finite:>12.4g}{r.min_normal:>12.4g}"
            f"{r.max_rel_error:>13.3g}{r.mean_rel_error:>14.3g}"
        )
    return "\n".join(lines)
