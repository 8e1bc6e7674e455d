"""Quantization ops: the float ↔ integer boundary, fake quantization for training, and integer-only kernels.

The convention is the one of :mod:`aisys.framework.compress.quant`: q = clamp(round(x/s) + z, qmin, qmax),
x̂ = s·(q − z). Scales and zero points are *inputs* (0-d for per-tensor, one value per channel of dim ``axis``
for per-channel), as in ONNX's QuantizeLinear/DequantizeLinear, so a graph shows where each comes from.

  quantize(x, s, z)            float → integer codes (int8, or int32 for an accumulator at scale s_x·s_w)
  dequantize(q, s, z)          integer codes → float
  fake_quant(x, s, z)          dequantize(quantize(x)) in one float op, for quantization-aware training: its
                               VJP is the straight-through estimator (Bengio et al. 2013) — the gradient
                               passes through round() as if it were the identity, and is zero where the
                               value was clipped ("clipped STE"; ``ste="identity"`` lets it through there
                               too). When the scale requires grad it learns like LSQ (Esser et al., ICLR
                               2020): ∂x̂/∂s = round(x/s) − x/s inside the range, qmin − z / qmax − z outside,
                               times ``grad_scale`` (LSQ's 1/√(N·qmax)).
  matmul_integer(a, b, za, zb)   Σ (a − za)(b − zb) over int8 codes, accumulated in int32 (ONNX MatMulInteger)
  conv2d_integer(x, w, zx, zw [, bias])   the same for NCHW convolution, padding with the zero point (real 0),
                               plus an optional int32 bias (ONNX ConvInteger + QLinearConv's bias)
  requantize(acc, M0, n, z)    int32 accumulators → int8 codes by the fixed-point multiplier M0·2⁻³¹·2⁻ⁿ
                               (gemmlowp's rounding, Jacob et al., CVPR 2018)

The integer kernels compute in int64 and check that the result fits int32, as a hardware accumulator must.
"""
from __future__ import annotations

import builtins

import numpy as np

from ..compress import quant as Q
from ..dtypes import DType, as_dtype, float32, int32
from ..errors import ShapeError
from ..registry import Cost, FusionKind as K, Spec, defop, matrix, not_lowerable, vector
from ..tensor import Tensor, apply, as_tensor
from . import nn as _nn
from ._common import need_float, prod

_INT32 = (-(1 << 31), (1 << 31) - 1)


# ---- shared checks ----------------------------------------------------------------------------------------
def _need_int(op: str, t, what: str) -> None:
    if t.dtype.is_floating or t.dtype.name == "bool":
        raise TypeError(f"{op}: {what} must hold integer codes, got {t.dtype.name} of shape {tuple(t.shape)}")


def _check_channel(op: str, x_shape: tuple, axis, name: str, t) -> None:
    """A scale/zero point/multiplier input: 0-d or (1,) per-tensor, or (C,) with C = x.shape[axis]."""
    shape = tuple(t.shape)
    if axis is None:
        if prod(shape) != 1:
            raise ShapeError(op, f"{name} has shape {shape} but axis=None (per-tensor) needs a single value",
                             shapes=(x_shape, shape), rule="per-channel quantization needs axis=<channel dim>")
        return
    if not isinstance(axis, (int, np.integer)) or not -len(x_shape) <= axis < len(x_shape):
        raise ShapeError(op, f"axis={axis!r} is out of range for a {len(x_shape)}-D input {x_shape}",
                         shapes=(x_shape,))
    c = x_shape[axis]
    if shape not in ((), (1,), (c,)):
        raise ShapeError(op, f"per-channel {name} must have shape ({c},) (one value per channel of dim {axis} of "
                         f"{x_shape}), got {shape}", shapes=(x_shape, shape))


def _check_range(op: str, qmin, qmax, dtype: DType) -> None:
    info = np.iinfo(dtype.np)
    if not (isinstance(qmin, (int, np.integer)) and isinstance(qmax, (int, np.integer))) or qmin >= qmax \
            or qmin < info.min or qmax > info.max:
        raise ValueError(f"{op}: code range [{qmin}, {qmax}] must be integers with qmin < qmax inside "
                         f"{dtype.name}'s [{info.min}, {info.max}]")


