"""Weight initialization (``aisys.nn.init``), with PyTorch's names and formulas.

Every function fills a tensor in place from aisys's global generator, so ``aisys.manual_seed(s)``
before building a model makes its initial weights reproducible. Why the scales matter: a layer's
output variance is fan_in · Var(w) · Var(x); choosing Var(w) ∝ 1/fan_in keeps activations from
exploding or vanishing with depth (Glorot & Bengio 2010; He et al. 2015).
"""
from __future__ import annotations

import math

import numpy as np

from ..inplace import bump
from ..tensor import Tensor, _Generator

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_", "eye_"]


def _fill(t: Tensor, values: np.ndarray) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"nn.init: expected an aisys Tensor/Parameter, got {type(t).__name__}")
    t._data[...] = values.astype(t._data.dtype, copy=False)
    bump(t._data, "an aisys.nn.init function")
    return t


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that keeps activation variance steady through ``nonlinearity`` (torch's table)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; use one of "
                     f"linear, conv2d, sigmoid, tanh, relu, leaky_relu, selu")


def _fans(t: Tensor) -> tuple[int, int]:
    """fan_in = in_features × receptive field; fan_out = out_features × receptive field (weight layout
    (out, in, *kernel), as torch)."""
    if t.ndim < 2:
        raise ValueError(f"nn.init: fan in/out needs a tensor with at least 2 dims, got shape {tuple(t.shape)}; "
                         f"use uniform_/normal_ for biases")
    receptive = math.prod(t.shape[2:]) if t.ndim > 2 else 1
    return t.shape[1] * receptive, t.shape[0] * receptive


def _fan(t: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"nn.init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(t)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    return _fill(t, _Generator.rng.uniform(a, b, size=t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    return _fill(t, _Generator.rng.normal(mean, std, size=t.shape))


def trunc_normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0) -> Tensor:
    """Normal values redrawn until they fall inside [a, b] (absolute bounds, as torch)."""
    rng = _Generator.rng
    out = rng.normal(mean, std, size=t.shape)
    bad = (out < a) | (out > b)
    while bad.any():
        out[bad] = rng.normal(mean, std, size=int(bad.sum()))
        bad = (out < a) | (out > b)
    return _fill(t, out)


def constant_(t: Tensor, val: float) -> Tensor:
    return _fill(t, np.full(t.shape, val))


def zeros_(t: Tensor) -> Tensor:
    return constant_(t, 0.0)


def ones_(t: Tensor) -> Tensor:
    return constant_(t, 1.0)


def eye_(t: Tensor) -> Tensor:
    if t.ndim != 2:
        raise ValueError(f"eye_: expects a 2-D tensor, got shape {tuple(t.shape)}")
    return _fill(t, np.eye(*t.shape))


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """U(−a, a) with a = gain·√(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = _fans(t)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -a, a)


def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    fan_in, fan_out = _fans(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """U(−bound, bound), bound = gain·√(3 / fan) (He et al. 2015). torch's Linear and Conv2d defaults
    call this with a=√5, which works out to bound = 1/√fan_in."""
    gain = calculate_gain(nonlinearity, a)
    bound = math.sqrt(3.0) * gain / math.sqrt(_fan(t, mode))
    return uniform_(t, -bound, bound)


def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    gain = calculate_gain(nonlinearity, a)
    return normal_(t, 0.0, gain / math.sqrt(_fan(t, mode)))


def default_fan_in_init_(weight: Tensor, bias: Tensor | None) -> None:
    """torch's default for Linear/Conv: kaiming_uniform_(a=√5) for the weight, U(±1/√fan_in) for the bias."""
    kaiming_uniform_(weight, a=math.sqrt(5.0))
    if bias is not None:
        fan_in, _ = _fans(weight)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound)
