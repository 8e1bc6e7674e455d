"""Worked examples and exercise helpers of lab 02: the lecture's function, random expressions with safe
domains, central differences, and the cube op whose VJP exercise 2.3 writes (plugged into the registry)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..registry import FusionKind, temporary_op as _registry_temporary_op
from ..tensor import Tensor, apply, no_grad

def course_f(x1, x2):
    """The lecture's example f(x₁, x₂) = ln x₁ + x₁x₂ − sin x₂ (ZOMI, 05Framework/02AutoDiff).
    At (2, 5): f = 11.652071455223084, ∂f/∂x₁ = 1/x₁ + x₂ = 5.5, ∂f/∂x₂ = x₁ − cos x₂ = 1.7163378145367738."""
    from ..ops import log, sin
    v1 = log(x1)              # written in the lecture's order, so the tape numbers entries as the slides do
    v2 = x1 * x2
    v3 = sin(x2)
    v4 = v1 + v2
    return v4 - v3


COURSE_POINT = (2.0, 5.0)
COURSE_VALUE = 11.652071455223084
COURSE_GRAD = (5.5, 1.7163378145367738)

# the moves of a random expression, each kept inside its op's domain: log(v² + 1), u / (v² + 1), exp(tanh v)
_RANDOM_MOVES = {
    "add": lambda O, x, y: x + y,
    "sub": lambda O, x, y: x - y,
    "mul": lambda O, x, y: x * y,
    "div": lambda O, x, y: x / (y * y + 1.0),
    "sin": lambda O, x, y: O.sin(x),
    "cos": lambda O, x, y: O.cos(x),
    "tanh": lambda O, x, y: O.tanh(x),
    "exp": lambda O, x, y: O.exp(O.tanh(x)),
    "log": lambda O, x, y: O.log(x * x + 1.0),
}
_RANDOM_OPS = tuple(_RANDOM_MOVES)


def random_expression(rng: np.random.Generator, n_inputs: int = 2, n_ops: int = 8) -> Callable:
    """A random scalar expression over ``n_inputs`` inputs built from ops with dual-number rules.

    Operands are drawn from all earlier values, so values get reused (adjoints must accumulate). Domains
    are kept safe: log(v² + 1), u / (v² + 1), exp(tanh v). ``f.program`` lists the steps.
    """
    from .. import ops as O
    program = []
    for k in range(n_ops):
        op = _RANDOM_OPS[int(rng.integers(len(_RANDOM_OPS)))]
        a, b = (int(i) for i in rng.integers(0, n_inputs + k, 2))
        program.append((op, a, b))

    def f(*xs):
        pool = list(xs)
        for op, a, b in program:
            pool.append(_RANDOM_MOVES[op](O, pool[a], pool[b]))
        out = pool[-1]
        return out.sum() if out.ndim else out

    f.program = program
    return f


def central_differences(fn: Callable, inputs, eps: float = 1e-6) -> list:
    """∂fn/∂input by (f(x + h) − f(x − h)) / 2h, one input element at a time (float64)."""
    xs = [np.array(x, dtype=np.float64) for x in inputs]
    grads = []
    for k, x in enumerate(xs):
        g = np.zeros(x.shape)
        for j in np.ndindex(*x.shape):
            plus = [y.copy() for y in xs]
            minus = [y.copy() for y in xs]
            plus[k][j] += eps
            minus[k][j] -= eps
            with no_grad():
                fp = float(fn(*[Tensor._wrap(p) for p in plus]).item())
                fm = float(fn(*[Tensor._wrap(m) for m in minus]).item())
            g[j] = (fp - fm) / (2 * eps)
        grads.append(g)
    return grads


def cube_vjp(g, out, x):
    """VJP of cube(x) = x³: one gradient per input, g·3x², written with tensor ops so it can itself be
    differentiated (grad-of-grad of x³ at 3 is 6·3 = 18). Exercise 2.3's reference."""
    return (g * 3.0 * x * x,)


def temporary_op(name: str, *, ref: Callable, vjp: Callable, jvp: Callable | None = None, infer: Callable | None = None,
                 cost: Callable | None = None):
    """Register an elementwise op for the duration of a ``with`` block (then remove it), e.g. to run
    autograd and gradcheck through a VJP rule you wrote. Yields the OpDef; call it with ``apply(op, x)``.
    (``aisys.framework.registry.temporary_op`` with an elementwise op's defaults.)"""
    from ..ops._common import same_spec, elementwise_cost
    return _registry_temporary_op(name, infer=infer or same_spec(name, float_only=True), ref=ref, vjp=vjp, jvp=jvp,
                                  fusion=FusionKind.ELEMENTWISE, cost=cost or elementwise_cost(1))


def cube_with_vjp(vjp: Callable, name: str = "cube_exercise"):
    """A context manager yielding ``cube(x)`` = x³ whose backward uses ``vjp`` (its JVP is the library's)."""
    return _CubeContext(vjp, name)


class _CubeContext:
    def __init__(self, vjp, name):
        self._cm = temporary_op(name, ref=lambda x: x * x * x, vjp=vjp,
                                jvp=lambda t, out, x: t[0] * 3.0 * x * x)

    def __enter__(self):
        op = self._cm.__enter__()
        return lambda x: apply(op, x if isinstance(x, Tensor) else Tensor._wrap(np.asarray(x, dtype=np.float64)))

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)
