"""aisys.nn: layers checked against hand-written numpy forwards, gradients against central differences
(gradcheck, float64), the Module tree, .npz state dicts (no pickle) and the error messages."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import aisys
from aisys import nn
from aisys.framework.errors import ShapeError

F = nn.functional
RNG = np.random.default_rng(0)


def t64(*shape, scale=1.0, seed=0):
    return aisys.tensor(np.random.default_rng(seed).standard_normal(shape) * scale)


def to64(module):
    """Cast a module's parameters and buffers to float64 in place (for gradcheck)."""
    for _, p in module.named_parameters():
        p._data = p._data.astype(np.float64)
    for _, b in module.named_buffers():
        if b._data.dtype == np.float32:
            b._data = b._data.astype(np.float64)
    return module


def np_conv2d(x, w, b, stride, pad):
    """Direct convolution, the textbook loop (cross-correlation, NCHW)."""
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    OH, OW = (H + 2 * pad - KH) // stride + 1, (W + 2 * pad - KW) // stride + 1
    out = np.zeros((N, O, OH, OW))
    for n in range(N):
        for o in range(O):
            for i in range(OH):
                for j in range(OW):
                    out[n, o, i, j] = (xp[n, :, i * stride:i * stride + KH, j * stride:j * stride + KW] * w[o]).sum()
    return out + (0 if b is None else b.reshape(1, O, 1, 1))


# ---- forward values against numpy ------------------------------------------------------------------
def test_linear_forward_matches_numpy_and_torch_layout():
    aisys.manual_seed(0)
    lin = nn.Linear(5, 3)
    assert lin.weight.shape == (3, 5) and lin.bias.shape == (3,)           # torch's (out, in)
    x = aisys.randn(4, 5)
    np.testing.assert_allclose(lin(x).numpy(), x.numpy() @ lin.weight.numpy().T + lin.bias.numpy(), rtol=1e-6)
    x3 = aisys.randn(2, 4, 5)                                               # leading dims are kept
    np.testing.assert_allclose(lin(x3).numpy(), x3.numpy() @ lin.weight.numpy().T + lin.bias.numpy(), rtol=1e-5)
    assert nn.Linear(5, 3, bias=False).bias is None


def test_default_init_is_torch_kaiming_uniform_and_seeded():
    """torch's Linear/Conv default: kaiming_uniform(a=√5) ⇒ U(±1/√fan_in) for weight and bias."""
    aisys.manual_seed(1)
    a = nn.Linear(400, 50)
    aisys.manual_seed(1)
    b = nn.Linear(400, 50)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    bound = 1 / math.sqrt(400)
    assert np.abs(a.weight.numpy()).max() <= bound and np.abs(a.weight.numpy()).max() > 0.95 * bound
    assert np.abs(a.bias.numpy()).max() <= bound
    # uniform on [-bound, bound] has variance bound²/3
    assert abs(a.weight.numpy().var() - bound ** 2 / 3) < 0.05 * bound ** 2
    conv = nn.Conv2d(3, 8, 5)
    assert np.abs(conv.weight.numpy()).max() <= 1 / math.sqrt(3 * 25)


def test_init_functions_closed_forms():
    aisys.manual_seed(0)
    w = nn.Parameter(np.zeros((200, 300), np.float32))
    nn.init.xavier_uniform_(w)
    a = math.sqrt(6 / 500)
    assert np.abs(w.numpy()).max() <= a and abs(w.numpy().var() - a * a / 3) < 0.03 * a * a
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.numpy().std() - math.sqrt(2 / 300)) < 0.02 * math.sqrt(2 / 300)
    nn.init.zeros_(w)
    assert not w.numpy().any()
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    with pytest.raises(ValueError, match="fan in/out"):
        nn.init.xavier_uniform_(nn.Parameter(np.zeros(3, np.float32)))


@pytest.mark.parametrize("stride,pad", [(1, 0), (2, 1), (1, 2)])
def test_conv2d_matches_direct_loop(stride, pad):
    aisys.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, stride=stride, padding=pad)
    x = aisys.randn(2, 3, 7, 6)
    ref = np_conv2d(x.numpy(), conv.weight.numpy(), conv.bias.numpy(), stride, pad)
    np.testing.assert_allclose(conv(x).numpy(), ref, rtol=1e-4, atol=1e-5)


