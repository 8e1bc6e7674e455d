"""Elementwise ops: each output element depends on the same-position input elements (after broadcasting).

Read each definition as forward + backward side by side: ``ref`` computes (numpy), ``scalar`` says what
one element is (the expression the fused kernels, the fusion pass and the chip's vector unit read),
``vjp`` returns one gradient per input written with tensor ops (so it can itself be differentiated) and
``vjp_np`` is its numpy twin for a plain backward(), ``jvp`` pushes a tangent forward, ``chip`` names the
vector instruction. ``sum_to`` undoes broadcasting in the backward pass. A VJP returns None for an input
that does not require grad (a constant, the data batch): autodiff would discard that gradient anyway.
"""
from __future__ import annotations

import math

import numpy as np

from .. import scalar as S
from ..erf import erfc_np
from ..dtypes import as_dtype, bool_, from_numpy, promote
from ..registry import FusionKind as K, QuantizedForm, Spec, defop, vector
from ..tensor import Tensor, apply, as_tensor
from ._common import (binary_infer, broadcast_shapes, elementwise_cost, same_spec, need_float, np_binary_twin,
                      np_unbroadcast, np_zero)

E, B = K.ELEMENTWISE, K.BROADCAST


def _lift2(x, y):
    if isinstance(x, Tensor):
        return x, as_tensor(y, like=x)
    y = as_tensor(y)
    return as_tensor(x, like=y), y


def _unb(g, x):
    """Gradient of a broadcast operand: sum ``g`` back to ``x``'s shape."""
    return g if tuple(g.shape) == tuple(x.shape) else g.sum_to(x.shape)


def _bc(t, out):
    """A tangent broadcast to the output's shape (tangents have their input's shape)."""
    return t if tuple(t.shape) == tuple(out.shape) else t.broadcast_to(out.shape)


def _tan_sum(*terms, out):
    terms = [t for t in terms if t is not None]
    if not terms:
        return None
    acc = _bc(terms[0], out)
    for t in terms[1:]:
        acc = acc + t
    return _bc(acc, out)


# ---- binary arithmetic ---------------------------------------------------------------------
defop("add", infer=binary_infer("add"), ref=np.add, fusion=B, cost=elementwise_cost(1),
      scalar=lambda x, y: x + y, chip=vector("add"),
      vjp=lambda g, out, x, y: (_unb(g, x) if x.requires_grad else None, _unb(g, y) if y.requires_grad else None),
      vjp_np=np_binary_twin(lambda g, o, x, y: g, lambda g, o, x, y: g),
      jvp=lambda t, out, x, y: _tan_sum(t[0], t[1], out=out), torch_name="torch.add", saved=())

defop("sub", infer=binary_infer("sub"), ref=np.subtract, fusion=B, cost=elementwise_cost(1),
      scalar=lambda x, y: x - y, chip=vector("sub"),
      vjp=lambda g, out, x, y: (_unb(g, x) if x.requires_grad else None, _unb(-g, y) if y.requires_grad else None),
      vjp_np=np_binary_twin(lambda g, o, x, y: g, lambda g, o, x, y: np.negative(g)),
      jvp=lambda t, out, x, y: _tan_sum(t[0], None if t[1] is None else -t[1], out=out), saved=())

defop("mul", infer=binary_infer("mul"), ref=np.multiply, fusion=B, cost=elementwise_cost(1),
      scalar=lambda x, y: x * y, chip=vector("mul"),
      vjp=lambda g, out, x, y: (_unb(g * y, x) if x.requires_grad else None,
                                _unb(g * x, y) if y.requires_grad else None),
      vjp_np=np_binary_twin(lambda g, o, x, y: g * y, lambda g, o, x, y: g * x),
      jvp=lambda t, out, x, y: _tan_sum(None if t[0] is None else t[0] * y,
                                        None if t[1] is None else x * t[1], out=out), saved=((0, 1), (1, 0)))


def _div_ref(x, y):
    if not (np.issubdtype(x.dtype, np.floating) or x.dtype.kind == "V"):
        return np.true_divide(x, y)
    return np.divide(x, y)


def _div_infer(x, y, **attrs):
    s = binary_infer("div")(x, y)
    from ..dtypes import default_float
    return s if s.dtype.is_floating else Spec(s.shape, default_float)


