"""Checks for lab 02 — autodiff: forward and reverse mode (ZOMI's AISystem course, 05Framework/02AutoDiff).

2.1 ``reverse_grad(tape)``: the reverse sweep over an explicit tape (aisys.framework.tape). Checked on the
    lecture's example f = ln x₁ + x₁x₂ − sin x₂ at (2, 5), on seeded random expressions against central
    differences, on a vector input, and on an input the output does not use.
2.2 ``dual_apply(op, *duals, **attrs)``: forward mode with dual numbers. Checked rule by rule against central
    differences, on the lecture's example, against reverse mode on random expressions, and by building a
    Jacobian from n forward sweeps that must equal the one from m reverse sweeps.
2.3 ``cube_vjp(g, out, x)``: a VJP rule plugged into the library's registry; grad-of-grad of x³ at 3 must be
    18 and gradcheck must pass to second order.

The ``_…`` functions are plausible mistakes each check must reject (with the words its report shows for each).
"""
from __future__ import annotations

import numpy as np

from aisys.framework import tape as T
from aisys.framework.tensor import Tensor
from aisys.labkit import Checker, Mistake, register
from aisys.labkit.learner import call as _call


def _as_array(v):
    if isinstance(v, Tensor):
        return v.numpy().astype(np.float64)
    return np.asarray(v, dtype=np.float64)


def _grads(fn, tape, c: Checker, what: str):
    """The learner's gradients as arrays (None stays None), or a mismatch saying what came back."""
    got, error = _call(fn, tape)
    if error is not None:
        c.fail(what, expected="a list of gradients", got=error, hint=_ACCUMULATE)
    if not isinstance(got, (list, tuple)) or len(got) != len(tape.inputs):
        c.fail(what, expected=f"a list with one gradient per tape input ({len(tape.inputs)})",
               got=f"a {type(got).__name__}" + (f" of {len(got)}" if isinstance(got, (list, tuple)) else ""),
               hint="return [v̄ of each index in tape.inputs]; constants (c1, …) are leaves too, but they are "
                    "not returned")
    return [None if g is None else _as_array(g) for g in got]


# ---------------------------------------------------------------------------------------------
# 2.1 reverse sweep over a tape
# ---------------------------------------------------------------------------------------------
_ACCUMULATE = ("visit entries from the last to the first; seed the output's adjoint with 1; for each entry add "
               "(+=) what local_vjp(tape, entry, adjoint) returns into its inputs' adjoints — x₁ feeds both ln x₁ "
               "and x₁x₂, so its adjoint is the sum of two contributions")


@register("2.1", title="Reverse mode: one backward sweep over the tape", lab="02_autodiff",
          reference="aisys.framework.tape:reverse_grad",
          bad=[Mistake("aisys.labkit.checks.lab02:_reverse_grad_overwrites", says="sum of two contributions"),
               Mistake("aisys.labkit.checks.lab02:_reverse_grad_in_tape_order", says="from the last to the first"),
               Mistake("aisys.labkit.checks.lab02:_reverse_grad_seeds_with_the_value", says="adjoint with 1"),
               Mistake("aisys.labkit.checks.lab02:_reverse_grad_none_for_unused", says="adjoint 0"),
               Mistake("aisys.labkit.checks.lab02:_reverse_grad_seeds_the_last_entry", says="tape.output"),
               Mistake("aisys.labkit.checks.lab02:_reverse_grad_returns_constants_too", says="not returned")])