def test_conv2d_same_padding_and_groups():
    aisys.manual_seed(0)
    x = aisys.randn(1, 4, 5, 5)
    same = nn.Conv2d(4, 2, 3, padding="same")
    assert same(x).shape == (1, 2, 5, 5)
    grouped = nn.Conv2d(4, 6, 3, groups=2)
    out = grouped(x).numpy()
    w, b = grouped.weight.numpy(), grouped.bias.numpy()
    ref0 = np_conv2d(x.numpy()[:, :2], w[:3], b[:3], 1, 0)
    ref1 = np_conv2d(x.numpy()[:, 2:], w[3:], b[3:], 1, 0)
    np.testing.assert_allclose(out, np.concatenate([ref0, ref1], 1), rtol=1e-4, atol=1e-5)


def test_pools_match_numpy():
    x = aisys.randn(2, 3, 6, 6)
    xr = x.numpy().reshape(2, 3, 3, 2, 3, 2)
    np.testing.assert_allclose(nn.MaxPool2d(2)(x).numpy(), xr.max(axis=(3, 5)))
    np.testing.assert_allclose(nn.AvgPool2d(2)(x).numpy(), xr.mean(axis=(3, 5)), rtol=1e-6)
    overlapping = F.max_pool2d(x, 3, stride=1).numpy()
    ref = np.array([[[[x.numpy()[n, c, i:i + 3, j:j + 3].max() for j in range(4)] for i in range(4)]
                     for c in range(3)] for n in range(2)])
    np.testing.assert_allclose(overlapping, ref)


def test_batchnorm_training_and_running_stats():
    bn = nn.BatchNorm2d(3, momentum=0.1)
    x = aisys.randn(4, 3, 2, 2) * 2.0 + 1.0
    xa = x.numpy()
    y = bn(x).numpy()
    mean, var = xa.mean((0, 2, 3)), xa.var((0, 2, 3))
    np.testing.assert_allclose(y, (xa - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5),
                               rtol=1e-4, atol=1e-5)
    n = 4 * 2 * 2
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.9 * 0 + 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 * 1 + 0.1 * var * n / (n - 1), rtol=1e-5)   # unbiased
    assert int(bn.num_batches_tracked.item()) == 1
    bn.eval()
    y_eval = bn(x).numpy()
    rm, rv = bn.running_mean.numpy(), bn.running_var.numpy()
    np.testing.assert_allclose(y_eval, (xa - rm[None, :, None, None]) / np.sqrt(rv[None, :, None, None] + 1e-5),
                               rtol=1e-4, atol=1e-5)
    assert int(bn.num_batches_tracked.item()) == 1                     # eval does not touch the stats


def test_batchnorm_cumulative_momentum_none_and_1d():
    bn = nn.BatchNorm1d(2, momentum=None)
    xs = [aisys.randn(5, 2) for _ in range(3)]
    for x in xs:
        bn(x)
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([x.numpy().mean(0) for x in xs], 0), rtol=1e-5)
    with pytest.raises(ShapeError, match="BatchNorm1d"):
        bn(aisys.randn(5, 3))
    with pytest.raises(ValueError, match="more than one value per channel"):
        nn.BatchNorm1d(2)(aisys.randn(1, 2))


def test_layernorm_embedding_dropout():
    ln = nn.LayerNorm(4)
    with aisys.no_grad():                    # parameters change in place only outside autograd (as in torch)
        ln.weight.copy_(np.array([1.0, 2.0, 3.0, 4.0], np.float32))
        ln.bias.copy_(np.full(4, 0.5, np.float32))
    x = aisys.randn(3, 4)
    xa = x.numpy()
    ref = (xa - xa.mean(-1, keepdims=True)) / np.sqrt(xa.var(-1, keepdims=True) + 1e-5) * [1, 2, 3, 4] + 0.5
    np.testing.assert_allclose(ln(x).numpy(), ref, rtol=1e-4, atol=1e-5)

    emb = nn.Embedding(10, 3)
    idx = aisys.tensor([[1, 2], [9, 1]])
    np.testing.assert_array_equal(emb(idx).numpy(), emb.weight.numpy()[idx.numpy()])

    drop = nn.Dropout(0.25)
    x = aisys.ones(200, 200)
    aisys.manual_seed(3)
    y1 = drop(x).numpy()
    aisys.manual_seed(3)
    y2 = drop(x).numpy()
    np.testing.assert_array_equal(y1, y2)                                   # seeded
    assert set(np.unique(y1)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y1 == 0).mean() - 0.25) < 0.01
    drop.eval()
    assert drop(x) is x


