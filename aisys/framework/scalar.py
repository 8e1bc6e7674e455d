"""Scalar expressions: what an elementwise op computes at one position, written once as data.

An elementwise or broadcast op's definition carries ``scalar=``, a function of symbolic operands (and
the op's attributes) returning an :class:`Expr`::

    defop("relu", ..., scalar=lambda x: select(or_(x >= 0, isnan(x)), x, 0.0))
    defop("sigmoid", ..., scalar=lambda x: _stable_sigmoid(x))

An ``Expr`` is a small tree (a DAG when a sub-expression is used twice) over a fixed set of primitives:
arithmetic (+ − × ÷ and powers), comparisons, ``and``/``or``/``not``, ``select`` (the conditional),
``isnan``, ``exp``/``log``/``sqrt``/``sin``/``cos``/``tanh``/``erf``/``erfc``/``abs``, ``cast`` and typed constants.
Every consumer reads that one definition:

* the fused-kernel code generator emits it as numba source (:func:`emit`), constants typed like
  PyTorch's weak scalars (a Python number takes the dtype of the value it meets);
* the fusion pass fuses an op because it has an expression (and the emitter handles its dtypes);
* the chip runs it on its vector unit, one instruction per primitive (:func:`vector_instructions`),
  unless the op names one instruction for all of it (``chip=vector("sigmoid")``);
* an op defined without a numpy ``ref`` is evaluated from it (:func:`evaluate`), and a test holds
  every op's expression equal to its reference.

It is deliberately tiny, a tensor-expression lowering can read it the same way: :attr:`Expr.prim`,
:attr:`Expr.args`, :func:`walk`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import dtypes as _dt
from .erf import erf_np, erfc_np
from .walk import postorder

#: dtypes the numba emitter handles (numba has no float16/bfloat16 arithmetic)
EMIT_DTYPES = frozenset({"bool", "int8", "int32", "int64", "float32", "float64"})


@dataclass(frozen=True)
class Prim:
    """One primitive: how many operands, its numba/Python text, its numpy function, how its result is
    typed, its Python precedence (for parentheses) and the vector-unit instruction it costs as."""
    name: str
    arity: int
    template: str            # "{0} + {1}", "np.exp({0})", ...
    numpy: Callable | None
    result: str              # "promote" (of the operands), "bool", "same" (as the operand), "target"
    prec: int                # 0 conditional, 1 or, 2 and, 3 not, 4 comparison, 5 +-, 6 */, 7 unary, 9 atom
    vector: str              # the chip's vector instruction for this primitive


def _isnan(x):
    return np.isnan(x) if np.asarray(x).dtype.kind in "fcV" else np.zeros(np.shape(x), bool)


_P = [
    Prim("add", 2, "{0} + {1}", np.add, "promote", 5, "add"),
    Prim("sub", 2, "{0} - {1}", np.subtract, "promote", 5, "sub"),
    Prim("mul", 2, "{0} * {1}", np.multiply, "promote", 6, "mul"),
    Prim("div", 2, "{0} / {1}", np.divide, "promote", 6, "div"),
    Prim("pow", 2, "np.power({0}, {1})", np.power, "promote", 9, "mul"),
    Prim("eq", 2, "{0} == {1}", np.equal, "bool", 4, "sub"),
    Prim("ne", 2, "{0} != {1}", np.not_equal, "bool", 4, "sub"),
    Prim("lt", 2, "{0} < {1}", np.less, "bool", 4, "sub"),
    Prim("le", 2, "{0} <= {1}", np.less_equal, "bool", 4, "sub"),
    Prim("gt", 2, "{0} > {1}", np.greater, "bool", 4, "sub"),
    Prim("ge", 2, "{0} >= {1}", np.greater_equal, "bool", 4, "sub"),
    Prim("or", 2, "{0} or {1}", np.logical_or, "bool", 1, "max"),
    Prim("and", 2, "{0} and {1}", np.logical_and, "bool", 2, "min"),
    Prim("not", 1, "not {0}", np.logical_not, "bool", 3, "neg"),
    Prim("isnan", 1, "{0} != {0}", _isnan, "bool", 4, "sub"),
    Prim("neg", 1, "-{0}", np.negative, "same", 7, "neg"),
    Prim("abs", 1, "abs({0})", np.abs, "same", 9, "abs"),
    Prim("exp", 1, "np.exp({0})", np.exp, "same", 9, "exp"),
    Prim("log", 1, "np.log({0})", np.log, "same", 9, "log"),
    Prim("sqrt", 1, "np.sqrt({0})", np.sqrt, "same", 9, "sqrt"),
    Prim("sin", 1, "np.sin({0})", np.sin, "same", 9, "exp"),
    Prim("cos", 1, "np.cos({0})", np.cos, "same", 9, "exp"),
    Prim("tanh", 1, "np.tanh({0})", np.tanh, "same", 9, "tanh"),
    Prim("erf", 1, "math.erf({0})", erf_np, "same", 9, "erf"),
    Prim("erfc", 1, "math.erfc({0})", erfc_np, "same", 9, "erf"),
    Prim("select", 3, "{1} if {0} else {2}", None, "branches", 0, "max"),
    Prim("cast", 1, "", None, "target", 9, "cast"),
]
PRIMS: dict[str, Prim] = {p.name: p for p in _P}


class Arithmetic:
    """Python's operators building expression nodes, shared by scalar expressions and the loop back end's
    tensor expressions (``aisys.compiler.loops``): a subclass makes a node of a primitive with ``_apply``.
    ``==`` is left alone: it must stay identity (nodes are dict keys)."""

    __slots__ = ()

    def __add__(self, o): return self._apply("add", self, o)
    def __radd__(self, o): return self._apply("add", o, self)
    def __sub__(self, o): return self._apply("sub", self, o)
    def __rsub__(self, o): return self._apply("sub", o, self)
    def __mul__(self, o): return self._apply("mul", self, o)
    def __rmul__(self, o): return self._apply("mul", o, self)
    def __truediv__(self, o): return self._apply("div", self, o)
    def __rtruediv__(self, o): return self._apply("div", o, self)
    def __pow__(self, o): return self._apply("pow", self, o)
    def __rpow__(self, o): return self._apply("pow", o, self)
    def __neg__(self): return self._apply("neg", self)
    def __abs__(self): return self._apply("abs", self)
    def __lt__(self, o): return self._apply("lt", self, o)
    def __le__(self, o): return self._apply("le", self, o)
    def __gt__(self, o): return self._apply("gt", self, o)
    def __ge__(self, o): return self._apply("ge", self, o)
    __hash__ = object.__hash__


class Expr(Arithmetic):
    """A node of a scalar expression: ``prim`` applied to ``args`` ("arg": operand ``value``; "const": the
    number ``value``; "cast": to the dtype ``value``). ``label`` names a shared sub-expression in the
    generated source (``t0_e = np.exp(...)``)."""

    __slots__ = ("prim", "args", "value", "label")

    def __init__(self, prim: str, args: tuple = (), value=None, label: str = ""):
        self.prim, self.args, self.value, self.label = prim, tuple(args), value, label

    @staticmethod
    def _apply(prim: str, *operands) -> "Expr":
        return Expr(prim, tuple(lift(x) for x in operands))

    def __repr__(self) -> str:
        return f"<scalar {text(self)}>"


def lift(v) -> Expr:
    """A Python number becomes a constant (typed later, like a weak scalar)."""
    if isinstance(v, Expr):
        return v
    if isinstance(v, (bool, int, float, np.number, np.bool_)):
        return Expr("const", value=v.item() if isinstance(v, (np.number, np.bool_)) else v)
    raise TypeError(f"scalar expression: cannot use {type(v).__name__} {v!r} as an operand; "
                    f"use numbers and the operands the op receives")


def arg(i: int) -> Expr:
    return Expr("arg", value=int(i))


def _call(prim: str, *xs) -> Expr:
    return Expr(prim, tuple(lift(x) for x in xs))


def eq(a, b): return _call("eq", a, b)
def ne(a, b): return _call("ne", a, b)
def lt(a, b): return _call("lt", a, b)
def le(a, b): return _call("le", a, b)
def gt(a, b): return _call("gt", a, b)
def ge(a, b): return _call("ge", a, b)
def or_(a, b): return _call("or", a, b)
def and_(a, b): return _call("and", a, b)
def not_(a): return _call("not", a)
def isnan(a): return _call("isnan", a)
def absolute(a): return _call("abs", a)
def exp(a): return _call("exp", a)
def log(a): return _call("log", a)
def sqrt(a): return _call("sqrt", a)
def sin(a): return _call("sin", a)
def cos(a): return _call("cos", a)
def tanh(a): return _call("tanh", a)
def erf(a): return _call("erf", a)
def erfc(a): return _call("erfc", a)          # 1 − erf, accurate where it is tiny (exact GELU far left of 0)


def select(cond, a, b) -> Expr:
    """``a`` where ``cond`` holds, else ``b`` (numpy's where, one element at a time)."""
    return _call("select", cond, a, b)


def cast(a, dtype) -> Expr:
    return Expr("cast", (lift(a),), value=_dt.as_dtype(dtype))


def named(label: str, e: Expr) -> Expr:
    """Give a shared sub-expression a name in the generated source (``t0_e``); it is computed once."""
    e = lift(e)
    return Expr(e.prim, e.args, e.value, label)


def build(fn: Callable, n_args: int, attrs: dict | None = None) -> Expr:
    """The expression of an op: its ``scalar`` function called on symbolic operands (and its attrs)."""
    e = fn(*[arg(i) for i in range(n_args)], **(attrs or {}))
    return lift(e)


# ---- reading an expression ------------------------------------------------------------------------------
def walk(e: Expr) -> list[Expr]:
    """Every node once, operands before their users (a shared node appears once)."""
    return postorder([e], lambda n: reversed(n.args))


def vector_instructions(e: Expr) -> tuple[str, ...]:
    """The vector-unit instructions running this expression takes, one per primitive (constants, operands
    and shared nodes cost nothing extra)."""
    return tuple(PRIMS[n.prim].vector for n in walk(e) if n.prim in PRIMS)


def text(e: Expr) -> str:
    """A readable one-line form with operands named a, b, c, …"""
    names = "abcdefgh"

    def go(n):
        if n.prim == "arg":
            return names[n.value] if n.value < len(names) else f"x{n.value}", 9
        if n.prim == "const":
            return repr(n.value), 9
        if n.prim == "cast":
            return f"{n.value.name}({go(n.args[0])[0]})", 9
        p = PRIMS[n.prim]
        return _fill(p, [go(a) for a in n.args]), p.prec
    return go(e)[0]


def _fill(p: Prim, parts) -> str:
    """The primitive's template with its operands, parenthesized by Python precedence (a right operand
    of equal precedence keeps its parentheses: float arithmetic is not associative)."""
    if p.name == "select":
        (c, cp), (a, ap), (b, bp) = parts
        c = f"({c})" if cp < 2 else c
        a = f"({a})" if ap < 7 else a
        b = f"({b})" if bp < 7 else b
        return p.template.format(c, a, b)
    if p.arity == 1:
        (a, ap), = parts
        if p.prec == 9:
            return p.template.format(a)
        return p.template.format(f"({a})" if ap < p.prec else a)
    (a, ap), (b, bp) = parts
    if p.prec == 9:
        return p.template.format(a, b)
    a = f"({a})" if ap < p.prec or (ap == p.prec == 4) else a      # no chained comparisons: (a < b) < c
    b = f"({b})" if bp <= p.prec and not (p.prec in (1, 2) and bp == p.prec) else b
    return p.template.format(a, b)


# ---- types ----------------------------------------------------------------------------------------------
def promote_weak(a, b):
    """numpy's promotion where None is a weak operand (a Python constant, typed by the other side)."""
    if a is None:
        return b
    if b is None:
        return a
    return _dt.promote(a, b)


def infer(e: Expr, arg_dtypes) -> dict:
    """{id(node): DType or None} — None is a weak constant (typed by the value it meets)."""
    out: dict[int, object] = {}
    for n in walk(e):
        if n.prim == "arg":
            out[id(n)] = arg_dtypes[n.value]
        elif n.prim == "const":
            out[id(n)] = None
        elif n.prim == "cast":
            out[id(n)] = n.value
        else:
            p = PRIMS[n.prim]
            ts = [out[id(a)] for a in n.args]
            if p.result == "bool":
                out[id(n)] = _dt.bool_
            elif p.result == "same":
                out[id(n)] = ts[0]
            elif p.result == "branches":
                out[id(n)] = promote_weak(ts[1], ts[2])
            else:
                out[id(n)] = promote_weak(ts[0], ts[1])
    return out


def _const_value(v, dtype):
    """A constant in its dtype's Python form: an integral float becomes an int for integer types."""
    if dtype.name == "bool":
        return bool(v)
    if not dtype.is_floating and isinstance(v, float) and float(v).is_integer():
        return int(v)
    return v


# ---- numba source ---------------------------------------------------------------------------------------
class Constants:
    """Typed module-level constants of a generated kernel (numba treats module globals as compile-time
    constants): ``_C0 = np.float32(0.5)``."""

    def __init__(self):
        self.names: dict[tuple, str] = {}

    def get(self, value, dtype) -> str:
        value = _const_value(value, dtype)
        key = (dtype.name, repr(value))
        if key not in self.names:
            self.names[key] = f"_C{len(self.names)}"
        return self.names[key]

    def lines(self) -> list[str]:
        return [f"{name} = {vrepr}" if dname == "bool" else f"{name} = np.{dname}({vrepr})"
                for (dname, vrepr), name in self.names.items()]


def cast_text(expr: str, dtype) -> str:
    """Python/numba text converting ``expr`` to ``dtype``."""
    if dtype.name == "bool":
        return f"bool({expr})"
    return f"np.{dtype.name}({expr})"


def emit(e: Expr, args: list[str], arg_dtypes, out_dtype, consts: Constants, target: str,
         convert: bool = True) -> list[str]:
    """Statements computing ``e`` into the variable ``target``, with the operands in variables ``args``.

    The result is converted to ``out_dtype`` (as the op's reference converts its result: numba widens small
    integers in arithmetic), except when the expression already makes a bool for a bool result or passes an
    operand of that dtype through, or ``convert`` is False. A named sub-expression becomes its own
    statement, computed once."""
    types = infer(e, arg_dtypes)
    lines: list[str] = []
    done: dict[int, tuple[str, int]] = {}

    def go(n: Expr, ctx) -> tuple[str, int]:
        if id(n) in done:
            return done[id(n)]
        t = types[id(n)]
        if n.prim == "arg":
            r = (args[n.value], 9)
        elif n.prim == "const":
            r = (consts.get(n.value, t or ctx), 9)
        elif n.prim == "cast":
            (a, ap) = go(n.args[0], ctx)
            r = (f"{a if ap >= 5 else f'({a})'} != 0", 4) if n.value.name == "bool" else (cast_text(a, n.value), 9)
        else:
            p = PRIMS[n.prim]
            if p.name == "select":
                sub_ctx = t or ctx
                parts = [go(n.args[1], sub_ctx), go(n.args[0], sub_ctx), go(n.args[2], sub_ctx)]
                parts = [parts[1], parts[0], parts[2]]
            elif p.arity == 2:
                ta, tb = types[id(n.args[0])], types[id(n.args[1])]
                sub_ctx = promote_weak(ta, tb) or ctx
                parts = [go(a, sub_ctx) for a in n.args]
            else:
                parts = [go(a, t or ctx) for a in n.args]
            r = (_fill(p, parts), p.prec)
        if n.label and n.prim not in ("arg", "const"):
            name = f"{target}_{n.label}"
            lines.append(f"{name} = {r[0]}")
            r = (name, 9)
        done[id(n)] = r
        return r

    body, _ = go(e, out_dtype)
    root = types[id(e)]
    passthrough = (e.prim == "arg" and root is out_dtype) or (e.prim == "cast" and e.value is out_dtype) \
        or (root is _dt.bool_ and out_dtype is _dt.bool_ and e.prim != "select")
    lines.append(f"{target} = {body if passthrough or not convert else cast_text(body, out_dtype)}")
    return lines


# ---- numpy evaluation -----------------------------------------------------------------------------------
def evaluate(e: Expr, arrays, out_dtype=None) -> np.ndarray:
    """The expression on numpy arrays (broadcasting as numpy does); the result in ``out_dtype``."""
    arrays = [np.asarray(a) for a in arrays]
    types = infer(e, [_dt.from_numpy(a.dtype) for a in arrays])
    vals: dict[int, np.ndarray] = {}

    def typed(n, ctx):
        if n.prim == "const":
            dt = ctx if ctx is not None else _dt.float64
            return np.asarray(_const_value(n.value, dt), dt.np)
        return vals[id(n)]

    for n in walk(e):
        t = types[id(n)]
        if n.prim == "arg":
            vals[id(n)] = arrays[n.value]
        elif n.prim == "const":
            continue
        elif n.prim == "cast":
            vals[id(n)] = typed(n.args[0], t).astype(n.value.np)
        elif n.prim == "select":
            c = typed(n.args[0], _dt.bool_)
            a, b = typed(n.args[1], t), typed(n.args[2], t)
            vals[id(n)] = np.where(c, a, b).astype(t.np if t is not None else np.result_type(a, b), copy=False)
        else:
            p = PRIMS[n.prim]
            ctx = t if p.result in ("promote", "same") else promote_weak(*[types[id(a)] for a in n.args][:2]) \
                if p.arity == 2 else types[id(n.args[0])]
            xs = [typed(a, ctx) for a in n.args]
            with np.errstate(all="ignore"):
                vals[id(n)] = np.asarray(p.numpy(*xs))
    out = typed(e, out_dtype)
    return out if out_dtype is None else out.astype(out_dtype.np, copy=False)
