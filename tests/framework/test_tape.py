"""The explicit teaching tape (aisys/framework/tape/) agrees with the library's implicit autograd."""
from __future__ import annotations

import numpy as np
import pytest

import aisys
from aisys.framework import tape as T
from aisys.framework.registry import OPS


def test_course_tape_is_numbered_like_the_lecture():
    tape = T.Tape.record(T.course_f, *T.COURSE_POINT)
    assert [tape.line(e) for e in tape] == ["v-1 = input x1", "v0 = input x2", "v1 = log(v-1)", "v2 = mul(v-1, v0)",
                                            "v3 = sin(v0)", "v4 = add(v1, v2)", "v5 = sub(v4, v3)"]
    assert tape.value == pytest.approx(T.COURSE_VALUE, abs=1e-12)
    assert str(tape).splitlines()[-1] == "v5  = sub(v4, v3)   = 11.6521     <- output"
    assert repr(tape) == "<Tape: 2 inputs, 5 ops, output v5>"
    assert [e.output for e in tape] == list(range(7)) and tape[2].inputs == (0,)


def test_reverse_grad_and_dual_numbers_give_the_course_values():
    tape = T.Tape.record(T.course_f, *T.COURSE_POINT)
    np.testing.assert_allclose(T.reverse_grad(tape), T.COURSE_GRAD, rtol=0, atol=1e-12)
    for k, expected in enumerate(T.COURSE_GRAD):
        d = T.jvp_dual(tape, [1.0 if j == k else 0.0 for j in range(2)])
        assert d.value == pytest.approx(T.COURSE_VALUE, abs=1e-12) and d.tangent == pytest.approx(expected, abs=1e-12)


def test_from_tensor_equals_record_and_reads_consts():
    x1 = aisys.tensor(2.0, dtype=aisys.float64, requires_grad=True)
    x2 = aisys.tensor(5.0, dtype=aisys.float64, requires_grad=True)
    a, b = T.Tape.from_tensor(T.course_f(x1, x2)), T.Tape.record(T.course_f, 2.0, 5.0)
    assert sorted(e.op for e in a) == sorted(e.op for e in b)         # a topological order of the same ops
    assert a.value == b.value and [e.label for e in a if e.op == "input"] == ["x1", "x2"]
    np.testing.assert_allclose(T.reverse_grad(a), T.COURSE_GRAD, atol=1e-12)
    assert all(max(a[e.index].inputs, default=-1) < e.index for e in a)
    c = T.Tape.record(lambda x: x * 2.0 + aisys.tensor(np.float64(1.0)), 3.0)
    assert [e.op for e in c] == ["input", "const", "mul", "const", "add"] and c.value == 7.0
    with pytest.raises(ValueError, match="no recorded history"):
        T.Tape.from_tensor(aisys.tensor(1.0))
    y = (x1 * x1).sum()
    y.backward()
    with pytest.raises(ValueError, match="freed by backward"):
        T.Tape.from_tensor(y)


@pytest.mark.parametrize("seed", range(6))
def test_reverse_grad_matches_autograd_and_central_differences(seed):
    rng = np.random.default_rng(seed)
    f = T.random_expression(rng, n_inputs=3, n_ops=10)
    x = rng.uniform(-1.5, 1.5, 3)
    grads = T.reverse_grad(T.Tape.record(f, *x))
    ts = [aisys.tensor(v, dtype=aisys.float64, requires_grad=True) for v in x]
    f(*ts).backward()
    np.testing.assert_allclose(grads, [0.0 if t.grad is None else t.grad.item() for t in ts], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads, [g.item() for g in T.central_differences(f, x)], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("op", T.DUAL_OPS)
def test_dual_rules_agree_with_the_registry_jvps(op):
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.5, 2.0, 4), rng.uniform(-1.0, 1.0, 4)
    fn = {"neg": lambda x, y: -x, "sum": lambda x, y: (x * y).sum()}.get(
        op, (lambda name: (lambda x, y: getattr(aisys, name)(x, y)) if name in ("add", "sub", "mul", "div", "pow")
             else (lambda x, y: getattr(aisys, name)(x) * y))(op))
    tape = T.Tape.record(fn, a, b)
    ta, tb = rng.standard_normal(4), rng.standard_normal(4)
    d = T.jvp_dual(tape, [ta, tb])
    _, tan = T.forward_sweep(tape, [ta, tb])
    np.testing.assert_allclose(d.value, tape.value, rtol=1e-12)
    np.testing.assert_allclose(d.tangent, tan[tape.output], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="op 'argmax' has no forward-mode rule"):
        T.dual_apply("argmax", T.Dual(np.ones(3), np.ones(3)))


