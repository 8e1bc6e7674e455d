"""Quantization with one stated convention (量化: one formula, used everywhere in aisys):

    q  = clamp(round(x / s) + z, qmin, qmax)          quantize   (round half to even, as numpy and PyTorch)
    x̂  = s · (q − z)                                   dequantize

``s`` (scale, 缩放因子) is the real value of one integer step, ``z`` (zero point, 零点) the integer that stands
for real 0. ZOMI's 02Quant lecture writes the same ``+z``; 04PTQ writes round(x/s) − z, which is the same map
with the opposite sign convention for z — mixing the two (quantize with one, dequantize with the other) is
off by 2·z·s. aisys uses ``+z`` throughout.

Types: ``int8`` [−128, 127], ``uint8`` [0, 255], ``int4`` [−8, 7] (stored in int8, as TFLite and PyTorch do
before packing), and the 8-bit floats ``fp8_e4m3`` (max 448) / ``fp8_e5m2`` (max 57344) through ml_dtypes
(imported only when an fp8 type is used). fp8 "quantization" scales then rounds to the float grid:
q = fp8(clamp(x/s)), x̂ = s·q, with z = 0.

Scale and zero point from a range [lo, hi] (``qparams_from_range``):
  affine     the range is widened to contain 0 (so 0 is exact: zero padding, ReLU), s = (hi − lo)/(qmax − qmin),
             z = qmin − round(lo / s), clamped into [qmin, qmax]
  symmetric  z = 0 (the midpoint for unsigned types), s = max(|lo|, |hi|) / qmax_sym with qmax_sym = 127 for
             int8 (the restricted range ±127, as TensorRT; −128 is still a valid code)
Edge cases: an all-zero range gets s = 1 (every scale represents 0 exactly; 1 keeps a bias quantized with
this scale in range), a constant tensor c ≠ 0 gets the range [min(c, 0), max(c, 0)], NaN/inf or lo > hi
raise ``ValueError`` naming what was wrong.

Integer requantization (Jacob et al., CVPR 2018, §2.2; gemmlowp): an int32 accumulator at scale s_x·s_w is
brought to the output scale s_y by the real multiplier M = s_x·s_w / s_y, held as a fixed-point int32
M0 ∈ [2³⁰, 2³¹) and a shift n with M ≈ M0 · 2⁻³¹ · 2⁻ⁿ (``quantize_multiplier``); ``requantize`` applies it
exactly as gemmlowp's SaturatingRoundingDoublingHighMul followed by RoundingDivideByPOT.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["QType", "QTYPES", "qtype", "qrange", "qparams_from_range", "quantize_tensor", "dequantize",
           "fake_quantize", "quantize_multiplier", "requantize", "rounding_doubling_high_mul",
           "rounding_divide_by_pot", "real_multiplier", "channel_shape", "check_scale", "QParams"]


@dataclass(frozen=True)
class QType:
    """One quantized number type: its code range and how the codes are stored."""
    name: str
    qmin: float
    qmax: float
    storage: str          # numpy dtype name of the stored codes ("int8", "uint8", or an ml_dtypes float8)
    kind: str             # "int" or "float"
    bits: int

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def symmetric_max(self) -> float:
        """The largest code used by symmetric quantization: 127 for int8 (±127, TensorRT's restricted range)."""
        if self.is_float:
            return self.qmax
        if self.qmin < 0:
            return self.qmax
        return (self.qmax - self.qmin) // 2

    @property
    def np_dtype(self):
        if self.kind == "float":
            import ml_dtypes     # noqa: F401  (lazy: import aisys must not load it)
            return np.dtype(getattr(ml_dtypes, self.storage))
        return np.dtype(self.storage)


QTYPES = {
    "int8": QType("int8", -128, 127, "int8", "int", 8),
    "uint8": QType("uint8", 0, 255, "uint8", "int", 8),
    "int4": QType("int4", -8, 7, "int8", "int", 4),
    "fp8_e4m3": QType("fp8_e4m3", -448.0, 448.0, "float8_e4m3fn", "float", 8),
    "fp8_e5m2": QType("fp8_e5m2", -57344.0, 57344.0, "float8_e5m2", "float", 8),
}


def qtype(dtype) -> QType:
    """The QType named ``dtype`` ("int8", "uint8", "int4", "fp8_e4m3", "fp8_e5m2"), or a clear error."""
    if isinstance(dtype, QType):
        return dtype
    name = getattr(dtype, "name", dtype)
    if isinstance(name, str) and name in QTYPES:
        return QTYPES[name]
    raise ValueError(f"unsupported quantized dtype {dtype!r}: use one of {', '.join(QTYPES)} "
                     f"(4-bit integers are 'int4', stored in int8; 8-bit floats 'fp8_e4m3' or 'fp8_e5m2')")


def qrange(dtype) -> tuple:
    """(qmin, qmax) of a quantized type: (−128, 127) for int8."""
    t = qtype(dtype)
    return (t.qmin, t.qmax) if t.is_float else (int(t.qmin), int(t.qmax))


def channel_shape(ndim: int, axis: int | None, what: str = "quantize") -> tuple | None:
    """Broadcast shape that lines a per-channel (C,) vector up with dim ``axis`` of an ``ndim``-D array."""
    if axis is None:
        return None
    if not -ndim <= axis < ndim:
        raise ValueError(f"{what}: axis={axis} is out of range for a {ndim}-D tensor")
    shape = [1] * ndim
    shape[axis % ndim] = -1
    return tuple(shape)


def _per_channel(v, x_shape: tuple, axis: int | None, what: str, name: str) -> np.ndarray:
    """``v`` (a scalar, or one value per channel along ``axis``) shaped to broadcast against ``x``."""
    v = np.asarray(v)
    if axis is None:
        if v.size != 1:
            raise ValueError(f"{what}: {name} has {v.size} values but axis=None (per-tensor) needs one; pass "
                             f"axis=<channel dim> for per-channel quantization")
        return v.reshape(())
    shape = channel_shape(len(x_shape), axis, what)
    c = x_shape[axis]
    if v.ndim == 0:
        v = np.full(c, v.item(), dtype=v.dtype)
    if v.ndim != 1 or v.shape[0] != c:
        raise ValueError(f"{what}: per-channel {name} must have one value per channel of dim {axis} "
                         f"(size {c}); got shape {tuple(v.shape)}")
    return v.reshape(shape)


def check_scale(scale, what: str = "quantize") -> np.ndarray:
    s = np.asarray(scale, dtype=np.float64)
    if s.size == 0:
        raise ValueError(f"{what}: scale is empty")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        bad = s[~(np.isfinite(s) & (s > 0))].ravel()[:3]
        raise ValueError(f"{what}: every scale must be a positive finite number, got {bad.tolist()}; a scale is "
                         f"the real value of one integer step (derive it with qparams_from_range)")
    return s


def _check_finite(x: np.ndarray, what: str, allow_inf: bool = False) -> None:
    bad = np.isnan(x) if allow_inf else ~np.isfinite(x)
    if bad.any():
        idx = np.unravel_index(int(np.argmax(bad)), x.shape) if x.ndim else ()
        kind = "NaN" if np.isnan(x).any() else "inf"
        raise ValueError(f"{what}: the data contain {int(bad.sum())} {kind} value(s) (first at index {idx}); "
                         f"quantization needs finite numbers — find where they come from (aisys.detect_anomaly())")


# ---------------------------------------------------------------------------------------------------
# scale and zero point from a range
# ---------------------------------------------------------------------------------------------------

def qparams_from_range(lo, hi, dtype="int8", symmetric: bool = False):
    """(scale, zero_point) mapping the real range [lo, hi] onto ``dtype``'s codes (arrays for per-channel
    ranges). See the module docstring for the rules and edge cases."""
    t = qtype(dtype)
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    if lo.shape != hi.shape:
        raise ValueError(f"qparams_from_range: lo has shape {lo.shape} but hi has {hi.shape}")
    if lo.size == 0:
        raise ValueError("qparams_from_range: empty range (no values were observed); calibrate on data first")
    for name, v in (("lo", lo), ("hi", hi)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"qparams_from_range: {name} = {v.ravel()[~np.isfinite(v.ravel())][:3].tolist()} is "
                             f"not finite; the calibration data contain NaN or inf")
    if np.any(lo > hi):
        k = int(np.argmax((lo > hi).ravel()))
        raise ValueError(f"qparams_from_range: lo > hi ({lo.ravel()[k]} > {hi.ravel()[k]}"
                         f"{' at channel ' + str(k) if lo.ndim else ''}); pass the range as (min, max)")
    if t.is_float:
        amax = np.maximum(np.abs(lo), np.abs(hi))
        scale = np.where(amax > 0, amax / t.qmax, 1.0)
        return _out(scale, np.zeros_like(scale, dtype=np.int32), lo.ndim)
    qmin, qmax = int(t.qmin), int(t.qmax)
    if symmetric:
        amax = np.maximum(np.abs(lo), np.abs(hi))
        scale = np.where(amax > 0, amax / t.symmetric_max, 1.0)
        z = 0 if qmin < 0 else (qmin + qmax + 1) // 2
        return _out(scale, np.full(scale.shape, z, dtype=np.int32), lo.ndim)
    lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)           # 0 must be representable exactly
    width = hi - lo
    scale = np.where(width > 0, width / (qmax - qmin), 1.0)
    zero = np.clip(qmin - np.round(lo / scale), qmin, qmax).astype(np.int32)
    return _out(scale, zero, lo.ndim)