defop("div", infer=_div_infer, ref=_div_ref, fusion=B, cost=elementwise_cost(1),
      scalar=lambda x, y: x / y, chip=vector("div"),
      vjp=lambda g, out, x, y: (_unb(g / y, x) if x.requires_grad else None,
                                _unb(-g * out / y, y) if y.requires_grad else None),
      vjp_np=np_binary_twin(lambda g, o, x, y: g / y, lambda g, o, x, y: -g * o._data / y),
      jvp=lambda t, out, x, y: _tan_sum(None if t[0] is None else t[0] / y,
                                        None if t[1] is None else -t[1] * out / y, out=out), saved=(1, "out"))


def _pow_vjp(g, out, x, y):
    gx = _unb(g * y * x ** (y - 1), x) if x.requires_grad else None
    gy = _unb(g * out * x.log(), y) if y.requires_grad else None
    return gx, gy


def _pow_jvp(t, out, x, y):
    return _tan_sum(None if t[0] is None else t[0] * y * x ** (y - 1),
                    None if t[1] is None else t[1] * out * x.log(), out=out)


def _pow_ref(x, y):
    """np.power, except a float raised to a small whole constant (x**2, x**3, x**-1 ...), which is repeated
    multiplication: np.power calls libm's pow per element, ~50× slower (x**3 was most of a GELU's time).
    A 0-d base keeps np.power (nothing to gain, and numpy's own ``0.9 ** t`` stays bit-identical)."""
    if y.ndim == 0 and x.ndim and x.dtype.kind == "f" and y.dtype.kind in "fiu":
        n = y.item()
        k = n if n >= 0 else -n                              # (the builtin abs is shadowed by the op here)
        if k in (1, 2, 3, 4):
            out = x * x if k >= 2 else x.copy()
            if k == 3:
                out *= x
            elif k == 4:
                out *= out
            if n < 0:
                np.divide(1, out, out=out)
            return out.astype(np.result_type(x, y), copy=False) if y.dtype.kind == "f" else out
    return np.power(x, y)


defop("pow", infer=binary_infer("pow"), ref=_pow_ref, fusion=B, cost=elementwise_cost(1),
      scalar=lambda x, y: x ** y, chip=vector("mul"), vjp=_pow_vjp, jvp=_pow_jvp, saved=(0, 1, "out"))

defop("maximum", infer=binary_infer("maximum"), ref=np.maximum, fusion=B, cost=elementwise_cost(1),
      scalar=lambda x, y: S.select(S.or_(x >= y, S.isnan(x)), x, y), chip=vector("max"),   # NaN propagates
      doc="Ties send the gradient to the first operand.",
      vjp=lambda g, out, x, y: (_unb(where(x >= y, g, 0.0), x), _unb(where(x >= y, 0.0, g), y)),
      jvp=lambda t, out, x, y: where(x >= y, _bc(t[0], out) if t[0] is not None else 0.0,
                                     _bc(t[1], out) if t[1] is not None else 0.0), saved=(0, 1))

defop("minimum", infer=binary_infer("minimum"), ref=np.minimum, fusion=B, cost=elementwise_cost(1),
      scalar=lambda x, y: S.select(S.or_(x <= y, S.isnan(x)), x, y), chip=vector("min"),
      doc="Ties send the gradient to the first operand.",
      vjp=lambda g, out, x, y: (_unb(where(x <= y, g, 0.0), x), _unb(where(x <= y, 0.0, g), y)),
      jvp=lambda t, out, x, y: where(x <= y, _bc(t[0], out) if t[0] is not None else 0.0,
                                     _bc(t[1], out) if t[1] is not None else 0.0), saved=(0, 1))


# ---- where and comparisons ------------------------------------------------------------------
def _where_infer(c, x, y, **attrs):
    if c.dtype is not bool_:
        raise TypeError(f"where: condition must be a bool tensor, got {c.dtype.name}; compare first, e.g. x > 0")
    shape = broadcast_shapes("where", broadcast_shapes("where", tuple(c.shape), tuple(x.shape)), tuple(y.shape))
    return Spec(shape, promote(x.dtype, y.dtype))


def _zeros_like_g(g):
    return g * 0.0


