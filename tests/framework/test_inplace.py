"""In-place updates and storage version counters (aisys.framework.inplace), PyTorch's rules.

Each silent wrong result these rules prevent has its test: a saved value overwritten before backward, a
leaf changed under autograd's feet, ``p -= lr * p.grad`` that never updated the model, an in-place op on a
value an earlier op still reads. Where torch is installed, the same programs run on both and must agree
(value, or an error of the same kind).
"""
from __future__ import annotations

import numpy as np
import pytest

import aisys
from aisys import nn
from aisys.framework.errors import ShapeError

VERSION_ERROR = "modified by an in-place operation"


# ---- version counters -------------------------------------------------------------------------------
def test_saved_value_overwritten_before_backward_raises_naming_op_shape_versions_and_line():
    x = aisys.tensor([1.0, 2.0], requires_grad=True)
    y = x * x                                           # mul saves x: dy/dx = 2x
    with aisys.no_grad():
        x.copy_(aisys.tensor([10.0, 10.0]))             # (silently gave x.grad = 20 before version counters)
    with pytest.raises(RuntimeError, match=VERSION_ERROR) as e:
        y.sum().backward()
    msg = str(e.value)
    assert "mul saved f32[2] (input 0) at version 0, now version 1" in msg
    assert "test_inplace.py:" in msg                    # the line of the write
    assert x.grad is None


def test_versions_are_per_storage_shared_by_views_detach_and_data():
    x = aisys.zeros(4)
    assert x._version == 0
    x.add_(1)
    assert x._version == 1
    v = x[1:3]
    v.mul_(2)                                           # a view writes the same storage
    x.detach()[0] = 5.0
    x.data.fill_(3.0)
    assert x._version == v._version == 4
    assert aisys.zeros(2)._version == 0                 # a new storage starts at 0
    assert x.clone()._version == 0


def test_write_through_detach_is_caught():
    x = aisys.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    x.detach()[0] = 5.0
    with pytest.raises(RuntimeError, match=VERSION_ERROR):
        y.backward()


def test_ops_that_need_no_saved_value_ignore_the_write():
    x = aisys.tensor([1.0, 2.0], requires_grad=True)
    y = (x + 1.0).sum()                                 # add reads no value in its backward
    with aisys.no_grad():
        x.mul_(3.0)
    y.backward()
    assert x.grad.tolist() == [1.0, 1.0]
    w = aisys.tensor([1.0, 2.0], requires_grad=True)
    h = w * 2.0
    z = (h * 3.0).sum()                                 # h * 3 needs h only for 3's gradient (none)
    h.add_(1.0)
    z.backward()
    assert w.grad.tolist() == [6.0, 6.0]


def test_optimizer_step_bumps_versions_so_a_stale_graph_cannot_be_reused():
    lin = nn.Linear(2, 1)
    opt = aisys.optim.SGD(lin.parameters(), lr=0.1)
    x = aisys.randn(3, 2, requires_grad=True)
    out = lin(x).sum()                                  # linear saves the weight for x's gradient
    out.backward(retain_graph=True)
    v = lin.weight._version
    opt.step()
    assert lin.weight._version == v + 1
    with pytest.raises(RuntimeError, match="an optimizer's step"):
        out.backward()


def test_in_place_on_a_leaf_that_requires_grad_raises_outside_no_grad():
    x = aisys.tensor([1.0, 2.0], requires_grad=True)
    for update in (lambda: x.zero_(), lambda: x.add_(1.0), lambda: x.copy_([3.0, 4.0]),
                   lambda: x.__setitem__(0, 1.0), lambda: x.uniform_(), lambda: x.fill_(2.0)):
        with pytest.raises(RuntimeError, match="a leaf tensor that requires grad"):
            update()
        assert x.tolist() == [1.0, 2.0] and x._version == 0          # nothing half-changed
    with aisys.no_grad():
        x.zero_()
        x += 1.0
        x[1] = 5.0
    assert x.tolist() == [1.0, 5.0] and x.is_leaf and x.requires_grad


