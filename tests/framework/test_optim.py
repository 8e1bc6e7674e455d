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


# ---- seeded bugs that survived: each now has the test that catches it (issue 14) ------------------------
def test_amsgrad_uses_the_running_maximum():
    """With grads 10, 0.01, 0.01 and betas (0.9, 0.5), v falls after the first step, so AMSGrad (which keeps
    max v) moves less than Adam: 0.8023 vs 0.7386 from p = 1, lr = 0.1 (torch's numbers). Grads that never
    make v fall cannot tell an amsgrad that does nothing from a working one."""
    final = {}
    for ams in (True, False):
        p = param([1.0])
        opt = optim.Adam([p], lr=0.1, betas=(0.9, 0.5), amsgrad=ams)
        for g in (10.0, 0.01, 0.01):
            set_grad(p, [g])
            opt.step()
        final[ams] = p.item()
    assert final[True] == pytest.approx(0.8022887, abs=1e-6)
    assert final[False] == pytest.approx(0.7385994, abs=1e-6)


# ---- a step is all or nothing --------------------------------------------------------------------------
def _snapshot(opt):
    params = [p.numpy().copy() for g in opt.param_groups for p in g["params"]]
    state = {id(p): {k: (v.numpy().copy() if hasattr(v, "numpy") else v) for k, v in st.items()}
             for p, st in opt.state.items()}
    return params, state


def _same(a, b):
    assert len(a[0]) == len(b[0]) and all(np.array_equal(x, y) for x, y in zip(a[0], b[0]))
    assert a[1].keys() == b[1].keys()
    for k in a[1]:
        assert a[1][k].keys() == b[1][k].keys()
        assert all(np.array_equal(a[1][k][n], b[1][k][n]) for n in a[1][k])


ALL = [(optim.SGD, dict(lr=0.1, momentum=0.9)), (optim.Adam, dict(lr=0.1, amsgrad=True)), (optim.AdamW, {}),
       (optim.RMSprop, dict(momentum=0.5, centered=True)), (optim.Adagrad, dict(lr_decay=0.1)), (optim.Adadelta, {})]


@pytest.mark.parametrize("cls,kw", ALL, ids=lambda v: getattr(v, "__name__", ""))
def test_a_bad_gradient_leaves_parameters_and_state_unchanged(cls, kw):
    a, b, c = param([1.0, 2.0]), param([[1.0, 2.0], [3.0, 4.0]]), param([0.5])
    opt = cls([a, b, c], **kw)
    for p in (a, b, c):
        set_grad(p, np.ones(p.shape))
    opt.step()                                           # state exists (moments, step counts)
    before = _snapshot(opt)
    set_grad(a, [0.1, 0.2])                              # the first parameter is fine ...
    b.grad = aisys.ones(2, 1, dtype=aisys.float64)       # ... the second is not: shape
    with pytest.raises(ValueError, match=r"parameter 1 \(f64\[2, 2\]\) has a gradient of shape \(2, 1\).*Nothing"):
        opt.step()
    _same(before, _snapshot(opt))
    b.grad = aisys.ones(2, 2, dtype=aisys.float32)       # dtype
    with pytest.raises(TypeError, match="parameter 1 .* float32 gradient; it must be float64"):
        opt.step()
    _same(before, _snapshot(opt))
    b.grad = aisys.tensor([[1.0, np.nan], [0.0, 0.0]], dtype=aisys.float64)
    with aisys.detect_anomaly():                         # finiteness: when asked
        with pytest.raises(FloatingPointError, match="1 non-finite gradient value"):
            opt.step()
    _same(before, _snapshot(opt))


def test_load_state_dict_names_what_is_missing_and_what_a_state_dict_holds():
    p = param([1.0, 2.0])
    opt = optim.Adam([p], lr=0.1)
    set_grad(p, [1.0, 1.0])
    opt.step()
    good = opt.state_dict()
    before = _snapshot(opt)
    with pytest.raises(KeyError, match=r"no 'param_groups' key \(it has \['state'\]\).*holds 'state'"):
        opt.load_state_dict({"state": {}})
    with pytest.raises(KeyError, match=r"no 'state' key \(it has \['bias', 'weight'\]\).*not model.state_dict"):
        opt.load_state_dict({"weight": 1, "bias": 2})
    sgd = optim.SGD([param([0.0, 0.0])], lr=0.1, momentum=0.9).state_dict()
    with pytest.raises(KeyError, match="param_groups\\[0\\] lacks 'amsgrad', 'betas', 'eps'.*another optimizer"):
        opt.load_state_dict(sgd)
    with pytest.raises(ValueError, match="state key 7 is not a parameter index 0..0"):
        opt.load_state_dict({"state": {7: {}}, "param_groups": good["param_groups"]})
    with pytest.raises(TypeError, match="expected a dict, got list"):
        opt.load_state_dict([1, 2])
    _same(before, _snapshot(opt))
    opt.load_state_dict(good)