def _check_2_1(fn, c: Checker):
    tape = T.Tape.record(T.course_f, *T.COURSE_POINT)
    grads = _grads(fn, tape, c, "reverse_grad(the course tape)")
    c.equal(len(grads), 2, what="one gradient per input of the course tape", hint="return [v̄ of each tape input]")
    c.close(np.array([float(np.asarray(g).reshape(())) for g in grads]), np.array(T.COURSE_GRAD),
            what="course example at (2, 5): [∂f/∂x₁, ∂f/∂x₂] = [5.5, 1.7163378145367738]", rtol=0, atol=1e-10,
            hint=_ACCUMULATE)
    for k in range(3):
        f = T.random_expression(c.rng, n_inputs=3, n_ops=10)
        x = c.rng.uniform(-1.5, 1.5, 3)
        got = _grads(fn, T.Tape.record(f, *x), c, f"random expression {k + 1}")
        c.close(np.array([0.0 if g is None else float(np.asarray(g).reshape(())) for g in got]),
                np.array([float(g) for g in T.central_differences(f, x)]),
                what=f"random expression {k + 1} ({len(f.program)} ops on 3 inputs) against central differences",
                rtol=1e-5, atol=1e-6, hint=_ACCUMULATE)
    x = np.array([0.5, -1.0, 2.0, 0.25])
    import aisys
    got = _grads(fn, T.Tape.record(lambda v: (aisys.tanh(v) * v).sum(), x), c, "vector input")
    c.close(got[0], np.tanh(x) + x * (1 - np.tanh(x) ** 2), what="vector input: ∇ Σ tanh(xᵢ)·xᵢ", rtol=1e-10, atol=1e-12,
            hint="adjoints are arrays shaped like their entry's value; local_vjp already undoes broadcasting")
    got = _grads(fn, T.Tape.record(lambda a, b: aisys.sin(a) * 2.0, 0.3, 7.0), c, "f = 2·sin x1 (x2 unused)")
    c.equal(len(got), 2, what="f = 2·sin x1 has a constant 2.0 on its tape: still one gradient per input",
            hint="constants (c1, …) are leaves: they receive contributions but are not returned")
    c.true(got[1] is not None and np.allclose(got[1], 0.0), what="an unused input gets a zero gradient",
           expected="0 for x2 (f = 2·sin x1 ignores it)", got=repr(got[1]),
           hint="inputs never reached by the sweep have adjoint 0 (np.zeros_like(tape[i].value))")
    c.close(float(np.asarray(got[0]).reshape(())), 2.0 * np.cos(0.3), what="constants: d(2·sin x1)/dx1 = 2·cos x1",
            rtol=1e-12, hint="constants (c1, …) are leaves: they receive contributions but are not returned")

    def logs_after(a, b):                      # the returned value is not the last op on the tape
        y = a * b + aisys.exp(b)
        (a * 3.0).sum()                        # e.g. a metric computed after the output
        return y

    got = _grads(fn, T.Tape.record(logs_after, 0.5, -1.0), c, "an op recorded after the output")
    c.close(np.array([float(np.asarray(g).reshape(())) if g is not None else np.nan for g in got]),
            np.array([-1.0, 0.5 + np.exp(-1.0)]),
            what="y = a·b + exp(b) returned, a·3 computed after it: ∇y = [b, a + e^b]", rtol=1e-12,
            hint="seed the entry tape.output, which need not be the last entry of the tape")


def _sweep(tape, *, backwards=True, add=True, seed=None) -> dict:
    """A learner-shaped reverse sweep (adjoint per entry index); the flags switch on one mistake each."""
    adjoint = {tape.output: np.ones_like(tape[tape.output].value) if seed is None else seed}
    for entry in (reversed(tape.entries) if backwards else tape.entries):
        if entry.is_leaf or entry.index not in adjoint:
            continue
        for i, contribution in zip(entry.inputs, T.local_vjp(tape, entry, adjoint[entry.index])):
            if contribution is not None:
                adjoint[i] = adjoint[i] + contribution if add and i in adjoint else contribution
    return adjoint


def _inputs_of(tape, adjoint) -> list:
    return [adjoint.get(i, np.zeros_like(tape[i].value)) for i in tape.inputs]


def _reverse_grad_overwrites(tape):
    """Mistake: assigns each contribution instead of adding it (loses one use of a variable used twice)."""
    return _inputs_of(tape, _sweep(tape, add=False))