# ---- in-place operators (issue 15: `p -= lr * p.grad` never updated the model) --------------------
def test_augmented_assignment_updates_the_model_in_place():
    aisys.manual_seed(0)
    model = nn.Linear(1, 1)
    x = aisys.tensor(np.linspace(-1, 1, 16, dtype=np.float32)).reshape(16, 1)
    y = 3.0 * x + 0.5
    first = None
    for _ in range(200):
        loss = ((model(x) - y) ** 2).mean()
        first = first if first is not None else loss.item()
        model.zero_grad()
        loss.backward()
        with aisys.no_grad():
            for p in model.parameters():                # the loop variable is rebound, the parameter is not
                p -= 0.1 * p.grad
    assert loss.item() < 1e-3 < first
    assert model.weight.item() == pytest.approx(3.0, abs=0.05)


@pytest.mark.parametrize("op,expect", [("+=", [3.0, 5.0]), ("-=", [-1.0, -1.0]), ("*=", [2.0, 6.0]),
                                       ("/=", [0.5, 2 / 3]), ("**=", [1.0, 8.0])])
def test_augmented_operators_keep_identity_and_storage(op, expect):
    x = aisys.tensor([1.0, 2.0])
    other = aisys.tensor([2.0, 3.0])
    ident, buf = id(x), x.numpy()
    namespace = {"x": x, "o": other}
    exec(f"x {op} o", namespace)
    assert namespace["x"] is x and id(x) == ident and x.numpy() is buf
    np.testing.assert_allclose(x.numpy(), expect, rtol=1e-6)
    assert x._version == 1


def test_dtype_and_shape_rules():
    a = aisys.tensor([1, 2])
    with pytest.raises(TypeError, match="cannot be stored in place into a int64"):
        a += 1.5
    assert a.tolist() == [1, 2]
    a += 2                                               # int stays int
    assert a.tolist() == [3, 4] and a.dtype is aisys.int64
    f = aisys.tensor([1.0, 2.0])
    f += aisys.tensor([0.5, 0.5], dtype=aisys.float64)   # computed in float64, stored as float32
    assert f.dtype is aisys.float32 and f.tolist() == [1.5, 2.5]
    with pytest.raises(ShapeError, match="keeps the tensor's shape"):
        f += aisys.ones(2, 2)
    assert f.tolist() == [1.5, 2.5]
    with pytest.raises(RuntimeError, match="read-only view"):
        aisys.ones(3).expand(2, 3).add_(1.0)


def test_rebased_history_is_differentiable():
    x = aisys.tensor([1.0, 2.0], requires_grad=True)
    y = aisys.tensor([3.0, 4.0], requires_grad=True)
    h = x * 1.0
    h *= y                                              # mul_ needs h's old value for y's gradient
    h += x
    assert not h.is_leaf and h.grad_fn is not None
    h.sum().backward()
    assert x.grad.tolist() == [4.0, 5.0] and y.grad.tolist() == [1.0, 2.0]


def test_earlier_readers_keep_the_old_history():
    x = aisys.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2.0
    z = h * 3.0                                         # recorded before h changes: reads the old h
    h += x
    (z + h).sum().backward()
    assert x.grad.tolist() == [9.0, 9.0]                # 6 through z, 2 + 1 through the new h


def test_in_place_on_a_saved_output_raises():
    x = aisys.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()                                         # exp's backward reads its output
    h += 1.0
    with pytest.raises(RuntimeError, match="exp saved f32\\[2\\] \\(its output\\)"):
        h.sum().backward()


def test_setitem_and_copy_are_differentiable():
    x = aisys.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = aisys.tensor(5.0, requires_grad=True)
    h = x * 1.0
    h[1] = w * 2.0
    h.sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 1.0] and w.grad.item() == 2.0
    buf = aisys.zeros(3)
    v = aisys.tensor([1.0, 2.0, 3.0], requires_grad=True)
    buf.copy_(v * 2.0)
    (buf * buf).sum().backward()
    assert v.grad.tolist() == [8.0, 16.0, 24.0]


def test_method_family_values():
    x = aisys.tensor([-1.0, 0.5, 2.0])
    assert x.clone().add_(1.0, alpha=2).tolist() == [1.0, 2.5, 4.0]
    assert x.clone().sub_(aisys.ones(3)).tolist() == [-2.0, -0.5, 1.0]
    assert x.clone().clamp_(-0.5, 1.0).tolist() == [-0.5, 0.5, 1.0]
    assert x.clone().relu_().tolist() == [0.0, 0.5, 2.0]
    assert x.clone().masked_fill_(x > 0, 9.0).tolist() == [-1.0, 9.0, 9.0]
    assert x.clone().fill_(7).tolist() == [7.0, 7.0, 7.0]
    assert aisys.zeros(3, dtype=aisys.int64).fill_(1.7).tolist() == [1, 1, 1]   # truncates, as torch
    np.testing.assert_allclose(x.clone().exp_().numpy(), np.exp(x.numpy()))
    aisys.manual_seed(1)
    u = aisys.zeros(1000).uniform_(2.0, 3.0)
    assert 2.0 <= u.min().item() and u.max().item() < 3.0