def test_activations_match_numpy():
    x = aisys.randn(4, 5)
    xa = x.numpy().astype(np.float64)
    c = math.sqrt(2 / math.pi)
    cases = {nn.ReLU(): np.maximum(xa, 0), nn.Tanh(): np.tanh(xa), nn.Sigmoid(): 1 / (1 + np.exp(-xa)),
             nn.GELU(): 0.5 * xa * (1 + np.vectorize(math.erf)(xa / math.sqrt(2))),
             nn.GELU(approximate="tanh"): 0.5 * xa * (1 + np.tanh(c * (xa + 0.044715 * xa ** 3))),
             nn.Softmax(-1): np.exp(xa) / np.exp(xa).sum(-1, keepdims=True),
             nn.LogSoftmax(1): xa - np.log(np.exp(xa).sum(1, keepdims=True)),
             nn.SiLU(): xa / (1 + np.exp(-xa)), nn.LeakyReLU(0.1): np.where(xa > 0, xa, 0.1 * xa)}
    for m, ref in cases.items():
        np.testing.assert_allclose(m(x).numpy(), ref, rtol=1e-5, atol=1e-6, err_msg=repr(m))
    assert nn.Flatten()(aisys.randn(2, 3, 4)).shape == (2, 12)


def test_softplus_is_stable_for_large_inputs():
    x = aisys.tensor([-100.0, 0.0, 100.0])
    np.testing.assert_allclose(F.softplus(x).numpy(), [0.0, math.log(2), 100.0], atol=1e-6)


# ---- gradients -------------------------------------------------------------------------------------
def _param_check(module, x, reduce=lambda y: y, call=lambda m, x: m(x)):
    """gradcheck with respect to the input and every parameter of a float64 module."""
    names = [n for n, _ in module.named_parameters()]
    params = dict(module.named_parameters())

    def f(xx, *ps):
        saved = {n: params[n]._data for n in names}
        owners = []
        for n, p in zip(names, ps):
            mod = module
            *path, leaf = n.split(".")
            for part in path:
                mod = getattr(mod, part)
            owners.append((mod, leaf, mod._parameters[leaf]))
            mod._parameters[leaf] = p
        try:
            return reduce(call(module, xx))
        finally:
            for mod, leaf, orig in owners:
                mod._parameters[leaf] = orig
            del saved

    return aisys.gradcheck(f, [x] + [aisys.tensor(params[n].numpy().copy()) for n in names])


def test_gradcheck_linear_conv_pool():
    aisys.manual_seed(0)
    assert _param_check(to64(nn.Linear(3, 2)), t64(2, 3))
    assert _param_check(to64(nn.Conv2d(2, 2, 3, stride=2, padding=1)), t64(1, 2, 5, 5))
    assert aisys.gradcheck(lambda x: F.max_pool2d(x, 2), [t64(1, 1, 4, 4)])
    assert aisys.gradcheck(lambda x: F.avg_pool2d(x, 3, stride=1, padding=1), [t64(1, 1, 4, 4)])


def test_gradcheck_batchnorm_flows_through_batch_statistics():
    aisys.manual_seed(0)
    bn = to64(nn.BatchNorm2d(2))
    with aisys.no_grad():
        bn.weight.copy_(np.array([1.5, 0.5]))
    assert _param_check(bn, t64(3, 2, 2, 2), reduce=lambda y: y * y)     # y*y: the sum of a BN output is flat


def test_gradcheck_layernorm_lstmcell_attention():
    aisys.manual_seed(0)
    ln = to64(nn.LayerNorm(4))
    with aisys.no_grad():
        ln.weight.copy_(np.array([1.0, 2.0, -1.0, 0.5]))
    assert _param_check(ln, t64(2, 4), reduce=lambda y: y * y)
    cell = to64(nn.LSTMCell(3, 2))
    assert _param_check(cell, t64(2, 3), reduce=lambda hc: hc[0] * 2.0 + hc[1])
    mha = to64(nn.MultiheadAttention(4, 2, batch_first=True))
    assert _param_check(mha, t64(1, 3, 4), call=lambda m, x: m(x, x, x, is_causal=True)[0])