def _bc(v: np.ndarray, ndim: int, axis) -> np.ndarray:
    """A per-tensor or per-channel parameter shaped to broadcast against an ``ndim``-D array."""
    v = np.asarray(v)
    if axis is None:
        return v.reshape(())
    shape = [1] * ndim
    shape[axis % ndim] = -1
    return v.reshape(-1).reshape(shape) if v.size > 1 else v.reshape(())


def _fits_int32(op: str, acc: np.ndarray) -> np.ndarray:
    if acc.size and (acc.min() < _INT32[0] or acc.max() > _INT32[1]):
        raise OverflowError(f"{op}: the accumulator overflows int32 (range [{acc.min()}, {acc.max()}]); the "
                            f"reduction is too long for 8-bit codes — split it or use smaller codes")
    return acc.astype(np.int32)


def _elementwise_cost(flops: int):
    def cost(in_specs, out_spec, **attrs):
        return Cost(flops=flops * out_spec.numel, bytes=builtins.sum(s.nbytes for s in in_specs) + out_spec.nbytes)
    return cost


# ---- quantize / dequantize ------------------------------------------------------------------------------
def _quantize_infer(x, scale, zero_point, *, qmin, qmax, axis=None, dtype="int8"):
    dt = as_dtype(dtype)
    need_float("quantize", x, scale)
    _need_int("quantize", zero_point, "zero_point")
    if dt.is_floating or dt.name == "bool":
        raise TypeError(f"quantize: dtype must be an integer type (int8 codes, int32 accumulators), got {dt.name}")
    _check_range("quantize", qmin, qmax, dt)
    _check_channel("quantize", tuple(x.shape), axis, "scale", scale)
    _check_channel("quantize", tuple(x.shape), axis, "zero_point", zero_point)
    return Spec(tuple(x.shape), dt)


def _quantize_ref(x, scale, zero_point, *, qmin, qmax, axis=None, dtype="int8"):
    xd = np.asarray(x, dtype=np.float64)
    if np.isnan(xd).any():
        raise ValueError(f"quantize: the input holds {int(np.isnan(xd).sum())} NaN value(s); NaN has no integer "
                         f"code (find where it comes from with aisys.detect_anomaly())")
    s = _bc(Q.check_scale(scale, "quantize"), xd.ndim, axis)
    z = _bc(np.asarray(zero_point, dtype=np.float64), xd.ndim, axis)
    with np.errstate(over="ignore", invalid="ignore"):
        q = np.round(xd / s) + z
    return np.clip(q, qmin, qmax).astype(as_dtype(dtype).np)


defop("quantize", infer=_quantize_infer, ref=_quantize_ref, fusion=K.OPAQUE, cost=_elementwise_cost(4),
      chip=vector("quantize"),
      doc="q = clamp(round(x/s) + z, qmin, qmax) (round half to even); per-channel along `axis`. The float → "
          "integer boundary of an integer-only graph (ONNX QuantizeLinear).")


def _dequantize_infer(q, scale, zero_point, *, axis=None, dtype=float32):
    dt = as_dtype(dtype)
    _need_int("dequantize", q, "its input")
    need_float("dequantize", scale)
    _need_int("dequantize", zero_point, "zero_point")
    if not dt.is_floating:
        raise TypeError(f"dequantize: dtype must be a float type, got {dt.name}")
    _check_channel("dequantize", tuple(q.shape), axis, "scale", scale)
    _check_channel("dequantize", tuple(q.shape), axis, "zero_point", zero_point)
    return Spec(tuple(q.shape), dt)


def _dequantize_ref(q, scale, zero_point, *, axis=None, dtype=float32):
    qd = np.asarray(q)
    s = _bc(np.asarray(scale, dtype=np.float64), qd.ndim, axis)
    z = _bc(np.asarray(zero_point, dtype=np.float64), qd.ndim, axis)
    return (s * (qd.astype(np.float64) - z)).astype(as_dtype(dtype).np)


defop("dequantize", infer=_dequantize_infer, ref=_dequantize_ref, fusion=K.OPAQUE, cost=_elementwise_cost(2),
      chip=vector("dequantize"),
      doc="x̂ = s·(q − z); float64 output is exact for 8-bit codes (ONNX DequantizeLinear).")


