"""The eager fast path (each op's numpy ``vjp_np`` twin, written next to its ``vjp``; the numpy sweep in
autograd; the optimizers' numpy updates) must compute exactly what the op-recorded path computes.

A plain ``backward()``/``grad()`` takes the fast path; ``create_graph=True`` or an observer (a tracer)
takes the recorded path through each op's ``vjp``. Every twin is compared with its op's ``vjp`` on the
op-info table's samples, in float64 and float32, bit for bit; whole training steps are compared
parameter by parameter after several steps of each optimizer.
"""
from __future__ import annotations

import numpy as np
import pytest

import aisys
from aisys import nn
from aisys.framework import optim
from aisys.framework.registry import OPS
from aisys.framework.tensor import Tensor, _Mode, apply
from tests.framework.op_info import BY_NAME

F = nn.functional


class _Watching:
    """An observer that does nothing: its presence alone sends backward and optimizers down the recorded path."""

    def __enter__(self):
        self.ob = lambda *a: None
        _Mode.observers.append(self.ob)
        return self

    def __exit__(self, *exc):
        _Mode.observers.remove(self.ob)


def _grads(row_name, sample, dtype, *, recorded: bool):
    args = [a.astype(dtype) if a.dtype == np.float64 else a for a in sample.args]
    gi = sample.grad_indices()
    xs = [aisys.tensor(a, requires_grad=i in gi) for i, a in enumerate(args)]
    out = apply(row_name, *xs, **sample.attrs)
    u = aisys.tensor(np.random.default_rng(3).standard_normal(out.shape).astype(dtype))
    if recorded:
        gs = aisys.autograd.grad(out, [xs[i] for i in gi], u, create_graph=True, allow_unused=True)
    else:
        gs = aisys.autograd.grad(out, [xs[i] for i in gi], u, allow_unused=True)
    return [None if g is None else g.numpy() for g in gs]


TWINS = sorted(name for name, op in OPS.items() if op.vjp_np is not None)


def test_the_hot_ops_have_twins():
    """What a training step spends its time in; a twin lost in a refactor would only show up as slowness."""
    assert {"add", "mul", "matmul", "linear", "relu", "conv2d", "max_pool2d", "cross_entropy", "mse_loss", "sum",
            "mean", "softmax", "log_softmax", "reshape", "permute"} <= set(TWINS)


@pytest.mark.parametrize("name", TWINS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_twin_equals_the_ops_vjp(name, dtype):
    row = BY_NAME[name]
    checked = 0
    for s in row.samples(row.rng()):
        if not s.grad_indices():
            continue
        fast = _grads(name, s, dtype, recorded=False)
        slow = _grads(name, s, dtype, recorded=True)
        for k, (a, b) in enumerate(zip(fast, slow)):
            assert (a is None) == (b is None), f"{name} {s}: input {k} has a gradient on one path only"
            if a is not None:
                assert a.dtype == b.dtype and a.shape == b.shape, f"{name} {s}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
                np.testing.assert_array_equal(a, b, err_msg=f"{name} {s}: input {k}")
        checked += 1
    assert checked


def test_a_twin_is_really_used(monkeypatch):
    """The fast path must call the twin (a broken twin must show up), and only the fast path."""
    calls = []
    real = OPS["mul"].vjp_np
    monkeypatch.setattr(OPS["mul"], "vjp_np", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = aisys.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert calls == [1]
    x.grad = None
    (x * x).sum().backward(create_graph=True)
    assert calls == [1], "create_graph=True must record the backward with ops, not run the twin"
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_ops_without_a_twin_fall_back_to_their_vjp():
    assert OPS["gelu"].vjp_np is None and OPS["layer_norm"].vjp_np is None
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((4, 6)).astype(np.float32)

    def run(recorded):
        x = aisys.tensor(x0, requires_grad=True)
        y = F.layer_norm(F.gelu(x @ x.T), (4,)).sum()
        y.backward(create_graph=recorded)
        return x.grad.numpy()
    np.testing.assert_array_equal(run(False), run(True))


def test_mixed_dtypes_take_the_recorded_rules():
    """numpy promotes float32 · int32 to float64; aisys (like torch) to float32. The fast path must not
    let numpy's rule leak into a gradient's dtype."""
    for other in (np.int32, np.int64, np.float64, np.float16):
        x = aisys.tensor(np.array([1.5, -2.0], np.float32), requires_grad=True)
        y = aisys.tensor(np.array([3, 4]).astype(other))
        (x * y).sum().backward()
        fast = x.grad
        x.grad = None
        (x * y).sum().backward(create_graph=True)
        assert fast.dtype == x.grad.dtype, f"float32 * {np.dtype(other).name}"
        np.testing.assert_array_equal(fast.numpy(), x.grad.numpy())


def test_accumulation_and_retain_graph_match():
    x0 = np.array([[0.5, -1.0], [2.0, 3.0]])
    results = []
    for recorded in (False, True):
        x = aisys.tensor(x0, requires_grad=True)
        y = (x.exp() * x).sum(0).relu().mean()
        y.backward(retain_graph=True, create_graph=recorded)
        y.backward(create_graph=recorded)
        results.append(x.grad.numpy())
    np.testing.assert_array_equal(*results)


def test_the_fast_path_frees_the_tape_like_the_recorded_one():
    x = aisys.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2.0).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


# ---- whole training steps ----------------------------------------------------------------------------
def _lenet():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU(),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6, 10))


OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1),
    "sgd-momentum-wd": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-2),
    "sgd-nesterov-maximize": lambda p: optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True, maximize=True),
    "adam": lambda p: optim.Adam(p, lr=1e-2),
    "adam-l2-amsgrad": lambda p: optim.Adam(p, lr=1e-2, weight_decay=1e-2, amsgrad=True),
    "adamw": lambda p: optim.AdamW(p, lr=1e-2),
}


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
def test_training_steps_are_identical_on_both_paths(opt_name, model_name):
    rng = np.random.default_rng(1)
    if model_name == "mlp":
        x = rng.standard_normal((16, 5)).astype(np.float32)
        y = rng.integers(0, 3, 16)
    else:
        x = rng.standard_normal((4, 1, 8, 8)).astype(np.float32)
        y = rng.integers(0, 10, 4)
    final = []
    for recorded in (False, True):
        aisys.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)) if model_name == "mlp" else _lenet()
        opt = OPTIMIZERS[opt_name](model.parameters())
        X, Y = aisys.tensor(x), aisys.tensor(y)
        for _ in range(4):
            loss = F.cross_entropy(model(X), Y)
            opt.zero_grad()
            if recorded:
                with _Watching():
                    loss.backward()
                    opt.step()
            else:
                loss.backward()
                opt.step()
        final.append({k: v.numpy().copy() for k, v in model.state_dict().items()})
    fast, slow = final
    for k in fast:
        np.testing.assert_array_equal(fast[k], slow[k], err_msg=f"{model_name}/{opt_name}: parameter {k}")


def test_fast_optimizer_writes_parameters_in_place():
    """Views of a parameter (what a user's detach() gives) see the update, on both paths, as in torch."""
    p = aisys.tensor(np.ones(3, np.float32), requires_grad=True)
    view = p.detach()
    opt = optim.SGD([p], lr=0.5)
    (p * p).sum().backward()
    opt.step()
    np.testing.assert_array_equal(view.numpy(), [0.0, 0.0, 0.0])
    assert isinstance(p, Tensor) and p.requires_grad


# ---- nn.Linear: one `linear` op in eager mode, its decomposition for a tracer -------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_eager_linear_equals_its_decomposition(dtype, bias):
    rng = np.random.default_rng(5)
    x0, w0, b0 = (rng.standard_normal(s).astype(dtype) for s in ((7, 5), (3, 5), (3,)))
    results = []
    for watched in (False, True):
        x, w = aisys.tensor(x0, requires_grad=True), aisys.tensor(w0, requires_grad=True)
        b = aisys.tensor(b0, requires_grad=True) if bias else None
        if watched:
            with _Watching():
                y = F.linear(x, w, b)
            ops = set()
            stack = [y]
            while stack:
                t = stack.pop()
                if t._ctx is not None:
                    ops.add(t._ctx[0].name)
                    stack.extend(t._ctx[1])
            assert ops == ({"permute", "matmul", "add"} if bias else {"permute", "matmul"})
        else:
            y = F.linear(x, w, b)
            assert y._ctx[0].name == "linear"
        (y * y).sum().backward()
        results.append([y.numpy(), x.grad.numpy(), w.grad.numpy()] + ([b.grad.numpy()] if bias else []))
    for a, c in zip(*results):
        np.testing.assert_array_equal(a, c)


def test_a_tracer_sees_linear_as_matmul():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    graph = aisys.trace(model, aisys.randn(2, 4))
    assert "linear" not in graph.count_ops() and graph.count_ops()["matmul"] == 1


def test_linear_with_mixed_dtypes_takes_the_decomposition():
    x = aisys.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    w = aisys.tensor(np.ones((4, 3), np.float64), requires_grad=True)
    y = F.linear(x, w)
    assert y._ctx[0].name == "matmul" and y.dtype == aisys.float64