def _out(scale, zero, ndim):
    if ndim == 0:
        return float(scale), int(zero)
    return scale.astype(np.float64), zero.astype(np.int32)


# ---------------------------------------------------------------------------------------------------
# quantize / dequantize
# ---------------------------------------------------------------------------------------------------

def quantize_tensor(x, scale, zero_point=0, dtype="int8", axis: int | None = None) -> np.ndarray:
    """q = clamp(round(x/s) + z, qmin, qmax) as a numpy array of ``dtype``'s storage type.

    ``axis``: None for one (scale, zero point) for the whole tensor, or the channel dim for per-channel
    quantization (``scale``/``zero_point`` then hold one value per channel). NaN raises; ±inf saturate to
    qmax/qmin, like any value beyond the range.
    """
    t = qtype(dtype)
    x = np.asarray(x._data if hasattr(x, "_data") else x)
    what = f"quantize_tensor(dtype={t.name})"
    if x.dtype.kind not in "fiu" and x.dtype.kind != "V":
        raise TypeError(f"{what}: expects real numbers, got numpy dtype {x.dtype}")
    x = x.astype(np.float64)
    _check_finite(x, what, allow_inf=True)
    s = _per_channel(check_scale(scale, what), x.shape, axis, what, "scale")
    if t.is_float:
        z = np.asarray(zero_point)
        if np.any(z != 0):
            raise ValueError(f"{what}: 8-bit float formats have no zero point; got zero_point={z.tolist()}")
        return np.clip(x / s, t.qmin, t.qmax).astype(t.np_dtype)
    z = _per_channel(np.asarray(zero_point, dtype=np.int64), x.shape, axis, what, "zero_point")
    if np.any(z < t.qmin) or np.any(z > t.qmax):
        raise ValueError(f"{what}: zero_point {np.asarray(zero_point).ravel()[:4].tolist()} is outside "
                         f"[{int(t.qmin)}, {int(t.qmax)}]")
    with np.errstate(invalid="ignore", over="ignore"):
        q = np.round(x / s) + z
    return np.clip(q, t.qmin, t.qmax).astype(t.np_dtype)