# ---- fake quantization (QAT) ----------------------------------------------------------------------------
def _fq_infer(x, scale, zero_point, *, qmin, qmax, axis=None, ste="clipped", grad_scale=1.0):
    need_float("fake_quant", x, scale)
    _need_int("fake_quant", zero_point, "zero_point")
    if ste not in ("clipped", "identity"):
        raise ValueError(f"fake_quant: ste={ste!r} must be 'clipped' (no gradient where the value was clipped) "
                         f"or 'identity' (the plain straight-through estimator)")
    if not qmin < qmax:
        raise ValueError(f"fake_quant: qmin={qmin} must be below qmax={qmax}")
    _check_channel("fake_quant", tuple(x.shape), axis, "scale", scale)
    _check_channel("fake_quant", tuple(x.shape), axis, "zero_point", zero_point)
    return Spec(tuple(x.shape), x.dtype)


def _fq_parts(x, scale, zero_point, qmin, qmax, axis):
    """(v = x/s + z before rounding, codes, s, z) in float64, per-channel params broadcast."""
    xd = np.asarray(x, dtype=np.float64)
    s = _bc(Q.check_scale(scale, "fake_quant"), xd.ndim, axis)
    z = _bc(np.asarray(zero_point, dtype=np.float64), xd.ndim, axis)
    v = xd / s + z
    return v, np.clip(np.round(xd / s) + z, qmin, qmax), s, z


def _fq_ref(x, scale, zero_point, *, qmin, qmax, axis=None, ste="clipped", grad_scale=1.0):
    _, q, s, z = _fq_parts(x, scale, zero_point, qmin, qmax, axis)
    return (s * (q - z)).astype(np.asarray(x).dtype)


def _fq_slopes(x, scale, zero_point, qmin, qmax, axis, ste):
    """Constant tensors of the STE: d x̂/dx (1 inside the code range, 0 where clipped unless ste='identity'),
    and for the scale the LSQ pieces: round(x/s) inside; qmin − z below; qmax − z above."""
    v, _, s, z = _fq_parts(x._data, scale._data, zero_point._data, qmin, qmax, axis)
    r = np.round(v - z) + z                           # round(x/s) + z
    inside = (r >= qmin) & (r <= qmax)
    dx = np.ones_like(v) if ste == "identity" else inside.astype(np.float64)
    outside = np.where(r < qmin, qmin - z, qmax - z)
    return (Tensor._wrap(dx.astype(x._data.dtype)), Tensor._wrap(inside.astype(x._data.dtype)),
            Tensor._wrap(np.where(inside, r - z, outside).astype(x._data.dtype)))


def _scale_grad(g_elem, scale, x, axis):
    """Sum a per-element gradient down to the scale's shape (all of it per-tensor; all but `axis` per-channel)."""
    if axis is None or prod(scale.shape) == 1:
        return g_elem.sum().reshape(scale.shape)
    ax = axis % x.ndim
    dims = tuple(d for d in range(x.ndim) if d != ax)
    return g_elem.sum(dims).reshape(scale.shape)


def _fq_vjp(g, out, x, scale, zero_point, *, qmin, qmax, axis=None, ste="clipped", grad_scale=1.0):
    dx, inside, ds_const = _fq_slopes(x, scale, zero_point, qmin, qmax, axis, ste)
    gx = g * dx if x.requires_grad else None
    gs = None
    if scale.requires_grad:
        s = scale.reshape(*[(-1 if d == (axis % x.ndim) else 1) for d in range(x.ndim)]) \
            if axis is not None and prod(scale.shape) > 1 else scale.reshape(())
        # LSQ: ∂x̂/∂s = round(x/s) − x/s inside the range (x/s is the differentiable part), qmin/qmax − z outside
        d = ds_const - inside * (x / s)
        gs = _scale_grad(g * d * grad_scale, scale, x, axis)
    return gx, gs, None


def _fq_jvp(t, out, x, scale, zero_point, *, qmin, qmax, axis=None, ste="clipped", grad_scale=1.0):
    dx, inside, ds_const = _fq_slopes(x, scale, zero_point, qmin, qmax, axis, ste)
    terms = []
    if t[0] is not None:
        terms.append(t[0] * dx)
    if t[1] is not None:
        s = scale.reshape(*[(-1 if d == (axis % x.ndim) else 1) for d in range(x.ndim)]) \
            if axis is not None and prod(scale.shape) > 1 else scale.reshape(())
        ts = t[1].reshape(*s.shape) if prod(t[1].shape) > 1 else t[1].reshape(())
        terms.append(ts * (ds_const - inside * (x / s)) * grad_scale)
    if not terms:
        return None
    acc = terms[0]
    for v in terms[1:]:
        acc = acc + v
    return acc


