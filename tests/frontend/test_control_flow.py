"""cond and while_loop as graph ops: eager values, tracing keeps both branches, VJPs, errors."""
import numpy as np
import pytest

import aisys
from aisys.framework.errors import ShapeError
from aisys.framework.graph import interpret
from aisys.framework.registry import get as get_op
from aisys.frontend import cond, while_loop

from .models import sgd_step

W = aisys.tensor(np.random.default_rng(1).standard_normal((3, 3)), requires_grad=True)   # float64


def branchy(x):
    return cond(x.sum() > 0, lambda x: (x @ W).tanh(), lambda x: x * 2.0 - 1.0, (x,))


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cond_eager_matches_python_if(sign):
    x = aisys.tensor(sign * np.array([[0.5, 1.0, 2.0]]))
    expected = np.tanh(x.numpy() @ W.numpy()) if sign > 0 else x.numpy() * 2 - 1
    np.testing.assert_allclose(branchy(x).numpy(), expected)


def test_traced_cond_keeps_both_branches_and_captures_the_weight():
    x = aisys.tensor(np.array([[0.5, 1.0, 2.0]]))
    g = aisys.trace(branchy, x)
    assert g.warnings == [] and g.count_ops() == {"cond": 1, "gt": 1, "sum": 1}
    (c,) = [n for n in g.op_nodes if n.op == "cond"]
    assert [g[i].op for i in c.inputs] == ["gt", "input", "param"]          # pred, operand x, captured W
    assert [n.op for n in c.attrs["then_graph"].op_nodes] == ["matmul", "tanh"]
    for sign in (1, -1):
        xx = aisys.tensor(sign * x.numpy())
        np.testing.assert_allclose(interpret(g, xx)[0], branchy(xx).numpy())


def test_cond_gradients_follow_the_taken_branch():
    for sign in (1.0, -1.0):
        x = aisys.tensor(sign * np.array([[0.5, 1.0, 2.0]]), requires_grad=True)
        assert aisys.gradcheck(lambda x, w: cond(x.sum() > 0, lambda x, w: (x @ w).tanh(), lambda x, w: x * x * w[0],
                                                 (x, w)), [x, W.detach()])


def test_joint_training_graph_through_cond_is_right_for_both_branches():
    Wt = aisys.tensor(np.random.default_rng(2).standard_normal((3, 3)).astype(np.float32), requires_grad=True)

    def step(x):
        y = cond(x.sum() > 0, lambda x: (x @ Wt).tanh(), lambda x: (x @ Wt) * 3.0, (x,))
        loss = y.sum()
        loss.backward()
        sgd_step([Wt], lr=0.1)
        return loss
    x = aisys.tensor([[0.5, 1.0, 2.0]])
    g = aisys.trace(step, x, params={"W": Wt})
    assert g.count_ops()["cond"] == 2 and g.warnings == []          # forward cond + its VJP, also a cond
    for sign in (1, -1):
        xx = aisys.tensor(sign * x.numpy())
        loss, newW = interpret(g, xx)
        before = Wt.numpy().copy()
        eager_loss = step(xx)
        np.testing.assert_allclose(loss, eager_loss.numpy(), rtol=1e-6)
        np.testing.assert_allclose(newW, Wt.numpy(), rtol=1e-5)
        Wt._data[...] = before


def test_cond_multiple_outputs_and_errors():
    x = aisys.tensor([1.0, -2.0])
    a, b = cond(x.sum() < 0, lambda x: (x * 2.0, x + 1.0), lambda x: (x, x), (x,))
    assert a.numpy().tolist() == [2.0, -4.0] and b.numpy().tolist() == [2.0, -1.0]
    with pytest.raises(ShapeError, match=r"branches disagree: then gives f32\[2\], else gives f32\[1\]"):
        cond(x.sum() > 0, lambda x: x, lambda x: x.sum(0, keepdim=True), (x,))
    with pytest.raises(ShapeError, match="one value"):
        cond(x > 0, lambda x: x, lambda x: -x, (x,))


def test_cond_cost_is_the_costlier_branch():
    x = aisys.ones(4, 4)
    g = aisys.trace(lambda x: cond(x.sum() > 0, lambda x: x @ x, lambda x: x + 1.0, (x,)), x)
    (c,) = [n for n in g.op_nodes if n.op == "cond"]
    cost = get_op("cond").cost([g[i].spec for i in c.inputs], c.spec, **c.attrs)
    mm = get_op("matmul").cost([x.spec, x.spec], x.spec)
    assert cost == mm and cost.flops == 2 * 4 * 4 * 4


def test_while_loop_values_trace_and_errors():
    def collatz_like(h):
        return while_loop(lambda h, n: h.sum() < 100.0, lambda h, n: (h * 2.0 + 1.0, n + 1.0), (h, aisys.zeros(())))
    h, n = collatz_like(aisys.ones(2))
    assert h.numpy().tolist() == [63.0, 63.0] and n.item() == 5.0
    g = aisys.trace(collatz_like, aisys.ones(2))
    assert g.count_ops() == {"while_loop": 2}
    out_h, out_n = interpret(g, np.full(2, 10.0, np.float32))
    assert out_h.tolist() == [87.0, 87.0] and out_n == 3.0
    with pytest.raises(ShapeError, match="keep its shape"):
        while_loop(lambda h: h.sum() < 10.0, lambda h: h.sum(0, keepdim=True), (aisys.ones(2),))
    x = aisys.ones(2, requires_grad=True)
    (y,) = while_loop(lambda h: h.sum() < 10.0, lambda h: h * 2.0, (x,))
    with pytest.raises(NotImplementedError, match="for _ in range"):
        y.sum().backward()