def test_gradcheck_losses():
    target = aisys.tensor([0, 2])
    assert aisys.gradcheck(lambda x: F.cross_entropy(x, target, label_smoothing=0.1), [t64(2, 3)])
    probs = aisys.tensor(np.array([[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]]))
    assert aisys.gradcheck(lambda x: F.cross_entropy(x, probs), [t64(2, 3)])
    y = aisys.tensor(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert aisys.gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, y), [t64(2, 2)])
    assert aisys.gradcheck(lambda x: F.nll_loss(F.log_softmax(x, 1), target), [t64(2, 3)])
    assert aisys.gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                           [t64(1, 3, 2, seed=1), t64(1, 3, 2, seed=2), t64(1, 3, 2, seed=3)])


def test_cross_entropy_matches_numpy_and_shapes():
    x = aisys.randn(4, 5)
    y = aisys.tensor([0, 4, 2, 2])
    xa = x.numpy().astype(np.float64)
    ls = xa - np.log(np.exp(xa).sum(1, keepdims=True))
    nll = -ls[np.arange(4), y.numpy()]
    assert F.cross_entropy(x, y).item() == pytest.approx(nll.mean(), rel=1e-5)
    assert F.cross_entropy(x, y, reduction="sum").item() == pytest.approx(nll.sum(), rel=1e-5)
    smooth = 0.1
    ref = (1 - smooth) * nll.mean() + smooth * (-ls.mean(1)).mean()
    assert F.cross_entropy(x, y, label_smoothing=smooth).item() == pytest.approx(ref, rel=1e-5)
    x3 = aisys.randn(2, 5, 3)                               # (N, C, d) with targets (N, d)
    y3 = aisys.tensor([[0, 1, 2], [4, 3, 2]])
    flat = F.cross_entropy(x3.permute(0, 2, 1).reshape(-1, 5), y3.reshape(-1), reduction="none")
    np.testing.assert_allclose(F.cross_entropy(x3, y3, reduction="none").numpy(), flat.numpy().reshape(2, 3),
                               rtol=1e-6)


# ---- recurrent and attention ---------------------------------------------------------------------
def _sig(z):
    return 1 / (1 + np.exp(-z))


def test_lstmcell_matches_gate_equations():
    aisys.manual_seed(0)
    cell = nn.LSTMCell(3, 2)
    x, h, c = aisys.randn(4, 3), aisys.randn(4, 2), aisys.randn(4, 2)
    h1, c1 = cell(x, (h, c))
    gates = x.numpy() @ cell.weight_ih.numpy().T + cell.bias_ih.numpy() + h.numpy() @ cell.weight_hh.numpy().T \
        + cell.bias_hh.numpy()
    i, f, g, o = np.split(gates, 4, axis=1)                          # torch's gate order
    c_ref = _sig(f) * c.numpy() + _sig(i) * np.tanh(g)
    np.testing.assert_allclose(c1.numpy(), c_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h1.numpy(), _sig(o) * np.tanh(c_ref), rtol=1e-5, atol=1e-6)


