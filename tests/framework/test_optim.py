"""aisys.optim: each optimizer's steps against closed forms or the published update rule computed by
hand in numpy, schedules against their formulas, and the assign_ contract that tracing relies on."""
from __future__ import annotations

import math

import numpy as np
import pytest

import aisys
from aisys import nn, optim
from aisys.framework.tensor import _Mode


def param(values):
    return nn.Parameter(np.asarray(values, np.float64))


def set_grad(p, g):
    p.grad = aisys.tensor(np.asarray(g, np.float64))


G = [np.array([0.5, -2.0, 0.0, 4.0]), np.array([-1.0, 1.0, 3.0, 0.5]), np.array([2.0, 0.25, -1.0, -3.0])]
P0 = np.array([1.0, -1.0, 2.0, 0.0])


def run(opt_cls, grads=G, **kw):
    p = param(P0)
    opt = opt_cls([p], **kw)
    out = []
    for g in grads:
        set_grad(p, g)
        opt.step()
        out.append(p.numpy().copy())
    return out


def test_sgd_plain_is_p_minus_lr_g():
    out = run(optim.SGD, lr=0.1)
    np.testing.assert_allclose(out[-1], P0 - 0.1 * sum(G))


def test_sgd_momentum_dampening_nesterov_weight_decay_by_hand():
    lr, mu, damp, wd = 0.1, 0.9, 0.2, 0.01
    for nesterov in (False, True):
        p, buf = P0.copy(), None
        for g in G:
            d = g + wd * p
            buf = d.copy() if buf is None else mu * buf + (1 - (0 if nesterov else damp)) * d
            step = d + mu * buf if nesterov else buf
            p = p - lr * step
        got = run(optim.SGD, lr=lr, momentum=mu, dampening=0 if nesterov else damp, weight_decay=wd,
                  nesterov=nesterov)[-1]
        np.testing.assert_allclose(got, p, rtol=1e-12)


def test_sgd_maximize_ascends():
    np.testing.assert_allclose(run(optim.SGD, lr=0.1, maximize=True)[-1], P0 + 0.1 * sum(G))


def test_adam_first_step_is_lr_times_sign_of_grad():
    """Bias-corrected moments on step 1: m̂ = g, v̂ = g², so Δp = −lr·g/(|g| + ε) ≈ −lr·sign(g)."""
    out = run(optim.Adam, grads=G[:1], lr=0.01)
    g = G[0]
    np.testing.assert_allclose(out[0], P0 - 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12)
    moved = g != 0
    np.testing.assert_allclose(np.abs(out[0] - P0)[moved], 0.01, rtol=1e-6)
    assert out[0][~moved] == P0[~moved]


def _adam_reference(lr, b1, b2, eps, wd=0.0, decoupled=False, amsgrad=False):
    p, m, v, vmax = P0.copy(), 0.0, 0.0, 0.0
    for t, g in enumerate(G, 1):
        if wd and decoupled:
            p = p * (1 - lr * wd)
        elif wd:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        vhat = (vmax if amsgrad else v) / (1 - b2 ** t)
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(vhat) + eps)
    return p


@pytest.mark.parametrize("kw", [dict(), dict(weight_decay=0.1), dict(amsgrad=True), dict(betas=(0.5, 0.9))])
def test_adam_three_steps_match_kingma_ba(kw):
    betas = kw.get("betas", (0.9, 0.999))
    ref = _adam_reference(0.05, *betas, 1e-8, wd=kw.get("weight_decay", 0.0), amsgrad=kw.get("amsgrad", False))
    np.testing.assert_allclose(run(optim.Adam, lr=0.05, **kw)[-1], ref, rtol=1e-10)


def test_adamw_decay_is_decoupled():
    ref = _adam_reference(0.05, 0.9, 0.999, 1e-8, wd=0.1, decoupled=True)
    np.testing.assert_allclose(run(optim.AdamW, lr=0.05, weight_decay=0.1)[-1], ref, rtol=1e-10)
    l2 = run(optim.Adam, lr=0.05, weight_decay=0.1)[-1]
    assert not np.allclose(l2, ref)                      # L2-in-the-gradient is a different algorithm
    # first AdamW step in closed form: p·(1 − lr·λ) − lr·sign(g)
    first = run(optim.AdamW, grads=G[:1], lr=0.05, weight_decay=0.1)[0]
    np.testing.assert_allclose(first, P0 * (1 - 0.005) - 0.05 * G[0] / (np.abs(G[0]) + 1e-8), rtol=1e-12)