def _reverse_grad_in_tape_order(tape):
    """Mistake: sweeps forwards, so an entry's adjoint is used before all its users have contributed."""
    return _inputs_of(tape, _sweep(tape, backwards=False))


def _reverse_grad_none_for_unused(tape):
    """Mistake: an input the sweep never reached gets None instead of a zero gradient."""
    adjoint = _sweep(tape)
    return [adjoint.get(i) for i in tape.inputs]


def _reverse_grad_seeds_the_last_entry(tape):
    """Mistake: seeds the last entry of the tape with 1, assuming it is the output."""
    return T.reverse_grad(T.Tape(tape.entries, tape.inputs, tape.entries[-1].index))


def _reverse_grad_returns_constants_too(tape):
    """Mistake: returns the adjoint of every leaf (inputs and constants), not just the inputs."""
    adjoint = _sweep(tape)
    return [adjoint.get(e.index, np.zeros_like(e.value)) for e in tape.entries if e.is_leaf]


def _reverse_grad_seeds_with_the_value(tape):
    """Mistake: seeds the output's adjoint with its value f instead of ∂f/∂f = 1."""
    return _inputs_of(tape, _sweep(tape, seed=np.array(tape[tape.output].value, copy=True)))


# ---------------------------------------------------------------------------------------------
# 2.2 forward mode with dual numbers
# ---------------------------------------------------------------------------------------------
_RULE_HINTS = {
    "add": "(a + ȧε) + (b + ḃε) = (a + b) + (ȧ + ḃ)ε",
    "sub": "(a + ȧε) − (b + ḃε) = (a − b) + (ȧ − ḃ)ε",
    "mul": "product rule: (a + ȧε)(b + ḃε) = ab + (ȧb + aḃ)ε",
    "div": "quotient rule: (a/b)˙ = (ȧb − aḃ)/b² = (ȧ − (a/b)·ḃ)/b",
    "neg": "−(a + ȧε) = −a − ȧε",
    "exp": "(eᵃ)˙ = eᵃ·ȧ",
    "log": "(ln a)˙ = ȧ/a",
    "sin": "(sin a)˙ = cos a · ȧ",
    "cos": "(cos a)˙ = −sin a · ȧ",
    "tanh": "(tanh a)˙ = (1 − tanh² a)·ȧ",
    "sqrt": "(√a)˙ = ȧ / (2√a)",
    "pow": "(aᵇ)˙ = b·aᵇ⁻¹·ȧ + aᵇ·ln a·ḃ",
    "sum": "the tangent of a sum is the sum of the tangents (np.sum with the same axis/keepdims)",
}


def _numpy_value(op, *vals, **attrs):
    fns = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "neg": np.negative,
           "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tanh": np.tanh, "sqrt": np.sqrt,
           "pow": np.power}
    if op == "sum":
        return np.sum(vals[0], axis=attrs.get("dim"), keepdims=attrs.get("keepdim", False))
    return fns[op](*vals)


def _call_rule(fn, op, *args, **attrs):
    d = fn(op, *args, **attrs)
    if not (isinstance(d, tuple) and len(d) == 2):
        raise TypeError(f"dual_apply({op!r}, …) must return a Dual(value, tangent), got {d!r}")
    return _as_array(d[0]), _as_array(d[1])


@register("2.2", title="Forward mode: dual numbers", lab="02_autodiff",
          reference="aisys.framework.tape:dual_apply",
          bad=[Mistake("aisys.labkit.checks.lab02:_dual_product_rule_drops_a_term", says="product rule"),
               Mistake("aisys.labkit.checks.lab02:_dual_cos_sign", says="−sin a"),
               Mistake("aisys.labkit.checks.lab02:_dual_quotient_rule_sign", says="quotient rule"),
               Mistake("aisys.labkit.checks.lab02:_dual_sum_ignores_dim", says="same axis/keepdims"),
               Mistake("aisys.labkit.checks.lab02:_dual_pow_constant_exponent", says="aᵇ·ln a·ḃ"),
               Mistake("aisys.labkit.checks.lab02:_dual_exp_forgets_the_inner_tangent", says="eᵃ·ȧ")])