def test_lstm_equals_unrolled_cells_and_batch_first():
    aisys.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2, batch_first=True)
    x = aisys.randn(2, 5, 3)                                          # (N, L, H_in)
    out, (h_n, c_n) = lstm(x)
    assert out.shape == (2, 5, 4) and h_n.shape == (2, 2, 4) and c_n.shape == (2, 2, 4)
    cells = []
    for k in range(2):
        cell = nn.LSTMCell(3 if k == 0 else 4, 4)
        for nm in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            with aisys.no_grad():
                getattr(cell, nm).copy_(getattr(lstm, f"{nm}_l{k}"))
        cells.append(cell)
    seq = [x[:, t] for t in range(5)]
    for k, cell in enumerate(cells):
        h = c = aisys.zeros(2, 4)
        outs = []
        for xt in seq:
            h, c = cell(xt, (h, c))
            outs.append(h)
        np.testing.assert_allclose(h_n.numpy()[k], h.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(c_n.numpy()[k], c.numpy(), rtol=1e-5, atol=1e-6)
        seq = outs
    np.testing.assert_allclose(out.numpy(), np.stack([s.numpy() for s in seq], 1), rtol=1e-5, atol=1e-6)
    rnn = nn.RNN(3, 4)
    o, h = rnn(aisys.randn(5, 2, 3))
    assert o.shape == (5, 2, 4) and h.shape == (1, 2, 4)
    np.testing.assert_allclose(o.numpy()[-1], h.numpy()[0], rtol=1e-6)


def _np_mha(mha, x, causal):
    E, H = mha.embed_dim, mha.num_heads
    d = E // H
    W, b = mha.in_proj_weight.numpy(), mha.in_proj_bias.numpy()
    q, k, v = np.split(x @ W.T + b, 3, axis=-1)
    N, L, _ = x.shape
    split = lambda t: t.reshape(N, L, H, d).transpose(0, 2, 1, 3)
    s = split(q) @ split(k).transpose(0, 1, 3, 2) / math.sqrt(d)
    if causal:
        s = np.where(np.tril(np.ones((L, L), bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    o = (p @ split(v)).transpose(0, 2, 1, 3).reshape(N, L, E)
    return o @ mha.out_proj.weight.numpy().T + mha.out_proj.bias.numpy(), p.mean(1)


@pytest.mark.parametrize("causal", [False, True])
def test_multihead_attention_matches_numpy(causal):
    aisys.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    nn.init.normal_(mha.in_proj_bias, 0, 0.1)
    nn.init.normal_(mha.out_proj.bias, 0, 0.1)
    x = aisys.randn(2, 5, 8)
    out, w = mha(x, x, x, is_causal=causal)
    ref, ref_w = _np_mha(mha, x.numpy().astype(np.float64), causal)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w.numpy(), ref_w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(w.numpy().sum(-1), 1.0, rtol=1e-5)
    # sequence-first layout gives the same numbers transposed
    mha.batch_first = False
    out_t, _ = mha(x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1), is_causal=causal)
    np.testing.assert_allclose(out_t.numpy().transpose(1, 0, 2), out.numpy(), rtol=1e-5, atol=1e-6)


def test_causal_attention_ignores_future_tokens_and_padding_mask():
    aisys.manual_seed(0)
    mha = nn.MultiheadAttention(4, 1, batch_first=True)
    x = aisys.randn(1, 6, 4)
    x2 = aisys.tensor(x.numpy().copy())
    x2.numpy()[0, 4:] += 10.0                                         # change only the future
    a, _ = mha(x, x, x, is_causal=True)
    b, _ = mha(x2, x2, x2, is_causal=True)
    np.testing.assert_allclose(a.numpy()[0, :4], b.numpy()[0, :4], rtol=1e-5, atol=1e-6)
    pad = aisys.tensor(np.array([[False, False, False, True, True, True]]))
    _, w = mha(x, x, x, key_padding_mask=pad)
    assert np.all(w.numpy()[0, :, 3:] == 0)
    bool_mask = aisys.tensor(~np.tril(np.ones((6, 6), bool)))          # MHA convention: True = masked out
    c, _ = mha(x, x, x, attn_mask=bool_mask)
    np.testing.assert_allclose(c.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)


# ---- the Module tree ------------------------------------------------------------------------------
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.BatchNorm1d(8))
        self.head = nn.Linear(8, 2)
        self.scale = 3.0                                                  # plain attribute, not state

    def forward(self, x):
        return self.head(self.body(x)) * self.scale


def test_module_registration_names_and_modes():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias", "head.weight", "head.bias"]
    assert [n for n, _ in net.named_buffers()] == ["body.2.running_mean", "body.2.running_var",
                                                   "body.2.num_batches_tracked"]
    assert [n for n, _ in net.named_modules()] == ["", "body", "body.0", "body.1", "body.2", "head"]
    assert len(list(net.children())) == 2
    assert net.num_parameters() == 4 * 8 + 8 + 8 + 8 + 8 * 2 + 2
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    assert isinstance(net.body[0], nn.Linear) and len(net.body) == 3 and len(net.body[:2]) == 2
    text = repr(net)
    assert "(body): Sequential(" in text and "Linear(in_features=4, out_features=8, bias=True)" in text


def test_shared_parameters_appear_once_and_reassignment_rules():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    with pytest.raises(TypeError, match="aisys.nn.Parameter"):
        lin.weight = aisys.zeros(3, 3)
    lin.bias = None
    assert [n for n, _ in lin.named_parameters()] == ["weight"]

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2, np.float32))

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Early()