def dequantize(q, scale, zero_point=0, axis: int | None = None, dtype=np.float32) -> np.ndarray:
    """x̂ = s·(q − z), in ``dtype`` (float32 by default; float64 is exact for 8-bit codes)."""
    q = np.asarray(q._data if hasattr(q, "_data") else q)
    what = "dequantize"
    s = _per_channel(check_scale(scale, what), q.shape, axis, what, "scale")
    z = _per_channel(np.asarray(zero_point, dtype=np.float64), q.shape, axis, what, "zero_point")
    return (s * (q.astype(np.float64) - z)).astype(dtype)


def fake_quantize(x, scale, zero_point=0, dtype="int8", axis: int | None = None) -> np.ndarray:
    """dequantize(quantize(x)): the values a quantized tensor can take, as floats of x's dtype."""
    x = np.asarray(x._data if hasattr(x, "_data") else x)
    q = quantize_tensor(x, scale, zero_point, dtype, axis)
    out_dtype = x.dtype if x.dtype.kind == "f" else np.float32
    return dequantize(q, scale, zero_point, axis, dtype=out_dtype)


@dataclass
class QParams:
    """A scale and zero point for one tensor (per-channel when ``axis`` is set), with the type they map to."""
    scale: object
    zero_point: object
    dtype: str = "int8"
    axis: int | None = None
    symmetric: bool = False

    def quantize(self, x) -> np.ndarray:
        return quantize_tensor(x, self.scale, self.zero_point, self.dtype, self.axis)

    def dequantize(self, q, dtype=np.float32) -> np.ndarray:
        return dequantize(q, self.scale, self.zero_point, self.axis, dtype)

    def fake_quantize(self, x) -> np.ndarray:
        return fake_quantize(x, self.scale, self.zero_point, self.dtype, self.axis)

    @property
    def range(self) -> tuple:
        """The real range the codes cover: (s·(qmin − z), s·(qmax − z))."""
        qmin, qmax = qrange(self.dtype)
        s, z = np.asarray(self.scale), np.asarray(self.zero_point)
        return s * (qmin - z), s * (qmax - z)

    def __repr__(self) -> str:
        s, z = np.asarray(self.scale), np.asarray(self.zero_point)
        if s.ndim == 0:
            return f"QParams({self.dtype}, scale={float(s):.6g}, zero_point={int(z)})"
        return (f"QParams({self.dtype}, per-channel along axis {self.axis}: {s.size} scales in "
                f"[{s.min():.4g}, {s.max():.4g}], zero points {np.unique(z)[:4].tolist()})")