defop("fake_quant", infer=_fq_infer, ref=_fq_ref, vjp=_fq_vjp, jvp=_fq_jvp, fusion=K.OPAQUE,
      chip=not_lowerable("quantization-aware training simulates int8 in float; fold the quantized model to integers "
                         "(the compiler's fold_quantization pass) and lower that graph"),
      cost=_elementwise_cost(6), torch_name="torch.fake_quantize_per_tensor_affine",
      doc="s·(clamp(round(x/s)+z, qmin, qmax) − z) with a straight-through-estimator gradient (clipped by "
          "default); a scale that requires grad learns by LSQ's rule.")


# ---- integer matmul and convolution -------------------------------------------------------------------
def _mmi_infer(a, b, a_zero_point, b_zero_point):
    for t, what in ((a, "a"), (b, "b"), (a_zero_point, "a_zero_point"), (b_zero_point, "b_zero_point")):
        _need_int("matmul_integer", t, what)
    if len(a.shape) != 2 or len(b.shape) != 2 or a.shape[1] != b.shape[0]:
        raise ShapeError("matmul_integer", f"expects a (M, K) and b (K, N), got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}", shapes=(a.shape, b.shape), rule="a.shape[1] == b.shape[0]")
    _check_channel("matmul_integer", tuple(a.shape), None, "a_zero_point", a_zero_point)
    if prod(b_zero_point.shape) != 1:
        _check_channel("matmul_integer", tuple(b.shape), 1, "b_zero_point", b_zero_point)
    return Spec((a.shape[0], b.shape[1]), int32)


def _mmi_ref(a, b, a_zero_point, b_zero_point):
    za = np.asarray(a_zero_point, np.int64).reshape(())
    zb = np.asarray(b_zero_point, np.int64).reshape(-1)
    zb = zb.reshape(()) if zb.size == 1 else zb.reshape(1, -1)
    acc = np.matmul(np.asarray(a, np.int64) - za, np.asarray(b, np.int64) - zb)
    return _fits_int32("matmul_integer", acc)


def _mmi_cost(in_specs, out_spec):
    k = in_specs[0].shape[1]
    return Cost(flops=2 * out_spec.numel * k, bytes=builtins.sum(s.nbytes for s in in_specs) + out_spec.nbytes)


defop("matmul_integer", infer=_mmi_infer, ref=_mmi_ref, fusion=K.COMPLEX_OUT_FUSABLE, cost=_mmi_cost,
      chip=matrix("gemm"),
      doc="Σ_k (a[m,k] − za)·(b[k,n] − zb[n]) on integer codes, int32 result (ONNX MatMulInteger): the "
          "int8×int8→int32 product of integer-only inference.")


def _as_float_spec(t):
    return Spec(tuple(t.shape), float32)


def _convi_infer(x, w, x_zero_point, w_zero_point, *bias, stride, padding, dilation, groups):
    for t, what in ((x, "x"), (w, "w"), (x_zero_point, "x_zero_point"), (w_zero_point, "w_zero_point")):
        _need_int("conv2d_integer", t, what)
    if bias and bias[0].dtype is not int32:
        raise TypeError(f"conv2d_integer: bias must be int32 (quantized at scale s_x·s_w), got {bias[0].dtype.name}")
    spec = _nn._conv_infer(_as_float_spec(x), _as_float_spec(w), *[_as_float_spec(b) for b in bias],
                           stride=stride, padding=padding, dilation=dilation, groups=groups)
    _check_channel("conv2d_integer", tuple(x.shape), None, "x_zero_point", x_zero_point)
    if prod(w_zero_point.shape) != 1:
        _check_channel("conv2d_integer", tuple(w.shape), 0, "w_zero_point", w_zero_point)
    return Spec(tuple(spec.shape), int32)