def test_zero_grad_hooks_and_backward_through_modules():
    net = Net()
    x = aisys.randn(6, 4)
    seen = []
    handle = net.head.register_forward_hook(lambda m, inp, out: seen.append(tuple(out.shape)))
    net(x).sum().backward()
    assert seen == [(6, 2)]
    assert all(p.grad is not None and p.grad.shape == p.shape for p in net.parameters())
    handle.remove()
    net(x)
    assert len(seen) == 1
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_trace_names_module_parameters():
    aisys.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    g = aisys.trace(net, aisys.randn(5, 4))
    text = str(g)
    assert "0.weight" in text and "2.bias" in text


# ---- state dicts ----------------------------------------------------------------------------------
def test_state_dict_npz_round_trip_without_pickle(tmp_path):
    aisys.manual_seed(0)
    net = Net()
    net(aisys.randn(5, 4))                                           # move the BN running stats
    path = net.save(tmp_path / "net")
    assert str(path).endswith(".npz")
    with np.load(path, allow_pickle=False) as f:                     # plain arrays only
        assert set(f.files) == set(net.state_dict())
    aisys.manual_seed(1)
    other = Net()
    assert not np.allclose(other.head.weight.numpy(), net.head.weight.numpy())
    other.load(path)
    for (k, a), (_, b) in zip(net.state_dict().items(), other.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    net.eval(), other.eval()
    x = aisys.randn(3, 4)
    np.testing.assert_array_equal(net(x).numpy(), other(x).numpy())


def test_state_dict_bfloat16_round_trip(tmp_path):
    lin = nn.Linear(2, 3, dtype=aisys.bfloat16)
    sd = lin.state_dict()
    nn.save_state_dict(sd, tmp_path / "bf16.npz")
    back = nn.load_state_dict(tmp_path / "bf16.npz")
    assert back["weight"].dtype is aisys.bfloat16
    np.testing.assert_array_equal(back["weight"].numpy().astype(np.float32), sd["weight"].numpy().astype(np.float32))


def test_load_errors_name_keys_and_shapes_and_change_nothing(tmp_path):
    net = Net()
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    sd = {k: v.numpy() + 1 for k, v in net.state_dict().items()}
    del sd["head.bias"]
    sd["extra.weight"] = np.zeros(2, np.float32)
    sd["body.0.weight"] = np.zeros((9, 4), np.float32)
    with pytest.raises(ValueError) as e:
        net.load_state_dict(sd)
    msg = str(e.value)
    assert "missing keys: head.bias" in msg and "unexpected keys: extra.weight" in msg
    assert "body.0.weight" in msg and "(9, 4)" in msg and "(8, 4)" in msg
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=f"{k} changed by a failed load")
    sd["body.0.weight"] = before["body.0.weight"]
    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["head.bias"] and res.unexpected_keys == ["extra.weight"]
    with pytest.raises(FileNotFoundError, match="module.save"):
        net.load(tmp_path / "nope.npz")


# ---- errors that teach ----------------------------------------------------------------------------
def test_error_messages_name_the_layer_and_sizes():
    lin = nn.Linear(784, 256)
    with pytest.raises(ShapeError, match=r"Linear\(in_features=784.*100 features.*\(64, 100\).*in_features=784"):
        lin(aisys.randn(64, 100))
    conv = nn.Conv2d(1, 6, 5)
    with pytest.raises(ShapeError, match=r"Conv2d\(1, 6.*3 channels"):
        conv(aisys.randn(2, 3, 28, 28))
    with pytest.raises(ValueError, match="stride=-1 is invalid"):
        F.conv2d(aisys.randn(1, 1, 5, 5), aisys.randn(1, 1, 3, 3), stride=-1)
    with pytest.raises(TypeError, match="class indices must be an integer tensor"):
        F.cross_entropy(aisys.randn(3, 4), aisys.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="reduction='avg'"):
        F.mse_loss(aisys.randn(3), aisys.randn(3), reduction="avg")
    with pytest.raises(ValueError, match="p=1.5"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="approximate='erf' is not one of"):
        nn.GELU(approximate="erf")
    with pytest.raises(ValueError, match="ceil_mode"):
        nn.MaxPool2d(2, ceil_mode=True)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(TypeError, match="aisys.tensor"):
        F.relu(np.zeros(3))
    with pytest.raises(ValueError, match="groups=2 must divide"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="bidirectional"):
        nn.LSTM(2, 2, bidirectional=True)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 4), fin=st.integers(1, 6), fout=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_linear_property_matches_numpy(n, fin, fout, seed):
    aisys.manual_seed(seed)
    lin = nn.Linear(fin, fout)
    x = aisys.randn(n, fin)
    np.testing.assert_allclose(lin(x).numpy(), x.numpy() @ lin.weight.numpy().T + lin.bias.numpy(),
                               rtol=1e-5, atol=1e-6)