_BITS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _select_bits(c, x, y):
    """where(c, x, y) as bit masks: (x & m) | (y & ~m) with m all ones where c. Exactly np.where's result
    (NaNs and signed zeros included) but branch-free: np.where branches per element and runs ~10× slower
    on unpredictable masks (a ReLU's backward on random data)."""
    shape = np.broadcast_shapes(c.shape, x.shape, y.shape)
    u = _BITS[x.dtype.itemsize]
    m = np.subtract(u(0), np.broadcast_to(c, shape), dtype=u)  # True -> 0xFF..FF (wraps), False -> 0: one pass
    out = np.bitwise_and(np.broadcast_to(x, shape).view(u), m)
    if y.ndim == 0 and not y.reshape(1).view(u)[0]:            # y is +0.0 (a ReLU's backward): done
        return out.view(x.dtype)
    np.invert(m, out=m)
    np.bitwise_and(np.broadcast_to(y, shape).view(u), m, out=m)
    out |= m
    return out.view(x.dtype)


def _where_ref(c, x, y):
    if x.dtype != y.dtype:      # numpy cannot promote float16/ints with bfloat16: use aisys's promotion lattice
        dt = promote(from_numpy(x.dtype), from_numpy(y.dtype)).np
        x, y = x.astype(dt, copy=False), y.astype(dt, copy=False)
    if c.size >= 4096 and x.dtype.itemsize in _BITS and c.dtype == np.bool_:
        return _select_bits(c, x, y)
    return np.where(c, x, y)


def _where_np(g, out, c, x, y):
    z = np_zero(g.dtype)
    cd = c._data
    return (None, np_unbroadcast(_where_ref(cd, g, z), x) if x.requires_grad else None,
            np_unbroadcast(_where_ref(cd, z, g), y) if y.requires_grad else None)


defop("where", infer=_where_infer, ref=_where_ref, fusion=B, cost=elementwise_cost(1),
      scalar=lambda c, x, y: S.select(c, x, y), chip=vector("max"),
      vjp=lambda g, out, c, x, y: (None, _unb(where(c, g, 0.0), x), _unb(where(c, 0.0, g), y)), vjp_np=_where_np,
      jvp=lambda t, out, c, x, y: where(c, _bc(t[1], out) if t[1] is not None else 0.0,
                                        _bc(t[2], out) if t[2] is not None else 0.0), saved=(0,))

for _name, _fn, _expr in [("eq", np.equal, S.eq), ("ne", np.not_equal, S.ne), ("lt", np.less, S.lt),
                          ("le", np.less_equal, S.le), ("gt", np.greater, S.gt), ("ge", np.greater_equal, S.ge)]:
    defop(_name, infer=binary_infer(_name, out_dtype=bool_), ref=_fn, fusion=B, cost=elementwise_cost(1),
          scalar=_expr, chip=vector("sub"), doc="Comparison: bool output, not differentiable.")

defop("logical_not", infer=same_spec("logical_not"), ref=np.logical_not, fusion=E, cost=elementwise_cost(1),
      scalar=S.not_, chip=vector("neg"))


# ---- unary --------------------------------------------------------------------------------
def _unary(name, ref, scalar, instruction, vjp, jvp, flops=1, float_only=True, doc="", vjp_np=None, saved=(0,),
           quantized=None):
    defop(name, infer=same_spec(name, float_only=float_only), ref=ref, fusion=E, scalar=scalar,
          chip=vector(instruction), cost=elementwise_cost(flops), vjp=vjp, jvp=jvp, doc=doc,
          torch_name=f"torch.{name}", vjp_np=vjp_np, saved=saved, quantized=quantized)


_unary("neg", np.negative, lambda x: -x, "neg", lambda g, out, x: (-g,), lambda t, out, x: -t[0], float_only=False,
       vjp_np=lambda g, out, x: (np.negative(g),), saved=())
_unary("exp", np.exp, S.exp, "exp", lambda g, out, x: (g * out,), lambda t, out, x: t[0] * out,
       vjp_np=lambda g, out, x: (g * out._data,), saved=("out",))
_unary("log", np.log, S.log, "log", lambda g, out, x: (g / x,), lambda t, out, x: t[0] / x,
       vjp_np=lambda g, out, x: (g / x._data,))
_unary("sqrt", np.sqrt, S.sqrt, "sqrt", lambda g, out, x: (g / (2.0 * out),), lambda t, out, x: t[0] / (2.0 * out),
       vjp_np=lambda g, out, x: (g / (2.0 * out._data),), saved=("out",))
