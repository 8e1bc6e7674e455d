"""``aisys.optim``: SGD, Adam, AdamW and learning-rate schedules, with PyTorch's names and math.

Every update is written with tensor ops under ``aisys.no_grad()`` and written back with
``p.assign_(new)``. That is what lets ``aisys.trace`` capture a *whole* training step — forward,
backward and the optimizer — as one graph: the tracer sees each update as an op chain that ends in
an assignment to a named parameter (or to an optimizer state such as Adam's moments).

When nobody is tracing, the same lines run on the tensors' numpy arrays instead (``fast``): the
arithmetic is written once and reads the same on both (``+ - * /`` and the helpers below), so the
numbers are identical, but an eager step skips an op record per arithmetic operation.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from .tensor import Tensor, _Mode, no_grad

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "StepLR", "CosineAnnealingLR"]


def _fast() -> bool:
    """Run the update on numpy arrays: no tracer is watching, so no op chain needs to be recorded."""
    return not _Mode.observers


def _val(t: Tensor, fast: bool):
    return t._data if fast else t


def _set(t: Tensor, value, fast: bool) -> None:
    if fast:
        t._data[...] = value
    else:
        t.assign_(value)


def _sub_(t: Tensor, delta, fast: bool) -> None:
    """t ← t − delta (in place on the array when fast: the same rounding as computing t − delta, then copying)."""
    if fast:
        np.subtract(t._data, delta, out=t._data)
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
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved optimizer has groups of sizes "
                             f"{[len(g['params']) for g in groups]}, this one {[len(g['params']) for g in self.param_groups]}")
        params = [p for g in self.param_groups for p in g["params"]]
        for i, st in state_dict["state"].items():
            p = params[int(i)]
            for k, v in st.items():
                if isinstance(v, Tensor) and k != "step" and tuple(v.shape) != tuple(p.shape):
                    raise ValueError(f"{type(self).__name__}.load_state_dict: state {k!r} of parameter {i} has shape "
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


# ---- learning-rate schedules ------------------------------------------------------------------------
class LRScheduler:
    """Sets each group's ``lr`` from the epoch count: call ``step()`` once per epoch, after optimizer.step()."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an aisys.optim.Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        for g, lr in zip(self.optimizer.param_groups, self.get_lr()):
            g["lr"] = lr
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)


class StepLR(LRScheduler):
    """lr = base_lr · γ^⌊epoch / step_size⌋ (closed form, so it can be checked at any epoch)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size={step_size!r} must be a positive int (epochs between decays)")
        self.step_size, self.gamma = step_size, float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = η_min + (base − η_min)·(1 + cos(π·epoch/T_max))/2 (Loshchilov & Hutter 2017, without restarts)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max={T_max!r} must be a positive int")
        self.T_max, self.eta_min = T_max, float(eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        e = min(self.last_epoch, self.T_max)
        return [self.eta_min + (b - self.eta_min) * (1 + math.cos(math.pi * e / self.T_max)) / 2 for b in self.base_lrs]