# ---- cross_entropy targets: the bad value named, ignore_index as torch (issue 14) ------------------------
def test_cross_entropy_names_the_bad_target_value():
    with pytest.raises(IndexError, match=r"target -1 \(at position 0\) is out of range for 3 classes"):
        F.cross_entropy(aisys.randn(2, 3), aisys.tensor([-1, 2]))           # once reported "class 2"
    with pytest.raises(IndexError, match=r"target 7 \(at position 1\)"):
        F.cross_entropy(aisys.randn(2, 3), aisys.tensor([0, 7]))
    with pytest.raises(IndexError, match="nll_loss: target -5"):
        F.nll_loss(aisys.randn(2, 3), aisys.tensor([-5, 1]))
    with pytest.raises(ValueError, match="weight= is not supported"):
        F.cross_entropy(aisys.randn(2, 3), aisys.tensor([0, 1]), weight=aisys.ones(3))


def test_cross_entropy_ignore_index_values_and_gradients():
    x = np.random.default_rng(0).standard_normal((4, 3))
    t = np.array([0, -100, 2, -100])
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    kept = [0, 2]
    want = -np.mean([logp[i, t[i]] for i in kept])
    xt = aisys.tensor(x, requires_grad=True)
    loss = F.cross_entropy(xt, aisys.tensor(t))                            # -100 is skipped by default
    assert loss.item() == pytest.approx(want, rel=1e-12)
    loss.backward()
    assert np.all(xt.grad.numpy()[[1, 3]] == 0)
    assert aisys.gradcheck(lambda z: F.cross_entropy(z, aisys.tensor(t)), [t64(4, 3)])
    assert aisys.gradcheck(lambda z: F.cross_entropy(z, aisys.tensor([1, 0, 2, 0]), ignore_index=0,
                                                     label_smoothing=0.2), [t64(4, 3)])
    none = F.cross_entropy(aisys.tensor(x), aisys.tensor(t), reduction="none").numpy()
    assert none[1] == 0 and none[3] == 0
    assert np.isnan(F.cross_entropy(aisys.tensor(x), aisys.tensor([-100] * 4)).item())   # nothing kept: nan


@pytest.mark.parametrize("targets", [[0, -100, 2, 3, -100], [1, 2, 3, 0, 1], [0, 3, 3, 1, 0]])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index,smoothing", [(-100, 0.0), (3, 0.0), (3, 0.1), (-100, 0.1)])
def test_cross_entropy_and_nll_agree_with_pytorch(targets, reduction, ignore_index, smoothing):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    a, b = aisys.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    if -100 in targets and ignore_index != -100:                            # out of range for both
        with pytest.raises(IndexError):
            torch.nn.functional.cross_entropy(b, torch.tensor(targets), ignore_index=ignore_index)
        with pytest.raises(IndexError, match="target -100"):
            F.cross_entropy(a, aisys.tensor(targets), ignore_index=ignore_index)
        return
    la = F.cross_entropy(a, aisys.tensor(targets), ignore_index=ignore_index, reduction=reduction,
                         label_smoothing=smoothing)
    lb = torch.nn.functional.cross_entropy(b, torch.tensor(targets), ignore_index=ignore_index, reduction=reduction,
                                           label_smoothing=smoothing)
    np.testing.assert_allclose(la.detach().numpy(), lb.detach().numpy(), rtol=1e-5, atol=1e-6)
    la.sum().backward()
    lb.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-5, atol=1e-6)
    na = F.nll_loss(F.log_softmax(aisys.tensor(x), 1), aisys.tensor(targets), ignore_index=ignore_index,
                    reduction=reduction)
    nb = torch.nn.functional.nll_loss(torch.log_softmax(torch.tensor(x), 1), torch.tensor(targets),
                                      ignore_index=ignore_index, reduction=reduction)
    np.testing.assert_allclose(na.numpy(), nb.numpy(), rtol=1e-5, atol=1e-6)


