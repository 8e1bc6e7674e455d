"""The Tensor API follows PyTorch's conventions: creation and dtype inference, properties, views and strides,
indexing, shape manipulation, conversions, operators, and the observer hooks the tracer relies on."""
from __future__ import annotations

import numpy as np
import pytest

import aisys
from aisys.framework.tensor import _Mode


# ---- creation and dtype inference ----------------------------------------------------------------------
@pytest.mark.parametrize("data,dtype", [
    ([1.0, 2.0], aisys.float32), ([1, 2], aisys.int64), ([True, False], aisys.bool), (3.5, aisys.float32),
    (np.zeros(2), aisys.float64), (np.zeros(2, np.float16), aisys.float16), (np.zeros(2, np.int32), aisys.int32),
    (np.float64(1.0), aisys.float64), ([[1, 2], [3, 4]], aisys.int64)])
def test_tensor_dtype_inference(data, dtype):
    assert aisys.tensor(data).dtype is dtype


def test_tensor_creation_options():
    t = aisys.tensor([1, 2], dtype=aisys.float64, requires_grad=True)
    assert t.dtype is aisys.float64 and t.requires_grad and t.is_leaf and t.grad is None
    assert aisys.tensor([aisys.tensor(1.0), aisys.tensor(2.0)]).tolist() == [1.0, 2.0]
    src = aisys.tensor([1.0, 2.0])
    copy = aisys.tensor(src)
    copy.numpy()[0] = 9.0
    assert src.tolist() == [1.0, 2.0]                     # aisys.tensor(t) copies, like torch.tensor
    assert aisys.as_tensor(src) is src
    assert aisys.tensor([1.0], dtype="bfloat16").dtype is aisys.bfloat16


def test_factories():
    assert aisys.zeros(2, 3).shape == (2, 3) and aisys.zeros((2, 3)).dtype is aisys.float32
    assert aisys.ones(2, dtype=aisys.int8).tolist() == [1, 1]
    assert aisys.full((2,), 7).dtype is aisys.int64 and aisys.full((2,), 0.5).tolist() == [0.5, 0.5]
    assert aisys.arange(4).tolist() == [0, 1, 2, 3] and aisys.arange(4).dtype is aisys.int64
    assert aisys.arange(0.0, 1.0, 0.5).dtype is aisys.float32
    assert aisys.eye(2).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert aisys.zeros_like(aisys.ones(2, dtype="float16")).dtype is aisys.float16
    aisys.manual_seed(3)
    a = aisys.randn(4)
    aisys.manual_seed(3)
    assert aisys.randn(4).tolist() == a.tolist()                           # seeded: reproducible
    r = aisys.randint(0, 3, (50,))
    assert r.dtype is aisys.int64 and set(r.tolist()) <= {0, 1, 2}
    assert 0.0 <= aisys.rand(10).numpy().min() and aisys.rand(10).numpy().max() < 1.0


# ---- properties ---------------------------------------------------------------------------------------------
def test_properties_and_conversions():
    t = aisys.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert t.shape == (2, 3) and t.ndim == 2 and t.dim() == 2 and t.size() == (2, 3) and t.size(1) == 3
    assert t.numel() == 6 and t.nbytes == 24 and len(t) == 2
    assert t.stride() == (3, 1) and t.stride(0) == 3 and t.is_contiguous()
    assert np.shares_memory(t.numpy(), t.numpy()) and t.numpy() is t._data      # .numpy() shares memory
    assert aisys.tensor([[4.5]]).item() == 4.5 and isinstance(aisys.tensor([3]).item(), int)
    assert float(aisys.tensor(2.5)) == 2.5 and int(aisys.tensor(7)) == 7
    assert [x.tolist() for x in t] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    for name, dt in [("float", aisys.float32), ("double", aisys.float64), ("half", aisys.float16),
                     ("bfloat16", aisys.bfloat16), ("long", aisys.int64), ("int", aisys.int32), ("bool", aisys.bool)]:
        assert getattr(t, name)().dtype is dt
    assert t.to("float64").dtype is aisys.float64 and t.to(aisys.float32) is t      # same dtype: no copy
    assert aisys.tensor([-1.7, 2.7]).long().tolist() == [-1, 2]                      # truncation toward zero
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(aisys.tensor(1.0))


