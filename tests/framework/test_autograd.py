"""Reverse and forward mode on the implicit tape: accumulation, retain_graph, no_grad, detach, higher order,
the functional transforms (grad, vjp, jvp), and gradcheck catching a wrong VJP.

The worked example is the one of ZOMI's AISystem course (05Framework/02AutoDiff, 06ReversedMode):
f(x₁, x₂) = ln x₁ + x₁x₂ − sin x₂ at (2, 5).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import aisys
from aisys.framework.ops._common import same_spec
from aisys.framework.registry import OPS, defop
from aisys.framework.tensor import Tensor, apply

COURSE_F = 11.652071455223084           # ln 2 + 10 − sin 5
COURSE_D1 = 5.5                          # 1/x₁ + x₂
COURSE_D2 = 1.7163378145367738           # x₁ − cos x₂


def course_f(x1, x2):
    return aisys.log(x1) + x1 * x2 - aisys.sin(x2)


def scalar(v, requires_grad=True):
    return aisys.tensor(v, dtype=aisys.float64, requires_grad=requires_grad)


# ---- the course example, four ways -----------------------------------------------------------------------
def test_course_example_reverse_mode():
    x1, x2 = scalar(2.0), scalar(5.0)
    f = course_f(x1, x2)
    f.backward()
    assert f.item() == pytest.approx(COURSE_F, abs=1e-12)
    assert x1.grad.item() == pytest.approx(COURSE_D1, abs=1e-12)
    assert x2.grad.item() == pytest.approx(COURSE_D2, abs=1e-12)
    assert math.log(2) + 10 - math.sin(5) == pytest.approx(COURSE_F, abs=1e-12)
    assert 2 - math.cos(5) == pytest.approx(COURSE_D2, abs=1e-12)


def test_course_example_functional_grad():
    d1, d2 = aisys.grad(course_f, argnums=(0, 1))(2.0, 5.0)
    assert (d1.item(), d2.item()) == pytest.approx((COURSE_D1, COURSE_D2), abs=1e-12)
    assert d1.dtype is aisys.float64        # Python floats into aisys.grad are taken as float64


def test_course_example_forward_mode_needs_one_sweep_per_input():
    out, t1 = aisys.jvp(course_f, (2.0, 5.0), (1.0, 0.0))
    _, t2 = aisys.jvp(course_f, (2.0, 5.0), (0.0, 1.0))
    assert out.item() == pytest.approx(COURSE_F, abs=1e-12)
    assert (t1.item(), t2.item()) == pytest.approx((COURSE_D1, COURSE_D2), abs=1e-12)


def test_course_example_vjp():
    out, vjp_fn = aisys.vjp(course_f, np.float64(2.0), np.float64(5.0))
    g1, g2 = vjp_fn(aisys.tensor(np.float64(1.0)))
    assert out.item() == pytest.approx(COURSE_F, abs=1e-12)
    assert (g1.item(), g2.item()) == pytest.approx((COURSE_D1, COURSE_D2), abs=1e-12)
    h1, h2 = vjp_fn(aisys.tensor(np.float64(2.0)))              # a VJP is linear in its cotangent
    assert (h1.item(), h2.item()) == pytest.approx((2 * COURSE_D1, 2 * COURSE_D2), abs=1e-12)


# ---- the tape ---------------------------------------------------------------------------------------------
def test_a_tensor_used_twice_accumulates():
    x = scalar(3.0)
    y = x * x + x                      # x feeds three uses: dy/dx = 2x + 1
    y.backward()
    assert x.grad.item() == 7.0


def test_backward_accumulates_into_grad_across_calls():
    x = scalar(2.0)
    (x * x).backward()
    (x * 3.0).backward()
    assert x.grad.item() == 4.0 + 3.0
    x.grad = None
    (x * x).backward()
    assert x.grad.item() == 4.0


def test_second_backward_needs_retain_graph():
    x = scalar(2.0)
    y = x.exp() * x
    y.backward(retain_graph=True)
    y.backward()                        # allowed once more: the first call kept the graph
    assert x.grad.item() == pytest.approx(2 * 3 * math.exp(2.0))
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()                    # the second call freed it


def test_only_leaves_get_grad():
    x = scalar(2.0)
    h = x * 3.0
    (h * h).backward()
    assert x.grad.item() == 2 * 3 * 6.0
    assert h.grad is None and not h.is_leaf and x.is_leaf
    assert h.grad_fn is None or h.grad_fn.op.name == "mul"


def test_backward_of_a_non_scalar_needs_a_gradient():
    x = aisys.tensor(np.arange(3.0), requires_grad=True)
    y = x * 2.0
    with pytest.raises(RuntimeError, match="gradient argument"):
        y.backward()
    y.backward(aisys.tensor(np.array([1.0, 10.0, 100.0])))
    assert x.grad.tolist() == [2.0, 20.0, 200.0]


def test_backward_without_history_says_how_to_fix():
    with pytest.raises(RuntimeError, match="requires_grad=True"):
        aisys.tensor([1.0]).sum().backward()


def test_no_grad_records_nothing():
    x = scalar(2.0)
    with aisys.no_grad():
        assert not aisys.is_grad_enabled()
        y = x * x
        with aisys.enable_grad():
            z = x * x
    assert aisys.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn.op.name == "mul" and z.grad_fn.name() == "MulBackward0"

    @aisys.no_grad()
    def infer(t):
        return t * t

    assert not infer(x).requires_grad
    with aisys.set_grad_enabled(False):
        assert not (x * 2.0).requires_grad


def test_grad_mode_contexts_restore_the_previous_mode_when_nested():
    """A seeded bug (no_grad restoring True instead of the previous mode) survived the single-level test:
    check after the *inner* block, in every nesting, and through a reused decorator instance."""
    assert aisys.is_grad_enabled()
    with aisys.no_grad():
        with aisys.no_grad():
            assert not aisys.is_grad_enabled()
        assert not aisys.is_grad_enabled()                 # the outer no_grad still holds
        with aisys.enable_grad():
            with aisys.set_grad_enabled(False):
                assert not aisys.is_grad_enabled()
            assert aisys.is_grad_enabled()
        assert not aisys.is_grad_enabled()
    assert aisys.is_grad_enabled()
    off = aisys.no_grad()

    @off
    def depth(n):
        return depth(n - 1) if n else aisys.is_grad_enabled()
    assert depth(3) is False and aisys.is_grad_enabled()   # one instance entered 4 times, unwound in order
    with pytest.raises(KeyError):
        with aisys.no_grad():
            raise KeyError
    assert aisys.is_grad_enabled()


def test_detach_cuts_the_tape_but_shares_memory():
    x = scalar(3.0)
    d = x.detach()
    assert not d.requires_grad and np.shares_memory(d.numpy(), x.numpy())
    (d * x).backward()                  # only the non-detached factor carries gradient
    assert x.grad.item() == 3.0


def test_deep_chain_has_no_recursion_limit():
    x = scalar(1.0)
    y = x
    for _ in range(3000):
        y = y + 1.0
    y.backward()
    assert x.grad.item() == 1.0


# ---- higher order ------------------------------------------------------------------------------------------
def test_grad_of_grad_of_cube_at_3():
    x = scalar(3.0)
    y = x ** 3
    (d1,) = aisys.autograd.grad(y, x, create_graph=True)
    (d2,) = aisys.autograd.grad(d1, x, create_graph=True)
    (d3,) = aisys.autograd.grad(d2, x)
    assert (d1.item(), d2.item(), d3.item()) == (27.0, 18.0, 6.0)


def test_backward_with_create_graph_builds_a_differentiable_grad():
    x = scalar(3.0)
    (x * x * x).backward(create_graph=True)
    g = x.grad
    assert g.item() == 27.0 and g.requires_grad
    x.grad = None
    g.backward()
    assert x.grad.item() == 18.0


def test_nested_functional_grad():
    cube = lambda x: x * x * x          # noqa: E731
    assert aisys.grad(aisys.grad(cube))(3.0).item() == 18.0
    assert aisys.grad(aisys.grad(aisys.grad(cube)))(3.0).item() == 6.0
    assert aisys.grad(aisys.grad(aisys.sin))(0.5).item() == pytest.approx(-math.sin(0.5), abs=1e-12)


def test_forward_over_reverse_is_a_hessian_vector_product():
    f = lambda x: (aisys.sin(x) * x).sum()      # noqa: E731  Hessian is diagonal: 2cos x − x sin x
    x, v = np.array([0.3, -1.2, 2.0]), np.array([1.0, 2.0, -1.0])
    _, hv = aisys.jvp(aisys.grad(f), (x,), (v,))
    np.testing.assert_allclose(hv.numpy(), (2 * np.cos(x) - x * np.sin(x)) * v, rtol=1e-12)


def test_grad_allow_unused():
    x, z = scalar(2.0), scalar(7.0)
    y = x * 4.0
    gx, gz = aisys.autograd.grad(y, [x, z], allow_unused=True, retain_graph=True)
    assert gx.item() == 4.0 and gz is None
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        aisys.autograd.grad(y, [x, z])
    assert aisys.grad(lambda a, b: a * 4.0, argnums=(0, 1))(2.0, 7.0)[1].item() == 0.0   # aisys.grad: zeros


def test_grad_of_a_constant_function_is_zero():
    """Like jax.grad: no recorded path from the input means a zero gradient, not an error."""
    assert aisys.grad(lambda x: aisys.tensor(np.float64(1.0)))(2.0).item() == 0.0
    assert aisys.grad(aisys.grad(lambda x: x * 2.0))(2.0).item() == 0.0      # 2 is constant in x


def test_grad_returns_without_accumulating():
    x = scalar(2.0)
    (g,) = aisys.autograd.grad(x * x, x)
    assert g.item() == 4.0 and x.grad is None


def test_grad_outputs_weights_each_output():
    x = aisys.tensor(np.array([1.0, 2.0]), requires_grad=True)
    (g,) = aisys.autograd.grad(x * x, x, grad_outputs=aisys.tensor(np.array([3.0, 0.5])))
    assert g.tolist() == [6.0, 2.0]


def test_jvp_on_vectors_and_shape_errors():
    x, v = np.linspace(-1, 1, 5), np.arange(5.0)
    out, t = aisys.jvp(lambda a: aisys.tanh(a) * 2.0, (x,), (v,))
    np.testing.assert_allclose(t.numpy(), 2 * (1 - np.tanh(x) ** 2) * v, rtol=1e-12)
    _, zero = aisys.jvp(lambda a: aisys.ones(3) * 1.0, (x,), (v,))   # output independent of the input
    assert zero.tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="tangent shape"):
        aisys.jvp(aisys.sin, (x,), (np.ones(3),))
    with pytest.raises(ValueError, match="primals"):
        aisys.jvp(aisys.sin, (x, x), (v,))


def test_jacobian_by_forward_and_reverse_sweeps_agree():
    """n forward sweeps (one per input direction) and m reverse sweeps (one per output) give the same J."""
    W = np.random.default_rng(0).standard_normal((2, 3))
    f = lambda x: aisys.tanh(aisys.tensor(W) @ x)       # noqa: E731  ℝ³ → ℝ²
    x = np.array([0.1, -0.4, 0.7])
    J_fwd = np.stack([aisys.jvp(f, (x,), (e,))[1].numpy() for e in np.eye(3)], axis=1)
    out, vjp_fn = aisys.vjp(f, x)
    J_rev = np.stack([vjp_fn(aisys.tensor(e))[0].numpy() for e in np.eye(2)], axis=0)
    np.testing.assert_allclose(J_fwd, J_rev, rtol=1e-12)
    np.testing.assert_allclose(J_fwd, (1 - np.tanh(W @ x) ** 2)[:, None] * W, rtol=1e-12)


# ---- gradcheck catches wrong rules ---------------------------------------------------------------------------
def _register_temporarily(name, vjp):
    return defop(name, infer=same_spec(name, float_only=True), ref=np.sin, vjp=vjp,
                 jvp=lambda t, out, x: t[0] * x.cos())


def test_gradcheck_detects_a_wrong_vjp():
    name = "test_sin_with_wrong_vjp"
    _register_temporarily(name, vjp=lambda g, out, x: (g * x.sin(),))          # should be cos
    try:
        f = lambda x: apply(name, x)                                            # noqa: E731
        x = np.linspace(0.1, 1.0, 4)
        with pytest.raises(AssertionError, match="gradcheck failed for input 0"):
            aisys.gradcheck(f, [x])
        assert aisys.gradcheck(f, [x], raise_exception=False) is False
    finally:
        OPS.pop(name, None)
    assert name not in OPS


def test_second_order_gradcheck_detects_a_vjp_that_is_not_differentiable():
    """Right values, but computed in numpy: first order passes, grad-of-grad silently sees a constant."""
    name = "test_sin_with_detached_vjp"
    _register_temporarily(name, vjp=lambda g, out, x: (g * Tensor(np.cos(x.numpy())),))
    try:
        f = lambda x: apply(name, x)                                            # noqa: E731
        x = np.linspace(0.1, 1.0, 4)
        assert aisys.gradcheck(f, [x])
        with pytest.raises(AssertionError, match="gradcheck failed"):
            aisys.gradcheck(f, [x], second_order=True)
    finally:
        OPS.pop(name, None)


def test_gradcheck_needs_float64():
    with pytest.raises(TypeError, match="float64"):
        aisys.gradcheck(aisys.sin, [np.ones(3, np.float32)])
    assert aisys.gradgradcheck(lambda a, b: (a * b).sum() * a, [np.array([0.5, 2.0]), np.array([1.5, -1.0])])


# ---- custom Functions and grad_fn nodes, PyTorch's API (issue 15) -----------------------------------------
class _Cube(aisys.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x * x * x * scale

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3.0 * x * x * ctx.scale, None


def test_custom_function_forward_backward_and_second_order():
    x = aisys.tensor([1.0, -2.0, 0.5], dtype=aisys.float64, requires_grad=True)
    y = _Cube.apply(x, 2.0)
    assert y.tolist() == [2.0, -16.0, 0.25] and y.grad_fn.name() == "_CubeBackward"
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 24.0, 1.5]
    assert aisys.gradcheck(lambda t: _Cube.apply(t, 0.5), [aisys.tensor([0.3, -1.2], dtype=aisys.float64)],
                           second_order=True)
    with aisys.no_grad():
        assert not _Cube.apply(x, 1.0).requires_grad


def test_custom_function_saved_tensors_are_version_checked_and_errors_teach():
    x = aisys.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1.0
    y = _Cube.apply(h, 1.0)
    h.add_(1.0)
    with pytest.raises(RuntimeError, match="saved tensor 0 .* of a custom Function was saved at version 0, now "
                                           "version 1"):
        y.sum().backward()

    class TwoGrads(aisys.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2.0

        @staticmethod
        def backward(ctx, g):
            return g, g

    with pytest.raises(RuntimeError, match="returned 2 gradients, but forward took 1 arguments"):
        TwoGrads.apply(aisys.ones(2, requires_grad=True)).sum().backward()


def _graph_names(T):
    x = T.ones(2, requires_grad=True)
    w = T.ones(2, requires_grad=True)
    loss = ((x * w).exp() + 2.0).sum()
    out, node = [], loss.grad_fn
    while node is not None and hasattr(node, "next_functions") and node.next_functions:
        out.append(node.name())
        node = node.next_functions[0][0]
    out.append(node.name())
    return out, [None if f is None else f.name() for f, _ in loss.grad_fn.next_functions[0][0].next_functions]


def test_grad_fn_walks_like_pytorch():
    names, add_inputs = _graph_names(aisys)
    assert names == ["SumBackward0", "AddBackward0", "ExpBackward0", "MulBackward0", "torch::autograd::AccumulateGrad"]
    assert add_inputs == ["ExpBackward0", None]
    torch = pytest.importorskip("torch")
    assert _graph_names(torch) == (names, add_inputs)