# ---- loss modules and adaptive pooling, as torch (issue 15) ----------------------------------------------
LOSSES = [("MSELoss", {}, "real"), ("L1Loss", {}, "real"), ("SmoothL1Loss", {"beta": 0.5}, "real"),
          ("SmoothL1Loss", {"beta": 0.0}, "real"), ("CrossEntropyLoss", {"label_smoothing": 0.1}, "classes"),
          ("CrossEntropyLoss", {"ignore_index": 1}, "classes"), ("NLLLoss", {}, "logp"), ("BCELoss", {}, "prob"),
          ("BCEWithLogitsLoss", {}, "binary"), ("KLDivLoss", {}, "dist"),
          ("KLDivLoss", {"log_target": True}, "logdist")]


def _loss_inputs(kind, T):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3))
    if kind == "real":
        return T.tensor(x), T.tensor(rng.standard_normal((4, 3)))
    if kind in ("classes", "logp"):
        inp = T.tensor(x if kind == "classes" else x - np.log(np.exp(x).sum(1, keepdims=True)))
        return inp, T.tensor([0, 2, 1, 1])
    if kind == "prob":
        return T.tensor(1 / (1 + np.exp(-x))), T.tensor((rng.random((4, 3)) > 0.5).astype(np.float64))
    if kind == "binary":
        return T.tensor(x), T.tensor((rng.random((4, 3)) > 0.5).astype(np.float64))
    p = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    q = rng.random((4, 3))
    q /= q.sum(1, keepdims=True)
    return T.tensor(np.log(p)), T.tensor(np.log(q) if kind == "logdist" else q)


@pytest.mark.parametrize("name,kw,kind", LOSSES, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(LOSSES)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
def test_loss_modules_agree_with_pytorch(name, kw, kind, reduction):
    torch = pytest.importorskip("torch")
    if reduction == "batchmean" and name != "KLDivLoss":
        with pytest.raises(ValueError, match="reduction='batchmean' is not one of"):
            getattr(nn, name)(reduction=reduction, **kw)
        return
    ours, theirs = getattr(nn, name)(reduction=reduction, **kw), getattr(torch.nn, name)(reduction=reduction, **kw)
    a, t = _loss_inputs(kind, aisys)
    b, u = _loss_inputs(kind, torch)
    a.requires_grad_(True)
    b.requires_grad_(True)
    la, lb = ours(a, t), theirs(b, u)
    np.testing.assert_allclose(la.detach().numpy(), lb.detach().numpy(), rtol=1e-10, atol=1e-12)
    la.sum().backward()
    lb.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_losses_without_torch():
    x, y = aisys.tensor([[0.5, -1.0]]), aisys.tensor([[1.0, 1.0]])
    assert nn.L1Loss()(x, y).item() == pytest.approx(1.25)
    assert nn.SmoothL1Loss()(x, y).item() == pytest.approx((0.125 + 1.5) / 2)
    assert nn.MSELoss(reduction="sum")(x, y).item() == pytest.approx(4.25)
    p = aisys.tensor([0.0, 1.0, 0.5])
    assert nn.BCELoss(reduction="none")(p, aisys.tensor([1.0, 0.0, 1.0])).tolist() == pytest.approx(
        [100.0, 100.0, 0.6931472], rel=1e-6)                                # logs clamped at -100, as torch
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\].*sigmoid"):
        nn.BCELoss()(aisys.tensor([1.5]), aisys.tensor([1.0]))
    with pytest.raises(ShapeError, match="must have the same shape.*view_as"):
        nn.L1Loss()(aisys.ones(3, 1), aisys.ones(3))
    with pytest.raises(ValueError, match="size_average= and reduce= are deprecated"):
        nn.MSELoss(size_average=True)


@pytest.mark.parametrize("size,out", [((6, 6), (1, 1)), ((6, 9), (2, 3)), ((7, 5), (3, 2)), ((5, 5), (None, 4))])
def test_adaptive_avg_pool2d_agrees_with_pytorch(size, out):
    x = np.random.default_rng(0).standard_normal((2, 3) + size)
    got = nn.AdaptiveAvgPool2d(out)(aisys.tensor(x, requires_grad=True))
    assert got.shape[2:] == tuple(s if o is None else o for s, o in zip(size, out))
    assert aisys.gradcheck(lambda t: F.adaptive_avg_pool2d(t, out), [aisys.tensor(x[:1, :1])])
    torch = pytest.importorskip("torch")
    want = torch.nn.AdaptiveAvgPool2d(out)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-12)