# ---------------------------------------------------------------------------------------------------
# fixed-point requantization (gemmlowp)
# ---------------------------------------------------------------------------------------------------

def quantize_multiplier(M):
    """(M0, n): the real multiplier M > 0 as an int32 M0 ∈ [2³⁰, 2³¹) and a right shift n, with
    M ≈ M0 · 2⁻³¹ · 2⁻ⁿ (relative error ≤ 2⁻³¹). n < 0 means a left shift (M ≥ 1). Arrays map elementwise."""
    m = np.asarray(M, dtype=np.float64)
    if not np.all(np.isfinite(m)) or np.any(m <= 0):
        raise ValueError(f"quantize_multiplier: the multiplier must be positive and finite, got "
                         f"{m.ravel()[~(np.isfinite(m.ravel()) & (m.ravel() > 0))][:3].tolist()}")
    frac, exp = np.frexp(m)                        # m = frac · 2^exp, frac in [0.5, 1)
    m0 = np.round(frac * (1 << 31)).astype(np.int64)
    carry = m0 == (1 << 31)                       # frac rounded up to 1.0
    m0 = np.where(carry, m0 // 2, m0)
    exp = np.where(carry, exp + 1, exp)
    n = -exp.astype(np.int64)
    if np.any(n > 62):
        raise ValueError(f"quantize_multiplier: multiplier {m.ravel()[np.argmax(n.ravel())]:.3g} is too small for "
                         f"a 64-bit shift; the scales are badly mismatched")
    if m.ndim == 0:
        return int(m0), int(n)
    return m0.astype(np.int32), n.astype(np.int32)


def rounding_doubling_high_mul(a: np.ndarray, b) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul: a·b / 2³¹ rounded to nearest by its nudge (a tie of a
    positive product rounds up, of a negative one toward zero), saturating the one overflow case."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    v = ab + nudge
    high = np.sign(v) * (np.abs(v) >> 31)          # C's integer division truncates toward zero
    overflow = (a == -(1 << 31)) & (b == -(1 << 31))
    return np.where(overflow, (1 << 31) - 1, high)


def rounding_divide_by_pot(x: np.ndarray, exponent) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero."""
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def requantize(acc, multiplier, shift, zero_point=0, qmin=-128, qmax=127, axis: int | None = None) -> np.ndarray:
    """int32 accumulators → codes: clamp(z + RoundingDivideByPOT(SRDHM(acc·2^max(−n, 0), M0), max(n, 0))),
    the integer-only rescaling of Jacob et al. (int64 arithmetic, exact). Returns int64 codes (cast by the caller)."""
    acc = np.asarray(acc, dtype=np.int64)
    what = "requantize"
    m0 = _per_channel(np.asarray(multiplier, dtype=np.int64), acc.shape, axis, what, "multiplier")
    n = _per_channel(np.asarray(shift, dtype=np.int64), acc.shape, axis, what, "shift")
    z = _per_channel(np.asarray(zero_point, dtype=np.int64), acc.shape, axis, what, "zero_point")
    return requantize_broadcast(acc, m0, n, z, qmin, qmax)


def requantize_broadcast(acc, m0, n, z, qmin, qmax) -> np.ndarray:
    """``requantize`` on parameters already shaped to broadcast against ``acc`` (the registry op's kernel)."""
    acc, m0 = np.asarray(acc, dtype=np.int64), np.asarray(m0, dtype=np.int64)
    n, z = np.asarray(n, dtype=np.int64), np.asarray(z, dtype=np.int64)
    left = np.maximum(-n, 0)
    x = np.clip(acc << left, -(1 << 31), (1 << 31) - 1)       # saturating left shift (M ≥ 1)
    y = rounding_divide_by_pot(rounding_doubling_high_mul(x, m0), np.maximum(n, 0))
    return np.clip(y + z, qmin, qmax)


def real_multiplier(multiplier, shift) -> np.ndarray:
    """The real number M0 · 2⁻³¹ · 2⁻ⁿ that (M0, n) stands for."""
    return np.asarray(multiplier, np.float64) * np.exp2(-31.0 - np.asarray(shift, np.float64))

