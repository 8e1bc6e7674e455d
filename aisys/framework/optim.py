"""``aisys.optim``: SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta (and ``lr_scheduler``), with PyTorch's names
and math.

Every update is written with tensor ops under ``aisys.no_grad()`` and written back with
``p.assign_(new)``. That is what lets ``aisys.trace`` capture a *whole* training step — forward,
backward and the optimizer — as one graph: the tracer sees each update as an op chain that ends in
an assignment to a named parameter (or to an optimizer state such as Adam's moments).

When nobody is tracing, the same lines run on the tensors' numpy arrays instead (``fast``): the
arithmetic is written once and reads the same on both (``+ - * /`` and the helpers below), so the
numbers are identical, but an eager step skips an op record per arithmetic operation.

A step is all or nothing: every gradient is checked (shape, dtype, and finiteness under
``aisys.detect_anomaly()``) before any parameter or state changes, so a bad gradient leaves the
model, the step counts and the moments as they were.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from .inplace import bump
from .tensor import Tensor, _Mode, no_grad

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "lr_scheduler", "LRScheduler",
           "StepLR", "CosineAnnealingLR"]


_STEP = "an optimizer's step()"          # where a version error says the write happened


def _fast() -> bool:
    """Run the update on numpy arrays: no tracer is watching, so no op chain needs to be recorded."""
    return not _Mode.observers


def _val(t: Tensor, fast: bool):
    return t._data if fast else t


def _set(t: Tensor, value, fast: bool) -> None:
    if fast:
        t._data[...] = value
        bump(t._data, _STEP)
    else:
        t.assign_(value)


def _sub_(t: Tensor, delta, fast: bool) -> None:
    """t ← t − delta (in place on the array when fast: the same rounding as computing t − delta, then copying)."""
    if fast:
        np.subtract(t._data, delta, out=t._data)
        bump(t._data, _STEP)
    else:
        t.assign_(t - delta)


def _sqrt(x):
    # the fast path computes on arrays, and arithmetic on a 0-d array gives a numpy scalar (np.generic)
    return np.sqrt(x) if isinstance(x, (np.ndarray, np.generic)) else x.sqrt()


def _maximum(x, y):
    return np.maximum(x, y) if isinstance(x, (np.ndarray, np.generic)) else x.maximum(y)


def zero_grads(params, set_to_none: bool = True) -> None:
    """Forget the gradients of ``params`` (``.grad = None``), or set them to zeros of their shape."""
    for p in params:
        if p.grad is None:
            continue
        if set_to_none:
            p.grad = None
        else:
            p.grad = Tensor._wrap(np.zeros_like(p.grad._data))


class Optimizer:
    """Holds ``param_groups`` (dicts with 'params' and hyper-parameters) and per-parameter ``state``."""

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: dict = defaultdict(dict)
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of tensors (e.g. model.parameters()), "
                            f"got a single Tensor; wrap it in a list")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list; did model.parameters() run on a "
                             f"model with no layers, or was the generator already consumed?")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict) -> None:
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameters must be Tensors, got {type(p).__name__}")
            if not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: a parameter of shape {tuple(p.shape)} does not require grad, "
                                 f"so it would never be updated; pass only trainable tensors")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: a parameter of shape {tuple(p.shape)} appears in two groups")
            seen.add(id(p))
        full = dict(self.defaults)
        full.update(group)
        full["params"] = params
        full.setdefault("initial_lr", full["lr"])
        self.param_groups.append(full)

    def zero_grad(self, set_to_none: bool = True) -> None:
        zero_grads((p for g in self.param_groups for p in g["params"]), set_to_none)

    def step(self) -> None:
        raise NotImplementedError

    def _check_grads(self) -> None:
        """Refuse the step before anything changes if a gradient cannot update its parameter. (One cheap pass
        over the arrays; the message is built only for the parameter that fails.)"""
        anomaly = _Mode.anomaly
        k = -1
        for g in self.param_groups:
            for p in g["params"]:
                k += 1
                gr = p.grad
                if gr is None:
                    continue
                if type(gr) is not Tensor and not isinstance(gr, Tensor):
                    self._bad_grad(k, p, f"has a .grad of type {type(gr).__name__}, not a Tensor", TypeError)
                a, b = gr._data, p._data
                if a.shape != b.shape:
                    self._bad_grad(k, p, f"has a gradient of shape {tuple(a.shape)}; it must match the parameter's "
                                         f"shape", ValueError)
                if a.dtype != b.dtype:
                    self._bad_grad(k, p, f"has a {gr.dtype.name} gradient; it must be {p.dtype.name} like the "
                                         f"parameter", TypeError)
                if anomaly and not np.all(np.isfinite(a)):
                    self._bad_grad(k, p, f"has {int((~np.isfinite(a)).sum())} non-finite gradient value(s) (found "
                                         f"by aisys.detect_anomaly())", FloatingPointError)

    def _bad_grad(self, k: int, p: Tensor, what: str, error) -> None:
        raise error(f"{type(self).__name__}.step(): parameter {k} ({p.dtype.short}{list(p.shape)}) {what}. "
                    f"Nothing was updated")

    def _grads(self, group: dict, fast: bool):
        """(parameter, its gradient) for each parameter of ``group`` that has one, with ``maximize`` and L2
        ``weight_decay`` (g + λp) applied, as torch's RMSprop/Adagrad/Adadelta do first."""
        for p in group["params"]:
            if p.grad is None:
                continue
            g = _val(p.grad, fast)
            if group.get("maximize"):
                g = -g
            if group.get("weight_decay"):
                g = g + _val(p, fast) * group["weight_decay"]
            yield p, g

    def _state_tensor(self, p: Tensor, name: str) -> Tensor:
        """A zero-initialized state tensor shaped like ``p`` (momentum, moments), created on first use."""
        st = self.state[p]
        if name not in st:
            st[name] = Tensor._wrap(np.zeros_like(p._data))
        return st[name]

    # ---- state dict: like torch, parameters are referred to by their index across groups ----------
    def state_dict(self) -> dict:
        index = {}
        groups = []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({k: v for k, v in g.items() if k != "params"} | {"params": ids})
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: (v.detach() if isinstance(v, Tensor) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore ``state_dict()``'s output. Everything is checked first: a wrong dict changes nothing."""
        name = f"{type(self).__name__}.load_state_dict"
        holds = ("an optimizer state dict (optimizer.state_dict(), not model.state_dict()) holds 'state': "
                 "{parameter index: {name: tensor}} and 'param_groups': [{hyper-parameters..., 'params': "
                 "[indices]}, ...]")
        if not isinstance(state_dict, dict):
            raise TypeError(f"{name}: expected a dict, got {type(state_dict).__name__}; {holds}")
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise KeyError(f"{name}: the dict has no {key!r} key (it has {sorted(map(str, state_dict))}); {holds}")
        groups, state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(groups, (list, tuple)) or not all(isinstance(g, dict) and "params" in g for g in groups):
            raise ValueError(f"{name}: 'param_groups' must be a list of dicts, each with a 'params' list; {holds}")
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError(f"{name}: the saved optimizer has groups of sizes "
                             f"{[len(g['params']) for g in groups]}, this one {[len(g['params']) for g in self.param_groups]}")
        for k, (mine, saved) in enumerate(zip(self.param_groups, groups)):
            missing = sorted(set(mine) - set(saved) - {"params", "initial_lr"})
            if missing:
                raise KeyError(f"{name}: param_groups[{k}] lacks {', '.join(map(repr, missing))}, which "
                               f"{type(self).__name__} needs (was it saved from another optimizer?); {holds}")
        params = [p for g in self.param_groups for p in g["params"]]
        if not isinstance(state, dict):
            raise ValueError(f"{name}: 'state' must be a dict; {holds}")
        for i, st in state.items():
            if not (isinstance(i, int) or (isinstance(i, str) and i.isdigit())) or not 0 <= int(i) < len(params):
                raise ValueError(f"{name}: state key {i!r} is not a parameter index 0..{len(params) - 1}; {holds}")
            if not isinstance(st, dict):
                raise ValueError(f"{name}: state[{i!r}] must be a dict of named tensors, got {type(st).__name__}")
            p = params[int(i)]
            for k, v in st.items():
                if isinstance(v, Tensor) and k != "step" and tuple(v.shape) != tuple(p.shape):
                    raise ValueError(f"{name}: state {k!r} of parameter {i} has shape "
                                     f"{tuple(v.shape)}, the parameter {tuple(p.shape)}")
        self.state = defaultdict(dict)
        for i, st in state_dict["state"].items():
            p = params[int(i)]
            self.state[p] = {k: (Tensor._wrap(np.array(v._data)) if isinstance(v, Tensor) else v) for k, v in st.items()}
        for mine, saved in zip(self.param_groups, groups):
            mine.update({k: v for k, v in saved.items() if k != "params"})

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"


def _check(opt: str, lr, **hyper) -> None:
    if not (isinstance(lr, (int, float)) and lr >= 0):
        raise ValueError(f"{opt}: lr={lr!r} must be a non-negative number")
    for name, (v, lo, hi) in hyper.items():
        if not lo <= v <= hi:
            raise ValueError(f"{opt}: {name}={v!r} must lie in [{lo}, {hi}]")


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov and L2 weight decay.

    With momentum μ (torch's formulation, Sutskever et al. 2013): b ← μ·b + (1−dampening)·g (b = g on the
    first step), then p ← p − lr·b (or p − lr·(g + μ·b) with ``nesterov=True``).
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False):
        _check("SGD", lr, momentum=(momentum, 0.0, math.inf), weight_decay=(weight_decay, 0.0, math.inf))
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    def step(self) -> None:
        self._check_grads()
        fast = _fast()
        with no_grad():
            for group in self.param_groups:
                lr, mu, damp = group["lr"], group["momentum"], group["dampening"]
                wd, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = _val(p.grad, fast)
                    if maximize:
                        g = -g
                    if wd:
                        g = g + _val(p, fast) * wd
                    if mu:
                        st = self.state[p]
                        if "momentum_buffer" not in st:
                            buf = st["momentum_buffer"] = Tensor._wrap(np.zeros_like(p._data))
                            _set(buf, g, fast)
                        else:
                            buf = st["momentum_buffer"]
                            _set(buf, _val(buf, fast) * mu + (g * (1.0 - damp) if damp else g), fast)
                        b = _val(buf, fast)
                        g = g + b * mu if nesterov else b
                    _sub_(p, g * lr, fast)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias-corrected moments:
    m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  p ← p − lr·m̂/(√v̂ + ε),  m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).
    On the first step m̂ = g and v̂ = g², so every weight moves by lr·sign(g) (up to ε).
    ``weight_decay`` adds λp to the gradient (L2); use AdamW for decoupled decay.

    The step count t is a tensor in the state (updated with assign_), so a traced step stays correct
    at every t instead of baking in the t it was traced at.
    """

    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False):
        name = type(self).__name__
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        _check(name, lr, beta1=(betas[0], 0.0, 0.999999), beta2=(betas[1], 0.0, 0.999999999),
               eps=(eps, 0.0, math.inf), weight_decay=(weight_decay, 0.0, math.inf))
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def step(self) -> None:
        self._check_grads()
        fast = _fast()
        with no_grad():
            for group in self.param_groups:
                lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
                wd, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = _val(p.grad, fast)
                    if maximize:
                        g = -g
                    st = self.state[p]
                    if "step" not in st:
                        st["step"] = Tensor._wrap(np.zeros((), p._data.dtype))
                        st["exp_avg"] = Tensor._wrap(np.zeros_like(p._data))
                        st["exp_avg_sq"] = Tensor._wrap(np.zeros_like(p._data))
                        if amsgrad:
                            st["max_exp_avg_sq"] = Tensor._wrap(np.zeros_like(p._data))
                    t, m, v = st["step"], st["exp_avg"], st["exp_avg_sq"]
                    if wd:
                        if self._decoupled:
                            _set(p, _val(p, fast) * (1.0 - lr * wd), fast)
                        else:
                            g = g + _val(p, fast) * wd
                    _set(t, _val(t, fast) + 1.0, fast)
                    _set(m, _val(m, fast) * b1 + g * (1.0 - b1), fast)
                    _set(v, _val(v, fast) * b2 + g * g * (1.0 - b2), fast)
                    tv = _val(t, fast)
                    bias1 = 1.0 - b1 ** tv                     # pow(scalar, tensor): stays a function of t
                    bias2 = 1.0 - b2 ** tv
                    vv = _val(v, fast)
                    if amsgrad:
                        mx = st["max_exp_avg_sq"]
                        _set(mx, _maximum(_val(mx, fast), vv), fast)
                        vv = _val(mx, fast)
                    denom = _sqrt(vv / bias2) + eps
                    _sub_(p, _val(m, fast) * (lr / bias1) / denom, fast)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): p ← p·(1 − lr·λ) before the Adam step,
    instead of adding λp to the gradient. torch's default λ = 0.01."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), as torch: v ← αv + (1−α)g², p ← p − lr·g/(√v + ε); ``centered``
    divides by the variance estimate √(v − ḡ²) instead, ``momentum`` keeps b ← μb + g/(√v + ε), p ← p − lr·b."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False, maximize: bool = False):
        _check("RMSprop", lr, alpha=(alpha, 0.0, 1.0), eps=(eps, 0.0, math.inf), momentum=(momentum, 0.0, math.inf),
               weight_decay=(weight_decay, 0.0, math.inf))
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    def step(self) -> None:
        self._check_grads()
        fast = _fast()
        with no_grad():
            for group in self.param_groups:
                lr, alpha, eps, mu = group["lr"], group["alpha"], group["eps"], group["momentum"]
                for p, g in self._grads(group, fast):
                    v = self._state_tensor(p, "square_avg")
                    _set(v, _val(v, fast) * alpha + g * g * (1.0 - alpha), fast)
                    if group["centered"]:
                        ga = self._state_tensor(p, "grad_avg")
                        _set(ga, _val(ga, fast) * alpha + g * (1.0 - alpha), fast)
                        gav = _val(ga, fast)
                        avg = _sqrt(_val(v, fast) - gav * gav) + eps
                    else:
                        avg = _sqrt(_val(v, fast)) + eps
                    if mu:
                        buf = self._state_tensor(p, "momentum_buffer")
                        _set(buf, _val(buf, fast) * mu + g / avg, fast)
                        _sub_(p, _val(buf, fast) * lr, fast)
                    else:
                        _sub_(p, g / avg * lr, fast)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), as torch: s ← s + g², p ← p − lr_t·g/(√s + ε), lr_t = lr/(1 + (t−1)·lr_decay)."""

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, maximize: bool = False):
        _check("Adagrad", lr, lr_decay=(lr_decay, 0.0, math.inf), weight_decay=(weight_decay, 0.0, math.inf),
               initial_accumulator_value=(initial_accumulator_value, 0.0, math.inf), eps=(eps, 0.0, math.inf))
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                                      initial_accumulator_value=initial_accumulator_value, maximize=maximize))
        for group in self.param_groups:          # torch creates the accumulators eagerly, filled with the value
            for p in group["params"]:
                st = self.state[p]
                st["step"] = Tensor._wrap(np.zeros((), p._data.dtype))
                st["sum"] = Tensor._wrap(np.full_like(p._data, group["initial_accumulator_value"]))

    def step(self) -> None:
        self._check_grads()
        fast = _fast()
        with no_grad():
            for group in self.param_groups:
                lr, eps = group["lr"], group["eps"]
                for p, g in self._grads(group, fast):
                    st = self.state[p]
                    t, acc = st["step"], st["sum"]
                    _set(t, _val(t, fast) + 1.0, fast)
                    clr = lr / ((_val(t, fast) - 1.0) * group["lr_decay"] + 1.0) if group["lr_decay"] else lr
                    _set(acc, _val(acc, fast) + g * g, fast)
                    _sub_(p, g / (_sqrt(_val(acc, fast)) + eps) * clr, fast)


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012), as torch: v ← ρv + (1−ρ)g², Δ = √(u + ε)/√(v + ε)·g, u ← ρu + (1−ρ)Δ²,
    p ← p − lr·Δ (lr = 1 by default: the ratio of the running RMSs sets the step size)."""

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0,
                 maximize: bool = False):
        _check("Adadelta", lr, rho=(rho, 0.0, 1.0), eps=(eps, 0.0, math.inf),
               weight_decay=(weight_decay, 0.0, math.inf))
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))

    def step(self) -> None:
        self._check_grads()
        fast = _fast()
        with no_grad():
            for group in self.param_groups:
                lr, rho, eps = group["lr"], group["rho"], group["eps"]
                for p, g in self._grads(group, fast):
                    v, u = self._state_tensor(p, "square_avg"), self._state_tensor(p, "acc_delta")
                    _set(v, _val(v, fast) * rho + g * g * (1.0 - rho), fast)
                    delta = _sqrt(_val(u, fast) + eps) / _sqrt(_val(v, fast) + eps) * g
                    _set(u, _val(u, fast) * rho + delta * delta * (1.0 - rho), fast)
                    _sub_(p, delta * lr, fast)


# ---- learning-rate schedules (aisys.optim.lr_scheduler; the two classic ones also here, as before) ----------
from . import lr_scheduler  # noqa: E402
from .lr_scheduler import CosineAnnealingLR, LRScheduler, StepLR  # noqa: E402