def test_trace_sees_in_place_updates():
    from aisys.framework.graph import interpret

    def f(x):
        h = x * 2.0
        h += 1.0
        h[0] = 7.0
        return h
    g = aisys.trace(f, aisys.ones(3))
    assert interpret(g, aisys.tensor([1.0, 2.0, 3.0]))[0].tolist() == [7.0, 5.0, 7.0]

    model = nn.Linear(3, 1)

    def step(x, y):
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        with aisys.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
        return loss
    x, y = aisys.randn(4, 3), aisys.randn(4, 1)
    w0 = model.weight.numpy().copy()
    g = aisys.trace(step, x, y)
    np.testing.assert_array_equal(model.weight.numpy(), w0)           # tracing took no step
    assert g.output_names == ["out", "update weight", "update bias"]
    outs = interpret(g, x, y)
    step(x, y)
    np.testing.assert_allclose(outs[1], model.weight.numpy(), rtol=1e-6)


# ---- against PyTorch ------------------------------------------------------------------------------------
def _programs(T):
    """Small in-place programs written once for either library; each returns values or raises."""
    def poly():
        x = T.tensor([1.0, 2.0, 3.0])
        w = T.tensor([0.5], requires_grad=True)
        for _ in range(3):
            ((x * w - 2 * x) ** 2).sum().backward()
            with T.no_grad():
                w -= 0.01 * w.grad
                w.grad.zero_()
        return w.tolist()

    def leaf():
        w = T.tensor([0.5], requires_grad=True)
        w += 1
        return w.tolist()

    def saved_output():
        x = T.tensor([1.0, 2.0], requires_grad=True)
        h = x.exp()
        h += 1
        h.sum().backward()
        return x.grad.tolist()

    def earlier_reader():
        x = T.tensor([1.0, 2.0], requires_grad=True)
        h = x * 2
        z = h * 3
        h += x
        (z + h).sum().backward()
        return x.grad.tolist()

    def int_plus_float():
        a = T.tensor([1, 2])
        a += 1.5
        return a.tolist()

    def broadcast_self():
        a = T.tensor([1.0, 2.0])
        a += T.ones(2, 2)
        return a.tolist()

    def detach_write():
        x = T.tensor([1.0, 2.0], requires_grad=True)
        y = x * x
        x.detach()[0] = 5.0
        y.sum().backward()
        return x.grad.tolist()

    def versions():
        x = T.ones(3)
        v0 = x._version
        x.add_(1)
        y = x[0:2]
        y.mul_(2)
        return [v0, x._version, y._version] + x.tolist()

    def setitem_grad():
        x = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
        h = x * 1
        w = T.tensor(5.0, requires_grad=True)
        h[1] = w * 2
        h.sum().backward()
        return x.grad.tolist() + [w.grad.item()]

    def masked():
        x = T.tensor([1.0, 2.0, 3.0])
        return x.masked_fill(x > 1.5, 0.0).tolist() + x.clone().masked_fill_(x < 2, -1.0).tolist()
    return [poly, leaf, saved_output, earlier_reader, int_plus_float, broadcast_self, detach_write, versions,
            setitem_grad, masked]


def _outcome(fn):
    try:
        return "ok", fn()
    except (RuntimeError, TypeError, ValueError) as e:
        return "error", type(e).__name__ if not isinstance(e, (TypeError, ValueError)) else "RuntimeError-like"


@pytest.mark.parametrize("k", range(10))
def test_same_outcome_as_pytorch(k):
    torch = pytest.importorskip("torch")
    mine, theirs = _outcome(_programs(aisys)[k]), _outcome(_programs(torch)[k])
    assert mine[0] == theirs[0], f"{_programs(aisys)[k].__name__}: aisys {mine}, torch {theirs}"
    if mine[0] == "ok":
        np.testing.assert_allclose(np.asarray(mine[1], float), np.asarray(theirs[1], float), rtol=1e-6)