_unary("sin", np.sin, S.sin, "exp", lambda g, out, x: (g * x.cos(),), lambda t, out, x: t[0] * x.cos())
_unary("cos", np.cos, S.cos, "exp", lambda g, out, x: (-g * x.sin(),), lambda t, out, x: -t[0] * x.sin())
_unary("tanh", np.tanh, S.tanh, "tanh", lambda g, out, x: (g * (1.0 - out * out),),
       lambda t, out, x: t[0] * (1.0 - out * out), vjp_np=lambda g, out, x: (g * (1.0 - out._data * out._data),),
       saved=("out",))
_unary("sign", np.sign, lambda x: S.select(x > 0, 1, S.select(x < 0, -S.lift(1), x)), "abs",
       lambda g, out, x: (g * 0.0,), lambda t, out, x: t[0] * 0.0, float_only=False,
       doc="Gradient is zero everywhere (PyTorch's convention).", saved=())
_unary("abs", np.abs, S.absolute, "abs", lambda g, out, x: (g * x.sign(),), lambda t, out, x: t[0] * x.sign(),
       float_only=False, doc="d|x|/dx = sign(x), 0 at 0.")


def _sigmoid_ref(x):
    # stable for large |x|: exp of a non-positive number only
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def _sigmoid_scalar(x):
    e = S.named("e", S.exp(-S.absolute(x)))                  # the reference's stable form, e computed once
    return S.select(x >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


def _relu_np(g, out, x):
    xd = x._data
    return (_where_ref(xd > np_zero(xd.dtype), g, np_zero(g.dtype)),)


_unary("sigmoid", _sigmoid_ref, _sigmoid_scalar, "sigmoid", lambda g, out, x: (g * out * (1.0 - out),),
       lambda t, out, x: t[0] * out * (1.0 - out), flops=4,
       vjp_np=lambda g, out, x: (g * out._data * (1.0 - out._data),), saved=("out",))
_unary("relu", lambda x: np.maximum(x, np.zeros((), x.dtype)), lambda x: S.select(S.or_(x >= 0.0, S.isnan(x)), x, 0.0),
       "relu", lambda g, out, x: (where(x > 0, g, 0.0),), lambda t, out, x: where(x > 0, t[0], 0.0),
       float_only=False, doc="Gradient at exactly 0 is 0 (as PyTorch).", vjp_np=_relu_np,
       quantized=QuantizedForm("clamp"))

_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715
_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_FORMS = ("none", "tanh")


def _gelu_infer(x, approximate="none"):
    if approximate not in GELU_FORMS:
        raise ValueError(f"gelu: approximate={approximate!r} is not one of 'none' (exact, x·Φ(x) with erf: the "
                         f"default, as torch) or 'tanh' (the tanh approximation)")
    return same_spec("gelu", float_only=True)(x)


def _gelu_ref(x, approximate="none"):
    if approximate == "tanh":
        inner = x * x                                      # x³ as multiplications: np.power is ~50× slower
        inner *= x
        inner *= _GELU_A
        inner += x
        return (0.5 * x * (1.0 + np.tanh(_GELU_C * inner))).astype(x.dtype, copy=False)
    x64 = x.astype(np.float64)                             # x·Φ(x) = x·erfc(−x/√2)/2: exact also far left of 0
    return (0.5 * x64 * erfc_np(-x64 * _SQRT1_2)).astype(x.dtype, copy=False)


def _gelu_grad(x, approximate="none"):
    if approximate == "tanh":
        t = (_GELU_C * (x + _GELU_A * x * x * x)).tanh()
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _GELU_C * (1.0 + 3.0 * _GELU_A * x * x)
    from .special import erf
    return (erf(x * _SQRT1_2) + 1.0) * 0.5 + x * (x * x * -0.5).exp() * _INV_SQRT_2PI    # Φ(x) + x·φ(x)


def _gelu_scalar(x, approximate="none"):
    """One element of GELU, in the reference's order of operations (so kernels and the chip run the op's form)."""
    if approximate == "tanh":
        return 0.5 * x * (1.0 + S.tanh(_GELU_C * (x * x * x * _GELU_A + x)))
    x64 = S.cast(x, "float64")                             # as the reference: in float64, rounded once
    return 0.5 * x64 * S.erfc(-x64 * _SQRT1_2)


def _gelu_cost(in_specs, out_spec, approximate="none"):
    return elementwise_cost(8 if approximate == "tanh" else 24)(in_specs, out_spec)


defop("gelu", infer=_gelu_infer, ref=_gelu_ref, fusion=E, cost=_gelu_cost, saved=(0,), scalar=_gelu_scalar,
      chip=vector("gelu", variants={("approximate", "tanh"): "gelu_tanh"}),
      vjp=lambda g, out, x, approximate="none": (g * _gelu_grad(x, approximate),),
      jvp=lambda t, out, x, approximate="none": t[0] * _gelu_grad(x, approximate),
      torch_name="torch.nn.functional.gelu",
      doc="x·Φ(x), Φ the standard normal CDF, computed with erf (approximate='none', the default, as torch); "
          "approximate='tanh' gives 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), the form many accelerators "
          "implement. They differ by up to ~5e-4 (gelu(−1): −0.15866 exact, −0.15881 tanh).")


# ---- cast ---------------------------------------------------------------------------------
def _cast_infer(x, dtype):
    return Spec(tuple(x.shape), as_dtype(dtype))


def _cast_vjp(g, out, x, dtype):
    return (cast(g, x.dtype) if x.dtype.is_floating else None,)


defop("cast", infer=_cast_infer, ref=lambda x, dtype: x.astype(as_dtype(dtype).np), fusion=E,
      scalar=lambda x, dtype: S.cast(x, dtype), chip=vector("cast"), cost=elementwise_cost(0), vjp=_cast_vjp,
      jvp=lambda t, out, x, dtype: cast(t[0], out.dtype) if out.dtype.is_floating else None,
      doc="Change the element type (rounding to nearest even for floats, as numpy/ml_dtypes do).", saved=())


# ---- public functions ---------------------------------------------------------------------
def add(input, other, *, alpha=1):
    return apply("add", *_lift2(input, other if alpha == 1 else other * alpha))


def sub(input, other, *, alpha=1):
    return apply("sub", *_lift2(input, other if alpha == 1 else other * alpha))


def mul(input, other): return apply("mul", *_lift2(input, other))
def div(input, other): return apply("div", *_lift2(input, other))
def pow(input, exponent): return apply("pow", *_lift2(input, exponent))
def maximum(input, other): return apply("maximum", *_lift2(input, other))
def minimum(input, other): return apply("minimum", *_lift2(input, other))
def eq(input, other): return apply("eq", *_lift2(input, other))
def ne(input, other): return apply("ne", *_lift2(input, other))
def lt(input, other): return apply("lt", *_lift2(input, other))
def le(input, other): return apply("le", *_lift2(input, other))
def gt(input, other): return apply("gt", *_lift2(input, other))
def ge(input, other): return apply("ge", *_lift2(input, other))
def logical_not(input): return apply("logical_not", input)
def neg(input): return apply("neg", as_tensor(input))
def exp(input): return apply("exp", as_tensor(input))
def log(input): return apply("log", as_tensor(input))
def sqrt(input): return apply("sqrt", as_tensor(input))
def sin(input): return apply("sin", as_tensor(input))
def cos(input): return apply("cos", as_tensor(input))
def tanh(input): return apply("tanh", as_tensor(input))
def sign(input): return apply("sign", as_tensor(input))
def abs(input): return apply("abs", as_tensor(input))
def sigmoid(input): return apply("sigmoid", as_tensor(input))
def relu(input): return apply("relu", as_tensor(input))


def gelu(input, approximate="none"):
    x = as_tensor(input)
    return apply("gelu", x, approximate=approximate) if approximate != "none" else apply("gelu", x)


def where(condition, input, other):
    """Pick from ``input`` where ``condition`` is true, else from ``other`` (Python scalars allowed)."""
    cond, x, y = condition, input, other
    cond = as_tensor(cond)
    if isinstance(x, Tensor):
        y = as_tensor(y, like=x)
    elif isinstance(y, Tensor):
        x = as_tensor(x, like=y)
    else:
        x, y = as_tensor(x), as_tensor(y)
    return apply("where", cond, x, y)


def cast(x, dtype):
    dt = as_dtype(dtype)
    if x.dtype is dt:
        return x
    return apply("cast", x, dtype=dt)


def clamp(input, min=None, max=None):
    """Composed from maximum/minimum, so fusion sees two elementwise ops."""
    x = input
    if min is not None:
        x = maximum(x, min)
    if max is not None:
        x = minimum(x, max)
    return x


def square(input): return mul(input, input)
def rsqrt(input): return div(1.0, sqrt(input))