def _check_2_2(fn, c: Checker):
    h = 1e-6
    cases = [(op, {}) for op in T.DUAL_OPS if op != "sum"]
    cases += [("sum", {"dim": None, "keepdim": False}), ("sum", {"dim": 1, "keepdim": True}),
              ("sum", {"dim": 0, "keepdim": False})]
    for op, attrs in cases:
        binary = op in ("add", "sub", "mul", "div", "pow")
        shape = (2, 3) if op == "sum" else (3,)
        a = c.rng.uniform(0.5, 2.0, shape)
        b = c.rng.uniform(-1.0, 1.0, shape)
        ta, tb = c.rng.standard_normal(shape), c.rng.standard_normal(shape)
        args = (T.Dual(a, ta), T.Dual(b, tb)) if binary else (T.Dual(a, ta),)
        rule_call, error = _call(_call_rule, fn, op, *args, **attrs)
        label = f"rule for {op}" + (f" with dim={attrs['dim']}, keepdim={attrs['keepdim']}" if attrs else "")
        if error is not None:
            c.fail(label, expected="a Dual(value, tangent)", got=error, hint=_RULE_HINTS[op])
        value, tangent = rule_call
        vals = (a, b) if binary else (a,)
        tans = (ta, tb) if binary else (ta,)
        expected_value = _numpy_value(op, *vals, **attrs)
        expected_tangent = (_numpy_value(op, *[v + h * t for v, t in zip(vals, tans)], **attrs)
                            - _numpy_value(op, *[v - h * t for v, t in zip(vals, tans)], **attrs)) / (2 * h)
        c.close(np.stack([np.broadcast_to(value, np.shape(expected_value)),
                          np.broadcast_to(tangent, np.shape(expected_tangent))]),
                np.stack([expected_value, expected_tangent]),
                what=f"{label}: (value, tangent) against central differences", rtol=1e-6, atol=1e-7,
                hint=_RULE_HINTS[op])
    tape = T.Tape.record(T.course_f, *T.COURSE_POINT)
    for k, name in enumerate(("x₁", "x₂")):
        d = T.jvp_dual(tape, [1.0 if j == k else 0.0 for j in range(2)], rule=fn)
        c.close(np.array([float(_as_array(d.value)), float(_as_array(d.tangent))]),
                np.array([T.COURSE_VALUE, T.COURSE_GRAD[k]]),
                what=f"course example, seed ẋ = e({name}): (f, ∂f/∂{name}) = (11.6521, {T.COURSE_GRAD[k]:.6g})",
                rtol=0, atol=1e-10, hint="forward mode carries (value, tangent) through each entry; the course uses "
                                         "log, mul, sin, add and sub")
    for k in range(3):
        f = T.random_expression(c.rng, n_inputs=3, n_ops=10)
        x, v = c.rng.uniform(-1.5, 1.5, 3), c.rng.standard_normal(3)
        rt = T.Tape.record(f, *x)
        d = T.jvp_dual(rt, list(v), rule=fn)
        grad = np.array([float(g) for g in T.reverse_grad(rt)])
        c.close(float(_as_array(d.tangent)), float(grad @ v),
                what=f"random expression {k + 1}: one forward sweep J·v equals reverse mode's ∇f·v", rtol=1e-9,
                atol=1e-10, hint="every entry's tangent must follow from its inputs' tangents by the op's rule")
    import aisys
    x, y = np.array([0.4, -0.7]), np.array([1.3, 0.6])
    wide = T.Tape.record(lambda a, b: aisys.sin(a * b) + a, x, y)               # ℝ⁴ → ℝ²
    columns = []
    for k in range(4):
        seed = np.eye(4)[k]
        columns.append(_as_array(T.jvp_dual(wide, [seed[:2], seed[2:]], rule=fn).tangent))
    J_rev, rev = T.jacobian(wide, "reverse")
    c.close(np.stack(columns, axis=1), J_rev,
            what=f"Jacobian of (x, y) ↦ sin(x·y) + x, ℝ⁴→ℝ²: 4 forward sweeps (one per input) equal "
                 f"{rev.sweeps} reverse sweeps (one per output)", rtol=1e-10, atol=1e-12,
            hint="seed one input element's tangent with 1 per sweep; each sweep gives one column of J")