# ---- RMSprop, Adagrad, Adadelta: the published rules by hand, and torch -----------------------------------
def test_rmsprop_adagrad_adadelta_by_hand():
    lr, alpha, eps = 0.01, 0.99, 1e-8
    p, v = P0.copy(), np.zeros(4)
    for g in G:
        v = alpha * v + (1 - alpha) * g * g
        p = p - lr * g / (np.sqrt(v) + eps)
    np.testing.assert_allclose(run(optim.RMSprop)[-1], p, rtol=1e-12)
    p, s = P0.copy(), np.full(4, 0.1)
    for t, g in enumerate(G, 1):
        s = s + g * g
        p = p - 0.01 / (1 + (t - 1) * 0.5) * g / (np.sqrt(s) + 1e-10)
    np.testing.assert_allclose(run(optim.Adagrad, lr_decay=0.5, initial_accumulator_value=0.1)[-1], p, rtol=1e-12)
    p, v, u = P0.copy(), np.zeros(4), np.zeros(4)
    for g in G:
        v = 0.9 * v + 0.1 * g * g
        d = np.sqrt(u + 1e-6) / np.sqrt(v + 1e-6) * g
        u = 0.9 * u + 0.1 * d * d
        p = p - d
    np.testing.assert_allclose(run(optim.Adadelta)[-1], p, rtol=1e-12)


TORCH_CASES = [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
               ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1)), ("AdamW", dict(lr=0.05)),
               ("RMSprop", dict(lr=0.01)), ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1)),
               ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.5, weight_decay=0.1)),
               ("Adadelta", dict(lr=1.0, rho=0.95, weight_decay=0.01)), ("Adadelta", dict(maximize=True))]


@pytest.mark.parametrize("name,kw", TORCH_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(TORCH_CASES)])
def test_optimizers_agree_with_pytorch(name, kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(4) for _ in range(6)]
    mine = run(getattr(optim, name), grads=grads, **kw)[-1]
    tp = torch.tensor(P0, requires_grad=True)
    topt = getattr(torch.optim, name)([tp], **kw)
    for g in grads:
        tp.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(mine, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


# ---- schedules: PyTorch's closed forms, past T_max too ----------------------------------------------------
def _schedule(O, make, epochs=25):
    p = O["param"]()
    opt = O["SGD"]([p], lr=0.5)
    sched = make(O["lr_scheduler"], opt)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


SCHEDULES = {
    "StepLR": lambda L, o: L.StepLR(o, step_size=4, gamma=0.5),
    "MultiStepLR": lambda L, o: L.MultiStepLR(o, milestones=[3, 7, 7, 12], gamma=0.3),
    "ExponentialLR": lambda L, o: L.ExponentialLR(o, gamma=0.9),
    "LinearLR": lambda L, o: L.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=6),
    "LambdaLR": lambda L, o: L.LambdaLR(o, lambda e: 1.0 / (1 + e)),
    "CosineAnnealingLR": lambda L, o: L.CosineAnnealingLR(o, T_max=8, eta_min=0.05),   # 25 epochs: past T_max
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedules_agree_with_pytorch(name):
    torch = pytest.importorskip("torch")
    mine = _schedule({"param": lambda: param([0.0]), "SGD": optim.SGD, "lr_scheduler": optim.lr_scheduler},
                     SCHEDULES[name])
    theirs = _schedule({"param": lambda: torch.zeros(1, requires_grad=True), "SGD": torch.optim.SGD,
                        "lr_scheduler": torch.optim.lr_scheduler}, SCHEDULES[name])
    np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-15)


def test_cosine_continues_past_t_max_as_pytorch():
    """Once clamped at eta_min after T_max; PyTorch's cosine climbs back, so a schedule run too long differs."""
    lrs = _schedule({"param": lambda: param([0.0]), "SGD": optim.SGD, "lr_scheduler": optim.lr_scheduler},
                    lambda L, o: L.CosineAnnealingLR(o, T_max=4), epochs=9)
    np.testing.assert_allclose(lrs, [0.5 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(9)], atol=1e-15)
    assert lrs[4] == pytest.approx(0.0, abs=1e-15) and lrs[8] == pytest.approx(0.5)
    from aisys.optim.lr_scheduler import MultiStepLR  # noqa: F401  (the module PyTorch scripts import from)


@pytest.mark.parametrize("cls,kw", ALL, ids=lambda v: getattr(v, "__name__", ""))
def test_a_traced_step_computes_what_the_eager_step_does(cls, kw):
    """Every optimizer's update is also written with ops (the path a tracer sees): both give the same values."""
    from aisys.framework.graph import interpret
    aisys.manual_seed(0)
    lin = nn.Linear(3, 2)
    opt = cls(lin.parameters(), **kw)
    x = aisys.randn(4, 3)

    def step(x):
        opt.zero_grad()
        loss = (lin(x) ** 2).mean()
        loss.backward()
        opt.step()
        return loss
    step(x)                                               # state exists before tracing
    g = aisys.trace(step, x)
    outs = interpret(g, x)
    step(x)
    names = g.output_names[1:]
    for name, value in zip(names, outs[1:]):
        if name in ("update weight", "update bias"):
            np.testing.assert_allclose(value, getattr(lin, name.split()[1]).numpy(), rtol=1e-6, atol=1e-7)
    assert {"update weight", "update bias"} <= set(names)
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
