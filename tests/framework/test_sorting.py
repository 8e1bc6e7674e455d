"""max/min along a dim, sort, topk, kthvalue, median and mode: PyTorch's (values, indices) named tuples, the
gradient going to the selected elements, against PyTorch where it is installed and against numpy always."""
from __future__ import annotations

import numpy as np
import pytest

import aisys

X = np.array([[3.0, 1.0, 3.0, 2.0, 1.0], [0.0, 5.0, 5.0, 0.0, 2.0], [4.0, -1.0, 7.0, 0.5, 6.0]])


def test_max_with_dim_returns_values_and_indices():
    """`_, pred = torch.max(out, 1)` once silently took the values (two rows: pred held 2 values, not indices)."""
    out = aisys.tensor([[0.1, 0.7, 0.2], [0.9, 0.05, 0.05]])
    _, pred = aisys.max(out, 1)
    assert pred.tolist() == [1, 0] and pred.dtype is aisys.int64
    values, indices = out.max(dim=1, keepdim=True)
    assert values.shape == (2, 1) and indices.tolist() == [[1], [0]]
    r = out.min(0)
    assert r.values.tolist() == pytest.approx([0.1, 0.05, 0.05]) and r.indices.tolist() == [0, 1, 1]
    assert out.max().item() == pytest.approx(0.9) and aisys.max(out, aisys.zeros(2, 3) + 0.5).shape == (2, 3)
    assert aisys.amax(out, (0, 1)).item() == pytest.approx(0.9)
    with pytest.raises(TypeError, match="amax"):
        out.max((0, 1))


def test_gradients_go_to_the_selected_elements():
    x = aisys.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], requires_grad=True)
    x.max(1).values.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]           # the returned index, as torch
    y = aisys.tensor(X, requires_grad=True)
    y.topk(2, dim=1).values.sum().backward()
    assert y.grad.numpy().sum(1).tolist() == [2.0, 2.0, 2.0]
    distinct = np.random.default_rng(0).permutation(15).reshape(3, 5) / 4.0      # no ties: differentiable
    assert aisys.gradcheck(lambda t: t.sort(1, descending=True).values * aisys.arange(5).double(),
                           [aisys.tensor(distinct)])
    assert aisys.gradcheck(lambda t: t.median(1).values + t.kthvalue(2, 0).values.sum(), [aisys.tensor(distinct)])


def test_values_without_torch():
    t = aisys.tensor(X)
    s = t.sort(1)
    np.testing.assert_array_equal(s.values.numpy(), np.sort(X, 1))
    np.testing.assert_array_equal(s.indices.numpy(), np.argsort(X, 1, kind="stable"))
    assert t.topk(2, 1).indices.tolist() == [[0, 2], [1, 2], [2, 4]]                  # ties: first ones first
    assert t.kthvalue(3, 1).values.tolist() == [2.0, 2.0, 4.0]
    assert t.median(1).values.tolist() == [2.0, 2.0, 4.0] and t.median().item() == 2.0   # lower middle
    m = t.mode(1)
    assert m.values.tolist() == [1.0, 0.0, -1.0] and m.indices.tolist() == [4, 3, 1]   # smallest, last index
    assert aisys.argsort(t, 0, descending=True)[:, 1].tolist() == [1, 0, 2]
    with pytest.raises(aisys.ShapeError, match="k=6 must be a whole number in 0..5"):
        t.topk(6)


CASES = {
    "max": lambda T, x: T.max(x, 1), "min_keepdim": lambda T, x: T.min(x, 0, keepdim=True),
    "sort": lambda T, x: T.sort(x, 1), "sort_desc": lambda T, x: T.sort(x, dim=1, descending=True, stable=True),
    "topk": lambda T, x: T.topk(x, 3, 1), "topk_small": lambda T, x: T.topk(x, 2, 1, largest=False),
    "kthvalue": lambda T, x: T.kthvalue(x, 4, 1), "median": lambda T, x: T.median(x, 1),
    "median_all": lambda T, x: T.median(x), "mode": lambda T, x: T.mode(x, 1), "argsort": lambda T, x: T.argsort(x, 1),
}


@pytest.mark.parametrize("name", list(CASES))
def test_agrees_with_pytorch(name):
    torch = pytest.importorskip("torch")
    mine, theirs = CASES[name](aisys, aisys.tensor(X)), CASES[name](torch, torch.tensor(X))
    if isinstance(theirs, tuple):
        assert type(mine).__name__ == type(theirs).__name__ and mine._fields == ("values", "indices")
        np.testing.assert_array_equal(mine.values.numpy(), theirs.values.numpy())
        np.testing.assert_array_equal(mine.indices.numpy(), theirs.indices.numpy())
    else:
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