def _dual_sum_ignores_dim(op, *args, **attrs):
    """Mistake: sum always reduces everything (dim and keepdim ignored)."""
    if op == "sum":
        (a,) = args
        return T.Dual(np.sum(a.value), np.sum(a.tangent))
    return T.dual_apply(op, *args, **attrs)


def _dual_pow_constant_exponent(op, *args, **attrs):
    """Mistake: (aᵇ)˙ = b·aᵇ⁻¹·ȧ only, as if the exponent never varied."""
    if op == "pow":
        a, b = args
        return T.Dual(np.power(a.value, b.value), b.value * np.power(a.value, b.value - 1) * a.tangent)
    return T.dual_apply(op, *args, **attrs)


def _dual_exp_forgets_the_inner_tangent(op, *args, **attrs):
    """Mistake: (eᵃ)˙ = eᵃ, the chain rule's ȧ forgotten."""
    if op == "exp":
        (a,) = args
        return T.Dual(np.exp(a.value), np.exp(a.value) * np.ones_like(a.tangent))
    return T.dual_apply(op, *args, **attrs)


def _dual_product_rule_drops_a_term(op, *args, **attrs):
    """Mistake: (ab)˙ = ȧb — forgets aḃ."""
    if op == "mul":
        a, b = args
        return T.Dual(a.value * b.value, a.tangent * b.value)
    return T.dual_apply(op, *args, **attrs)


def _dual_cos_sign(op, *args, **attrs):
    """Mistake: (cos a)˙ = +sin a · ȧ."""
    if op == "cos":
        (a,) = args
        return T.Dual(np.cos(a.value), np.sin(a.value) * a.tangent)
    return T.dual_apply(op, *args, **attrs)


def _dual_quotient_rule_sign(op, *args, **attrs):
    """Mistake: (a/b)˙ = (ȧb + aḃ)/b²."""
    if op == "div":
        a, b = args
        return T.Dual(a.value / b.value, (a.tangent * b.value + a.value * b.tangent) / b.value ** 2)
    return T.dual_apply(op, *args, **attrs)


# ---------------------------------------------------------------------------------------------
# 2.3 a VJP rule in the registry: grad-of-grad
# ---------------------------------------------------------------------------------------------
_TENSOR_OPS_HINT = ("write the rule with tensor operations on g and x (g * 3.0 * x * x): they are recorded when "
                    "create_graph=True, so the gradient can itself be differentiated; numpy values would be "
                    "constants to autograd")


@register("2.3", title="A VJP rule you write: grad-of-grad of x³", lab="02_autodiff",
          reference="aisys.framework.tape:cube_vjp",
          bad=[Mistake("aisys.labkit.checks.lab02:_cube_vjp_detached", says="tensor operations"),
               Mistake("aisys.labkit.checks.lab02:_cube_vjp_forgets_the_cotangent", says="use the cotangent g"),
               Mistake("aisys.labkit.checks.lab02:_cube_vjp_power_rule_slip", says="dy/dx = 3x²"),
               Mistake("aisys.labkit.checks.lab02:_cube_vjp_divides_by_x", says="at x = 0"),
               Mistake("aisys.labkit.checks.lab02:_cube_vjp_bare_tensor", says="note the comma"),
               Mistake("aisys.labkit.checks.lab02:_cube_vjp_the_function_itself", says="dy/dx = 3x²")])