def test_dual_rules_are_the_registry_jvps_for_any_op():
    """No rule table of its own: relu (not in DUAL_OPS) works, through its registered JVP."""
    d = T.dual_apply("relu", T.Dual(np.array([-1.0, 2.0]), np.array([5.0, 7.0])))
    np.testing.assert_array_equal(d.value, [0.0, 2.0])
    np.testing.assert_array_equal(d.tangent, [0.0, 7.0])
    d = T.dual_apply("pow", T.Dual(np.array([-2.0]), np.array([1.0])), T.Dual(np.array([3.0]), np.array([0.0])))
    np.testing.assert_allclose([d.value[0], d.tangent[0]], [-8.0, 12.0])    # a constant exponent: no log of −2


def test_sweep_counts_at_n_1000_m_1():
    """ℝ¹⁰⁰⁰ → ℝ: forward mode needs 1000 sweeps, reverse mode 1, for the same Jacobian."""
    x = np.linspace(-1, 1, 1000)
    tape = T.Tape.record(lambda v: (aisys.tanh(v) * v).sum(), x)
    J_f, fwd = T.jacobian(tape, "forward")
    J_r, rev = T.jacobian(tape, "reverse")
    assert (fwd.sweeps, rev.sweeps) == (1000, 1) and (fwd.visits, rev.visits) == (3000, 3)
    assert str(rev) == "reverse mode: 1 sweep, 3 local rules applied for a 1×1000 Jacobian"
    np.testing.assert_allclose(J_f, J_r, rtol=1e-12)
    np.testing.assert_allclose(J_r[0], np.tanh(x) + x * (1 - np.tanh(x) ** 2), rtol=1e-12)
    W = np.random.default_rng(0).standard_normal((3, 2))
    wide = T.Tape.record(lambda v: aisys.sin(aisys.tensor(W) @ v), np.array([0.3, -0.2]))   # ℝ² → ℝ³
    (J1, c1), (J2, c2) = T.jacobian(wide, "forward"), T.jacobian(wide, "reverse")
    assert (c1.sweeps, c2.sweeps) == (2, 3)
    np.testing.assert_allclose(J1, J2, rtol=1e-12)
    with pytest.raises(ValueError, match="mode must be"):
        T.jacobian(wide, "sideways")


def test_cube_vjp_plugs_into_the_registry_and_is_removed():
    with T.cube_with_vjp(T.cube_vjp) as cube:
        assert "cube_exercise" in OPS
        d1 = aisys.grad(cube)
        assert (d1(3.0).item(), aisys.grad(d1)(3.0).item(), aisys.grad(aisys.grad(d1))(3.0).item()) == (27.0, 18.0, 6.0)
        assert aisys.gradcheck(cube, [np.array([0.5, -1.5, 2.0])], second_order=True)
        assert T.Tape.record(cube, 3.0)[1].op == "cube_exercise"
    assert "cube_exercise" not in OPS
    with T.temporary_op("tmp_neg", ref=np.negative, vjp=lambda g, out, x: (-g,)):
        with pytest.raises(ValueError, match="already registered"):
            with T.temporary_op("tmp_neg", ref=np.negative, vjp=None):
                pass
    assert "tmp_neg" not in OPS