# ---- leaf gradients own their memory ------------------------------------------------------------------
def test_leaf_gradients_never_share_memory():
    """Large gradients fresh out of a twin are kept without a copy; shared buffers must still be copied:
    the same array reaching two leaves, a user's gradient passed straight through, a value on the tape."""
    n = 80                                                   # 6,400 elements: above the keep-as-is size
    x = aisys.tensor(np.ones((n, n), np.float32), requires_grad=True)
    y = aisys.tensor(np.ones((n, n), np.float32), requires_grad=True)
    (x + y).sum().backward()                                 # add's twin hands the same g to both leaves
    assert not np.shares_memory(x.grad._data, y.grad._data)

    x.grad = None
    G = np.full((n * n,), 2.0, np.float32)
    x.reshape(-1).backward(gradient=G)                       # reshape's twin returns a view of G
    assert not np.shares_memory(x.grad._data, G)
    x.grad._data[0, 0] = 99.0
    assert G[0] == 2.0

    w = aisys.tensor(np.ones((n, n), np.float32), requires_grad=True)
    a = aisys.tensor(np.ones((3, n), np.float32), requires_grad=True)
    (a @ w).sum().backward()                                 # w's gradient: a fresh matmul result, kept
    assert w.grad._data.flags.c_contiguous and w.grad.shape == (n, n)
    np.testing.assert_array_equal(w.grad.numpy(), np.full((n, n), 3.0, np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_mean_shortcut_is_numpys_mean(dtype):
    from aisys.framework.ops.nn import _reduced
    rng = np.random.default_rng(0)
    for n in (1, 7, 96, 1000, 100_001):             # below and above numpy's pairwise-sum block size
        v = rng.standard_normal(n).astype(dtype)
        got, want = np.asarray(_reduced(v, "mean")), np.asarray(v.mean())
        assert got.dtype == want.dtype and got == want, (n, got, want)


def test_matmul_transposed_form_is_row_major_and_numpys_product():
    from aisys.framework.ops.linalg import _TRANSPOSED_FORM_MIN_MACS, _matmul_ref
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 784)).astype(np.float32)
    w = rng.standard_normal((256, 784)).astype(np.float32)
    assert 64 * 784 * 256 >= _TRANSPOSED_FORM_MIN_MACS          # this product takes the transposed form
    got = _matmul_ref(x, w.T)
    assert got.flags.c_contiguous and got.shape == (64, 256) and got.dtype == np.float32
    np.testing.assert_allclose(got, x.astype(np.float64) @ w.T.astype(np.float64), rtol=1e-4, atol=1e-4)
    small = _matmul_ref(x[:2, :3], w[:4, :3].T)
    np.testing.assert_array_equal(small, np.matmul(x[:2, :3], w[:4, :3].T))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_branch_free_where_is_np_where_bit_for_bit(dtype):
    """where() on ≥ 4096 elements selects with bit masks (a ReLU's backward); NaNs, infinities and signed
    zeros must come out exactly as np.where gives them."""
    from aisys.framework.ops.elementwise import _where_ref
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 80)).astype(dtype)
    x.flat[:6] = [np.nan, np.inf, -np.inf, -0.0, 0.0, -np.nan]
    c = rng.random((64, 80)) > 0.5
    u = {2: np.uint16, 4: np.uint32, 8: np.uint64}[x.itemsize]
    for y in (np.zeros((), dtype), np.array(-0.0, dtype), rng.standard_normal((64, 80)).astype(dtype)):
        for cond, a, b in ((c, x, y), (c, y, x), (c, x.T.copy().T, y)):
            got, want = _where_ref(cond, a, b), np.where(cond, a, b)
            np.testing.assert_array_equal(np.asarray(got).view(u), want.view(u))
    # a mask that broadcasts against larger operands (attention's causal (L, S) mask over (N, heads, L, S))
    big = rng.standard_normal((2, 3, 64, 80)).astype(dtype)
    got = _where_ref(c, big, np.array(-1.0, dtype))
    np.testing.assert_array_equal(np.asarray(got).view(u), np.where(c, big, np.array(-1.0, dtype)).view(u))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_cross_entropy_reads_log_softmax_at_the_targets_only(dtype):
    """cross_entropy's reference skips the full log_softmax matrix; it must give the same bits as
    −log_softmax(x)[row, target]."""
    from aisys.framework.ops.nn import _ce_ref, _log_softmax_ref
    rng = np.random.default_rng(4)
    for n, c in ((64, 10), (3, 5), (200, 37)):
        x = (rng.standard_normal((n, c)) * 5).astype(dtype)
        t = rng.integers(0, c, n)
        want = -_log_softmax_ref(x, 1)[np.arange(n), t]
        got = _ce_ref(x, t, "none")
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


def test_a_leaf_gradient_is_writable():
    """A sum over a size-1 dim hands back a read-only broadcast view of the same shape: the leaf must still
    get an array it can scale in place (as clip_grad_norm_ or a user's p.grad *= 0.5 would)."""
    x = aisys.tensor(np.ones((5000, 1), np.float32), requires_grad=True)
    w = aisys.tensor(np.full(5000, 3.0, np.float32))
    (x.sum(1) * w).sum().backward()                # sum's VJP: a same-shape broadcast of mul's fresh gradient
    assert x.grad._data.flags.writeable
    x.grad._data *= 0.5
    np.testing.assert_array_equal(x.grad.numpy(), np.full((5000, 1), 1.5, np.float32))


def test_shared_scalar_constants_are_read_only_and_typed():
    """x * 0.5 reuses one 0-d constant per (value, dtype); it must take the tensor's dtype and refuse writes."""
    for dt in (aisys.float32, aisys.float64, aisys.bfloat16):
        x = aisys.ones(3, dtype=dt, requires_grad=True)
        y = x * 0.5
        const = y._ctx[1][1]._data
        assert const.dtype == dt.np and not const.flags.writeable
        with pytest.raises(ValueError):
            const[...] = 2.0
        assert (x * 0.5)._ctx[1][1]._data is const