def _check_2_3(fn, c: Checker):
    import aisys
    x3 = Tensor(np.float64(3.0))
    result, error = _call(fn, Tensor(np.float64(1.0)), x3 * x3 * x3, x3)
    if error is not None:
        c.fail("cube_vjp(g=1, out=27, x=3)", expected="(gradient for x,)", got=error, hint=_TENSOR_OPS_HINT)
    c.true(isinstance(result, (tuple, list)) and len(result) == 1, what="returns a tuple with one gradient per input",
           expected="(gradient for x,)", got=repr(result), hint="cube has one input: return (g * …,) — note the comma")
    with T.cube_with_vjp(fn) as cube:
        d1 = aisys.grad(cube)
        d2 = aisys.grad(d1)
        c.close(float(d1(3.0).item()), 27.0, what="d/dx x³ at 3 = 3·3² = 27", rtol=1e-12,
                hint="the VJP of y = x³ multiplies the incoming gradient g by dy/dx = 3x²")
        c.close(float(d1(-2.0).item()), 12.0, what="d/dx x³ at −2 = 3·(−2)² = 12", rtol=1e-12,
                hint="the VJP of y = x³ multiplies the incoming gradient g by dy/dx = 3x² (at 3, x³ and 3x² "
                     "are both 27)")
        c.close(float(d2(3.0).item()), 18.0, what="grad-of-grad: d²/dx² x³ at 3 = 6·3 = 18", rtol=1e-12,
                hint=_TENSOR_OPS_HINT)
        c.close(float(aisys.grad(d2)(3.0).item()), 6.0, what="third derivative: 6", rtol=1e-12, hint=_TENSOR_OPS_HINT)
        with np.errstate(divide="ignore", invalid="ignore"):      # a rule dividing by x says 0/0 here
            zero, error = _call(lambda: float(d1(0.0).item()))
        c.close(zero, 0.0, what="d/dx x³ at x = 0 is 0 (a rule must hold at every x)", atol=1e-12,
                hint="write dy/dx = 3x² from x; a rule that divides by x (3·out/x) is undefined at x = 0")
        x = c.rng.uniform(-2.0, 2.0, 5)
        c.true(aisys.gradcheck(cube, [x], raise_exception=False),
               what="gradcheck on a 5-vector (random cotangents against central differences)",
               expected="the VJP-built Jacobian diag(3x²) matches finite differences", got="a different Jacobian",
               hint="use the cotangent g: the VJP returns g·∂y/∂x, elementwise for a vector x")
        c.true(aisys.gradcheck(cube, [x], second_order=True, raise_exception=False),
               what="gradcheck second order (the VJP itself differentiated)",
               expected="pass", got="fail", hint=_TENSOR_OPS_HINT)


def _cube_vjp_detached(g, out, x):
    """Mistake: computes 3x² in numpy — right first derivative, but autograd sees a constant (grad-of-grad 0)."""
    return (g * Tensor(3.0 * x.numpy() ** 2),)


def _cube_vjp_forgets_the_cotangent(g, out, x):
    """Mistake: returns dy/dx without multiplying by the incoming gradient g."""
    return (3.0 * x * x,)


def _cube_vjp_power_rule_slip(g, out, x):
    """Mistake: d/dx x³ written as 3x."""
    return (g * 3.0 * x,)


def _cube_vjp_divides_by_x(g, out, x):
    """Mistake: dy/dx as 3·out/x — equal to 3x² except at x = 0, where it is 0/0."""
    return (g * 3.0 * out / x,)


def _cube_vjp_bare_tensor(g, out, x):
    """Mistake: returns the gradient itself, not a tuple with one gradient per input."""
    return g * 3.0 * x * x


def _cube_vjp_the_function_itself(g, out, x):
    """Mistake: multiplies g by x³ (the function) instead of its derivative."""
    return (g * x * x * x,)