def test_updates_go_through_assign_so_tracing_sees_them():
    class Recorder:
        def __init__(self):
            self.assigned = []

        def __call__(self, op, inputs, attrs, out):
            pass

        def on_assign(self, tensor, value):
            self.assigned.append(id(tensor))

    for cls, kw in [(optim.SGD, dict(lr=0.1, momentum=0.9)), (optim.Adam, dict(lr=0.1))]:
        p = param(P0)
        opt = cls([p], **kw)
        set_grad(p, G[0])
        rec = Recorder()
        _Mode.observers.append(rec)
        try:
            opt.step()
        finally:
            _Mode.observers.remove(rec)
        assert id(p) in rec.assigned
        if cls is optim.Adam:
            st = opt.state[p]
            assert {id(st["exp_avg"]), id(st["exp_avg_sq"]), id(st["step"])} <= set(rec.assigned)
            assert isinstance(st["step"], aisys.Tensor) and st["step"].item() == 1


def test_zero_grad_and_skipping_params_without_grad():
    a, b = param([1.0]), param([2.0])
    opt = optim.SGD([a, b], lr=1.0)
    set_grad(a, [1.0])
    opt.step()
    assert a.item() == 0.0 and b.item() == 2.0                # b had no gradient: untouched
    opt.zero_grad(set_to_none=False)
    assert a.grad.item() == 0.0
    opt.zero_grad()
    assert a.grad is None


def test_param_groups_have_their_own_lr():
    a, b = param([1.0]), param([1.0])
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    set_grad(a, [1.0]), set_grad(b, [1.0])
    opt.step()
    assert a.item() == pytest.approx(0.9) and b.item() == pytest.approx(0.5)


def test_state_dict_resume_equals_uninterrupted():
    full = run(optim.Adam, lr=0.05)[-1]
    p = param(P0)
    opt = optim.Adam([p], lr=0.05)
    for g in G[:2]:
        set_grad(p, g)
        opt.step()
    saved, p_saved = opt.state_dict(), p.numpy().copy()
    q = param(p_saved)
    opt2 = optim.Adam([q], lr=0.05)
    opt2.load_state_dict(saved)
    set_grad(q, G[2])
    opt2.step()
    np.testing.assert_allclose(q.numpy(), full, rtol=1e-12)


def test_step_lr_and_cosine_closed_forms():
    p = param([0.0])
    opt = optim.SGD([p], lr=1.0)
    sched = optim.StepLR(opt, step_size=3, gamma=0.5)
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == [1.0 * 0.5 ** (e // 3) for e in range(8)]
    assert sched.get_last_lr() == [0.5 ** (8 // 3)]
    opt = optim.SGD([param([0.0])], lr=0.2)
    cos = optim.CosineAnnealingLR(opt, T_max=4, eta_min=0.0)
    seen = [opt.param_groups[0]["lr"]]
    for _ in range(4):
        cos.step()
        seen.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(seen, [0.2 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(5)], atol=1e-15)


def test_optimizer_errors_teach():
    p = param([1.0])
    with pytest.raises(TypeError, match="wrap it in a list"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="does not require grad"):
        optim.SGD([aisys.tensor([1.0])], lr=0.1)
    with pytest.raises(ValueError, match="lr=-1"):
        optim.Adam([p], lr=-1)
    with pytest.raises(ValueError, match="beta1"):
        optim.Adam([p], betas=(1.5, 0.9))
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="step_size"):
        optim.StepLR(optim.SGD([p], lr=0.1), step_size=0)


def test_training_reduces_loss_float32():
    aisys.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    x = aisys.randn(32, 2)
    y = (x[:, 0:1] * x[:, 1:2]).detach()
    opt = optim.Adam(net.parameters(), lr=0.05)
    losses = []
    for _ in range(60):
        loss = nn.functional.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


@pytest.mark.parametrize("name, kw", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.1)),
                                      ("AdamW", dict(lr=0.1, amsgrad=True))])
def test_zero_dim_parameter_steps_like_pytorch(name, kw):
    """A 0-d parameter (a learned temperature or scale) steps as in PyTorch: the fast path's arithmetic on a 0-d
    array gives numpy scalars, which Adam's square root once refused."""
    torch = pytest.importorskip("torch")
    p = aisys.tensor(np.float32(1.5), requires_grad=True)
    q = torch.tensor(1.5, requires_grad=True)
    opt, opt_t = getattr(aisys.optim, name)([p], **kw), getattr(torch.optim, name)([q], **kw)
    for _ in range(3):
        opt.zero_grad(); (p * p * p).backward(); opt.step()
        opt_t.zero_grad(); (q * q * q).backward(); opt_t.step()
    assert p.shape == ()
    np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-5)