def _convi_ref(x, w, x_zero_point, w_zero_point, *bias, stride, padding, dilation, groups):
    zx = np.asarray(x_zero_point, np.int64).reshape(())
    zw = np.asarray(w_zero_point, np.int64).reshape(-1)
    zw = zw.reshape(()) if zw.size == 1 else zw.reshape(-1, 1, 1, 1)
    xs = np.asarray(x, np.int64) - zx                 # padding with 0 after the shift = padding with real 0
    ws = np.asarray(w, np.int64) - zw
    b = np.asarray(bias[0], np.int64) if bias else None
    acc = _nn._conv_ref(xs, ws, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return _fits_int32("conv2d_integer", acc)


def _convi_cost(in_specs, out_spec, **a):
    w = in_specs[1]
    macs = prod(out_spec.shape) * w.shape[1] * w.shape[2] * w.shape[3]
    return Cost(flops=2 * macs + (out_spec.numel if len(in_specs) > 4 else 0),
                bytes=builtins.sum(s.nbytes for s in in_specs) + out_spec.nbytes)


defop("conv2d_integer", infer=_convi_infer, ref=_convi_ref, fusion=K.COMPLEX_OUT_FUSABLE, cost=_convi_cost,
      chip=matrix("conv", layout="NCHW"),
      doc="NCHW convolution of integer codes minus their zero points, int32 accumulators, optional int32 bias "
          "(ONNX ConvInteger); padding contributes real zeros.")


# ---- requantization -------------------------------------------------------------------------------------
def _requant_infer(acc, multiplier, shift, zero_point, *, qmin, qmax, axis=None, dtype="int8"):
    dt = as_dtype(dtype)
    if acc.dtype is not int32:
        raise TypeError(f"requantize: the accumulator must be int32, got {acc.dtype.name}")
    for t, what in ((multiplier, "multiplier"), (shift, "shift"), (zero_point, "zero_point")):
        _need_int("requantize", t, what)
        _check_channel("requantize", tuple(acc.shape), axis, what, t)
    _check_range("requantize", qmin, qmax, dt)
    return Spec(tuple(acc.shape), dt)


def _requant_ref(acc, multiplier, shift, zero_point, *, qmin, qmax, axis=None, dtype="int8"):
    a = np.asarray(acc)
    m = _bc(multiplier, a.ndim, axis)
    n = _bc(shift, a.ndim, axis)
    z = _bc(zero_point, a.ndim, axis)
    return Q.requantize_broadcast(a, m, n, z, qmin, qmax).astype(as_dtype(dtype).np)


defop("requantize", infer=_requant_infer, ref=_requant_ref, fusion=K.OPAQUE, cost=_elementwise_cost(4),
      chip=vector("requantize"),
      doc="clamp(z + RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc, M0), n), qmin, qmax): int32 "
          "accumulators to the output's codes without floats (Jacob et al., CVPR 2018; gemmlowp).")


# ---- public functions --------------------------------------------------------------------------------------
def _param(v, dtype) -> Tensor:
    return v if isinstance(v, Tensor) else Tensor._wrap(np.asarray(v, dtype=dtype))


def quantize(x, scale, zero_point=0, *, qmin=-128, qmax=127, axis=None, dtype="int8") -> Tensor:
    """Tensor of integer codes q = clamp(round(x/s) + z, qmin, qmax)."""
    return apply("quantize", as_tensor(x), _param(scale, np.float64), _param(zero_point, np.int32),
                 qmin=builtins.int(qmin), qmax=builtins.int(qmax), axis=axis, dtype=as_dtype(dtype))


def dequantize(q, scale, zero_point=0, *, axis=None, dtype=float32) -> Tensor:
    """Tensor x̂ = s·(q − z) of ``dtype``."""
    return apply("dequantize", as_tensor(q), _param(scale, np.float64), _param(zero_point, np.int32), axis=axis,
                 dtype=as_dtype(dtype))


def fake_quant(x, scale, zero_point=0, *, qmin=-128, qmax=127, axis=None, ste="clipped", grad_scale=1.0) -> Tensor:
    """Quantize and dequantize in one differentiable op (straight-through estimator; LSQ for a learned scale)."""
    x = as_tensor(x)
    s = scale if isinstance(scale, Tensor) else Tensor._wrap(np.asarray(scale, dtype=x._data.dtype))
    return apply("fake_quant", x, s, _param(zero_point, np.int32), qmin=builtins.int(qmin), qmax=builtins.int(qmax),
                 axis=axis, ste=ste, grad_scale=float(grad_scale))


__all__ = ["quantize", "dequantize", "fake_quant"]