def test_repr():
    assert repr(aisys.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(aisys.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(aisys.tensor([1.0], dtype="float64")) == "tensor([1.], dtype=aisys.float64)"
    assert repr(aisys.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert repr(aisys.tensor([1.0], requires_grad=True) * 2) == "tensor([2.], grad_fn=<mul>)"


# ---- views and strides ------------------------------------------------------------------------------------
def test_transpose_is_a_strided_view():
    t = aisys.tensor(np.arange(12.0, dtype=np.float32).reshape(3, 4))
    tt = t.T
    assert tt.shape == (4, 3) and tt.stride() == (1, 4) and not tt.is_contiguous()
    assert np.shares_memory(tt.numpy(), t.numpy())
    c = tt.contiguous()
    assert c.is_contiguous() and c.stride() == (3, 1) and c.tolist() == tt.tolist()
    assert t.contiguous() is t
    assert t.mT.shape == (4, 3) and t.transpose(0, 1).tolist() == tt.tolist()
    with pytest.raises(ValueError, match="expects a 2-D tensor"):
        aisys.ones(2, 3, 4).T


def test_expand_has_zero_strides():
    e = aisys.tensor([[1.0], [2.0]]).expand(2, 3)
    assert e.shape == (2, 3) and e.stride() == (1, 0)
    assert aisys.tensor([[1.0], [2.0]]).expand(4, -1, 3).shape == (4, 2, 3)
    assert aisys.ones(3).broadcast_to((2, 3)).shape == (2, 3)


# ---- indexing ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", [
    1, -1, slice(1, None), slice(None, None, -1), (slice(None), -2), (None, 0), (Ellipsis, 1), (0, Ellipsis, None),
    [2, 0, 2], (slice(None), [0, 3]), np.array([1, 1]), "mask", (0, slice(3, 0, -2))],
    ids=lambda k: repr(k))
def test_indexing_matches_numpy(key):
    arr = np.arange(24.0).reshape(3, 4, 2)
    if isinstance(key, str):
        key = arr[..., 0] > 5
        t_key = aisys.tensor(key)
    else:
        t_key = key
    got = aisys.tensor(arr)[t_key]
    np.testing.assert_array_equal(got.numpy(), arr[key])


def test_indexing_with_tensors_and_gradient_scatter():
    x = aisys.tensor(np.arange(5.0), requires_grad=True)
    idx = aisys.tensor([0, 0, 3])
    x[idx].sum().backward()
    assert x.grad.tolist() == [2.0, 0.0, 0.0, 1.0, 0.0]           # repeated indices accumulate
    y = aisys.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    (y[y > 2.5] * 2.0).sum().backward()
    assert y.grad.tolist() == [[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]]


def test_setitem_on_plain_tensors():
    t = aisys.zeros(3)
    t[1] = 5.0
    t[aisys.tensor([True, False, False])] = aisys.tensor([2.0])
    assert t.tolist() == [2.0, 5.0, 0.0]


# ---- shape manipulation -----------------------------------------------------------------------------------
def test_reshape_family():
    t = aisys.tensor(np.arange(12.0))
    assert t.reshape(3, 4).shape == (3, 4) and t.reshape((2, -1)).shape == (2, 6) and t.view(-1, 3).shape == (4, 3)
    assert t.reshape(12) is t                                            # a no-op returns the same tensor
    m = aisys.tensor(np.arange(24.0).reshape(2, 3, 4))
    assert m.permute(2, 0, 1).shape == (4, 2, 3) and m.permute((1, 0, 2)).shape == (3, 2, 4)
    np.testing.assert_array_equal(m.permute(2, 0, 1).numpy(), np.transpose(m.numpy(), (2, 0, 1)))
    assert m.flatten().shape == (24,) and m.flatten(1).shape == (2, 12) and m.flatten(0, 1).shape == (6, 4)
    u = aisys.ones(2, 3)
    assert u.unsqueeze(0).shape == (1, 2, 3) and u.unsqueeze(-1).shape == (2, 3, 1) and u.unsqueeze(1).shape == (2, 1, 3)
    s = aisys.ones(1, 2, 1, 3)
    assert s.squeeze().shape == (2, 3) and s.squeeze(0).shape == (2, 1, 3) and s.squeeze(-2).shape == (1, 2, 3)
    assert s.squeeze(1).shape == (1, 2, 1, 3)                             # not size 1: unchanged, as torch


def test_cat_stack_pad():
    a, b = aisys.tensor([[1.0, 2.0]]), aisys.tensor([[3.0, 4.0]])
    assert aisys.cat([a, b]).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert aisys.cat([a, b], dim=-1).tolist() == [[1.0, 2.0, 3.0, 4.0]]
    assert aisys.concat([a, b]).shape == (2, 2)
    assert aisys.stack([a[0], b[0]]).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert aisys.stack([a[0], b[0]], dim=1).tolist() == [[1.0, 3.0], [2.0, 4.0]]
    p = aisys.pad(a, (1, 2))                                              # last dim: 1 before, 2 after
    assert p.tolist() == [[0.0, 1.0, 2.0, 0.0, 0.0]]
    assert aisys.pad(a, (0, 0, 1, 0), value=9.0).tolist() == [[9.0, 9.0], [1.0, 2.0]]


def test_reductions_and_methods():
    t = aisys.tensor([[1.0, 5.0], [3.0, 2.0]])
    assert t.sum().item() == 11.0 and t.sum(0).tolist() == [4.0, 7.0] and t.sum(1, keepdim=True).shape == (2, 1)
    assert t.mean().item() == 2.75 and t.max().item() == 5.0
    assert t.min(1).values.tolist() == [1.0, 2.0] and t.min(1).indices.tolist() == [0, 1]
    assert t.argmax().item() == 1 and t.argmax(0).tolist() == [1, 0] and t.argmin(1).tolist() == [0, 1]
    assert t.var(correction=0).item() == pytest.approx(2.1875) and t.std().item() == pytest.approx(np.std(t.numpy(), ddof=1))
    assert t.any() and not (t > 9).any() and (t > 0).all()
    assert t.clamp(2.0, 4.0).tolist() == [[2.0, 4.0], [3.0, 2.0]]
    assert t.softmax(1).sum(1).tolist() == pytest.approx([1.0, 1.0])
    assert t.gather(1, aisys.tensor([[1], [0]])).tolist() == [[5.0], [3.0]]
    assert t.where(t > 2, 0.0).tolist() == [[0.0, 5.0], [3.0, 0.0]]
    assert aisys.tensor([-2.0, 0.0, 3.0]).sign().tolist() == [-1.0, 0.0, 1.0]


def test_operators_and_reflected_numpy_scalars():
    t = aisys.tensor([1.0, 2.0])
    assert (2 - t).tolist() == [1.0, 0.0] and (2 / t).tolist() == [2.0, 1.0] and (2 ** t).tolist() == [2.0, 4.0]
    assert (t ** 2).tolist() == [1.0, 4.0] and (-t).tolist() == [-1.0, -2.0] and abs(-t).tolist() == [1.0, 2.0]
    r = np.float32(3.0) * t                                  # __array_priority__: the Tensor's operator wins
    assert isinstance(r, aisys.Tensor) and r.tolist() == [3.0, 6.0]
    assert (t == 1.0).tolist() == [True, False] and (t != 1.0).tolist() == [False, True]
    assert (t < 2).tolist() == [True, False] and (t >= 2).tolist() == [False, True]
    assert (aisys.ones(2, 3) @ aisys.ones(3)).tolist() == [3.0, 3.0]
    assert (np.ones((1, 2)) @ aisys.ones(2, 1)).shape == (1, 1)


# ---- hooks for the tracer -------------------------------------------------------------------------------------
class _Recorder:
    def __init__(self):
        self.ops, self.bools, self.assigns = [], [], []

    def __call__(self, op, inputs, attrs, out):
        self.ops.append(op.name)

    def on_bool(self, t):
        self.bools.append(t)

    def on_assign(self, t, value):
        self.assigns.append((t, value))


def test_observers_see_ops_bools_and_assigns():
    rec = _Recorder()
    _Mode.observers.append(rec)
    try:
        p = aisys.ones(2)
        y = (p * 2.0).sum()
        if y > 1.0:
            pass
        with aisys.no_grad():
            p.assign_(p - 0.5)
    finally:
        _Mode.observers.remove(rec)
    assert rec.ops == ["mul", "sum", "gt", "sub"]
    assert len(rec.bools) == 1 and rec.bools[0].dtype is aisys.bool
    assert len(rec.assigns) == 1 and rec.assigns[0][0] is p and p.tolist() == [0.5, 0.5]


# ---- PyTorch's everyday surface (issue 15) ------------------------------------------------------------------
def _surface(T):
    x = T.arange(12).float().reshape(3, 4)
    y = T.ones(3, 4)
    m = T.ones(4, 4)
    return {
        "split": [t.tolist() for t in T.split(x, 2, dim=1)],
        "split_sizes": [t.tolist() for t in x.split([1, 2], 0)],
        "chunk": [t.tolist() for t in x.chunk(2, 1)], "chunk_uneven": [t.tolist() for t in T.arange(5).chunk(3)],
        "tril": T.tril(m, -1).tolist(), "triu": m.triu(1).tolist(),
        "masked_fill": x.masked_fill(x > 5, -1.0).tolist(),
        "view_as": y.view_as(T.zeros(12)).shape == (12,), "expand_as": T.ones(1, 4).expand_as(y).tolist(),
        "type_as": str(T.arange(3).type_as(y).dtype).split(".")[-1],
        "eq": x.eq(x).all().item(), "any": (x > 10).any().item(), "all_dim": (x >= 0).all(1).tolist(),
        "add_alpha": T.add(x, y, alpha=2).tolist(), "sub_kw": T.sub(input=x, other=y).tolist(),
        "matmul_kw": T.matmul(input=x, other=y.T).tolist(), "sum_dtype": str(x.sum(dtype=T.float64).dtype),
        "format": f"{x.sum():.3f}|{T.tensor(2.5):.1f}|{x.mean()}|{T.tensor([1])}",
        "mm": T.mm(x, y.T).shape == (3, 3),
        "var_unbiased": round(float(x.var(unbiased=False)), 5),
        "std_dim": [round(v, 5) for v in x.std(dim=1).tolist()],
    }


def test_everyday_surface_agrees_with_pytorch():
    torch = pytest.importorskip("torch")
    mine, theirs = _surface(aisys), _surface(torch)
    mine["sum_dtype"] = mine["sum_dtype"].replace("aisys.", "torch.")
    assert mine == theirs


def test_everyday_surface_without_torch():
    got = _surface(aisys)
    assert got["chunk_uneven"] == [[0, 1], [2, 3], [4]] and got["tril"][1] == [1.0, 0.0, 0.0, 0.0]
    assert got["format"].startswith("66.000|2.5|") and got["eq"] is True and got["any"] is True
    with pytest.raises(TypeError, match="only 0-d tensors format as numbers"):
        f"{aisys.ones(1):.2f}"
    with pytest.raises(aisys.ShapeError, match="must be non-negative and add up to 4"):
        aisys.ones(4).split([1, 2])
    x = aisys.ones(3, 3, requires_grad=True)
    (aisys.tril(x) * 2.0).sum().backward()
    assert x.grad.tolist() == [[2.0, 0.0, 0.0], [2.0, 2.0, 0.0], [2.0, 2.0, 2.0]]
    g = aisys.trace(lambda t: t.tril().sum(), aisys.ones(3, 3))          # a constant mask: traceable
    assert "where" in g.count_ops()


def test_observe_ops_sees_every_op_in_its_block_and_leaves_no_observer():
    import aisys
    from aisys.framework.tensor import _Mode

    x, w = aisys.randn(2, 3), aisys.randn(3, 4, requires_grad=True)
    seen = []
    with aisys.observe_ops(lambda op, inputs, attrs, out: seen.append((op.name, len(inputs), tuple(out.shape)))):
        (x @ w).relu().sum(dim=1)
    assert seen == [("matmul", 2, (2, 4)), ("relu", 1, (2, 4)), ("sum", 1, (2,))]
    (x @ w).relu()                                  # outside the block: not seen
    assert len(seen) == 3 and _Mode.observers == []
    with pytest.raises(RuntimeError, match="boom"):
        with aisys.observe_ops(lambda *a: None):
            raise RuntimeError("boom")
    assert _Mode.observers == []                    # removed even when the block raises
    with pytest.raises(TypeError, match="must be callable"):
        with aisys.observe_ops("not a function"):
            pass
